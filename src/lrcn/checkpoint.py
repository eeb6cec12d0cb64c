"""The checkpoint bundle: everything predict, export and serve need, and nothing executable.

A bundle is a folder::

    model.safetensors   the weights (backbone and head), tensors only
    bundle.json         format, lrcn version, task, the resolved config, the backbone's
                        preprocessing preset, the task's typed extras (class names, a
                        vocabulary, ...), and the epoch and metrics it was saved at

``load_bundle`` rebuilds the model from the config's ``model`` section and the extras through
the model registry (:mod:`lrcn.models`) and loads the weights strictly, so a bundle never
unpickles code, loading imports no training or task code, and weights that do not fit the
config (a bundle edited by hand, from elsewhere, or from an incompatible version) fail with a
message naming the file and the mismatching keys and shapes.

Resuming training needs more: ``train_state.pt`` beside the bundle holds optimizer and
scheduler state and counters, saved with ``torch.save`` of tensors and plain types and loaded
with ``weights_only=True``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import torch
from pydantic import BaseModel, ValidationError
from torch import nn

from lrcn._version import __version__
from lrcn.backbones import Preprocess
from lrcn.config import ConfigError
from lrcn.errors import LrcnError
from lrcn.models import build_model, model_entry

WEIGHTS = "model.safetensors"
META = "bundle.json"
TRAIN_STATE = "train_state.pt"
FORMAT_VERSION = 2

E = TypeVar("E", bound=BaseModel)

__all__ = [
    "Bundle",
    "BundleError",
    "load_bundle",
    "load_train_state",
    "read_bundle_task",
    "resolve_bundle_dir",
    "save_bundle",
    "save_train_state",
]


class BundleError(LrcnError):
    """A bundle that cannot be loaded; the message names the file and the problem."""


@dataclass
class Bundle:
    """A loaded bundle: the model (eval mode) and what it needs to be used."""

    model: nn.Module
    task: str
    config: dict[str, Any]
    extras: BaseModel  # the model family's typed extras, e.g. ActivityExtras(classes=[...])
    preprocess: Preprocess
    path: Path
    epoch: int | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    engine: str = "eager"  # what runs ``model``: PyTorch, or an exported graph's runtime

    def extras_as(self, kind: type[E]) -> E:
        """The extras as the task expects them (a bundle of another task is an error)."""
        if not isinstance(self.extras, kind):
            raise BundleError(
                self.path / META, f"holds a {self.task} model, not what this command needs"
            )
        return self.extras


def save_bundle(
    folder: str | Path,
    model: nn.Module,
    config: dict[str, Any],
    extras: BaseModel,
    preprocess: Preprocess,
    epoch: int | None = None,
    metrics: dict[str, float] | None = None,
) -> Path:
    """Write ``model``'s weights and metadata into ``folder`` (created, files replaced)."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    tmp = folder / (WEIGHTS + ".tmp")
    save_file(state, str(tmp))
    tmp.chmod(0o666 & ~_umask())  # safetensors creates it 0600: other machines' users read it
    tmp.replace(folder / WEIGHTS)  # never a half-written weights file under the real name
    meta = {
        "format": FORMAT_VERSION,
        "lrcn_version": __version__,
        "task": config.get("task"),
        "config": config,
        "preprocess": preprocess.to_dict(),
        "extras": extras.model_dump(mode="json"),
        "epoch": epoch,
        "metrics": metrics or {},
    }
    tmp_meta = folder / (META + ".tmp")
    tmp_meta.write_text(json.dumps(meta, indent=1))
    tmp_meta.replace(folder / META)
    return folder


