"""A feature cache: backbone outputs for every frame of every video, computed once.

On a CPU the backbone, not the LSTM, is the cost of a video model (PERF-NOTES), so with a
frozen backbone we run it once per frame and train the head on the stored features: no video
is decoded after extraction. Features are stored as float16 ``.npy`` files, one per video,
``(T, D)`` pooled vectors or ``(T, C, h, w)`` grids, under a folder named by a key of
everything that changes them: backbone name, weights, preprocessing and feature kind. A
different backbone or crop size therefore never reads stale features.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lrcn.backbones import Backbone
from lrcn.data.items import OnError, Problem
from lrcn.data.video_io import VideoError, read_frames

FrameLoader = Callable[[Path], np.ndarray]  # a file -> uint8 (T, H, W, 3)

__all__ = ["FeatureCache"]


class FeatureCache:
    """Features of one backbone setup under ``root/<key>/``."""

    def __init__(self, root: str | Path, identity: dict[str, Any]) -> None:
        text = json.dumps(identity, sort_keys=True)
        self.key = hashlib.sha1(text.encode()).hexdigest()[:16]
        self.folder = Path(root) / self.key
        self.identity = identity

    def path_for(self, source: str | Path) -> Path:
        """One file per video or image, named by its absolute path (no collisions)."""
        digest = hashlib.sha1(str(Path(source).resolve()).encode()).hexdigest()[:16]
        return self.folder / f"{Path(source).stem}-{digest}.npy"

    def has(self, source: str | Path) -> bool:
        return self.path_for(source).is_file()

    def load(self, source: str | Path) -> np.ndarray:
        """Cached features of ``source`` (memory-mapped, float16), ``(T, ...)``."""
        path = self.path_for(source)
        try:
            return np.load(path, mmap_mode="r")
        except (OSError, ValueError) as err:
            raise VideoError(
                source, f"cached features {path} unreadable ({err}); delete it"
            ) from None

    def missing(self, sources: Sequence[str | Path]) -> list[Path]:
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
                path = self.path_for(source)
                tmp = path.with_suffix(".tmp.npy")
                np.save(tmp, np.concatenate(outputs))
                tmp.replace(path)  # a killed extraction never leaves a truncated cache file
                if progress is not None:
                    progress(done, len(todo))
        finally:
            if channels_last:  # leave the caller's backbone in the layout it had
                backbone.to(memory_format=torch.contiguous_format)
        return skipped
