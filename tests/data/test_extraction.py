"""Feature extraction's engines, decode pool and cross-source batching: ONNX Runtime agrees with
eager PyTorch, batching across sources changes no feature, failures are skipped and named, the
ONNX graph is written once and progress counts frames."""

import contextlib
import threading
import time

import numpy as np
import pydantic
import pytest
import torch
from torch import nn

from lrcn.backbones import Backbone, create_backbone
from lrcn.config import TrainConfig
from lrcn.data import extraction
from lrcn.data.extraction import (
    TOLERANCE,
    CheckedRunner,
    EagerRunner,
    ExtractionError,
    PixelsToFeatures,
    backbone_runner,
    relative_difference,
)
from lrcn.data.features import FeatureCache, weights_digest
from lrcn.data.frame_pool import (
    FeatureAssembler,
    FrameCounts,
    FramePacker,
    prefetch,
)
from lrcn.data.video_io import VideoError, read_frames, write_video

CPU = torch.device("cpu")


def _video(path, seed, frames):
    rng = np.random.default_rng(seed)
    write_video(path, rng.integers(0, 255, (frames, 48, 64, 3), dtype=np.uint8))
    return path


@pytest.fixture
def backbone():
    return create_backbone("simple_cnn", pretrained=False).eval()


def _cache(tmp_path, backbone, name="cache"):
    return FeatureCache(tmp_path / name, {"weights": weights_digest(backbone)})


def _frames(cache, sources):
    return [np.asarray(cache.load(s), dtype=np.float32) for s in sources]


# --------------------------------------------------------------------------------------------
# Crops and normalisation: the same numbers as Preprocess.frames_to_tensor
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [(240, 320), (375, 500), (40, 30), (64, 64), (101, 67)])
def test_crops_normalised_in_the_engine_equal_frames_to_tensor(size):
    """Resize + crop in the decode pool, normalisation in the engine's module: bit for bit what
    ``frames_to_tensor`` gives (upscaled, downscaled, odd sizes, already the crop size)."""
    frames = np.random.default_rng(0).integers(0, 255, (3, *size, 3), dtype=np.uint8)
    backbone = create_backbone("simple_cnn", pretrained=False)
    identity = Backbone(nn.Identity(), 3, backbone.preprocess, "identity")
    pixels = PixelsToFeatures(identity, "grid")  # grid of an identity body: the pixels
    crops = backbone.preprocess.crops(frames)  # (3, 64, 64, 3)
    assert crops.dtype == np.uint8 and crops.shape == (3, 64, 64, 3)
    ours = pixels(torch.from_numpy(crops))
    torch.testing.assert_close(ours, backbone.preprocess.frames_to_tensor(frames), rtol=0, atol=0)


def test_crops_refuses_frames_of_another_shape(backbone):
    with pytest.raises(ValueError, match=r"\(T, H, W, 3\)"):
        backbone.preprocess.crops(np.zeros((2, 32, 32), np.uint8))


# --------------------------------------------------------------------------------------------
# Engines: ONNX Runtime within the tolerance of eager
# --------------------------------------------------------------------------------------------


def _crops(n, size, seed=0):
    return np.random.default_rng(seed).integers(0, 255, (n, size, size, 3), dtype=np.uint8)


@pytest.mark.parametrize("kind", ["pooled", "grid"])
def test_onnxruntime_matches_eager_on_a_tiny_backbone(tmp_path, backbone, kind):
    runner = backbone_runner(backbone, kind, CPU, "onnxruntime", tmp_path / "b.onnx")
    assert isinstance(runner, CheckedRunner)
    crops = _crops(5, 64)
    first = runner(crops)  # the check: ORT compared with eager; ORT's output if they agree
    assert runner.engine == "onnxruntime" and runner.difference is not None
    assert runner.difference <= TOLERANCE
    later = _crops(7, 64, seed=1)  # another batch size: the batch axis is free
    eager = EagerRunner(backbone, kind, CPU)(later)
    assert relative_difference(eager, runner(later)) <= TOLERANCE
    assert first.shape == ((5, 64) if kind == "pooled" else (5, 64, 4, 4))
    np.testing.assert_array_equal(first, runner.fast(crops))


