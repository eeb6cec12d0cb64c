"""``lrcn serve`` under overload: 200 clients at once against two models with small queues.

What must hold when the server cannot keep up: every request gets an answer, either its
prediction (200) or "busy, retry" (503), never another error; some still succeed; nothing is
left in the upload folder; and memory after the storm is within a bound of memory after a
warm-up round (no per-request leak). Throughput and latency are printed (``-s``), measured by
:mod:`lrcn.serve.loadgen`, which the benchmarks reuse.
"""

from __future__ import annotations

import asyncio
import gc
import time
from pathlib import Path

import pytest

from lrcn.serve.app import ServeSettings, create_app, load_models
from lrcn.serve.loadgen import LoadRequest, background_server, rss_mb, run_load

pytestmark = pytest.mark.slow

CLIENTS = 200
WARM_UP = 20
RSS_GROWTH_MB = 150  # RSS after the load may exceed RSS after the warm-up by at most this
CLIENT_TIMEOUT_S = 45  # a client gives up (status 0, which fails the test) after this
TOTAL_TIMEOUT_S = 60  # and the whole run is cut off after this


def _requests(media: dict[str, Path], n: int) -> list[LoadRequest]:
    """Alternately a photo to the captioning model (PNG or JPEG) and a video to activity."""
    png, jpeg = media["image"].read_bytes(), media["jpeg"].read_bytes()
    video = media["video"].read_bytes()
    requests = []
    for i in range(n):
        if i % 2:
            requests.append(LoadRequest("activity", (("clip.avi", video),), {"top": "2"}))
        else:
            photo = ("photo.png", png) if i % 4 else ("photo.jpg", jpeg)
            requests.append(LoadRequest("captioning", (photo,), {"beam": "2"}))
    return requests


@pytest.mark.parametrize("window_ms", [5.0, 0.0], ids=["batching", "no-batching"])
def test_overload_answers_200_or_503_and_leaks_nothing(untrained_run, sample_media, window_ms):
    loaded = load_models([untrained_run("captioning"), untrained_run("activity")])
    models = dict(zip(["captioning", "activity"], loaded.values(), strict=True))
    settings = ServeSettings(
        queue=4, workers=2, max_batch=8, batch_window_s=window_ms / 1000, timeout_s=30
    )
    app = create_app(models, settings)
    with background_server(app) as url:

        def load(n: int):
            return asyncio.run(
                run_load(
                    url,
                    _requests(sample_media, n),
                    timeout_s=CLIENT_TIMEOUT_S,
                    total_timeout_s=TOTAL_TIMEOUT_S,
                )
            )

        warm = load(WARM_UP)
        assert set(warm.counts) <= {200, 503}, warm.errors[:3]
        gc.collect()
        before = rss_mb()
        report = load(CLIENTS)
        gc.collect()
        after = rss_mb()
        upload_dir = Path(app.state.upload_dir)
        deadline = time.monotonic() + 10
        while any(upload_dir.iterdir()) and time.monotonic() < deadline:
            time.sleep(0.05)
        left = sorted(p.name for p in upload_dir.iterdir())
    print(
        f"\n[{window_ms:g} ms window] {report.summary()}; "
        f"RSS {before:.0f} -> {after:.0f} MB (+{after - before:.0f})"
    )
    assert len(report.statuses) == CLIENTS
    assert set(report.counts) <= {200, 503}, (report.counts, report.errors[:3])
    assert report.counts.get(200, 0) >= 10, report.counts
    assert report.counts.get(503, 0) > 0, "no overload happened: the test checks nothing"
    assert left == [], f"left in the upload folder: {left}"
    assert after - before < RSS_GROWTH_MB, f"RSS grew {after - before:.0f} MB under load"
