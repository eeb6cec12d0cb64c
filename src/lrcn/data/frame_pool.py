"""Frames of many sources, decoded ahead in threads and packed into batches across sources.

What feature extraction needs around the backbone so that the backbone never waits and never
runs tiny batches:

- :func:`prefetch` runs a loader (decode + center crop) over the next sources in worker threads
  and hands the results out in order. PyAV, Pillow and OpenCV release the GIL while they work,
  so threads overlap with the backbone; memory stays bounded because jobs run ahead only while
  the frames they are expected to bring stay under a budget.
- :class:`FramePacker` fills batches of a fixed size with the frames of consecutive sources
  (a one-frame image, a 6-frame clip and the start of a long video share one batch), and
  :class:`FeatureAssembler` routes the batch's outputs back, returning a source's features
  once all its frames are in.
- :class:`FrameCounts` keeps what is known of each source's frame count (declared before,
  exact after loading) for the run-ahead budget and the progress bar's total.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Generator, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import NamedTuple, TypeVar

import numpy as np

T = TypeVar("T")
R = TypeVar("R")

__all__ = [
    "FeatureAssembler",
    "FrameCounts",
    "FramePacker",
    "Span",
    "prefetch",
]


class FrameCounts:
    """How many frames each of ``n`` sources brings: exact once loaded, else the count declared
    upfront (``declared``, e.g. from :func:`lrcn.data.video_io.probe_video`), else the mean of
    those loaded so far (a custom loader: images are all 1, sampled clips all the same length),
    else unknown (None). The total is kept as running sums: it is asked after every batch."""

    def __init__(self, n: int, declared: Sequence[int] | None = None) -> None:
        self._declared = [max(1, int(c)) for c in declared] if declared is not None else None
        if self._declared is not None and len(self._declared) != n:
            raise ValueError(f"FrameCounts: {len(self._declared)} declared counts for {n} sources")
        self._actual: list[int | None] = [None] * n
        self._dropped = [False] * n
        self._loaded_frames = 0
        self._loaded = 0
        self._open = n  # sources neither loaded nor dropped
        self._declared_open = sum(self._declared) if self._declared is not None else 0

    def _close(self, index: int) -> None:
        if self._actual[index] is not None or self._dropped[index]:
            raise ValueError(f"FrameCounts: source {index} was already counted")
        self._open -= 1
        if self._declared is not None:
            self._declared_open -= self._declared[index]

    def set(self, index: int, frames: int) -> None:
        """Source ``index`` loaded with ``frames`` frames."""
        self._close(index)
        self._actual[index] = frames
        self._loaded_frames += frames
        self._loaded += 1

    def drop(self, index: int) -> None:
        """Source ``index`` failed: it brings no frames."""
        self._close(index)
        self._dropped[index] = True

    def _mean(self) -> int | None:
        return max(1, round(self._loaded_frames / self._loaded)) if self._loaded else None

    def expected(self, index: int) -> int | None:
        if self._dropped[index]:
            return 0
        actual = self._actual[index]
        if actual is not None:
            return actual
        return self._declared[index] if self._declared is not None else self._mean()

    def total(self) -> int:
        """Frames expected over all sources (unknown ones counted as 1)."""
        rest = (
            self._declared_open if self._declared is not None else self._open * (self._mean() or 1)
        )
        return self._loaded_frames + rest


def prefetch(
    load: Callable[[T], R],
    items: Sequence[T],
    workers: int,
    frames_ahead: int,
    expected: Callable[[int], int | None],
) -> Generator[R, None, None]:
    """``load(item)`` for every item, run in ``workers`` threads, yielded in order.

    Jobs start ahead of the consumer while fewer than ``workers + 1`` are waiting (so every
    worker has one and one is ready), or while the frames they are expected to bring
    (``expected(index)``; unknown counts as the whole budget) stay under ``frames_ahead``: a
    batch of images needs many small jobs ahead, a long video one. Use it in a ``with
    contextlib.closing(...)`` block: closing cancels the jobs not started and waits for the
    running ones. An exception a job raises comes out of the iteration at its place.
    """
    if workers < 1:
        raise ValueError(f"prefetch: workers must be >= 1, got {workers}")
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="lrcn-frames")
    waiting: deque[tuple[int, Future[R]]] = deque()
    weights = 0  # frames expected of the waiting jobs
    following = 0  # the next item to start
    try:
        while following < len(items) or waiting:
            while following < len(items) and (len(waiting) <= workers or weights < frames_ahead):
                weight = expected(following)
                weight = frames_ahead if weight is None else weight
                waiting.append((weight, pool.submit(load, items[following])))
                weights += weight
                following += 1
            weight, future = waiting.popleft()
            weights -= weight
            yield future.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


class Span(NamedTuple):
    """Frames ``start:stop`` of source ``tag`` (``length`` frames in all) inside a batch."""

    tag: int
    start: int
    stop: int
    length: int


class FramePacker:
    """Frames of consecutive sources packed into batches of ``size`` frames, in order."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"FramePacker: size must be >= 1, got {size}")
        self.size = size
        self._queue: deque[tuple[int, np.ndarray, int]] = deque()  # (tag, frames, next frame)
        self._pending = 0  # frames queued, not yet in a batch

    def add(self, tag: int, frames: np.ndarray) -> None:
        """Queue source ``tag``'s frames ``(T, ...)``, T >= 1."""
        if len(frames) == 0:
            raise ValueError(f"FramePacker: source {tag} has no frames")
        self._queue.append((tag, frames, 0))
        self._pending += len(frames)

    def batches(self, final: bool = False) -> Iterator[tuple[np.ndarray, list[Span]]]:
        """Every full batch queued (with ``final``, the last partial one too): the frames
        ``(B, ...)`` and which source each run of them belongs to. A batch inside one source
        is a view of its frames; one across sources, a copy."""
        while self._pending >= self.size or (final and self._pending):
            parts, spans, room = [], [], self.size
            while room and self._queue:
                tag, frames, start = self._queue[0]
                stop = min(len(frames), start + room)
                parts.append(frames[start:stop])
                spans.append(Span(tag, start, stop, len(frames)))
                room -= stop - start
                if stop == len(frames):
                    self._queue.popleft()
                else:
                    self._queue[0] = (tag, frames, stop)
            batch = parts[0] if len(parts) == 1 else np.concatenate(parts)  # (B, ...)
            self._pending -= len(batch)
            yield batch, spans


class FeatureAssembler:
    """A batch's outputs routed back to their sources (float16, as the cache stores them)."""

    def __init__(self) -> None:
        self._parts: dict[int, list[np.ndarray]] = {}

    def add(self, spans: Sequence[Span], outputs: np.ndarray) -> list[tuple[int, np.ndarray]]:
        """Take the outputs ``(B, ...)`` of a batch packed as ``spans``; return ``(tag,
        features (T, ...))`` of every source now complete, in order."""
        complete, offset = [], 0
        for span in spans:
            count = span.stop - span.start
            part = outputs[offset : offset + count].astype(np.float16)  # a copy, not a view
            self._parts.setdefault(span.tag, []).append(part)
            offset += count
            if span.stop == span.length:
                parts = self._parts.pop(span.tag)
                complete.append((span.tag, parts[0] if len(parts) == 1 else np.concatenate(parts)))
        if offset != len(outputs):
            raise ValueError(f"FeatureAssembler: {len(outputs)} outputs for {offset} frames")
        return complete