@pytest.mark.slow
def test_onnxruntime_matches_eager_on_efficientnet_lite0(tmp_path):
    backbone = create_backbone("efficientnet_lite0").eval()
    runner = backbone_runner(backbone, "pooled", CPU, "onnxruntime", tmp_path / "b.onnx")
    first = runner(_crops(4, 224))
    assert first.shape == (4, 1280)
    assert runner.engine == "onnxruntime" and runner.difference is not None
    assert runner.difference <= TOLERANCE
    later = _crops(3, 224, seed=1)
    eager = EagerRunner(backbone, "pooled", CPU)(later)
    assert relative_difference(eager, runner(later)) <= TOLERANCE


def test_auto_is_eager_off_the_cpu_and_onnxruntime_by_name_is_refused_there(tmp_path, backbone):
    meta = torch.device("meta")  # any device that is not the CPU
    assert backbone_runner(backbone, "pooled", meta, "auto", tmp_path / "b.onnx").engine == "eager"
    with pytest.raises(ExtractionError, match="runs on the CPU"):
        backbone_runner(backbone, "pooled", meta, "onnxruntime", tmp_path / "b.onnx")
    assert not (tmp_path / "b.onnx").exists()


def test_an_unknown_engine_is_refused_by_the_config_and_the_runner(tmp_path, backbone):
    with pytest.raises(pydantic.ValidationError, match="extract_engine"):
        TrainConfig(extract_engine="tensorrt")
    with pytest.raises(ExtractionError, match="unknown engine 'tensorrt'"):
        backbone_runner(backbone, "pooled", CPU, "tensorrt", tmp_path / "b.onnx")


def _off_by_one(monkeypatch):
    """ONNX Runtime made to disagree with eager by 1.0 everywhere."""
    real = extraction.OnnxRunner.__call__
    monkeypatch.setattr(extraction.OnnxRunner, "__call__", lambda self, x: real(self, x) + 1.0)


def test_a_disagreeing_graph_falls_back_to_eager_under_auto_and_raises_when_named(
    tmp_path, backbone, monkeypatch
):
    source = _video(tmp_path / "v.avi", 1, frames=5)
    eager = _cache(tmp_path, backbone, "eager")
    eager.extract([source], backbone, "pooled", CPU, engine="eager")
    _off_by_one(monkeypatch)
    logged = []
    auto = _cache(tmp_path, backbone, "auto")
    assert auto.extract([source], backbone, "pooled", CPU, batch_frames=2, log=logged.append) == []
    assert len(logged) == 1 and logged[0].startswith("warning: onnxruntime differs from eager")
    np.testing.assert_allclose(
        _frames(auto, [source])[0], _frames(eager, [source])[0], rtol=1e-3, atol=1e-3
    )
    named = _cache(tmp_path, backbone, "named")
    with pytest.raises(ExtractionError, match=r"differs from eager by 1\.0"):
        named.extract([source], backbone, "pooled", CPU, engine="onnxruntime")
    assert named.missing([source]) == [source]


def test_an_export_that_fails_falls_back_to_eager_under_auto(tmp_path, backbone, monkeypatch):
    def broken(*args):
        raise RuntimeError("Exporting the operator 'aten::magic' is not supported\nmore")

    monkeypatch.setattr(extraction, "export_onnx", broken)
    logged = []
    runner = backbone_runner(backbone, "pooled", CPU, "auto", tmp_path / "b.onnx", logged.append)
    assert runner.engine == "eager"
    assert logged == [
        "warning: cannot export simple_cnn32 to ONNX (RuntimeError: Exporting the operator "
        "'aten::magic' is not supported); extracting with eager PyTorch"
    ]
    with pytest.raises(ExtractionError, match="aten::magic"):
        backbone_runner(backbone, "pooled", CPU, "onnxruntime", tmp_path / "b.onnx")


