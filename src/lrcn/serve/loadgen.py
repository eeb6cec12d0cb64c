"""Load generation for ``lrcn serve``: a real uvicorn in a thread, and many concurrent clients.

The load test and the benchmarks share these, so a throughput or latency a benchmark reports
is measured exactly the way the test checks it: :func:`background_server` serves an app on a
free loopback port, :func:`run_load` sends every request at once (one client each) and
:class:`LoadReport` has the status counts, throughput and latency percentiles.
"""

from __future__ import annotations

import asyncio
import math
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

__all__ = ["LoadReport", "LoadRequest", "background_server", "rss_mb", "run_load"]


@contextmanager
def background_server(app: Any, host: str = "127.0.0.1", timeout_s: float = 30.0) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a free port of ``host`` in a daemon thread (lifespan
    included); yields the base URL and stops the server (its shutdown too) on exit."""
    import uvicorn

    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="uvicorn", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + timeout_s
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            sock.close()
            raise RuntimeError(f"uvicorn did not start on {host}:{port}")
        time.sleep(0.01)
    try:
        yield f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout_s)
        sock.close()


@dataclass(frozen=True)
class LoadRequest:
    """One client's request: files (name, bytes) for the ``file`` field, and option fields."""

    model: str
    files: tuple[tuple[str, bytes], ...]
    fields: Mapping[str, str] = field(default_factory=dict)


@dataclass
class LoadReport:
    """What a load run saw: per request its status (0: no response; ``errors`` says why)
    and latency, and the wall time of the whole run."""

    statuses: list[int]
    latencies_s: list[float]
    errors: list[str]
    wall_s: float

    @property
    def counts(self) -> dict[int, int]:
        """Requests by status code."""
        return dict(sorted(Counter(self.statuses).items()))

    @property
    def throughput(self) -> float:
        """Successful (200) requests per second of wall time."""
        return self.statuses.count(200) / self.wall_s if self.wall_s > 0 else 0.0

    def percentile(self, q: float, status: int | None = 200) -> float:
        """The ``q``-quantile (0..1, nearest rank) of the latencies of requests that ended
        with ``status`` (None: all), in seconds; NaN when there are none."""
        chosen = sorted(
            t for s, t in zip(self.statuses, self.latencies_s, strict=True) if status in (None, s)
        )
        if not chosen:
            return math.nan
        return chosen[min(len(chosen) - 1, max(0, math.ceil(q * len(chosen)) - 1))]

    def summary(self) -> str:
        """One line for a log or a benchmark table."""
        return (
            f"{len(self.statuses)} requests in {self.wall_s:.1f} s: {self.counts}; "
            f"{self.throughput:.1f} ok/s, p50 {self.percentile(0.5) * 1000:.0f} ms, "
            f"p99 {self.percentile(0.99) * 1000:.0f} ms (200s)"
        )


async def run_load(
    base_url: str,
    requests: Sequence[LoadRequest],
    *,
    token: str | None = None,
    timeout_s: float = 30.0,
    total_timeout_s: float = 120.0,
) -> LoadReport:
    """Send every request at once, each on its own connection, and wait for all of them.

    A client gives up after ``timeout_s`` (status 0); the whole run is cut off after
    ``total_timeout_s`` (``asyncio.TimeoutError``), so a stuck server cannot hang a test."""
    import httpx

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    limits = httpx.Limits(max_connections=len(requests), max_keepalive_connections=0)
    async with httpx.AsyncClient(
        base_url=base_url, headers=headers, timeout=timeout_s, limits=limits
    ) as client:

        async def one(request: LoadRequest) -> tuple[int, float, str]:
            files = [("file", (name, data)) for name, data in request.files]
            started = time.perf_counter()
            try:
                response = await client.post(
                    f"/v1/models/{request.model}/predict", files=files, data=dict(request.fields)
                )
            except httpx.HTTPError as err:
                return 0, time.perf_counter() - started, f"{type(err).__name__}: {err}"
            took = time.perf_counter() - started
            error = "" if response.status_code == 200 else response.text[:200]
            return response.status_code, took, error

        started = time.perf_counter()
        outcomes = await asyncio.wait_for(
            asyncio.gather(*(one(r) for r in requests)), total_timeout_s
        )
        wall = time.perf_counter() - started
    return LoadReport(
        [s for s, _, _ in outcomes],
        [t for _, t, _ in outcomes],
        [e for _, _, e in outcomes if e],
        wall,
    )


def rss_mb() -> float:
    """This process's resident memory in MB (Linux ``/proc/self/status`` VmRSS)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise OSError("/proc/self/status has no VmRSS line")
