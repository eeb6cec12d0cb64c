"""lrcn: CNN+LSTM computer vision (the Long-term Recurrent Convolutional Network family).

The public API, imported on first use so that ``import lrcn`` (and ``lrcn --help``) stays
free of torch::

    from lrcn import create_model, list_models, load_bundle
    bundle = load_bundle("runs/my_run")        # best/ of a run: model, extras, preprocessing
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lrcn._version import __version__

__all__ = ["__version__", "create_model", "list_models", "load_bundle"]

if TYPE_CHECKING:
    from lrcn.checkpoint import load_bundle
    from lrcn.models import create_model, list_models

_LAZY = {
    "create_model": "lrcn.models",
    "list_models": "lrcn.models",
    "load_bundle": "lrcn.checkpoint",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'lrcn' has no attribute {name!r}")
