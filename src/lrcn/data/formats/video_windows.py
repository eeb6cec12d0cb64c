"""Your own videos for next-frame prediction: a folder of videos (or frame folders), each read
once, made square and small, and cut into windows of ``context + horizon`` frames.

Any file under the root with a video suffix is a video, and so is any folder of frame images
(``*.jpg``, ``*.png``, in name order); sub-folders are searched, so ``<root>/<class>/<clip>``
layouts work as they are. Frames are decoded with PyAV through :func:`read_frames` a chunk at a
time (a long video never sits in memory at full size), resized so the short side is ``size``,
center-cropped to ``size x size`` (:class:`~lrcn.backbones.Preprocess`'s rule) and turned to
grayscale (ITU-R BT.601 luma) when ``channels`` is 1. The split is by video: windows of one
video are never on two sides, since neighbouring windows of a video look alike.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from lrcn.backbones import Preprocess
from lrcn.data.formats.folders import VIDEO_SUFFIXES
from lrcn.data.items import DataError, OnError, Problem, handle, require_root
from lrcn.data.video_io import FRAME_IMAGE_SUFFIXES, VideoError, probe_video, read_frames

__all__ = [
    "VideoFrames",
    "find_videos",
    "frame_counts",
    "read_small_frames",
    "read_videos",
    "split_by_video",
    "to_small_frames",
    "window_starts",
]

LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601, as PIL's "L" and OpenCV's RGB2GRAY
CHUNK_FRAMES = 256  # frames decoded at a time


@dataclass(frozen=True)
class VideoFrames:
    """One video, small: ``frames`` uint8 ``(T, C, size, size)``."""

    path: Path
    frames: np.ndarray


def _is_frame_folder(path: Path) -> bool:
    return any(p.suffix.lower() in FRAME_IMAGE_SUFFIXES for p in path.iterdir())


def find_videos(root: Path, key: str = "data.root") -> list[Path]:
    """Every video file and frame folder under ``root``, sorted; a frame folder is not
    searched further."""
    require_root(root, key)
    found: list[Path] = []
    folders = [root]
    while folders:
        folder = folders.pop()
        for path in sorted(folder.iterdir()):
            if path.name.startswith("."):
                continue
            if path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES:
                found.append(path)
            elif path.is_dir():
                (found.append if _is_frame_folder(path) else folders.append)(path)
    if not found:
        raise DataError(
            root,
            "no videos in it",
            key=key,
            expected=f"video files ({', '.join(VIDEO_SUFFIXES)}) or folders of frame images",
        )
    return sorted(found)


def to_small_frames(frames: np.ndarray, size: int, channels: int) -> np.ndarray:
    """``uint8 (T, H, W, 3)`` RGB -> ``uint8 (T, channels, size, size)``: short side resized to
    ``size``, center crop, grayscale when ``channels`` is 1."""
    unit = Preprocess(size, size, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
    rgb = unit.frames_to_tensor(frames)  # (T, 3, size, size) in [0, 1]
    if channels == 1:
        luma = rgb.new_tensor(LUMA).view(1, 3, 1, 1)
        rgb = (rgb * luma).sum(dim=1, keepdim=True)  # (T, 1, size, size)
    return rgb.mul(255).round_().clamp_(0, 255).to(torch.uint8).numpy()


def read_small_frames(
    path: Path,
    size: int,
    channels: int,
    frame_step: int = 1,
    indices: Sequence[int] | None = None,
) -> np.ndarray:
    """Frames ``indices`` of a video (default: every ``frame_step``-th), small:
    ``uint8 (T, channels, size, size)``. Decoding starts near the first one asked for."""
    if indices is None:
        indices = range(0, probe_video(path).num_frames, frame_step)
    indices = list(indices)
    if not indices:
        raise DataError(path, "no frames asked for")
    chunks = [
        to_small_frames(read_frames(path, indices[i : i + CHUNK_FRAMES]), size, channels)
        for i in range(0, len(indices), CHUNK_FRAMES)
    ]
    return np.concatenate(chunks)


def window_starts(num_frames: int, length: int, stride: int) -> list[int]:
    """First frames of the windows of ``length`` frames, ``stride`` apart, that fit."""
    return list(range(0, num_frames - length + 1, stride))


def split_by_video(
    paths: list[Path], val_fraction: float, test_fraction: float, seed: int, root: Path
) -> dict[str, list[Path]]:
    """Shuffle the videos with ``seed`` and deal them to test, validation and train, each side
    at least one video."""
    if len(paths) < 3:
        raise DataError(
            root,
            f"{len(paths)} video(s); train, validation and test need one each",
            key="data.root",
            expected="at least 3 videos",
        )
    order = sorted(paths)
    random.Random(seed).shuffle(order)
    n_test = max(1, round(test_fraction * len(order)))
    n_val = max(1, round(val_fraction * len(order)))
    if n_test + n_val >= len(order):
        n_test, n_val = 1, 1
    return {
        "test": sorted(order[:n_test]),
        "val": sorted(order[n_test : n_test + n_val]),
        "train": sorted(order[n_test + n_val :]),
    }


def frame_counts(
    paths: list[Path],
    frame_step: int,
    min_frames: int,
    on_error: OnError,
    skipped: list[Problem],
) -> dict[Path, int]:
    """Each video's frame count, read from its header (no decoding), for the videos with
    ``min_frames`` frames at every ``frame_step``-th; a shorter or unreadable one is an error
    or (``on_error: skip``) skipped and reported. A split made after this deals only videos
    that can be used."""
    counts = {}
    for path in paths:
        try:
            count = probe_video(path).num_frames
        except VideoError as err:
            handle(DataError(path, _reason(err, path)), on_error, skipped)
            continue
        kept = -(-count // frame_step)
        if kept < min_frames:
            problem = DataError(
                path,
                f"{kept} frames (every {frame_step}), fewer than one window needs",
                expected=f"at least {min_frames} (data.context + data.horizon)",
            )
            handle(problem, on_error, skipped)
            continue
        counts[path] = count
    return counts


def read_videos(
    counts: dict[Path, int],
    size: int,
    channels: int,
    frame_step: int,
    on_error: OnError,
    skipped: list[Problem],
    progress: Callable[[int], None] | None = None,
) -> list[VideoFrames]:
    """Read every video of ``counts`` (path -> frame count, from :func:`frame_counts`) small,
    every ``frame_step``-th frame; one that does not decode is an error or (``on_error:
    skip``) skipped and reported."""
    videos = []
    for i, (path, count) in enumerate(counts.items()):
        indices = range(0, count, frame_step)
        try:
            videos.append(
                VideoFrames(path, read_small_frames(path, size, channels, indices=indices))
            )
        except DataError as err:
            handle(err, on_error, skipped)
        except VideoError as err:
            handle(DataError(path, _reason(err, path)), on_error, skipped)
        if progress is not None:
            progress(i + 1)
    return videos


def _reason(err: VideoError, path: Path) -> str:
    """The problem without the path the message starts with (a DataError adds it back)."""
    return str(err).removeprefix(f"{path}: ")
