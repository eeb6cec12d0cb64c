"""``lrcn serve``: the JSON API server over trained runs (:mod:`lrcn.serve.app`), its upload
handling, micro-batching and metrics, and a load generator for tests and benchmarks.

Nothing is imported here: ``lrcn --help`` imports :mod:`lrcn.serve.commands`, which must stay
cheap; import :mod:`lrcn.serve.app` for the server itself.
"""
