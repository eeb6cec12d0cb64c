"""`lrcn predict` on long videos: clips are streamed, scores are those of the whole-video path
(evaluate's), and peak memory does not grow with the video's length."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from lrcn.data.clips import EvalVideos
from lrcn.data.items import VideoItem
from lrcn.data.video_io import write_video
from lrcn.tasks import load_predictor
from lrcn.tasks.activity import score_videos

SHORT = 300  # frames; the long video is these frames 10 times over


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    """``short`` (300 frames) and ``long`` (3000) 64x64 mpeg4 AVIs, and ``odd`` (45 frames:
    the end of the video needs a clip of its own)."""
    folder = tmp_path_factory.mktemp("long-videos")
    frames = np.random.default_rng(0).integers(0, 256, (SHORT, 64, 64, 3), dtype=np.uint8)
    write_video(folder / "short.avi", frames)
    write_video(folder / "long.avi", np.tile(frames, (10, 1, 1, 1)))
    write_video(folder / "odd.avi", frames[:45])
    return {name: folder / f"{name}.avi" for name in ("short", "long", "odd")}


def test_predict_gives_the_scores_of_the_whole_video_path(untrained_run, videos):
    predictor = load_predictor(untrained_run("activity"))
    (result,) = predictor([videos["odd"]], {"top": 3})
    d, bundle = predictor.config.data, predictor.bundle
    whole = EvalVideos(
        [VideoItem(videos["odd"], 0, "")], [45], bundle.preprocess, d.clip_len, d.stride,
        d.frame_step, d.short_video,
    )  # fmt: skip
    scores = score_videos(bundle.model, whole, torch.device("cpu"), features=False)
    expected = scores["video_probs"][0].topk(3)
    assert result["clips"] == len(scores["clip_probs"]) == 12  # starts 0, 4, ..., 40 and 41
    classes = predictor.bundle.extras.classes  # type: ignore[attr-defined]
    assert [t["class"] for t in result["top"]] == [classes[int(i)] for i in expected.indices]
    np.testing.assert_allclose(
        [t["probability"] for t in result["top"]], expected.values.numpy(), atol=6e-5
    )


# A fresh process that runs one command and prints that command's peak RSS (kB): children's
# ru_maxrss is the largest over all children waited for, so every measurement gets its own.
_PEAK_RSS = (
    "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True); "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
)


def _predict_peak_rss(run, video) -> tuple[dict, int]:
    """``lrcn predict RUN VIDEO --json`` in a child process: its result and peak RSS (kB)."""
    command = [sys.executable, "-m", "lrcn", "predict", str(run), str(video), "--json"]
    out = subprocess.run(
        [sys.executable, "-c", _PEAK_RSS, *command], check=True, capture_output=True, text=True
    )
    *printed, peak = out.stdout.strip().splitlines()
    (result,) = json.loads(printed[-1])
    return result, int(peak)


@pytest.mark.slow
def test_predict_memory_is_flat_in_the_video_length(untrained_run, videos):
    """Ten times the frames, the same peak. Measured through this same CLI: the whole-video
    path (EvalVideos) peaked at 740 MB vs 1064 MB (1.44x) on these two videos, streamed at
    724 vs 728 MB."""
    run = untrained_run("activity")
    short, short_kb = _predict_peak_rss(run, videos["short"])
    long, long_kb = _predict_peak_rss(run, videos["long"])
    assert (short["clips"], long["clips"]) == (75, 750)  # 4-frame clips every 4 frames
    assert long_kb <= 1.2 * short_kb, (short_kb, long_kb)
