"""Frozen-backbone feature extraction: the loader, the backbone, and the two end to end.

EfficientNet-Lite0 (pretrained) at 224, pooled features, on 320x240 mpeg4 videos at 25 fps,
2-4 s each (the UCF-101 format), and on 500x375 JPEG images (the captioning data sets):

1. the loader alone: decode + resize + center crop to 224, through the extraction's thread pool
   (:func:`lrcn.data.frame_pool.prefetch`), with 1 and 2 threads;
2. the backbone alone at batch 32 on those crops, normalisation included: eager PyTorch
   (channels_last, inference mode) and ONNX Runtime;
3. end to end through ``FeatureCache.extract`` (decode, crop, backbone, float16 files written)
   with each engine, against the extraction as it was before this pool and engine: one video
   at a time, ``frames_to_tensor`` then eager in chunks of 64 (images: one at a time);
4. the largest difference between the features the two engines stored, relative to
   ``max(1, |eager|)`` per source.

The goal is >= 60 frames/s end to end on 2 CPU cores, with the loader well above the
backbone's rate (it must never be what the backbone waits for).
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from common import best_ms, interleaved_best
from lrcn.backbones import Backbone, create_backbone
from lrcn.data.extraction import (
    EagerRunner,
    Engine,
    OnnxRunner,
    Runner,
    channels_last,
    export_onnx,
    relative_difference,
)
from lrcn.data.features import CPU_BATCH_FRAMES, DECODE_WORKERS, FeatureCache
from lrcn.data.frame_pool import prefetch
from lrcn.data.video_io import read_frames, read_image, write_video

Row = dict[str, float | str]
Loader = Callable[[Path], np.ndarray]  # a source -> uint8 (T, H, W, 3)
BATCH = 32


def _videos(folder: Path, count: int, quick: bool) -> list[Path]:
    """320x240 mpeg4 at 25 fps, 2-4 s (50-100 frames; 8-16 frames with ``quick``)."""
    rng = np.random.default_rng(0)
    paths = []
    for i in range(count):
        frames = int(rng.integers(8, 17) if quick else rng.integers(50, 101))
        base = rng.integers(0, 255, (1, 240, 320, 3))
        drift = np.arange(frames)[:, None, None, None] * 3
        noise = rng.integers(0, 40, (frames, 240, 320, 3))
        path = folder / f"v_Bench_g{i:02d}_c01.avi"
        write_video(path, ((base + drift + noise) % 256).astype(np.uint8), fps=25, gop_size=12)
        paths.append(path)
    return paths


def _images(folder: Path, count: int) -> list[Path]:
    rng = np.random.default_rng(1)
    paths = []
    for i in range(count):
        path = folder / f"image{i:03d}.jpg"
        smooth = rng.integers(0, 255, (24, 32, 3)).astype(np.uint8)  # photo-like: not noise
        Image.fromarray(smooth).resize((500, 375), Image.Resampling.BICUBIC).save(path, quality=90)
        paths.append(path)
    return paths


def _one_image(path: Path) -> np.ndarray:
    return read_image(path)[None]  # (1, H, W, 3)


def _before(sources: list[Path], backbone: Backbone, load: Loader) -> Callable[[], int]:
    """The extraction loop as it was: one source at a time, preprocess in the main thread,
    eager in chunks of 64 (features computed and converted to float16, not written)."""

    def run() -> int:
        frames_done = 0
        with channels_last(backbone, torch.device("cpu")), torch.inference_mode():
            for source in sources:
                frames = load(source)
                for start in range(0, len(frames), 64):
                    x = backbone.preprocess.frames_to_tensor(frames[start : start + 64])
                    x = x.contiguous(memory_format=torch.channels_last)
                    backbone(x).float().numpy().astype(np.float16)
                frames_done += len(frames)
        return frames_done

    return run


def _extract(
    folder: Path,
    sources: list[Path],
    backbone: Backbone,
    engine: Engine,
    load: Loader,
) -> Callable[[], FeatureCache]:
    """``FeatureCache.extract`` into ``folder`` from scratch each call, the ONNX graph (written
    by the first call) kept: its export is a one-off per cache, timed on its own."""

    def run() -> FeatureCache:
        cache = FeatureCache(folder, {"engine": engine})
        for entry in cache.folder.glob("*"):
            if entry.suffix in (".npy", ".json"):  # the entries, not the ONNX graph
                entry.unlink()
        problems = cache.extract(
            sources, backbone, "pooled", torch.device("cpu"), engine=engine, load_frames=load
        )
        assert not problems, problems
        return cache

    return run


def _loader_rate(sources: list[Path], backbone: Backbone, workers: int, load: Loader) -> float:
    """Frames/s of decode + crop through the pool, consumed as fast as it delivers."""

    def job(source: Path) -> int:
        return len(backbone.preprocess.crops(load(source)))  # (T, 224, 224, 3)

    def run() -> int:
        with contextlib.closing(prefetch(job, sources, workers, 4 * BATCH, lambda _: None)) as it:
            return sum(it)

    frames = run()
    return frames / best_ms(run, 2) * 1e3


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _largest_difference(a: FeatureCache, b: FeatureCache, sources: list[Path]) -> float:
    return max(
        relative_difference(np.asarray(a.load(s), np.float32), np.asarray(b.load(s), np.float32))
        for s in sources
    )


def _row(what: str, fps: float, ratio: float = float("nan"), note: str = "") -> Row:
    return {"what": what, "fps": fps, "ratio": ratio, "note": note}


def _end_to_end(
    tmp: Path, what: str, sources: list[Path], backbone: Backbone, load: Loader, rounds: int
) -> list[Row]:
    """The three ways end to end, timed in turns over ``rounds`` (best of each): the machine
    is shared, and drift in its speed must hit every candidate alike."""
    frames = sum(len(load(s)) for s in sources)
    onnx_run = _extract(tmp / f"{what}-onnx", sources, backbone, "onnxruntime", load)
    candidates = {
        "before": _before(sources, backbone, load),
        "eager": _extract(tmp / f"{what}-eager", sources, backbone, "eager", load),
        "onnxruntime": onnx_run,
    }
    first = _timed(onnx_run)  # exports the graph, then extracts; warms ORT up
    _before(sources[:1], backbone, load)()  # warms eager's kernels up
    best: dict[str, float] = {}
    for _ in range(rounds):
        for name, fn in candidates.items():
            best[name] = min(best.get(name, float("inf")), _timed(fn))
    diff = _largest_difference(candidates["eager"](), onnx_run(), sources)
    before, eager_s, onnx_s = best["before"], best["eager"], best["onnxruntime"]
    return [
        _row(f"{what}: before (one source at a time, eager) (baseline)", frames / before, 1.0,
             f"{frames} frames"),
        _row(f"{what}: FeatureCache.extract, eager", frames / eager_s, before / eager_s),
        _row(
            f"{what}: FeatureCache.extract, onnxruntime", frames / onnx_s, before / onnx_s,
            f"stored features vs eager's: max diff {diff:.1e}",
        ),
        _row(
            f"{what}: the same, first run (exports the graph)", frames / first, before / first,
            f"{first - onnx_s:+.1f} s over a later run",
        ),
    ]  # fmt: skip


def _backbone_alone(tmp: Path, backbone: Backbone, video: Path, quick: bool) -> list[Row]:
    """Each engine at batch 32 (the baseline: eager at 32) and at the CPU default, in turns."""
    crops = backbone.preprocess.crops(read_frames(video))
    crops = np.resize(crops, (BATCH, *crops.shape[1:]))  # (32, 224, 224, 3)
    eager = EagerRunner(backbone, "pooled", torch.device("cpu"))
    onnx_path = tmp / "lite0.onnx"
    export_s = _timed(lambda: export_onnx(backbone, "pooled", onnx_path))
    ort = OnnxRunner(onnx_path, torch.get_num_threads())

    def in_batches(runner: Runner, size: int) -> Callable[[], None]:
        def run() -> None:
            for start in range(0, BATCH, size):
                runner(crops[start : start + size])  # (size, 1280)

        return run

    with channels_last(backbone, torch.device("cpu")):
        reference = eager(crops)  # (32, 1280)
        best = interleaved_best(
            [(f"{name} {size}", in_batches(runner, size), 1 if quick else 2)
             for name, runner in (("eager", eager), ("onnxruntime", ort))
             for size in (BATCH, CPU_BATCH_FRAMES)],
            rounds=1 if quick else 2,
        )  # fmt: skip
    diff = relative_difference(reference, ort(crops))
    baseline = best[f"eager {BATCH}"]
    rows = []
    for name, ms in best.items():
        engine, size = name.split()
        note = (
            f"max diff {diff:.1e} (float32); export {export_s:.1f} s" if engine != "eager" else ""
        )
        label = f"backbone alone, batch {size}: {engine}"
        if name == f"eager {BATCH}":
            label += ", channels_last (baseline)"
        rows.append(_row(label, BATCH / ms * 1e3, baseline / ms, note))
    return rows


def run(quick: bool = False) -> list[Row]:
    torch.manual_seed(0)
    backbone = create_backbone("efficientnet_lite0").eval()
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "videos").mkdir()
        (tmp / "images").mkdir()
        videos = _videos(tmp / "videos", 4 if quick else 12, quick)
        images = _images(tmp / "images", 16 if quick else 256)
        for workers in (1, DECODE_WORKERS):
            fps = _loader_rate(videos, backbone, workers, read_frames)
            rows.append(_row(f"loader alone, videos: decode + crop 224, {workers} thread(s)", fps))
        fps = _loader_rate(images, backbone, DECODE_WORKERS, _one_image)
        rows.append(_row(f"loader alone, JPEG 500x375: read + crop, {DECODE_WORKERS} threads", fps))
        rows += _backbone_alone(tmp, backbone, videos[0], quick)
        rounds = 1 if quick else 2
        rows += _end_to_end(tmp, "videos", videos, backbone, read_frames, rounds)
        rows += _end_to_end(tmp, "images", images, backbone, _one_image, rounds)
    for row in rows:
        print(_line(row), flush=True)
    return rows


HEADER = (
    "| extraction (EfficientNet-Lite0 224, pooled; 320x240 mpeg4 videos 2-4 s; JPEG "
    "images) | frames/s | speed-up | note |\n|---|---:|---:|---|"
)


def _line(r: Row) -> str:
    ratio = float(r["ratio"])
    shown = "" if ratio != ratio else f"{ratio:.2f}x"  # NaN: no baseline for the loader rows
    return f"| {r['what']} | {float(r['fps']):.1f} | {shown} | {r['note']} |"


def table(rows: list[Row]) -> str:
    return "\n".join([HEADER, *(_line(r) for r in rows)])
