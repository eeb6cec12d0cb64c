"""Datasets of clips for training and evaluation, from decoded frames or from a feature cache.

Every random choice (clip offset, crop, flip) is drawn from ``Random((seed, epoch, index))``,
so a sample is the same whichever worker makes it, and a resumed run sees exactly the data an
uninterrupted one would.

Under ``on_error="skip"`` a video that fails to decode becomes a ``None`` sample; the collate
functions drop it and pass its message on in the batch (``"skipped"``), for the run's report.
Under ``"raise"`` the :class:`~lrcn.data.video_io.VideoError` (which names the file) propagates.
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

__all__ = ["EvalVideos", "TrainClips", "collate_eval", "collate_train"]


class _Skipped:
    """A sample that failed under on_error='skip'."""

    def __init__(self, message: str) -> None:
        self.message = message


class TrainClips(Dataset):
    """``clips_per_video`` random training clips per video per epoch.

    From frames: ``(clip_len, 3, crop, crop)`` float tensors (random crop and, with ``flip``,
    horizontal flip, shared by all frames of a clip). From cached features (``features`` set):
    ``(clip_len, D)`` or ``(clip_len, C, h, w)``.
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
            self.num_frames[index % len(self.items)],
            self.clip_len,
            self.frame_step,
            rng,
            self.policy,
        )
        try:
            if self.features is not None:
                return torch.from_numpy(self.features(item)[indices].astype(np.float32)), item.label
            frames = read_frames(item.path, indices)  # (T, H, W, 3)
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

    def __len__(self) -> int:
        return len(self.items)

    def clips_of(self, index: int) -> list[list[int]]:
        return test_clips(
            self.num_frames[index], self.clip_len, self.stride, self.frame_step, self.policy
        )

    def __getitem__(self, index: int) -> tuple[Tensor, int, int] | _Skipped:
        item = self.items[index]
        clips = self.clips_of(index)
        try:
            if self.features is not None:
                cached = self.features(item)
                stacked = np.stack([cached[c] for c in clips]).astype(np.float32)
                return torch.from_numpy(stacked), item.label, index
            needed = sorted({i for clip in clips for i in clip})
            decoded = read_frames(item.path, needed)  # (len(needed), H, W, 3)
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
        "inputs": torch.stack([b[0] for b in good]),  # (B, T, ...)
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
