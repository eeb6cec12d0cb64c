"""``data.frame_every``: every k-th frame of each video, in the feature cache, training,
evaluation and predict alike."""

import json

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from lrcn.cli import app
from lrcn.data import sampling
from lrcn.data.features import FeatureCache
from lrcn.data.video_io import probe_video
from lrcn.tasks import evaluate_run, load_predictor, train, validate_config

runner = CliRunner()
pytestmark = pytest.mark.slow


def _clips_every_2(video) -> int:
    """Test clips (4 frames, stride 2) of a video read every 2nd frame."""
    kept = -(-probe_video(video).num_frames // 2)
    return len(sampling.test_clips(kept, clip_len=4, stride=2))


def _config(videos, features, every, **model):
    return {
        "task": "activity",
        "data": {"format": "ucf101", "root": str(videos), "clip_len": 4, "stride": 2,
                 "frame_every": every, "num_workers": 0},
        "model": {"name": "lrcn", "backbone": "simple_cnn", "hidden_size": 8, **model},
        "train": {"epochs": 1, "batch_size": 8, "clips_per_video": 1, "device": "cpu",
                  "feature_cache": str(features)},
    }  # fmt: skip


def _caches(root) -> dict[str, FeatureCache]:
    """Every cache folder under ``root``, by its feature kind ("pooled", "pooled/every 2")."""
    caches = {}
    for identity in root.glob("*/identity.json"):
        key = json.loads(identity.read_text())
        caches[key["kind"]] = FeatureCache(root, key)
    return caches


def test_the_cache_holds_every_kth_frame_of_the_full_rate_cache(order_ucf101, tmp_path):
    features = tmp_path / "features"
    for every in (1, 2):
        config = tmp_path / f"every{every}.yaml"
        config.write_text(yaml.safe_dump(_config(order_ucf101, features, every)))
        result = runner.invoke(app, ["extract-features", str(config), "-q"])
        assert result.exit_code == 0, result.output
    caches = _caches(features)
    assert sorted(caches) == ["pooled", "pooled/every 2"]  # a key of its own: never mixed
    videos = sorted(order_ucf101.rglob("*.avi"))
    assert len(videos) == 20
    for video in videos:
        full = np.asarray(caches["pooled"].load(video), dtype=np.float32)  # (T, D)
        half = np.asarray(caches["pooled/every 2"].load(video), dtype=np.float32)  # (ceil(T/2), D)
        assert full.shape[0] == probe_video(video).num_frames  # 20, or 12 for a short one
        assert half.shape == ((full.shape[0] + 1) // 2, full.shape[1])
        np.testing.assert_allclose(half, full[::2], rtol=2e-3, atol=2e-3)  # float16 storage


def test_a_config_with_frame_every_2_trains_evaluates_and_predicts(order_ucf101, tmp_path):
    raw = _config(order_ucf101, tmp_path / "features", 2)
    report = train(validate_config(raw), tmp_path / "run", log=lambda _: None)
    identity = json.loads((tmp_path / "run" / "report.json").read_text())["feature_cache"]
    assert json.loads((tmp_path / identity / "identity.json").read_text())["kind"] == (
        "pooled/every 2"
    )
    assert 0.0 <= report["final"]["val_video_top1"] <= 1.0
    _, summary = evaluate_run(tmp_path / "run", log=lambda _: None)
    predictions = (tmp_path / "run" / "eval-best-test" / "predictions.csv").read_text()
    evaluated = [line.split(",")[0] for line in predictions.splitlines()[1:]]
    assert summary["clips"] == sum(_clips_every_2(video) for video in evaluated)
    for video in sorted(order_ucf101.rglob("*.avi"))[:2]:
        (result,) = load_predictor(tmp_path / "run")([video])
        assert result["clips"] == _clips_every_2(video)


def test_fine_tuning_with_frame_every_decodes_only_every_kth_frame(
    order_ucf101, tmp_path, monkeypatch
):
    """A trainable backbone decodes clips: only file frames 0, 3, 6, ... are asked for."""
    import lrcn.data.clips
    from lrcn.data.video_io import read_frames

    asked: list[int] = []

    def recording(path, indices):
        asked.extend(indices)
        return read_frames(path, indices)

    monkeypatch.setattr(lrcn.data.clips, "read_frames", recording)
    raw = _config(order_ucf101, tmp_path / "unused", 3, freeze_backbone=False)
    report = train(validate_config(raw), tmp_path / "ft", log=lambda _: None)
    assert report["feature_cache"] is None
    assert asked and {i % 3 for i in asked} == {0} and max(asked) <= 18  # 7 kept of 20
