"""A feature cache: backbone outputs for every frame of every video, computed once.

On a CPU the backbone, not the LSTM, is the cost of a video model (PERF-NOTES), so with a
frozen backbone we run it once per frame and train the head on the stored features: no video
is decoded after extraction. Features are stored as float16 ``.npy`` files, one per video,
``(T, D)`` pooled vectors or ``(T, C, h, w)`` grids.

What the cache keys on, so it never returns stale features:

- the folder: a hash of the backbone's identity: its name, a SHA-1 of its actual weights
  (every tensor of its state dict, so a randomly initialised backbone of another seed, or
  weights fine-tuned elsewhere, get their own folder), its preprocessing and the feature kind;
- each entry: a ``.json`` key beside the ``.npy``: the source's absolute path, size,
  modification time and a SHA-1 of its content (of each frame image, for a frame folder),
  plus the stored array's shape. An entry is used only if the source's size and mtime match;
  if they differ (copied, touched) the content hash decides, so a video replaced in place is
  extracted again and a touched one is not. The key is written last, so an entry whose key
  is missing (a killed extraction) is extracted again.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from lrcn.backbones import Backbone
from lrcn.data.items import OnError, Problem
from lrcn.data.video_io import VideoError, read_frames

FrameLoader = Callable[[Path], np.ndarray]  # a file -> uint8 (T, H, W, 3)

__all__ = ["FeatureCache", "content_digest", "weights_digest"]


def weights_digest(module: nn.Module) -> str:
    """SHA-1 of every tensor in ``module``'s state dict (names, dtypes, shapes and bytes)."""
    digest = hashlib.sha1()
    for name, tensor in sorted(module.state_dict().items()):
        flat = tensor.detach().cpu().contiguous().reshape(-1)
        digest.update(f"{name}|{flat.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(flat.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _files_of(source: Path) -> list[Path]:
    return sorted(p for p in source.iterdir() if p.is_file()) if source.is_dir() else [source]


def _stat_key(source: Path) -> list[list[int]]:
    """(size, mtime_ns) of the file, or of each file of a frame folder."""
    return [[s.st_size, s.st_mtime_ns] for s in (os.stat(p) for p in _files_of(source))]


def content_digest(source: str | Path) -> str:
    """SHA-1 of a file's bytes, or of a frame folder's file names and bytes."""
    digest = hashlib.sha1()
    for path in _files_of(Path(source)):
        if Path(source).is_dir():
            digest.update(path.name.encode() + b"\0")
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


class FeatureCache:
    """Features of one backbone setup under ``root/<key>/`` (see the module docstring)."""

    def __init__(self, root: str | Path, identity: dict[str, Any]) -> None:
        text = json.dumps(identity, sort_keys=True)
        self.key = hashlib.sha1(text.encode()).hexdigest()[:16]
        self.folder = Path(root) / self.key
        self.identity = identity
        # source -> its entry's key if the entry is valid, else None; checked once per process
        self._checked: dict[Path, dict[str, Any] | None] = {}

    def path_for(self, source: str | Path) -> Path:
        """One file per video or image, named by its absolute path (no collisions)."""
        digest = hashlib.sha1(str(Path(source).resolve()).encode()).hexdigest()[:16]
        return self.folder / f"{Path(source).stem}-{digest}.npy"

    def key_path(self, source: str | Path) -> Path:
        return self.path_for(source).with_suffix(".json")

    def _read_key(self, source: Path) -> dict[str, Any] | None:
        try:
            key = json.loads(self.key_path(source).read_text())
        except (OSError, ValueError):
            return None
        return key if isinstance(key, dict) else None

    def has(self, source: str | Path) -> bool:
        """True if ``source`` has an entry made from its current content."""
        return self._valid_key(Path(source)) is not None

    def _valid_key(self, source: Path) -> dict[str, Any] | None:
        if source not in self._checked:
            self._checked[source] = self._check(source)
        return self._checked[source]

    def _check(self, source: Path) -> dict[str, Any] | None:
        """The entry's key if it was made from ``source``'s current content, else None."""
        key = self._read_key(source)
        if key is None or not self.path_for(source).is_file():
            return None
        if key.get("source") != str(source.resolve()):
            return None
        try:
            stat = _stat_key(source)
            if stat == key.get("stat"):
                return key
            if content_digest(source) != key.get("sha1"):
                return None
        except OSError:
            return None
        key = key | {"stat": stat}  # touched or copied, same bytes: remember the new stat
        self._write_key(source, key)
        return key

    def _write_key(self, source: Path, key: dict[str, Any]) -> None:
        path = self.key_path(source)
        tmp = path.with_suffix(f".{os.getpid()}.json.tmp")
        tmp.write_text(json.dumps(key))
        tmp.replace(path)

    def load(self, source: str | Path) -> np.ndarray:
        """Cached features of ``source`` (memory-mapped, float16), ``(T, ...)``."""
        path = self.path_for(source)
        key = self._valid_key(Path(source))
        if key is None:
            raise VideoError(
                source, f"has no cached features made from its current content ({path})"
            )
        try:
            array = np.load(path, mmap_mode="r")  # allow_pickle stays False: never unpickles
        except (OSError, ValueError) as err:
            raise VideoError(
                source, f"cached features {path} unreadable ({err}); delete it"
            ) from None
        if list(array.shape) != key.get("shape") or array.dtype != np.float16:
            raise VideoError(
                source,
                f"cached features {path} are {array.dtype} {list(array.shape)}, its key says "
                f"float16 {key.get('shape')}; delete it",
            )
        return array

    def missing(self, sources: Sequence[str | Path]) -> list[Path]:
        """Sources without a valid entry: never extracted, or changed since."""
        return [Path(s) for s in sources if not self.has(s)]

    def extract(
        self,
        sources: Sequence[str | Path],
        backbone: Backbone,
        kind: str,
        device: torch.device,
        batch_frames: int = 64,
        on_error: OnError = "raise",
        progress: Callable[[int, int], None] | None = None,
        load_frames: FrameLoader = read_frames,
    ) -> list[Problem]:
        """Compute and store features for every source not cached yet; return skipped ones.

        Each video (or image: one frame) is read once, center-cropped with the backbone's
        preset and run through the backbone ``batch_frames`` frames at a time, in inference
        mode.
        """
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / "identity.json").write_text(json.dumps(self.identity, indent=1))
        todo = self.missing(sources)
        skipped: list[Problem] = []
        backbone = backbone.to(device).eval()
        channels_last = device.type == "cpu"  # faster CPU convolutions, for extraction only
        if channels_last:
            backbone.to(memory_format=torch.channels_last)
        try:
            for done, source in enumerate(todo, start=1):
                try:
                    key = self._source_key(Path(source))
                    frames = load_frames(source)  # (T, H, W, 3)
                except VideoError as err:
                    if on_error == "raise":
                        raise
                    skipped.append(Problem(str(source), str(err)))
                    continue
                outputs = []
                with torch.inference_mode():
                    for start in range(0, len(frames), batch_frames):
                        x = backbone.preprocess.frames_to_tensor(
                            frames[start : start + batch_frames]
                        )
                        x = x.to(device)
                        if channels_last:
                            x = x.contiguous(memory_format=torch.channels_last)
                        out = backbone(x) if kind == "pooled" else backbone.forward_features(x)
                        outputs.append(out.float().cpu().numpy().astype(np.float16))
                self._store(Path(source), np.concatenate(outputs), key)
                if progress is not None:
                    progress(done, len(todo))
        finally:
            if channels_last:  # leave the caller's backbone in the layout it had
                backbone.to(memory_format=torch.contiguous_format)
        return skipped

    @staticmethod
    def _source_key(source: Path) -> dict[str, Any]:
        """Taken before decoding: a file changed during extraction then fails the check."""
        try:
            return {
                "source": str(source.resolve()),
                "stat": _stat_key(source),
                "sha1": content_digest(source),
            }
        except FileNotFoundError:
            raise VideoError(source, "file not found") from None
        except OSError as err:
            raise VideoError(source, f"cannot be read ({err.strerror})") from None

    def _store(self, source: Path, features: np.ndarray, key: dict[str, Any]) -> None:
        """Write the entry, then its key: a kill in between leaves an entry that is redone."""
        key = key | {"shape": list(features.shape)}
        path = self.path_for(source)
        tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")  # two extractors never share one
        np.save(tmp, features)
        self.key_path(source).unlink(missing_ok=True)
        tmp.replace(path)  # a killed extraction never leaves a truncated cache file
        self._write_key(source, key)
        self._checked[source] = key
