"""Peak memory and wall time of activity ``predict`` against video length.

Generated 320x240 mpeg4 videos at 25 fps, 1 to 10 minutes; an untrained tiny LRCN (the
``simple_cnn`` backbone at 64x64, 16-frame clips every 8 frames), so the time is mostly
decoding and preprocessing, the part that grows with the video. Each measurement runs in a
fresh process and reports that process's peak RSS (``ru_maxrss``), imports and model included.

- ``streamed``: what ``lrcn predict`` runs (:func:`lrcn.data.streaming.stream_clip_batches`),
  one pass over the file holding a clip span of frames.
- ``whole video``: the evaluation path (``EvalVideos`` + ``score_videos``), which decodes every
  frame the clips need and stacks all clips before scoring; it grows by ~0.9 GB per minute at
  this size, so it runs only up to ``WHOLE_VIDEO_MAX_MINUTES``.

Wall time on a shared 2-core machine swings with its load; CPU time (all threads of the
process) swings less, so both are given.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

FPS = 25
WIDTH, HEIGHT = 320, 240
WHOLE_VIDEO_MAX_MINUTES = 2.0  # 2.3 GB at 2 minutes; 10 minutes would need ~9 GB

# Run in a fresh process: peak RSS of everything predict needs, and the seconds predict took.
_CHILD = """
import json, sys, time
from pathlib import Path
from lrcn.tasks.inference import load_predictor

run, video, mode = sys.argv[1:4]
predictor = load_predictor(run)
start, cpu = time.perf_counter(), time.process_time()
if mode == "streamed":
    (result,) = predictor([video])
    clips = result["clips"]
else:
    from lrcn.data.clips import EvalVideos
    from lrcn.data.items import VideoItem
    from lrcn.data.video_io import probe_video
    from lrcn.tasks.activity import score_videos
    import torch

    d, bundle = predictor.config.data, predictor.bundle
    count = probe_video(video).num_frames
    dataset = EvalVideos([VideoItem(Path(video), 0, "")], [count], bundle.preprocess,
                         d.clip_len, d.stride, d.frame_step, d.short_video)
    scores = score_videos(bundle.model, dataset, torch.device("cpu"), features=False)
    clips = int(scores["clip_probs"].shape[0])
seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
# VmHWM: this process's own peak. ru_maxrss would also count the benchmark process this one
# was forked from (the kernel keeps the pre-exec high-water mark).
status = Path("/proc/self/status").read_text().splitlines()
peak_kb = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
print(json.dumps({"seconds": seconds, "cpu": cpu, "peak_mb": peak_kb / 1024, "clips": clips}))
"""


def _write_video(path: Path, frames: int) -> None:
    """A long 320x240 video, generated a frame at a time (a 10-minute one would be 3.5 GB as
    one array for ``write_video``): a noise texture drifting sideways, which mpeg4 codes at
    a realistic size."""
    import av

    texture = np.random.default_rng(0).integers(0, 256, (HEIGHT, WIDTH * 2, 3), dtype=np.uint8)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=FPS)
        stream.width, stream.height = WIDTH, HEIGHT
        stream.pix_fmt = "yuv420p"
        stream.codec_context.gop_size = 12
        stream.codec_context.bit_rate = 2_000_000
        for t in range(frames):
            left = (2 * t) % WIDTH
            frame = av.VideoFrame.from_ndarray(
                np.ascontiguousarray(texture[:, left : left + WIDTH]), format="rgb24"
            )
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def _bundle(folder: Path) -> Path:
    """An untrained tiny activity run (weights do not change memory or time)."""
    import torch

    from lrcn.checkpoint import save_bundle
    from lrcn.models import build_model
    from lrcn.models.activity import ActivityExtras
    from lrcn.tasks import get_task

    torch.manual_seed(0)
    config = {
        "task": "activity",
        "data": {"format": "ucf101", "root": str(folder / "UCF-101"), "clip_len": 16, "stride": 8},
        "model": {"name": "lrcn", "backbone": "simple_cnn", "hidden_size": 64, "dropout": 0.0},
        "train": {"device": "cpu"},
    }
    extras = ActivityExtras(classes=[f"class{i}" for i in range(10)])
    model = build_model(config["model"], extras, pretrained=False)
    preprocess = get_task("activity").preprocess(model)
    save_bundle(folder / "run" / "best", model, config, extras, preprocess, epoch=0)
    return folder / "run"


def _measure(run: Path, video: Path, mode: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(run), str(video), mode],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(quick: bool = False) -> list[dict[str, float | int | str]]:
    minutes = [0.25, 0.5] if quick else [1.0, 2.0, 5.0, 10.0]
    rows: list[dict[str, float | int | str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        run_dir = _bundle(folder)
        for length in minutes:
            video = folder / f"{length:g}min.avi"
            _write_video(video, round(length * 60 * FPS))
            for mode in ("streamed", "whole video"):
                if mode == "whole video" and length > WHOLE_VIDEO_MAX_MINUTES:
                    continue
                m = _measure(run_dir, video, mode)
                row = {"minutes": length, "mode": mode, "frames": round(length * 60 * FPS),
                       "clips": int(m["clips"]), "peak_mb": m["peak_mb"],
                       "seconds": m["seconds"], "cpu": m["cpu"]}  # fmt: skip
                rows.append(row)
                print(_line(row), flush=True)
            video.unlink()
    return rows


HEADER = (
    "| video (320×240 mpeg4, 25 fps) | predict path | clips | peak RSS (MB) | wall (s) |"
    " CPU (s) | frames/s (wall) |\n|---|---|---:|---:|---:|---:|---:|"
)


def _line(r: dict[str, float | int | str]) -> str:
    seconds = float(r["seconds"])
    return (
        f"| {float(r['minutes']):g} min ({r['frames']} frames) | {r['mode']} | {r['clips']} | "
        f"{float(r['peak_mb']):.0f} | {seconds:.1f} | {float(r['cpu']):.1f} | "
        f"{int(r['frames']) / seconds:.0f} |"
    )


def table(rows: list[dict[str, float | int | str]]) -> str:
    return "\n".join([HEADER, *(_line(r) for r in rows)])
