"""``lrcn serve`` under load: throughput and latency, micro-batching on and off, eager
PyTorch and ONNX Runtime.

The server is a separate ``lrcn serve`` process (as users run it) with a captioning model at
the Flickr8k config's sizes (EfficientNet-Lite0 grid at 224, Show-Attend-Tell 512, 10k words,
beam 3; pretrained backbone, untrained decoder: the speed does not depend on the weights'
values). Clients send all their photos at once (:mod:`lrcn.serve.loadgen`), with a queue large
enough that none is turned away; the baseline is micro-batching off with eager PyTorch.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from bench_export import CAPTION
from lrcn.checkpoint import save_bundle
from lrcn.data.vocab import SPECIALS, Vocabulary
from lrcn.export.writer import export_bundle
from lrcn.models import build_model
from lrcn.models.captioning import CaptioningExtras
from lrcn.serve.loadgen import LoadRequest, run_load

Row = dict[str, float | str]

HEADER = (
    "`lrcn serve` (its own process, 2 prediction threads) with Show-Attend-Tell at the Flickr8k "
    "config's sizes (224, grid 7x7x1280, 512/512/512, vocabulary 10k, beam 3), photos of "
    "640x480 JPEG sent by N clients at once; throughput counts answered requests per second "
    "of the whole run, latencies are per request (upload, queue, decode, predict). The "
    "baseline is micro-batching off (every request its own predictor call) with eager PyTorch."
)


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run(folder: Path) -> Path:
    vocab = Vocabulary([*SPECIALS, *(f"w{i}" for i in range(10_000 - len(SPECIALS)))])
    extras = CaptioningExtras.of(vocab)
    torch.manual_seed(0)
    model = build_model(CAPTION["model"], extras)
    save_bundle(folder / "best", model, CAPTION, extras, model.backbone.preprocess)
    export_bundle(folder, "onnx", log=lambda _: None)
    return folder


def _serve(run: Path, engine: str, window_ms: float):  # -> (Popen, url)
    port = _port()
    command = [sys.executable, "-m", "lrcn", "serve", str(run), "--port", str(port),
               "--engine", engine, "--batch-window-ms", str(window_ms), "--queue", "512",
               "--max-batch", "16", "--timeout", "300"]  # fmt: skip
    server = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return server, f"http://127.0.0.1:{port}"
        except OSError:
            if server.poll() is not None:
                raise RuntimeError(f"lrcn serve exited: {server.stderr.read()}") from None
            time.sleep(0.2)
    server.kill()
    raise RuntimeError("lrcn serve did not start in 120 s")


def run(quick: bool = False) -> list[Row]:
    clients = 8 if quick else 64
    rng = np.random.default_rng(0)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = _run(Path(tmp) / "captioner")
        photo = Path(tmp) / "photo.jpg"
        Image.fromarray((rng.random((480, 640, 3)) * 255).astype(np.uint8)).save(photo)
        data = photo.read_bytes()
        requests = [LoadRequest("captioner", (("photo.jpg", data),), {}) for _ in range(clients)]
        for engine in ("eager", "onnxruntime"):
            for window in (0.0, 5.0):
                server, url = _serve(run_dir, engine, window)
                try:
                    asyncio.run(run_load(url, requests[:4], timeout_s=300))  # warm up
                    report = asyncio.run(run_load(url, requests, timeout_s=300,
                                                  total_timeout_s=600))  # fmt: skip
                finally:
                    server.terminate()
                    server.wait(30)
                rows.append({
                    "engine": engine, "batching": f"{window:g} ms" if window else "off",
                    "clients": clients, "ok": report.statuses.count(200),
                    "throughput": report.throughput,
                    "p50": report.percentile(0.5) * 1e3, "p99": report.percentile(0.99) * 1e3,
                })  # fmt: skip
                print(f"  {engine:<12} batching {rows[-1]['batching']:<5} {report.summary()}")
    base = rows[0]["throughput"]
    for row in rows:
        row["vs_baseline"] = float(row["throughput"]) / float(base)
    return rows


def table(rows: list[Row]) -> str:
    lines = [
        "| engine | micro-batching | clients | answered | requests/s | vs baseline | p50 ms "
        "| p99 ms |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| {r['engine']} | {r['batching']} | {r['clients']} | {r['ok']} "
                     f"| {r['throughput']:.2f} | {r['vs_baseline']:.2f}x | {r['p50']:.0f} "
                     f"| {r['p99']:.0f} |")  # fmt: skip
    return "\n".join(lines)
