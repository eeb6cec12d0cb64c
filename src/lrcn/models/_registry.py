"""The one registry: model builders by name, each with its config class and task family.

A *family* is the set of models of one task (activity, captioning, ...). It names the typed
extras a bundle of its models carries (class names, a vocabulary, an answer list) and how those
extras size a model (``num_classes``, ``vocab_size``). With that, a bundle or a config builds
its model here, below the checkpoint: loading a bundle never imports training or task code.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import BaseModel
from torch import nn

from lrcn.backbones import backbone_from_config
from lrcn.config import ConfigError, StrictConfig, validate_as

E = TypeVar("E", bound=BaseModel)
Builder = Callable[..., nn.Module]

__all__ = [
    "ModelFamily",
    "build_model",
    "create_model",
    "list_models",
    "model_entry",
    "register_model",
]


@dataclass(frozen=True)
class ModelFamily(Generic[E]):
    """The models of one task: ``extras`` is the bundle's typed extras class, ``sizes`` turns
    extras into size arguments (e.g. ``{"num_classes": 101}``); each builder gets those it
    takes."""

    task: str
    extras: type[E]
    sizes: Callable[[E], dict[str, Any]]


@dataclass(frozen=True)
class ModelEntry:
    name: str
    builder: Builder
    config: type[StrictConfig]
    family: ModelFamily[Any]


_MODELS: dict[str, ModelEntry] = {}


def register_model(
    family: ModelFamily[Any], config: type[StrictConfig]
) -> Callable[[Builder], Builder]:
    """Decorator: make a builder buildable as ``create_model(builder.__name__, ...)`` and from a
    config section validated by ``config``. A builder that takes a ``backbone`` gets the one its
    section names (the section is then a :class:`BackboneConfig`); one that does not (a model
    that reads raw frames, such as the ConvLSTM forecaster) gets none."""

    def add(fn: Builder) -> Builder:
        if fn.__name__ in _MODELS:
            raise ValueError(f"model {fn.__name__!r} is registered twice")
        _MODELS[fn.__name__] = ModelEntry(fn.__name__, fn, config, family)
        return fn

    return add


def model_entry(name: str, source: str = "<config>") -> ModelEntry:
    """The registry entry of model ``name``; a :class:`ConfigError` names the known ones."""
    if name not in _MODELS:
        raise ConfigError(
            source, f"unknown model {name!r}", key="model.name", expected=", ".join(list_models())
        )
    return _MODELS[name]


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """Build a registered model; keyword arguments go to its builder."""
    if name not in _MODELS:
        raise ValueError(f"unknown model {name!r}; registered models: {', '.join(list_models())}")
    return _MODELS[name].builder(**kwargs)


def list_models(task: str | None = None) -> list[str]:
    """Names of every registered model (of one task's family), sorted."""
    return sorted(n for n, e in _MODELS.items() if task is None or e.family.task == task)


def build_model(
    model: Mapping[str, Any] | StrictConfig,
    extras: BaseModel,
    pretrained: bool = True,
    source: str = "<config>",
) -> nn.Module:
    """The model a config's ``model`` section describes, sized by the bundle ``extras``.

    ``pretrained=False`` skips loading backbone weights (a bundle's own weights replace them).
    Keys of the section that the builder does not take (a loss weight such as
    ``attention_regularization``) configure training, not the network, and are left out.
    """
    raw = model.model_dump(mode="json") if isinstance(model, BaseModel) else dict(model)
    entry = model_entry(str(raw.get("name")), source)
    section = validate_as(entry.config, raw, source, prefix=("model",))
    if not isinstance(extras, entry.family.extras):
        raise ConfigError(
            source,
            f"model {entry.name!r} is a {entry.family.task} model; its extras must be "
            f"{entry.family.extras.__name__}, got {type(extras).__name__}",
        )
    values = section.model_dump(mode="json")
    takes = inspect.signature(entry.builder).parameters
    kwargs = {k: v for k, v in values.items() if k in takes and k != "backbone"}
    sizes = {k: v for k, v in entry.family.sizes(extras).items() if k in takes}
    if "backbone" in takes:
        kwargs["backbone"] = backbone_from_config(values, pretrained)
    return entry.builder(**sizes, **kwargs)
