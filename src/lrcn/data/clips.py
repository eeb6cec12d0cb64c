"""Datasets of clips for training and evaluation, from decoded frames or from a feature cache.

Every random choice (clip offset, crop, flip) is drawn from ``Random((seed, epoch, index))``,
so a sample is the same whichever worker makes it, and a resumed run sees exactly the data an
uninterrupted one would.

Under ``on_error="skip"`` a video that fails to decode becomes a ``None`` sample; the collate
functions drop it and pass its message on in the batch (``"skipped"``), for the run's report.
Under ``"raise"`` the :class:`~lrcn.data.video_io.VideoError` (which names the file) propagates.

With ``frame_every`` k, a decoded video's frames 0, k, 2k, ... are its frames 0, 1, 2, ...: a
video of n frames has ``ceil(n / k)`` for clip planning, and clip frame i is decoded from file
frame i·k. Cached features were extracted every k-th frame already, so they are read as stored.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from lrcn.backbones import Preprocess
from lrcn.data.items import OnError, VideoItem
from lrcn.data.sampling import ShortVideoPolicy, test_clips, train_clip
from lrcn.data.video_io import VideoError, read_frames

FeatureSource = Callable[[VideoItem], np.ndarray]  # cached features (T, ...) of one video

__all__ = ["EvalVideos", "TrainClips", "collate_eval", "collate_train", "frames_kept"]


def frames_kept(num_frames: int, every: int) -> int:
    """Frames left of ``num_frames`` when only every ``every``-th is kept (0, k, 2k, ...).

    >>> frames_kept(10, 3)  # frames 0, 3, 6, 9
    4
    """
    if every < 1:
        raise ValueError(f"frame_every must be >= 1, got {every}")
    return -(-num_frames // every)


def _decoded_every(frame_every: int, features: FeatureSource | None) -> int:
    """The step between the file frames a dataset decodes: ``frame_every``, or 1 when it reads
    cached features (extracted every k-th frame already). Checked here, not in a worker."""
    if frame_every < 1:
        raise ValueError(f"frame_every must be >= 1, got {frame_every}")
    return 1 if features is not None else frame_every


class _Skipped:
    """A sample that failed under on_error='skip'."""

    def __init__(self, message: str) -> None:
        self.message = message


class TrainClips(Dataset):
    """``clips_per_video`` random training clips per video per epoch.

    From frames: ``(clip_len, 3, crop, crop)`` float tensors (random crop and, with ``flip``,
    horizontal flip, shared by all frames of a clip). From cached features (``features`` set):
    ``(clip_len, D)`` or ``(clip_len, C, h, w)``. ``num_frames`` are the sources' own counts
    (the file's frames, or the cached rows); ``frame_every`` applies to decoded files only.
    """

    def __init__(
        self,
        items: Sequence[VideoItem],
        num_frames: Sequence[int],
        preprocess: Preprocess,
        clip_len: int,
        frame_step: int = 1,
        policy: ShortVideoPolicy = "loop",
        clips_per_video: int = 1,
        seed: int = 0,
        augment: bool = True,
        flip: bool = True,
        features: FeatureSource | None = None,
        on_error: OnError = "raise",
        frame_every: int = 1,
    ) -> None:
        if len(items) != len(num_frames):
            raise ValueError("items and num_frames must have the same length")
        self.items = list(items)
        self.num_frames = list(num_frames)
        self.preprocess = preprocess
        self.clip_len = clip_len
        self.frame_step = frame_step
        self.policy: ShortVideoPolicy = policy
        self.clips_per_video = clips_per_video
        self.seed = seed
        self.augment = augment
        self.flip = flip
        self.features = features
        self.on_error = on_error
        self.frame_every = _decoded_every(frame_every, features)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose clips ``__getitem__`` returns."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.items) * self.clips_per_video

    def __getitem__(self, index: int) -> tuple[Tensor, int] | _Skipped:
        item = self.items[index % len(self.items)]
        rng = random.Random(hash((self.seed, self.epoch, index)))
        indices = train_clip(
            frames_kept(self.num_frames[index % len(self.items)], self.frame_every),
            self.clip_len,
            self.frame_step,
            rng,
            self.policy,
        )
        try:
            if self.features is not None:
                # float16 as cached: collate converts the whole batch at once (a third of an
                # epoch of a small head went into per-clip numpy conversions)
                return torch.from_numpy(
                    np.ascontiguousarray(self.features(item)[indices])
                ), item.label
            in_file = [i * self.frame_every for i in indices]
            frames = read_frames(item.path, in_file)  # (T, H, W, 3)
        except VideoError as err:
            if self.on_error == "skip":
                return _Skipped(str(err))
            raise
        offset = (rng.random(), rng.random()) if self.augment else None
        clip = self.preprocess.frames_to_tensor(frames, offset)  # (T, 3, crop, crop)
        if self.augment and self.flip and rng.random() < 0.5:
            clip = clip.flip(-1)
        return clip, item.label


class EvalVideos(Dataset):
    """Every test clip of each video, center-cropped: ``(num_clips, clip_len, ...)`` per video.

    A video is decoded once for all its clips (one ``read_frames`` call with every index).
    ``num_frames`` and ``frame_every`` as in :class:`TrainClips`.
    """

    def __init__(
        self,
        items: Sequence[VideoItem],
        num_frames: Sequence[int],
        preprocess: Preprocess,
        clip_len: int,
        stride: int,
        frame_step: int = 1,
        policy: ShortVideoPolicy = "loop",
        features: FeatureSource | None = None,
        on_error: OnError = "raise",
        frame_every: int = 1,
    ) -> None:
        self.items = list(items)
        self.num_frames = list(num_frames)
        self.preprocess = preprocess
        self.clip_len = clip_len
        self.stride = stride
        self.frame_step = frame_step
        self.policy: ShortVideoPolicy = policy
        self.features = features
        self.on_error = on_error
        self.frame_every = _decoded_every(frame_every, features)

    def __len__(self) -> int:
        return len(self.items)

    def clips_of(self, index: int) -> list[list[int]]:
        count = frames_kept(self.num_frames[index], self.frame_every)
        return test_clips(count, self.clip_len, self.stride, self.frame_step, self.policy)

    def __getitem__(self, index: int) -> tuple[Tensor, int, int] | _Skipped:
        item = self.items[index]
        clips = self.clips_of(index)
        try:
            if self.features is not None:
                cached = self.features(item)
                stacked = np.stack([cached[c] for c in clips]).astype(np.float32)
                return torch.from_numpy(stacked), item.label, index
            needed = sorted({i for clip in clips for i in clip})
            in_file = [i * self.frame_every for i in needed]
            decoded = read_frames(item.path, in_file)  # (len(needed), H, W, 3)
        except VideoError as err:
            if self.on_error == "skip":
                return _Skipped(str(err))
            raise
        frames = self.preprocess.frames_to_tensor(decoded)  # (len(needed), 3, crop, crop)
        position = {frame: k for k, frame in enumerate(needed)}
        return (
            torch.stack([frames[[position[i] for i in clip]] for clip in clips]),  # (N, T, ...)
            item.label,
            index,
        )


def collate_train(batch: list[Any]) -> dict[str, Any]:
    """Stack training clips; drop and report skipped ones."""
    good = [b for b in batch if not isinstance(b, _Skipped)]
    skipped = [b.message for b in batch if isinstance(b, _Skipped)]
    if not good:
        return {"inputs": None, "labels": None, "skipped": skipped}
    return {
        "inputs": torch.stack([b[0] for b in good]).float(),  # (B, T, ...)
        "labels": torch.tensor([b[1] for b in good]),
        "skipped": skipped,
    }


def collate_eval(batch: list[Any]) -> dict[str, Any]:
    """Keep videos apart (their clip counts differ); drop and report skipped ones."""
    good = [b for b in batch if not isinstance(b, _Skipped)]
    return {
        "videos": [b[0] for b in good],  # each (N_clips, T, ...)
        "labels": [b[1] for b in good],
        "indices": [b[2] for b in good],
        "skipped": [b.message for b in batch if isinstance(b, _Skipped)],
    }
