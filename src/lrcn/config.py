"""Experiment configs: one flat YAML file with ``task``, ``data``, ``model`` and ``train``.

Loaded with ``yaml.safe_load`` and validated by pydantic models that forbid unknown keys, so a
typo fails loudly with the file, the key path and its line instead of being ignored.
``--set a.b=value`` overrides (the value is parsed as YAML: numbers, booleans, lists) are
applied before validation, and the resolved config is saved into the run folder.

This module holds what every task shares (the train and decode sections, the backbone fields,
reading and validating); each task's own config class lives with the task (``lrcn.tasks``), each
model's with the model (``lrcn.models``), and ``lrcn.tasks.load_config`` picks the class by the
file's ``task:``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lrcn.errors import LrcnError

__all__ = [
    "BackboneConfig",
    "ConfigError",
    "DecodeConfig",
    "StrictConfig",
    "TrainConfig",
    "absolute_paths",
    "apply_overrides",
    "config_to_yaml",
    "read_config_file",
    "validate_as",
]

M = TypeVar("M", bound=BaseModel)


class ConfigError(LrcnError):
    """A config that cannot be used; the message names the file, key and line."""


class StrictConfig(BaseModel):
    """Unknown keys are errors; a validated config never changes."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class BackboneConfig(StrictConfig):
    """The per-frame CNN every model starts with (the model section's shared fields)."""

    backbone: str = "efficientnet_lite0"
    backbone_weights: Path | None = None  # torchvision:<arch>: a local state-dict file
    pretrained: bool = True
    freeze_backbone: bool = True
    image_size: int | None = Field(None, ge=32)  # crop side; None = the backbone's own (224)


class TrainConfig(StrictConfig):
    """The optimisation loop."""

    epochs: int = Field(10, ge=1)
    batch_size: int = Field(16, ge=1)
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"
    lr: float = Field(1e-3, gt=0)
    momentum: float = Field(0.9, ge=0, lt=1)  # sgd only
    weight_decay: float = Field(0.0, ge=0)
    schedule: Literal["none", "cosine", "step"] = "cosine"
    step_size: int = Field(10, ge=1)  # epochs between decays, schedule=step
    gamma: float = Field(0.1, gt=0, le=1)  # decay factor, schedule=step
    grad_clip: float | None = Field(5.0, gt=0)
    amp: bool = True  # mixed precision, used on a GPU only
    clips_per_video: int = Field(1, ge=1)  # video tasks: training clips per video per epoch
    seed: int = 0
    device: str = Field("auto", pattern=r"^(auto|cpu|mps|cuda(:\d+)?)$")  # cuda:1 = 2nd GPU
    feature_cache: Path | None = None  # frozen backbone: folder of cached features (default
    # <data root>/../.lrcn-features)
    # frozen backbone: what runs it over every frame to fill the cache; auto = ONNX Runtime on the
    # CPU (checked against eager on the first batch; eager if it disagrees), eager on a GPU
    extract_engine: Literal["auto", "eager", "onnxruntime"] = "auto"
    eval_every: int = Field(1, ge=1)  # epochs between evaluations on the validation split


class DecodeConfig(StrictConfig):
    """How sentences are generated at evaluation and prediction (sequence-out tasks)."""

    beam_size: int = Field(3, ge=1)  # 1 = greedy
    max_len: int = Field(20, ge=1)
    length_penalty: float = Field(0.0, ge=0)  # GNMT alpha; 0 ranks by log-probability


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``a.b.c=value`` strings to a nested dict (value parsed as YAML); returns a copy."""
    import copy

    result = copy.deepcopy(raw)
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {item!r}", "expected key.path=value, e.g. train.lr=0.01")
        node = result
        parts = key.strip().split(".")
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"--set {item!r}", f"{part!r} is a value, not a section")
            node = child
        try:
            value = _parse_yaml(text)[0] if text.strip() else None
        except (*_YAML_ERRORS, RecursiveYaml) as err:
            raise ConfigError(
                f"--set {item!r}", f"the value is not valid YAML ({_one_line(err)})"
            ) from None
        node[parts[-1]] = value
    return result


def _key_lines(node: yaml.Node | None, path: Path) -> dict[tuple[str, ...], int]:
    """Line number (1-based) of every mapping key of a composed YAML document, by key path.

    PyYAML keeps the last of two equal keys; a config with ``train:`` twice silently losing
    the first section is refused instead, at the second one's line."""
    lines: dict[tuple[str, ...], int] = {}

    def walk(node: yaml.Node, where: tuple[str, ...], record: bool = True) -> None:
        if isinstance(node, yaml.SequenceNode):  # checked for duplicates, lines not recorded
            for item in node.value:
                walk(item, where, record=False)
        if not isinstance(node, yaml.MappingNode):
            return
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            line = key_node.start_mark.line + 1
            if key in seen:
                dotted = "".join(f"{part}." for part in where)
                raise ConfigError(
                    path, f"duplicate key {dotted}{key!r} (first on line {seen[key]})", line,
                    expected="each key once; merge the two",
                )  # fmt: skip
            seen[key] = line
            if record:
                lines[(*where, key)] = line
            walk(value_node, (*where, key), record)

    if node is not None:
        walk(node, ())
    return lines


