"""The checkpoint bundle: everything predict, export and serve need, and nothing executable.

A bundle is a folder::

    model.safetensors   the weights (backbone and head), tensors only
    bundle.json         lrcn version, task, the resolved config, class names and the
                        backbone's preprocessing preset

``load_bundle`` rebuilds the model from the config through the model registry and loads the
weights strictly, so a bundle never unpickles code, and weights that do not fit the config
(a bundle from elsewhere, edited by hand, or from an incompatible version) fail with a message
naming the file and the mismatching keys.

Resuming training needs more: ``train_state.pt`` beside the bundle holds optimizer and
scheduler state and counters, saved with ``torch.save`` of tensors and plain types and loaded
with ``weights_only=True``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

import lrcn
from lrcn.backbones import Preprocess

WEIGHTS = "model.safetensors"
META = "bundle.json"
TRAIN_STATE = "train_state.pt"
FORMAT_VERSION = 1

__all__ = [
    "Bundle",
    "BundleError",
    "load_bundle",
    "load_train_state",
    "save_bundle",
    "save_train_state",
]


class BundleError(ValueError):
    """A bundle that cannot be loaded; the message names the file and the problem."""


@dataclass
class Bundle:
    """A loaded bundle: the model (eval mode) and what it needs to be used."""

    model: nn.Module
    config: dict[str, Any]
    classes: list[str]
    preprocess: Preprocess
    metadata: dict[str, Any]
    path: Path

    @property
    def task(self) -> str:
        return str(self.config.get("task"))


def save_bundle(
    folder: str | Path,
    model: nn.Module,
    config: dict[str, Any],
    classes: list[str],
    preprocess: Preprocess,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write ``model``'s weights and metadata into ``folder`` (created, files replaced)."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    tmp = folder / (WEIGHTS + ".tmp")
    save_file(state, str(tmp))
    tmp.replace(folder / WEIGHTS)  # never a half-written weights file under the real name
    meta = {
        "format": FORMAT_VERSION,
        "lrcn_version": lrcn.__version__,
        "task": config.get("task"),
        "config": config,
        "classes": list(classes),
        "preprocess": preprocess.to_dict(),
        **(extra or {}),
    }
    (folder / META).write_text(json.dumps(meta, indent=1))
    return folder


def _read_meta(folder: Path) -> dict[str, Any]:
    meta_path = folder / META
    if not meta_path.is_file():
        raise BundleError(
            f"{folder}: not an lrcn bundle (no {META}); expected a run's best/ or last/ folder"
        )
    try:
        meta = json.loads(meta_path.read_text())
    except json.JSONDecodeError as err:
        raise BundleError(f"{meta_path}: not valid JSON ({err})") from None
    for key in ("format", "task", "config", "classes", "preprocess"):
        if key not in meta:
            raise BundleError(f"{meta_path}: missing {key!r}; is this an lrcn bundle?")
    if meta["format"] != FORMAT_VERSION:
        raise BundleError(
            f"{meta_path}: bundle format {meta['format']} is not {FORMAT_VERSION}, the one "
            f"lrcn {lrcn.__version__} reads"
        )
    return meta


def resolve_bundle_dir(path: str | Path, which: str = "best") -> Path:
    """Accept a bundle folder or a run folder (then its ``best``/``last`` bundle)."""
    path = Path(path)
    if (path / META).is_file():
        return path
    if (path / which / META).is_file():
        return path / which
    if not path.exists():
        raise BundleError(f"{path}: no such run or bundle folder")
    raise BundleError(f"{path}: neither a bundle nor a run folder with a {which}/ bundle")


def load_bundle(
    path: str | Path, which: str = "best", device: str | torch.device = "cpu"
) -> Bundle:
    """Load a bundle (or a run folder's ``best``/``last`` bundle) without unpickling anything."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    folder = resolve_bundle_dir(path, which)
    meta = _read_meta(folder)
    weights_path = folder / WEIGHTS
    if not weights_path.is_file():
        raise BundleError(f"{weights_path}: weights file missing")
    try:
        state = load_file(str(weights_path), device=str(device))
    except (SafetensorError, OSError) as err:
        raise BundleError(f"{weights_path}: not a readable safetensors file ({err})") from None
    from lrcn.tasks import build_model_from_config

    model = build_model_from_config(meta["config"], meta, pretrained=False)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise BundleError(
            f"{weights_path}: weights do not fit model {meta['config']['model']['name']!r}: "
            f"{len(missing)} missing (e.g. {missing[:3]}), {len(unexpected)} unexpected "
            f"(e.g. {unexpected[:3]})"
        )
    model.to(device).eval()
    return Bundle(
        model,
        meta["config"],
        meta["classes"],
        Preprocess.from_dict(meta["preprocess"]),
        meta,
        folder,
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
        raise BundleError(f"{path}: no training state to resume from")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise BundleError(f"{path}: cannot be loaded safely ({err})") from None
    if not isinstance(state, dict):
        raise BundleError(f"{path}: expected a dict of training state")
    return state
