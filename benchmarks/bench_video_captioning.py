"""Video description: evaluate from cached features, and predict on one video file.

1. Evaluate: S2VT at the size of configs/msrvtt_s2vt.yaml describes videos from cached frame
   features with beam 5, all videos of a batch and their beams in one tensor, against the same
   ``describe`` call one video at a time; both must give the same captions. The mean-pool and
   temporal-attention decoders at the same sizes, batched, for comparison.
2. Predict: the path ``VideoCaptioningTask.predict`` takes for one 10-second 320x240 mp4,
   step by step (decode the sampled frames, preprocess, backbone, beam search) and whole,
   beside decoding every frame of the video (what a reader that does not sample pays).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from common import best_ms
from lrcn.backbones import create_backbone
from lrcn.config import DecodeConfig
from lrcn.data.video_io import read_frames, write_video
from lrcn.data.vocab import SPECIALS, Vocabulary
from lrcn.decoding import beam_search
from lrcn.models import create_model
from lrcn.tasks.video_captioning import describe, sampled_frames

# configs/msrvtt_s2vt.yaml; MSR-VTT's training sentences with min_count 3 keep ~10k words
VOCAB, EMBED, HIDDEN, FRAMES, BEAM, STEPS = 10_000, 500, 1000, 32, 5, 20
VIDEO_SECONDS, FPS, WIDTH, HEIGHT = 10, 25, 320, 240

Row = dict[str, float | str]

HEADER = (
    "Video description at the size of `configs/msrvtt_s2vt.yaml` (embedding 500, hidden 1000, "
    f"{FRAMES} frames of EfficientNet-Lite0 features (1280 wide), vocabulary 10,000, beam 5, "
    "at most 20 words). **Evaluate** describes videos from cached features (random, as the cache "
    "holds them) with `lrcn.tasks.video_captioning.describe`: batches of up to 32 videos, all "
    "their beams in one tensor, against the same call with `batch_size=1` (the baseline, timed "
    "on fewer videos); both give the same captions. Mean-pool and temporal attention are the "
    "other decoders at the same sizes, batched; every ratio there is videos/s over the S2VT "
    "baseline's. **Predict** is the path `VideoCaptioningTask.predict` takes for one "
    f"{VIDEO_SECONDS}-second {WIDTH}x{HEIGHT} mpeg4 mp4 at {FPS} fps: probe and decode the "
    f"{FRAMES} evenly spread frames, preprocess (resize, crop 224, normalise), backbone, beam "
    "search (S2VT, encoding the frames included). There the last column is each step's share of "
    "the total (the steps are timed apart, so the shares need not add to exactly 100%), except "
    "for the row that decodes every frame of the video, whose number is its time over decoding "
    "the sampled frames: what sampling saves. Best of a few runs each."
)


def _vocabulary() -> Vocabulary:
    return Vocabulary([*SPECIALS, *(f"w{i}" for i in range(VOCAB - len(SPECIALS)))])


def _captioner(name: str, backbone):  # -> VideoCaptioner
    return create_model(
        name,
        backbone=backbone,
        vocab_size=VOCAB,
        embed_size=EMBED,
        hidden_size=HIDDEN,
        inputs="rgb",
    ).eval()


def _evaluate(backbone, quick: bool) -> list[Row]:
    """Videos/s of beam search from cached features, batched and one video at a time."""
    videos, looped_videos = (4, 1) if quick else (32, 8)
    vocab = _vocabulary()
    decode = DecodeConfig(max_len=STEPS)
    cpu = torch.device("cpu")
    features = torch.randn(videos, FRAMES, backbone.out_features)  # raw, as cached

    def source(i: int) -> torch.Tensor:
        return features[i]  # (T, D)

    def run_describe(model, count: int, batch_size: int) -> Callable[[], list[list[int]]]:
        def go() -> list[list[int]]:
            with torch.inference_mode():
                result = describe(
                    model, source, count, vocab, cpu, decode, beam_size=BEAM, batch_size=batch_size
                )
            return result.best()

        return go

    s2vt = _captioner("s2vt", backbone)
    batched = run_describe(s2vt, videos, 32)
    looped = run_describe(s2vt, looped_videos, 1)
    if batched()[:looped_videos] != looped():  # also the warm-up of both
        raise AssertionError("batched and one-video-at-a-time beam search disagree (S2VT)")
    fast = best_ms(batched, 1 if quick else 3, warmup=0)
    slow = best_ms(looped, 1 if quick else 2, warmup=0)
    base = looped_videos / slow  # videos per ms
    rows: list[Row] = [
        {
            "part": "evaluate",
            "what": f"S2VT, one video at a time, {looped_videos} video(s) (baseline)",
            "ms": slow,
            "videos_per_s": base * 1e3,
            "ratio": 1.0,
        },
        {
            "part": "evaluate",
            "what": f"S2VT, batched (32 a batch), {videos} videos",
            "ms": fast,
            "videos_per_s": videos / fast * 1e3,
            "ratio": videos / fast / base,
        },
    ]
    for name in ("mean_pool", "temporal_attention"):
        fn = run_describe(_captioner(name, backbone), videos, 32)
        ms = best_ms(fn, 1 if quick else 3, warmup=0 if quick else 1)
        rows.append(
            {
                "part": "evaluate",
                "what": f"{name}, batched (32 a batch), {videos} videos",
                "ms": ms,
                "videos_per_s": videos / ms * 1e3,
                "ratio": videos / ms / base,
            }
        )
    return rows


def _scene(frames: int) -> np.ndarray:
    """A moving gradient with a moving square: ``uint8 (frames, H, W, 3)``, compressible like
    a real video (noise would be the codec's worst case)."""
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    out = np.empty((frames, HEIGHT, WIDTH, 3), dtype=np.uint8)
    rng = np.random.default_rng(0)
    for t in range(frames):
        out[t, ..., 0] = (x + 3 * t) % 256
        out[t, ..., 1] = (y + 2 * t) % 256
        out[t, ..., 2] = 128
        top, left = (5 * t) % (HEIGHT - 60), (7 * t) % (WIDTH - 60)
        out[t, top : top + 60, left : left + 60] = rng.integers(0, 255, 3, dtype=np.uint8)
    return out


def _predict(backbone, quick: bool) -> list[Row]:
    """One video file through predict's steps, each timed apart, and the whole path."""
    repeats = 1 if quick else 3
    vocab = _vocabulary()
    model = _captioner("s2vt", backbone)
    preprocess = backbone.preprocess
    load = sampled_frames(FRAMES)
    with tempfile.TemporaryDirectory() as tmp:
        video = Path(tmp) / "video.mp4"
        write_video(video, _scene(VIDEO_SECONDS * FPS), fps=FPS)
        images = load(video)  # (T, H, W, 3)
        with torch.inference_mode():
            pixels = preprocess.frames_to_tensor(images).unsqueeze(0)  # (1, T, 3, S, S)
            feats = model.features(pixels)  # (1, T, D)
        lengths = torch.tensor([feats.shape[1]])

        def backbone_step() -> torch.Tensor:
            with torch.inference_mode():
                return model.features(pixels)

        def preprocess_step() -> torch.Tensor:
            with torch.inference_mode():
                return preprocess.frames_to_tensor(images).unsqueeze(0)

        def search(f: torch.Tensor) -> list[int]:
            with torch.inference_mode():
                found = beam_search(
                    model.step, model.init_state(f, lengths), 1, vocab.start_id, vocab.end_id,
                    BEAM, STEPS, 0.0, 1,
                )  # fmt: skip
            return found.hypotheses[0][0].tokens

        def total() -> list[int]:  # VideoCaptioningTask.predict's sequence, one rgb stream
            frames = load(video)
            with torch.inference_mode():
                f = model.features(preprocess.frames_to_tensor(frames).unsqueeze(0))
                return search(f)

        if total() != search(feats):  # also the warm-up
            raise AssertionError("the timed predict path and its steps disagree")
        timed = {
            "decode": best_ms(lambda: load(video), repeats, warmup=0),
            "preprocess": best_ms(preprocess_step, repeats, warmup=0),
            "backbone": best_ms(backbone_step, repeats, warmup=0),
            "search": best_ms(lambda: search(feats), repeats, warmup=0),
            "total": best_ms(total, repeats, warmup=0),
            "whole": best_ms(lambda: read_frames(video), repeats, warmup=1),
        }
        frames_in_file = len(read_frames(video))
    whole = timed["total"]
    names = {
        "decode": f"probe + decode the {FRAMES} sampled frames (`sampled_frames`)",
        "preprocess": "preprocess (`frames_to_tensor`: resize, crop 224, normalise)",
        "backbone": f"EfficientNet-Lite0 on {FRAMES} frames",
        "search": f"beam search {BEAM} (S2VT: encode {FRAMES} frames, {STEPS} words)",
        "total": "total, file to caption",
    }
    rows: list[Row] = [
        {"part": "predict", "what": what, "ms": timed[key], "share": timed[key] / whole}
        for key, what in names.items()
    ]
    rows.append(
        {
            "part": "predict",
            "what": f"decode every frame instead ({frames_in_file}, `read_frames`)",
            "ms": timed["whole"],
            "ratio": timed["whole"] / timed["decode"],
        }
    )
    return rows


def run(quick: bool = False) -> list[Row]:
    torch.manual_seed(0)
    load = os.getloadavg()[0]
    print(f"1-minute load average at the start: {load:.1f} on {os.cpu_count()} CPUs", flush=True)
    backbone = create_backbone("efficientnet_lite0")
    rows = _evaluate(backbone, quick) + _predict(backbone, quick)
    end = os.getloadavg()[0]
    print(f"1-minute load average at the end: {end:.1f}", flush=True)
    for r in rows:
        r["load"], r["load_end"] = load, end
        print(_format(r), flush=True)
    return rows


def _format(r: Row) -> str:
    if r["part"] == "evaluate":
        return (
            f"| {r['what']} | {float(r['ms']):.0f} | {float(r['videos_per_s']):.2f} "
            f"| {float(r['ratio']):.1f}× |"
        )
    if "share" in r:
        last = f"{float(r['share']):.0%}"
    else:
        last = f"{float(r['ratio']):.1f}× the sampled decode"
    return f"| {r['what']} | {float(r['ms']):.0f} | {last} |"


def table(rows: list[Row]) -> str:
    evaluate = [_format(r) for r in rows if r["part"] == "evaluate"]
    predict = [_format(r) for r in rows if r["part"] == "predict"]
    load = (
        f"1-minute load average at the start {float(rows[0]['load']):.1f}, at the end "
        f"{float(rows[0]['load_end']):.1f} (this benchmark's own 2 threads add up to 2): more "
        "means other processes shared the 2 cores, and then beam search slows down far more "
        "than the backbone, so ratios and shares shift."
    )
    return "\n".join(
        [
            HEADER,
            "",
            load,
            "",
            "| evaluate from cached features, beam 5 | ms | videos/s | vs baseline |",
            "|---|---:|---:|---:|",
            *evaluate,
            "",
            "| predict, one video file | ms | share of total |",
            "|---|---:|---:|",
            *predict,
        ]
    )
