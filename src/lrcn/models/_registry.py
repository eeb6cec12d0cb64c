"""The one registry: model builders by name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

_BUILDERS: dict[str, Callable[..., nn.Module]] = {}

__all__ = ["create_model", "list_models", "register_model"]


def register_model(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """Decorator: make ``fn`` buildable as ``create_model(fn.__name__, ...)``."""
    if fn.__name__ in _BUILDERS:
        raise ValueError(f"model {fn.__name__!r} is registered twice")
    _BUILDERS[fn.__name__] = fn
    return fn


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """Build a registered model; keyword arguments go to its builder."""
    if name not in _BUILDERS:
        raise ValueError(f"unknown model {name!r}; registered models: {', '.join(list_models())}")
    return _BUILDERS[name](**kwargs)


def list_models() -> list[str]:
    """Names of every registered model, sorted."""
    return sorted(_BUILDERS)
