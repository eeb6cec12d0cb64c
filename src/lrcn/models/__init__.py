"""Task models, one family per file; built by name through :func:`create_model`, or from a
config section and a bundle's extras through :func:`build_model`.

Every public module of this package is imported here, which registers its models: a new model
family is a new file, and nothing else changes.
"""

import importlib
import pkgutil

from lrcn.models._registry import (
    ModelFamily,
    build_model,
    create_model,
    list_models,
    model_entry,
    register_model,
)

for _module in pkgutil.iter_modules(__path__):
    if not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = [
    "ModelFamily",
    "build_model",
    "create_model",
    "list_models",
    "model_entry",
    "register_model",
]
