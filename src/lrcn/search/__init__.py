"""Text search over a folder of photos with a trained retrieval run (``lrcn index``,
``lrcn search``)."""
