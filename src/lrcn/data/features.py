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

Extraction runs the backbone through ONNX Runtime on the CPU (eager PyTorch on a GPU, or when
asked): its features agree with eager's within 1e-3 relative (checked on each run's first
batch), below float16's own rounding, so both engines fill the same cache. The ONNX graph is
kept in the folder as ``backbone-<kind>-<crop>px-<weights SHA-1>.onnx`` and reused.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn

from lrcn.backbones import Backbone
from lrcn.data.extraction import Engine, backbone_runner, channels_last
from lrcn.data.frame_pool import FeatureAssembler, FrameCounts, FramePacker, prefetch
from lrcn.data.items import OnError, Problem
from lrcn.data.video_io import VideoError, probe_video, read_frames

FrameLoader = Callable[[Path], np.ndarray]  # a file -> uint8 (T, H, W, 3)
# Threads that decode and crop ahead of the backbone. One decodes 320x240 mpeg4 and crops it to
# 224 at ~3,000 frames/s, 20-50x the backbone's rate; the second covers slower sources (JPEG
# images, h264, optical flow) and keeps a job ready while the other decodes.
DECODE_WORKERS = 2
# Frames per backbone call. On the CPU small batches keep a 224x224 network's activations in
# cache: Lite0 ran at 120 frames/s eager (channels_last) at batch 4-8 against 60 at 32 and 25 at
# 64, and at 153 against 141 through ONNX Runtime; below 4 the per-call cost shows (batch 1:
# 77 and 139). A GPU wants larger batches to fill it.
CPU_BATCH_FRAMES = 8
GPU_BATCH_FRAMES = 64
# Frames decoded ahead of the backbone, beyond one source per decode thread and one ready: many
# small sources (images) stay queued, memory stays bounded (128 crops of 224: 19 MB).
FRAMES_AHEAD = 128

__all__ = ["FeatureCache", "content_digest", "weights_digest"]


def weights_digest(module: nn.Module) -> str:
    """SHA-1 of every tensor in ``module``'s state dict (names, dtypes, shapes and bytes)."""
    digest = hashlib.sha1()
    for name, tensor in sorted(module.state_dict().items()):
        flat = tensor.detach().cpu().contiguous().reshape(-1)
        digest.update(f"{name}|{flat.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(flat.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


class _Loaded(NamedTuple):
    """A source as a worker thread leaves it: its cache key and center crops, or its error."""

    source: Path
    key: dict[str, Any] | None
    crops: np.ndarray | None  # uint8 (T, S, S, 3)
    error: VideoError | None


def _declared_counts(sources: Sequence[Path]) -> list[int]:
    """Each video's declared frame count, for the progress total; 1 for one that does not
    probe (it fails again when loaded, and ``on_error`` decides there)."""
    counts = []
    for source in sources:
        try:
            counts.append(probe_video(source).num_frames)
        except (VideoError, OSError):
            counts.append(1)
    return counts


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

    def onnx_path(self, backbone: Backbone, kind: str) -> Path:
        """Where the backbone's ONNX graph for extraction is kept: named by its weights, so a
        file left by other weights (a folder copied, a test's identity) is never used."""
        crop, digest = backbone.preprocess.crop, weights_digest(backbone)[:12]
        return self.folder / f"backbone-{kind}-{crop}px-{digest}.onnx"

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
        batch_frames: int | None = None,
        on_error: OnError = "raise",
        progress: Callable[[int, int], None] | None = None,
        load_frames: FrameLoader = read_frames,
        engine: Engine = "auto",
        log: Callable[[str], None] | None = None,
    ) -> list[Problem]:
        """Compute and store features for every source not cached yet; return skipped ones.

        Each video (or image: one frame) is read once by ``load_frames`` and center-cropped
        with the backbone's preset, in worker threads a few sources ahead of the backbone
        (:mod:`lrcn.data.frame_pool`). The backbone runs ``batch_frames`` frames at a time
        (default: :data:`CPU_BATCH_FRAMES` on the CPU, :data:`GPU_BATCH_FRAMES` elsewhere),
        batches filled across consecutive sources (images and short clips never run alone),
        through ``engine`` (:mod:`lrcn.data.extraction`): ``"auto"`` is ONNX Runtime on the
        CPU, checked against eager PyTorch on the first batch, and eager on a GPU. Features of
        either engine agree within :data:`~lrcn.data.extraction.TOLERANCE` and go to the same
        cache. ``progress(frames done, frames expected)`` is called after each batch; the
        total is the declared frame counts when ``load_frames`` is :func:`read_frames` (each
        source probed upfront, ~0.2-1 ms a file), else it is estimated from the sources loaded
        so far. ``log`` gets one line naming the engine, and any fallback to eager.
        """
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / "identity.json").write_text(json.dumps(self.identity, indent=1))
        todo = self.missing(sources)
        skipped: list[Problem] = []
        if not todo:
            return skipped
        backbone = backbone.to(device).eval()
        runner = backbone_runner(
            backbone, kind, device, engine, self.onnx_path(backbone, kind), log
        )
        declared = _declared_counts(todo) if load_frames is read_frames else None
        counts = FrameCounts(len(todo), declared)
        preprocess = backbone.preprocess

        def load(source: Path) -> _Loaded:  # in a worker thread
            try:
                key = self._source_key(source)  # before decoding: see _source_key
                frames = load_frames(source)  # (T, H, W, 3)
                if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
                    raise ValueError(
                        f"{source}: the frame loader gave {frames.dtype} {frames.shape}, "
                        "expected uint8 (T, H, W, 3)"
                    )
                if len(frames) == 0:
                    raise VideoError(source, "the frame loader gave no frames")
                return _Loaded(source, key, preprocess.crops(frames), None)
            except VideoError as err:
                return _Loaded(source, None, None, err)

        if batch_frames is None:
            batch_frames = CPU_BATCH_FRAMES if device.type == "cpu" else GPU_BATCH_FRAMES
        packer, assembler = FramePacker(batch_frames), FeatureAssembler()
        entries: dict[int, tuple[Path, dict[str, Any]]] = {}  # tag -> (source, key), till stored
        done = 0  # frames through the backbone

        def run(final: bool = False) -> None:
            nonlocal done
            for batch, spans in packer.batches(final):  # (B, S, S, 3)
                for tag, features in assembler.add(spans, runner(batch)):  # (T, ...) float16
                    source, key = entries.pop(tag)
                    self._store(source, features, key)
                done += len(batch)
                if progress is not None:
                    progress(done, counts.total())

        ahead = max(FRAMES_AHEAD, 2 * batch_frames)
        loaded = prefetch(load, todo, DECODE_WORKERS, ahead, counts.expected)
        with channels_last(backbone, device), contextlib.closing(loaded):
            for index, item in enumerate(loaded):
                if item.error is not None:
                    if on_error == "raise":
                        raise item.error
                    skipped.append(Problem(str(item.source), str(item.error)))
                    counts.drop(index)
                    continue
                assert item.key is not None and item.crops is not None
                counts.set(index, len(item.crops))
                entries[index] = (item.source, item.key)
                packer.add(index, item.crops)
                run()
            run(final=True)
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