def absolute_paths(model: M) -> M:
    """``model`` with every relative ``Path`` field (at any depth) made absolute against the
    current folder, as a run stores its config: evaluate and predict then work from anywhere."""
    updates: dict[str, Any] = {}
    for name in type(model).model_fields:
        value = getattr(model, name)
        if isinstance(value, Path) and not value.is_absolute():
            updates[name] = Path(os.path.abspath(value))  # '..' folded, links kept
        elif isinstance(value, BaseModel):
            changed = absolute_paths(value)
            if changed is not value:
                updates[name] = changed
    return model.model_copy(update=updates) if updates else model


def read_config_file(path: str | Path) -> tuple[dict[str, Any], dict[tuple[str, ...], int]]:
    """A YAML config as a dict, and the line of every key in it (for error messages).

    Raises:
        ConfigError: a missing or unreadable file, invalid YAML, or not a mapping.
    """
    path = Path(path)
    if path.is_dir():
        raise ConfigError(path, "is a folder", expected="a YAML config file")
    if not path.is_file():
        raise ConfigError(path, "config file not found")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(path, f"cannot be read as UTF-8 text ({err})") from None
    try:
        raw, node = _parse_yaml(text)
    except _YAML_ERRORS as err:
        raise ConfigError(path, f"not valid YAML: {_one_line(err)}") from None
    except RecursiveYaml as err:
        raise ConfigError(
            path, str(err), err.line, expected="no alias inside its own anchor"
        ) from None
    if not isinstance(raw, dict):
        raise ConfigError(path, "expected a mapping with task, data, model and train sections")
    return raw, _key_lines(node, path)


# PyYAML's constructors raise assorted plain Python errors for bad tagged scalars:
# ``2001-02-30`` and ``!!int ten`` (ValueError), ``!!int`` alone (IndexError), ``!!timestamp``
# alone (AttributeError). safe_load runs no user code, so any of them means bad YAML.
_YAML_ERRORS = (yaml.YAMLError, ValueError, TypeError, IndexError, AttributeError, OverflowError)


class RecursiveYaml(Exception):
    def __init__(self, line: int) -> None:
        super().__init__("an alias refers to the anchor it is inside (a recursive value)")
        self.line = line


def _parse_yaml(text: str) -> tuple[Any, yaml.Node | None]:
    """``yaml.safe_load``'s value and the composed document it was built from (for key lines),
    parsed once; recursive anchors (``a: &x {b: *x}``), which would make every later walk of
    the value loop forever, are refused."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()  # yaml.YAMLError on bad syntax
        _refuse_recursion(node, set())
        return (None if node is None else loader.construct_document(node)), node
    finally:
        loader.dispose()


def _refuse_recursion(node: yaml.Node | None, inside: set[int]) -> None:
    if not isinstance(node, (yaml.MappingNode, yaml.SequenceNode)):
        return
    if id(node) in inside:
        raise RecursiveYaml(node.start_mark.line + 1)
    inside.add(id(node))
    children = (
        [v for pair in node.value for v in pair]
        if isinstance(node, yaml.MappingNode)
        else node.value
    )
    for child in children:
        _refuse_recursion(child, inside)
    inside.discard(id(node))


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__


def validate_as(
    cls: type[M],
    raw: dict[str, Any],
    source: str = "<config>",
    key_lines: dict[tuple[str, ...], int] | None = None,
    overridden: frozenset[str] = frozenset(),
    prefix: tuple[str, ...] = (),
) -> M:
    """``raw`` validated as ``cls``; a :class:`ConfigError` lists every problem on its own line,
    each with the file, the key's line (when the key is in the file and was not set by
    ``--set``: ``overridden`` holds the dotted keys that were) and the key path. ``prefix``
    is where ``raw`` sits in the whole config (``("model",)`` for a model section)."""
    try:
        return cls.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(
            _describe(err, raw, source, key_lines or {}, overridden, prefix)
        ) from None


def _key_path(loc: tuple[int | str, ...], raw: Any) -> list[str]:
    """The error's location as config keys. pydantic puts a discriminated union's tag into the
    path ("model.lrcn.hidden_size"); a part equal to the node's own ``name`` is that tag."""
    keys, node = [], raw
    for part in loc:
        if isinstance(node, dict) and part not in node and node.get("name") == part:
            continue
        keys.append(str(part))
        node = node.get(part) if isinstance(node, dict) else None
    return keys


def _describe(
    err: ValidationError,
    raw: dict[str, Any],
    source: str,
    key_lines: dict[tuple[str, ...], int],
    overridden: frozenset[str],
    prefix: tuple[str, ...] = (),
) -> str:
    problems = []
    for e in err.errors():
        loc = [*prefix, *_key_path(e["loc"], raw)]
        key = ".".join(loc) or "(top level)"
        line = None
        if not any(key == o or key.startswith(o + ".") for o in overridden):
            for n in range(len(loc), 0, -1):
                line = key_lines.get(tuple(loc[:n]))
                if line is not None:
                    break
        where = f"{source}:{line}" if line is not None else source
        if key in overridden:
            where += " (--set)"
        message = "unknown key" if e["type"] == "extra_forbidden" else e["msg"]
        message = message.removeprefix("Value error, ")  # a validator's own sentence
        shown = "input" in e and not isinstance(e["input"], dict)
        if e["type"] != "extra_forbidden" and shown and f"got {e['input']!r}" not in message:
            message += f" (got {e['input']!r})"
        problems.append(f"{where}: {key}: {message}")
    return "\n".join(problems)


def config_to_yaml(config: BaseModel) -> str:
    """The resolved config as YAML (paths as strings), ready to save in a run folder."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
