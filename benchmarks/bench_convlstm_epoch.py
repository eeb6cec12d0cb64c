"""CNN-ConvLSTM: training epochs with the 1x1 channel reduction off and on, on the same data.

Both runs train ``cnn_convlstm`` on the order data set of ``lrcn demo`` (written here) from the
frozen, pretrained EfficientNet-Lite0's cached feature grids (1280 channels, 7x7 at 224
pixels): the same videos, seed, epochs and optimiser, only ``model.reduce_channels`` differs.
The first run fills the cache (not timed: ``seconds`` in metrics.jsonl is training only) and
the second reads it, so neither pays for the backbone.

Columns: seconds per training epoch (the fastest epoch, as the other benchmarks take the best
of repeats: the machine is shared; and the median), video top-1 on the validation split (the
best epoch's, which is what ``best/`` keeps, and the last epoch's; never the test split), and
one head step (forward, backward, Adam on a batch of random grids of the same shape, best of
interleaved rounds), which isolates the head from reading the cache: the gap between the two
speed-ups is the epoch's fixed cost (float16 grids read and widened to float32, batching, the
loop). Val has 24 videos: one video is 0.042 of top-1.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
from pathlib import Path
from typing import Any

import torch

from common import interleaved_best
from lrcn.data.synthetic import write_order_ucf101
from lrcn.models.activity import REDUCE_CHANNELS, ConvLSTMHead
from lrcn.tasks import train, validate_config

Row = dict[str, Any]

# The demo's settings (lrcn/demos/activity.py) at the 224-pixel crop of configs/ucf101_*.yaml.
FULL = {"num_groups": 16, "clips_per_group": 2, "frames": 24, "image_size": 224, "epochs": 6,
        "clips_per_video": 2}  # fmt: skip
QUICK = {"num_groups": 4, "clips_per_group": 1, "frames": 24, "image_size": 112, "epochs": 2,
         "clips_per_video": 1}  # fmt: skip
BATCH, CLIP_LEN, CHANNELS = 16, 16, 1280

HEADER = (
    "cnn_convlstm on the order data set (lrcn demo), frozen pretrained EfficientNet-Lite0, "
    "grids from the feature cache; the same data, seed and epochs in both runs.\n\n"
    "| reduce_channels | grid | train videos | val videos | epoch s, best | median "
    "| speed-up (best) | val video top-1, best | last | head step ms | speed-up |\n"
    "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
)


def _config(videos: Path, cache: Path, reduce: int | None, p: dict[str, int]) -> dict[str, Any]:
    return {
        "task": "activity",
        "data": {"format": "ucf101", "root": str(videos), "split": 1, "clip_len": CLIP_LEN,
                 "stride": 8, "num_workers": 0, "val_fraction": 0.25},
        "model": {"name": "cnn_convlstm", "backbone": "efficientnet_lite0",
                  "image_size": p["image_size"], "dropout": 0.3, "reduce_channels": reduce},
        "train": {"epochs": p["epochs"], "batch_size": BATCH, "lr": 0.003, "seed": 0,
                  "clips_per_video": p["clips_per_video"], "device": "cpu",
                  "feature_cache": str(cache)},
    }  # fmt: skip


def _train(videos: Path, root: Path, reduce: int | None, p: dict[str, int]) -> Row:
    """One run; its epoch seconds (best, median) and validation top-1 (best, last epoch)."""
    run = root / f"run-{reduce or 'off'}"
    report = train(
        validate_config(_config(videos, root / "cache", reduce, p)), run, log=lambda _: None
    )
    lines = (run / "metrics.jsonl").read_text().splitlines()
    seconds = [float(json.loads(line)["seconds"]) for line in lines]
    return {
        "reduce": reduce,
        "epoch_s": min(seconds),
        "epoch_median_s": statistics.median(seconds),
        "val_best": float(report["best"]["value"]),
        "val_last": float(report["final"]["val_video_top1"]),
        "train_videos": report["train_videos"],
        "val_videos": report["val_videos"],
    }


def _head_step(reduce: int | None, grid: int) -> Any:
    """One training step of the head alone on random non-negative grids (Lite0's are ReLU6)."""
    torch.manual_seed(0)
    head = ConvLSTMHead(CHANNELS, 4, (grid, grid), dropout=0.3, reduce_channels=reduce)
    optimizer = torch.optim.Adam(head.parameters(), lr=1e-3)
    grids = torch.rand(BATCH, CLIP_LEN, CHANNELS, grid, grid) * 6
    labels = torch.arange(BATCH) % 4

    def step() -> None:
        loss = torch.nn.functional.cross_entropy(head(grids).step_logits[:, 0], labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def run(quick: bool = False) -> list[Row]:
    p = QUICK if quick else FULL
    load = os.getloadavg()[0]
    print(f"1-minute load average at the start: {load:.1f} on {os.cpu_count()} CPUs", flush=True)
    grid = -(-p["image_size"] // 32)  # Lite0's stride 32, TF "same" padding
    steps = interleaved_best(
        [(str(r), _head_step(r, grid), 2 if quick else 4) for r in (None, REDUCE_CHANNELS)],
        rounds=2,
    )
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        videos = write_order_ucf101(
            root / "data", p["num_groups"], p["clips_per_group"], frames=p["frames"]
        )
        for reduce in (None, REDUCE_CHANNELS):  # off first: it fills the cache, untimed
            row = _train(videos, root, reduce, p) | {"grid": grid, "step_ms": steps[str(reduce)]}
            rows.append(row)
            print(_format_row(row, rows[0]), flush=True)
    print(f"1-minute load average at the end: {os.getloadavg()[0]:.1f}", flush=True)
    return rows


def _format_row(r: Row, base: Row) -> str:
    return (
        f"| {r['reduce'] or 'off'} | {CHANNELS}×{r['grid']}×{r['grid']} | {r['train_videos']} "
        f"| {r['val_videos']} | {r['epoch_s']:.2f} | {r['epoch_median_s']:.2f} "
        f"| {base['epoch_s'] / r['epoch_s']:.1f}× "
        f"| {r['val_best']:.3f} | {r['val_last']:.3f} | {r['step_ms']:.0f} "
        f"| {base['step_ms'] / r['step_ms']:.1f}× |"
    )


def table(rows: list[Row]) -> str:
    return "\n".join([HEADER, *(_format_row(r, rows[0]) for r in rows)])
