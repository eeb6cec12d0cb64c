"""Which frames make a clip: the LRCN paper's sampling, as pure functions of frame counts.

Training takes one clip of ``clip_len`` consecutive frames at a random offset in each video
per epoch. Testing takes every clip of ``clip_len`` frames with a stride of ``stride`` frames
(16 and 8 in the paper) and averages the clips' scores per video. ``frame_step`` takes every
k-th frame inside a clip (1 in the paper), for a longer time span with the same clip length.

A video shorter than one clip is never dropped. Its frames are extended by a policy:

* ``"loop"`` (default): play it again from the start, 0 1 2 0 1 2 ...;
* ``"repeat_last"``: hold the last frame, 0 1 2 2 2 2 ... (a pause, as padding).
"""

from __future__ import annotations

import random
from typing import Literal

ShortVideoPolicy = Literal["loop", "repeat_last"]

__all__ = [
    "ShortVideoPolicy",
    "clip_span",
    "strided_indices",
    "test_clips",
    "train_clip",
    "uniform_indices",
]


def clip_span(clip_len: int, frame_step: int = 1) -> int:
    """Frames a clip covers from its first to its last frame, inclusive."""
    return (clip_len - 1) * frame_step + 1


def _check(num_frames: int, clip_len: int, frame_step: int) -> None:
    if num_frames < 1:
        raise ValueError(f"a video needs at least one frame, got num_frames={num_frames}")
    if clip_len < 1 or frame_step < 1:
        raise ValueError(f"clip_len and frame_step must be >= 1, got {clip_len} and {frame_step}")


def _extend(indices: list[int], num_frames: int, policy: ShortVideoPolicy) -> list[int]:
    """Map indices past the end of a short video back into it, by ``policy``."""
    if policy == "loop":
        return [i % num_frames for i in indices]
    if policy == "repeat_last":
        return [min(i, num_frames - 1) for i in indices]
    raise ValueError(f"short-video policy must be 'loop' or 'repeat_last', got {policy!r}")


def train_clip(
    num_frames: int,
    clip_len: int = 16,
    frame_step: int = 1,
    rng: random.Random | None = None,
    policy: ShortVideoPolicy = "loop",
) -> list[int]:
    """Frame indices of one training clip at a uniformly random offset.

    >>> train_clip(20, clip_len=4, rng=random.Random(0))
    [12, 13, 14, 15]
    >>> train_clip(3, clip_len=5)
    [0, 1, 2, 0, 1]
    """
    _check(num_frames, clip_len, frame_step)
    span = clip_span(clip_len, frame_step)
    last_start = max(0, num_frames - span)
    start = (rng or random).randint(0, last_start)
    indices = [start + k * frame_step for k in range(clip_len)]
    return _extend(indices, num_frames, policy) if span > num_frames else indices


def test_clips(
    num_frames: int,
    clip_len: int = 16,
    stride: int = 8,
    frame_step: int = 1,
    policy: ShortVideoPolicy = "loop",
) -> list[list[int]]:
    """Frame indices of every test clip: starts at 0, stride, 2·stride, ... while a clip fits.

    When the strides do not end exactly at the last frame, one more clip ending at the last
    frame is added, so the end of the video is always seen.

    >>> test_clips(10, clip_len=4, stride=3)
    [[0, 1, 2, 3], [3, 4, 5, 6], [6, 7, 8, 9]]
    >>> test_clips(9, clip_len=4, stride=3)
    [[0, 1, 2, 3], [3, 4, 5, 6], [5, 6, 7, 8]]
    """
    _check(num_frames, clip_len, frame_step)
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    span = clip_span(clip_len, frame_step)
    if span >= num_frames:
        indices = [k * frame_step for k in range(clip_len)]
        return [_extend(indices, num_frames, policy) if span > num_frames else indices]
    starts = list(range(0, num_frames - span + 1, stride))
    if starts[-1] != num_frames - span:
        starts.append(num_frames - span)
    return [[s + k * frame_step for k in range(clip_len)] for s in starts]


def uniform_indices(num_frames: int, count: int) -> list[int]:
    """``count`` frame numbers spread evenly from the first frame to the last, as video
    captioners sample a video (S2VT: 80; Yao et al.: 26). A video shorter than ``count``
    repeats frames rather than being dropped.

    >>> uniform_indices(10, 4)
    [0, 3, 6, 9]
    >>> uniform_indices(3, 5)
    [0, 0, 1, 2, 2]
    """
    if num_frames < 1 or count < 1:
        raise ValueError(f"need num_frames >= 1 and count >= 1, got {num_frames}, {count}")
    if count == 1:
        return [(num_frames - 1) // 2]
    return [round(k * (num_frames - 1) / (count - 1)) for k in range(count)]


def strided_indices(num_frames: int, count: int, stride: int) -> list[int]:
    """Every ``stride``-th frame from the first, at most ``count`` of them: a fixed frame
    rate, so a short video gives fewer frames (at least one) and a long one is cut at
    ``count`` (S2VT sampled every 10th frame, up to 80).

    >>> strided_indices(10, 4, 3)
    [0, 3, 6, 9]
    >>> strided_indices(100, 4, 3)
    [0, 3, 6, 9]
    >>> strided_indices(5, 4, 3)
    [0, 3]
    """
    if num_frames < 1 or count < 1 or stride < 1:
        raise ValueError(
            f"need num_frames, count and stride >= 1, got {num_frames}, {count}, {stride}"
        )
    return list(range(0, num_frames, stride))[:count]
