"""Every test clip of one video, streamed: memory that stays flat in the video's length.

:class:`~lrcn.data.clips.EvalVideos` decodes all the frames a video's clips need and stacks
every clip, which for a 10-minute video at 25 fps is 15,000 frames in memory at once. Here the
video is decoded once, front to back (decoding once beats seeking per clip, PERF-NOTES), and
only a window of the last ``clip_span`` frames is held: a test clip covers at most that many
consecutive frames, so when its last frame arrives all of its frames are in the window. Each
frame is preprocessed once, the first time a clip needs it, and dropped when it leaves the
window. The clips are exactly ``test_clips(num_frames, ...)``, in that order, handed over in
batches of a few clips, each batch stacked in one copy.

A video that decodes fewer frames than ``num_frames`` (the container's count, which codecs
with delay overstate by a frame or two) is treated as :func:`~lrcn.data.video_io.read_frames`
treats a whole video: within the usual shortfall, its clips are planned again for the frames
it really has (only the last clip changes, and it lies in the window); beyond it, the reader
raises :class:`~lrcn.data.video_io.VideoError` (truncated).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from lrcn.backbones import Preprocess
from lrcn.data.sampling import ShortVideoPolicy, clip_span, test_clips
from lrcn.data.video_io import iter_frames

__all__ = ["stream_clip_batches"]


class _Window:
    """The last ``size`` frames of a stream, each preprocessed at most once, when first used."""

    def __init__(self, size: int, preprocess: Preprocess) -> None:
        self.size = size
        self.preprocess = preprocess
        self.raw: dict[int, np.ndarray] = {}  # index -> uint8 (H, W, 3)
        self.ready: dict[int, Tensor] = {}  # index -> float32 (3, crop, crop)

    def push(self, index: int, frame: np.ndarray) -> None:
        """Add frame ``index`` and forget the one that falls out of the window."""
        self.raw[index] = frame
        self.raw.pop(index - self.size, None)
        self.ready.pop(index - self.size, None)

    def clip(self, indices: Sequence[int]) -> list[Tensor]:
        """Frames ``indices`` (all inside the window) of one clip, each ``(3, crop, crop)``,
        shared with the other clips that hold them (a clip is stacked with its batch)."""
        for i in indices:
            if i not in self.ready:
                self.ready[i] = self.preprocess.frames_to_tensor(self.raw[i][None])[0]
        return [self.ready[i] for i in indices]


def stream_clip_batches(
    path: str | Path,
    num_frames: int,
    preprocess: Preprocess,
    clip_len: int,
    stride: int,
    frame_step: int = 1,
    policy: ShortVideoPolicy = "loop",
    frame_every: int = 1,
    clips_per_batch: int = 16,
) -> Iterator[Tensor]:
    """Every test clip of a video, center-cropped, in batches ``(n, clip_len, 3, crop, crop)``
    of ``clips_per_batch`` clips (the last batch may hold fewer).

    Args:
        path: a video file or a folder of frame images.
        num_frames: frames of the video as clips count them (its count after ``frame_every``),
            from :func:`~lrcn.data.video_io.probe_video`; the clips are planned from it.
        preprocess: the backbone's preset; frames are center-cropped, as in evaluation.
        clip_len, stride, frame_step, policy: as :func:`~lrcn.data.sampling.test_clips`.
        frame_every: read frames 0, k, 2k, ... of the file as the video's frames 0, 1, 2, ...
        clips_per_batch: clips per batch; memory grows with it, not with the video.

    Yields:
        The clips of ``test_clips(num_frames, clip_len, stride, frame_step, policy)`` in order
        (re-planned for the real count if the video decodes a little short, see the module).
    """
    batch: list[list[Tensor]] = []
    clips = _clips(path, num_frames, preprocess, clip_len, stride, frame_step, policy, frame_every)
    for clip in clips:
        batch.append(clip)
        if len(batch) == clips_per_batch:
            yield _stack(batch)
            batch = []
    if batch:
        yield _stack(batch)


def _stack(clips: list[list[Tensor]]) -> Tensor:
    """Clips of ``(3, crop, crop)`` frames as one batch ``(n, T, 3, crop, crop)``, in one copy.

    Channels-last in memory, as frames come out of their preset and as EvalVideos hands clips
    over: the same numbers, and CPU convolutions run faster on it. Stacking per batch, not per
    clip, also keeps the copies' threads from contending with OpenCV's between frames.
    """
    hwc = [frame.permute(1, 2, 0) for clip in clips for frame in clip]  # (crop, crop, 3) each
    return torch.stack(hwc).permute(0, 3, 1, 2).unflatten(0, (len(clips), -1))


def _clips(
    path: str | Path,
    num_frames: int,
    preprocess: Preprocess,
    clip_len: int,
    stride: int,
    frame_step: int,
    policy: ShortVideoPolicy,
    frame_every: int,
) -> Iterator[list[Tensor]]:
    """The clips of :func:`stream_clip_batches` one at a time, as lists of frames."""
    plan = test_clips(num_frames, clip_len, stride, frame_step, policy)
    # A clip lies within clip_span consecutive frames (a short video's looped clip within
    # the video itself, shorter still), so that many frames are all it can need.
    window = _Window(clip_span(clip_len, frame_step), preprocess)
    done = 0  # clips of the plan yielded; they complete in order of their last frame
    seen = 0  # frames read
    for index, frame in enumerate(iter_frames(path, frame_every)):
        window.push(index, frame)
        seen = index + 1
        while done < len(plan) and max(plan[done]) <= index:
            yield window.clip(plan[done])
            done += 1
        if done == len(plan):
            return  # stop decoding: frames past the declared count belong to no clip
    # The video ended short of num_frames (within the reader's tolerance, or it would have
    # raised). The clips yielded are a prefix of the new plan; what is left ends in the window.
    for clip in test_clips(seen, clip_len, stride, frame_step, policy)[done:]:
        yield window.clip(clip)