# --------------------------------------------------------------------------------------------
# The cache: batching across sources, failures, the ONNX file, progress
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("engine", ["eager", "onnxruntime"])
def test_batches_across_videos_give_the_features_of_each_video_alone(tmp_path, backbone, engine):
    lengths = [3, 5, 1, 7, 2]
    sources = [_video(tmp_path / f"v{i}.avi", i, n) for i, n in enumerate(lengths)]
    shared = _cache(tmp_path, backbone, "shared")  # batches of 4 span 2-3 videos each
    assert shared.extract(sources, backbone, "pooled", CPU, batch_frames=4, engine=engine) == []
    for i, source in enumerate(sources):
        alone = _cache(tmp_path, backbone, f"alone{i}")
        alone.extract([source], backbone, "pooled", CPU, batch_frames=64, engine=engine)
        mine = _frames(shared, [source])[0]
        assert mine.shape == (lengths[i], 64)
        # Equal here; the tolerance (float16's rounding) only spares CPUs whose kernels round
        # differently at another batch size: a frame routed to the wrong video is off by ~0.1.
        np.testing.assert_allclose(mine, _frames(alone, [source])[0], rtol=1e-3, atol=1e-3)
    with torch.inference_mode():  # and they are the backbone's features of the decoded frames
        reference = backbone(backbone.preprocess.frames_to_tensor(read_frames(sources[3])))
    np.testing.assert_allclose(_frames(shared, [sources[3]])[0], reference.numpy(), atol=2e-3)


def test_a_failing_video_is_skipped_and_named_and_the_others_are_cached(tmp_path, backbone):
    good = [_video(tmp_path / f"v{i}.avi", i, 4) for i in range(3)]
    broken = tmp_path / "broken.avi"
    broken.write_bytes(b"not a video at all" * 100)
    sources = [good[0], broken, good[1], tmp_path / "gone.avi", good[2]]
    cache = _cache(tmp_path, backbone)
    skipped = cache.extract(sources, backbone, "pooled", CPU, batch_frames=3, on_error="skip")
    assert [p.path for p in skipped] == [str(broken), str(tmp_path / "gone.avi")]
    assert "not a readable video" in skipped[0].problem and "not found" in skipped[1].problem
    assert cache.missing(sources) == [broken, tmp_path / "gone.avi"]
    assert [f.shape for f in _frames(cache, good)] == [(4, 64)] * 3
    fresh = _cache(tmp_path, backbone, "raise")
    with pytest.raises(VideoError, match=r"broken\.avi: not a readable video"):
        fresh.extract(sources, backbone, "pooled", CPU, on_error="raise")


def test_a_loader_giving_no_frames_is_a_video_error_named_by_its_source(tmp_path, backbone):
    source = _video(tmp_path / "v.avi", 1, 4)
    cache = _cache(tmp_path, backbone)
    empty = np.zeros((0, 32, 32, 3), np.uint8)
    skipped = cache.extract(
        [source], backbone, "pooled", CPU, on_error="skip", load_frames=lambda s: empty
    )
    assert skipped[0].path == str(source) and "gave no frames" in skipped[0].problem


def test_the_onnx_graph_is_written_once_beside_the_cache_and_reused(
    tmp_path, backbone, monkeypatch
):
    first, second = (_video(tmp_path / f"v{i}.avi", i, 4) for i in range(2))
    cache = _cache(tmp_path, backbone)
    cache.extract([first], backbone, "pooled", CPU, engine="onnxruntime")
    graph = cache.onnx_path(backbone, "pooled")
    assert graph.parent == cache.folder and graph.is_file()
    assert graph.name == f"backbone-pooled-64px-{weights_digest(backbone)[:12]}.onnx"
    assert [p.name for p in cache.folder.glob("*.tmp")] == []

    def no_export(*args):
        raise AssertionError("exported again")

    monkeypatch.setattr(extraction, "export_onnx", no_export)
    logged = []
    again = _cache(tmp_path, backbone)  # a later run
    again.extract([second], backbone, "pooled", CPU, engine="onnxruntime", log=logged.append)
    assert logged[0].startswith("extraction engine: onnxruntime (matches eager within")
    monkeypatch.undo()
    graph.write_bytes(b"damaged")  # a file that does not load is exported again
    third = _video(tmp_path / "v2.avi", 2, 4)
    _cache(tmp_path, backbone).extract([third], backbone, "pooled", CPU, engine="onnxruntime")
    assert graph.stat().st_size > 1000


