"""Self-contained demos on built-in data (``lrcn demo ...``)."""
