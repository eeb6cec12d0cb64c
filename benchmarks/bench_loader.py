"""Video loading: our clip loader against raw PyAV, and training from the feature cache.

1. Clips/s of ``read_frames`` and of a whole training sample (decode + resize + crop +
   normalise) against a plain PyAV loop decoding the same frames of the same 320x240 mpeg4
   videos (the UCF-101 format), one process, same clip offsets.
2. One LRCN training epoch from cached features against one that decodes every clip and runs
   the frozen backbone (what training costs without the cache).
"""

from __future__ import annotations

import random
import tempfile
from pathlib import Path

import av
import numpy as np

from common import best_ms
from lrcn.backbones import create_backbone
from lrcn.data.clips import TrainClips
from lrcn.data.items import VideoItem
from lrcn.data.sampling import train_clip
from lrcn.data.video_io import read_frames, write_video

CLIP = 16


def _videos(folder: Path, count: int, frames: int) -> list[Path]:
    rng = np.random.default_rng(0)
    paths = []
    for i in range(count):
        base = rng.integers(0, 255, (1, 240, 320, 3))
        drift = np.arange(frames)[:, None, None, None] * 3
        video = ((base + drift + rng.integers(0, 40, (frames, 240, 320, 3))) % 256).astype(np.uint8)
        path = folder / f"v_Bench_g{i:02d}_c01.avi"
        write_video(path, video, gop_size=12)
        paths.append(path)
    return paths


def _raw_pyav(path: Path, indices: list[int]) -> np.ndarray:
    """The baseline: open, decode from the start, convert the wanted frames, stop."""
    wanted, last, out = set(indices), max(indices), {}
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for n, frame in enumerate(container.decode(stream)):
            if n in wanted:
                out[n] = frame.to_ndarray(format="rgb24", threads=1)
            if n >= last:
                break
    return np.stack([out[i] for i in indices])


def run(quick: bool = False) -> list[dict[str, float | int | str]]:
    rows: list[dict[str, float | int | str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        frames = 150  # a 6 s UCF-101 video at 25 fps
        paths = _videos(Path(tmp), 4 if quick else 8, frames)
        rng = random.Random(0)
        clips = [(p, train_clip(frames, CLIP, rng=rng)) for p in paths for _ in range(4)]
        items = [VideoItem(p, 0, "g") for p in paths]
        backbone = create_backbone("efficientnet_lite0")
        dataset = TrainClips(
            items, [frames] * len(items), backbone.preprocess, CLIP, clips_per_video=4
        )

        raw = best_ms(lambda: [_raw_pyav(p, idx) for p, idx in clips], 3)
        ours = best_ms(lambda: [read_frames(p, idx) for p, idx in clips], 3)
        sample = best_ms(lambda: [dataset[i] for i in range(len(dataset))], 3)
        n = len(clips)
        for name, ms in (
            ("raw PyAV (baseline)", raw),
            ("read_frames", ours),
            ("training sample (decode + preprocess 224)", sample),
        ):
            rows.append({"what": name, "clips_per_s": n / ms * 1e3, "ratio": raw / ms})
            print(f"| {name} | {n / ms * 1e3:.1f} | {raw / ms:.2f}× |", flush=True)
    return rows


HEADER = (
    "| loader (16-frame clips of 320×240 mpeg4, 1 process) | clips/s | speed vs raw PyAV |\n"
    "|---|---:|---:|"
)


def table(rows: list[dict[str, float | int | str]]) -> str:
    lines = [
        f"| {r['what']} | {float(r['clips_per_s']):.1f} | {float(r['ratio']):.2f}× |" for r in rows
    ]
    return "\n".join([HEADER, *lines])
