"""Micro-batching: requests to one model that arrive close together share one predictor call.

A model's predictor is much cheaper per file on a batch than one file at a time (one forward
pass, one beam search for all), so each model gets a :class:`Batcher`: a bounded list of
pending requests and ``workers`` threads. A free worker takes the oldest request, waits until
``window_s`` has passed since it arrived (or ``max_batch`` files are waiting), then takes every
waiting request with equal options, in order, up to ``max_batch`` files, calls the predictor
once and hands each request back its own results (matched by their ``input``). Requests with
other options wait for the next worker. Prediction happens only in these threads, so the
server's event loop never decodes a video.

The list is bounded: :meth:`Batcher.submit` raises :class:`QueueFull` at once instead of
blocking, and the caller answers 503. A request whose caller gave up (its future cancelled
while still waiting) is dropped, never predicted.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Batcher", "Predict", "QueueFull", "Timing"]

Predict = Callable[[list[Path], dict[str, Any]], list[dict[str, Any]]]


class QueueFull(Exception):
    """The model already has as many requests waiting as its queue holds."""


@dataclass(frozen=True)
class Timing:
    """Where a request's time went: waiting for a worker, and in the shared predictor call of
    ``batch_size`` files."""

    queue_s: float
    predict_s: float
    batch_size: int


Results = tuple[list[dict[str, Any]], Timing]


@dataclass
class _Job:
    inputs: list[Path]
    options: dict[str, Any]
    future: Future[Results]
    queued_at: float


class Batcher:
    """Queue and worker threads of one model; see the module docstring.

    Args:
        predict: the model, ``predict(inputs, options) -> results``, each result naming its
            ``input`` (as ``str(path)``) so a shared call's results can be routed back.
        workers: threads calling ``predict`` (calls run in parallel on different batches).
        max_queue: requests that may wait; one more raises :class:`QueueFull`.
        window_s: how long the oldest waiting request waits for company; 0 turns batching
            off (one call per request).
        max_batch: most files in one call (a single request with more is never split).
        on_batch: called with the number of files of every call (the metrics' histogram).
        name: for the threads' names.
    """

    def __init__(
        self,
        predict: Predict,
        *,
        workers: int = 2,
        max_queue: int = 32,
        window_s: float = 0.005,
        max_batch: int = 16,
        on_batch: Callable[[int], None] | None = None,
        name: str = "model",
    ) -> None:
        if workers < 1 or max_queue < 1 or max_batch < 1 or window_s < 0:
            raise ValueError("workers, max_queue and max_batch must be >= 1, window_s >= 0")
        self._predict = predict
        self._max_queue = max_queue
        self._window_s = window_s
        self._max_batch = max_batch
        self._on_batch = on_batch
        self._pending: list[_Job] = []
        self._cond = threading.Condition()
        self._closed = False
        self._call_s = 0.0  # running mean of a call's duration, for Retry-After
        self._threads = [
            threading.Thread(target=self._work, name=f"lrcn-serve-{name}-{i}", daemon=True)
            for i in range(workers)
        ]

    def start(self) -> None:
        """Start the worker threads."""
        for thread in self._threads:
            thread.start()

    def close(self, timeout: float = 5.0) -> None:
        """Let the workers finish what is queued, then stop them; requests still waiting
        after ``timeout`` seconds (workers stuck in a call) are cancelled."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            if thread.is_alive():
                thread.join(max(0.0, deadline - time.monotonic()))
        with self._cond:
            for job in self._pending:
                job.future.cancel()
            self._pending.clear()

    @property
    def depth(self) -> int:
        """Requests waiting for a worker (the queue-depth gauge)."""
        with self._cond:
            return sum(not job.future.cancelled() for job in self._pending)

    def retry_after(self) -> int:
        """Whole seconds after which a refused client may try again: the time the workers
        need to work through the queue, at least 1."""
        with self._cond:
            waiting = len(self._pending)
        rounds = waiting / len(self._threads) + 1
        return max(1, math.ceil(self._call_s * rounds))

    def submit(self, inputs: Sequence[Path], options: dict[str, Any]) -> Future[Results]:
        """Queue one request; its future gives ``(results, timing)`` or the predictor's
        exception. Never blocks: raises :class:`QueueFull` when the queue is full."""
        future: Future[Results] = Future()
        job = _Job(list(inputs), dict(options), future, time.monotonic())
        with self._cond:
            if self._closed:
                raise RuntimeError("the server is shutting down")
            self._pending = [j for j in self._pending if not j.future.cancelled()]
            if len(self._pending) >= self._max_queue:
                raise QueueFull(f"{len(self._pending)} requests are waiting")
            self._pending.append(job)
            self._cond.notify_all()  # a worker waiting on its window may now have a full batch
        return future

    # -- worker side ---------------------------------------------------------------------

    def _work(self) -> None:
        while (batch := self._next_batch()) is not None:
            if batch:
                self._run(batch)

    def _next_batch(self) -> list[_Job] | None:
        """The next batch to predict (possibly empty: every job in it was cancelled), or None
        once closed and drained."""
        with self._cond:
            while True:
                if not self._pending:
                    if self._closed:
                        return None
                    self._cond.wait()
                    continue
                first = self._pending[0]
                group, files = [first], len(first.inputs)
                if self._window_s > 0:
                    for job in self._pending[1:]:
                        if job.options == first.options and files + len(job.inputs) <= (
                            self._max_batch
                        ):
                            group.append(job)
                            files += len(job.inputs)
                wait = first.queued_at + self._window_s - time.monotonic()
                if wait <= 0 or files >= self._max_batch or self._closed:
                    taken = set(map(id, group))
                    self._pending = [j for j in self._pending if id(j) not in taken]
                    return [job for job in group if job.future.set_running_or_notify_cancel()]
                self._cond.wait(wait)  # another worker may take `first` meanwhile: re-check

    def _run(self, batch: list[_Job]) -> None:
        inputs = [path for job in batch for path in job.inputs]
        started = time.monotonic()
        try:
            results = self._predict(inputs, dict(batch[0].options))
            parts = [results] if len(batch) == 1 else _route(results, batch)
        except Exception as err:  # the predictor's error belongs to this batch's requests only
            for job in batch:
                job.future.set_exception(err)
            return
        finally:
            took = time.monotonic() - started
            self._call_s = took if self._call_s == 0 else 0.8 * self._call_s + 0.2 * took
            if self._on_batch is not None:
                self._on_batch(len(inputs))
        for job, part in zip(batch, parts, strict=True):
            timing = Timing(started - job.queued_at, took, len(inputs))
            job.future.set_result((part, timing))


def _route(results: list[dict[str, Any]], batch: list[_Job]) -> list[list[dict[str, Any]]]:
    """Split a shared call's results by the request whose input each one names."""
    owner = {str(path): n for n, job in enumerate(batch) for path in job.inputs}
    parts: list[list[dict[str, Any]]] = [[] for _ in batch]
    for result in results:
        n = owner.get(str(result.get("input")))
        if n is None:
            raise RuntimeError(
                f"the predictor returned a result for an input it was not given: "
                f"{result.get('input')!r}"
            )
        parts[n].append(result)
    return parts
