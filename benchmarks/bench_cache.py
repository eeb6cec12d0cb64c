"""One LRCN training epoch from the feature cache against one that decodes and runs the CNN."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from lrcn.data.synthetic import write_order_ucf101
from lrcn.tasks import train, validate_config


def _config(videos: Path, cache: Path, frozen_cache: bool) -> dict:
    return {
        "task": "activity",
        "data": {"format": "ucf101", "root": str(videos), "clip_len": 16, "num_workers": 0},
        "model": {"name": "lrcn", "backbone": "efficientnet_lite0", "image_size": 112,
                  # Without the cache: the same frozen CNN, run on decoded clips every epoch.
                  "freeze_backbone": True},
        "train": {"epochs": 2 if frozen_cache else 1, "batch_size": 16, "device": "cpu",
                  "feature_cache": str(cache), "eval_every": 1000},
    }  # fmt: skip


def run(quick: bool = False) -> list[dict[str, float | str]]:
    import lrcn.tasks.activity as activity

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        videos = write_order_ucf101(
            root / "data", num_groups=8 if quick else 25, frames=32, size=112
        )
        quiet = lambda _: None  # noqa: E731

        def last_epoch_seconds(run: Path) -> float:
            """Training time of the run's last epoch, unrounded, from its metrics.jsonl."""
            rows = (run / "metrics.jsonl").read_text().splitlines()
            return float(json.loads(rows[-1])["seconds"])

        # From the cache: extraction happens first (not timed); epoch 2 is a pure cache epoch.
        train(validate_config(_config(videos, root / "cache", True)), root / "cached", log=quiet)
        cached = last_epoch_seconds(root / "cached")
        # Decoding: no cache, so the same frozen CNN runs on decoded frames every epoch.
        original = activity._fill_cache
        activity._fill_cache = lambda *args, **kwargs: None  # type: ignore[assignment]
        try:
            train(
                validate_config(_config(videos, root / "empty", False)), root / "decoded", log=quiet
            )
            decoded = last_epoch_seconds(root / "decoded")
        finally:
            activity._fill_cache = original  # type: ignore[assignment]
        report = json.loads((root / "cached" / "report.json").read_text())
        row = {"cached_s": cached, "decoded_s": decoded, "speedup": decoded / cached,
               "videos": report["train_videos"]}  # fmt: skip
        print(
            f"| LRCN epoch | {decoded:.2f} | {cached:.3f} | {decoded / cached:.0f}× |", flush=True
        )
        return [row]


HEADER = (
    "| one training epoch | decode + frozen CNN, s | from feature cache, s | speed-up |\n"
    "|---|---:|---:|---:|"
)


def table(rows: list[dict[str, float | str]]) -> str:
    r = rows[0]
    return "\n".join(
        [
            HEADER,
            f"| LRCN, {r['videos']} training videos of the order data set | "
            f"{float(r['decoded_s']):.2f} "
            f"| {float(r['cached_s']):.3f} | {float(r['speedup']):.0f}× |",
        ]
    )