def _read_meta(folder: Path) -> dict[str, Any]:
    meta_path = folder / META
    if not meta_path.is_file():
        raise BundleError(
            folder, f"not an lrcn bundle (no {META})", expected="a run's best/ or last/ folder"
        )
    try:
        meta = json.loads(meta_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise BundleError(meta_path, f"not valid JSON ({err})") from None
    if not isinstance(meta, dict):
        raise BundleError(meta_path, "expected a JSON object")
    for key in ("format", "task", "config", "preprocess", "extras"):
        if key not in meta:
            raise BundleError(meta_path, f"missing {key!r}; is this an lrcn bundle?")
    if meta["format"] != FORMAT_VERSION:
        raise BundleError(
            meta_path,
            f"bundle format {meta['format']} is not {FORMAT_VERSION}, the one lrcn "
            f"{__version__} reads",
        )
    if not isinstance(meta["config"], dict) or not isinstance(meta["config"].get("model"), dict):
        raise BundleError(meta_path, "config.model: missing or not a mapping")
    return meta


def resolve_bundle_dir(path: str | Path, which: str = "best") -> Path:
    """Accept a bundle folder or a run folder (then its ``best``/``last`` bundle)."""
    path = Path(path)
    if (path / META).is_file():
        return path
    if (path / which / META).is_file():
        return path / which
    if not path.exists():
        raise BundleError(path, "no such run or bundle folder")
    raise BundleError(path, f"neither a bundle nor a run folder with a {which}/ bundle")


def read_bundle_task(path: str | Path, which: str = "best") -> str:
    """The task of a bundle (or a run's bundle), read from its ``bundle.json``; nothing built."""
    return str(_read_meta(resolve_bundle_dir(path, which))["task"])


def _check_fit(model: nn.Module, state: dict[str, torch.Tensor], path: Path) -> None:
    """Every tensor present, none extra, each of the model's shape; else name them."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [
        f"{k} {tuple(state[k].shape)} in the file, {tuple(v.shape)} in the model"
        for k, v in own.items()
        if k in state and state[k].shape != v.shape
    ]
    if missing or unexpected or wrong:
        parts = [f"{len(wrong)} of another shape (e.g. {wrong[:2]})"] if wrong else []
        parts += [f"{len(missing)} missing (e.g. {missing[:3]})"] if missing else []
        parts += [f"{len(unexpected)} unexpected (e.g. {unexpected[:3]})"] if unexpected else []
        raise BundleError(
            path,
            "weights do not fit the model bundle.json describes: " + "; ".join(parts),
            expected="bundle.json's config.model and extras as saved with these weights",
        )


ENGINES = ("eager", "onnxruntime", "torchscript")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def with_stored_defaults(model_config: dict[str, Any], source: str) -> dict[str, Any]:
    """A saved model config (a bundle's, a run's ``config.yaml``) with the fields added after it
    was saved set to what its weights were built with (the config class's ``stored_defaults``),
    not to the defaults of new configs: a saved config lists every field it knew."""
    entry = model_entry(str(model_config.get("name")), source)
    return {**getattr(entry.config, "stored_defaults", {}), **model_config}


def load_bundle(
    path: str | Path,
    which: str = "best",
    device: str | torch.device = "cpu",
    engine: str = "eager",
) -> Bundle:
    """Load a bundle (or a run folder's ``best``/``last`` bundle) without unpickling anything.

    ``engine`` "onnxruntime" or "torchscript" runs the graphs ``lrcn export`` wrote into the
    bundle folder (``export.json``) in place of the PyTorch model, behind the same methods."""
    if engine not in ENGINES:
        raise BundleError("--engine", f"unknown engine {engine!r}", expected=", ".join(ENGINES))
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    folder = resolve_bundle_dir(path, which)
    if engine != "eager":
        from lrcn.export.engine import find_export

        folder = find_export(folder, engine)
    meta = _read_meta(folder)
    meta_path = folder / META
    weights_path = folder / WEIGHTS
    if not weights_path.is_file():
        raise BundleError(weights_path, "weights file missing")
    try:
        state = load_file(str(weights_path), device=str(device))
    except (SafetensorError, OSError) as err:
        raise BundleError(weights_path, f"not a readable safetensors file ({err})") from None
    try:
        preprocess = Preprocess.from_dict(meta["preprocess"])
    except (KeyError, TypeError, ValueError) as err:
        raise BundleError(meta_path, f"preprocess: {err!r}") from None
    try:
        entry = model_entry(str(meta["config"]["model"].get("name")), str(meta_path))
        extras = entry.family.extras.model_validate(meta["extras"])
        meta["config"]["model"] = with_stored_defaults(meta["config"]["model"], str(meta_path))
        model = build_model(meta["config"]["model"], extras, False, str(meta_path))
    except ValidationError as err:
        problem = err.errors()[0]
        key = ".".join(str(p) for p in problem["loc"])
        message = problem["msg"].removeprefix("Value error, ")
        raise BundleError(meta_path, f"extras.{key}: {message}") from None
    except ConfigError as err:
        raise BundleError(str(err)) from None
    if meta["task"] != entry.family.task:
        raise BundleError(
            meta_path, f"task {meta['task']!r} does not match model {entry.name!r}'s family"
        )
    _check_fit(model, state, weights_path)
    model.load_state_dict(state)
    model.to(device).eval()
    if engine != "eager":
        from lrcn.export.engine import load_exported

        model = load_exported(folder, engine)
    return Bundle(
        model,
        entry.family.task,
        meta["config"],
        extras,
        preprocess,
        folder,
        meta.get("epoch"),
        meta.get("metrics") or {},
        engine,
    )


def save_train_state(folder: str | Path, state: dict[str, Any]) -> None:
    """Optimizer/scheduler state and counters: tensors and plain types only."""
    folder = Path(folder)
    tmp = folder / (TRAIN_STATE + ".tmp")
    torch.save(state, tmp)
    tmp.replace(folder / TRAIN_STATE)


def load_train_state(folder: str | Path) -> dict[str, Any]:
    """Read ``train_state.pt`` with ``weights_only=True`` (no code runs)."""
    path = Path(folder) / TRAIN_STATE
    if not path.is_file():
        raise BundleError(path, "no training state to resume from")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise BundleError(path, f"cannot be loaded safely ({type(err).__name__})") from None
    if not isinstance(state, dict):
        raise BundleError(path, "expected a dict of training state")
    return state