def test_progress_counts_frames_with_the_declared_total(tmp_path, backbone):
    sources = [_video(tmp_path / f"v{i}.avi", i, n) for i, n in enumerate([6, 9, 2])]
    calls = []
    cache = _cache(tmp_path, backbone)
    cache.extract(
        sources, backbone, "pooled", CPU, batch_frames=4,
        progress=lambda done, total: calls.append((done, total)),
    )  # fmt: skip
    assert calls == [(4, 17), (8, 17), (12, 17), (16, 17), (17, 17)]


def test_progress_of_a_custom_loader_estimates_the_total_and_ends_exact(tmp_path, backbone):
    images = [tmp_path / f"i{i}.png" for i in range(10)]
    for path in images:
        path.write_bytes(b"")  # the loader below makes the pixels
    rng = np.random.default_rng(0)

    def one_frame(path):
        return rng.integers(0, 255, (1, 40, 50, 3), dtype=np.uint8)  # (1, H, W, 3)

    calls = []
    cache = _cache(tmp_path, backbone)
    cache.extract(
        images, backbone, "pooled", CPU, batch_frames=4, load_frames=one_frame,
        progress=lambda done, total: calls.append((done, total)),
    )  # fmt: skip
    assert calls == [(4, 10), (8, 10), (10, 10)]
    assert [f.shape for f in _frames(cache, images)] == [(1, 64)] * 10


# --------------------------------------------------------------------------------------------
# The pieces: packing, prefetching, counting
# --------------------------------------------------------------------------------------------


def test_packed_batches_route_every_frame_back_to_its_source_in_order():
    lengths = [1, 6, 3, 1, 1, 9, 2]
    packer, assembler = FramePacker(4), FeatureAssembler()
    done = {}
    for tag, n in enumerate(lengths):
        packer.add(tag, np.arange(n, dtype=np.float32)[:, None] + 100 * tag)  # (n, 1)
        for batch, spans in packer.batches():
            assert len(batch) == 4
            done.update(assembler.add(spans, batch * 2))  # a "backbone": x -> 2x
    for batch, spans in packer.batches(final=True):
        assert len(batch) == sum(lengths) % 4
        done.update(assembler.add(spans, batch * 2))
    assert sorted(done) == list(range(len(lengths)))
    for tag, n in enumerate(lengths):
        expected = (np.arange(n, dtype=np.float16)[:, None] + 100 * tag) * 2
        np.testing.assert_array_equal(done[tag], expected)
        assert done[tag].dtype == np.float16


def test_prefetch_keeps_order_runs_ahead_within_its_budget_and_passes_errors_on():
    started, lock, running = [], threading.Lock(), [0, 0]  # now, most at once

    def load(i):
        with lock:
            started.append(i)
            running[0] += 1
            running[1] = max(running[1], running[0])
        time.sleep(0.02 if i % 2 else 0.001)  # odd items finish last
        with lock:
            running[0] -= 1
        if i == 7:
            raise VideoError(f"item{i}", "broken")
        return i

    counts = FrameCounts(8, declared=[1] * 8)  # one frame each: the budget of 5 frames rules
    seen = []
    items = prefetch(load, list(range(8)), 2, 5, counts.expected)
    with contextlib.closing(items), pytest.raises(VideoError, match="item7: broken"):
        for i in items:
            seen.append(i)
            assert len(started) <= i + 5  # this one and at most 4 (4 frames) waiting
    assert seen == list(range(7)) and running[1] == 2


def test_frame_counts_use_declared_counts_then_the_real_ones():
    declared = FrameCounts(3, declared=[10, 20, 0])
    assert declared.total() == 31 and declared.expected(2) == 1
    declared.set(0, 8)
    declared.drop(1)
    assert declared.total() == 9 and declared.expected(1) == 0
    estimated = FrameCounts(4)
    assert estimated.expected(0) is None and estimated.total() == 4
    estimated.set(0, 30)
    estimated.set(1, 34)
    assert estimated.expected(3) == 32 and estimated.total() == 64 + 2 * 32
    with pytest.raises(ValueError, match="already counted"):
        estimated.set(0, 1)
