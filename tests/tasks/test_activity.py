"""Activity recognition through the CLI and the library, on generated data in the UCF-101 layout."""

import json
import shutil

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import load_file
from typer.testing import CliRunner

from lrcn.cli import app
from lrcn.data.synthetic import write_order_ucf101
from lrcn.tasks import evaluate_run, train, validate_config

runner = CliRunner()
pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def order_data(tmp_path_factory):
    """100 videos (25 groups x 4 classes) of 20 frames, 48x48, and a shared feature cache.

    Clips are 16 frames (stride 4), so nearly every clip holds the moment the objects switch.
    """
    root = tmp_path_factory.mktemp("activity")
    videos = write_order_ucf101(root / "data", num_groups=25, frames=20, size=48, seed=2)
    return videos, root / "features"


def _config(videos, features, **model):
    head = {
        "name": "lrcn",
        "backbone": "efficientnet_lite0",
        "image_size": 64,
        "dropout": 0.3,
        **model,
    }
    if head["name"] == "lrcn":
        head.setdefault("hidden_size", 64)
    return {
        "task": "activity",
        "data": {"format": "ucf101", "root": str(videos), "clip_len": 16, "stride": 4, "num_workers": 0},
        "model": head,
        "train": {"epochs": 10, "batch_size": 16, "lr": 0.003, "clips_per_video": 4, "device": "cpu",
                  "feature_cache": str(features)},
    }  # fmt: skip


def _write(path, raw):
    path.write_text(yaml.safe_dump(raw))
    return path


def test_cli_train_evaluate_predict(order_data, tmp_path):
    videos, features = order_data
    config = _write(tmp_path / "lrcn.yaml", _config(videos, features))
    run = tmp_path / "run"
    result = runner.invoke(
        app, ["train", str(config), "--out", str(run), "--set", "train.epochs=3"]
    )
    assert result.exit_code == 0, result.output
    for name in (
        "config.yaml",
        "metrics.jsonl",
        "metrics.csv",
        "curves.png",
        "report.json",
        "best/model.safetensors",
        "last/train_state.pt",
    ):
        assert (run / name).is_file(), name
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 3

    result = runner.invoke(app, ["evaluate", str(run), "--json"])
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout.strip().splitlines()[-1])
    assert {"video_top1", "clip_top1", "video_top4", "per_class", "confusion"} <= set(metrics)
    assert metrics["videos"] == 28 and metrics["clips"] > metrics["videos"]
    assert (run / "eval-best-test" / "confusion.png").stat().st_size > 10_000
    rows = (run / "eval-best-test" / "predictions.csv").read_text().splitlines()
    assert len(rows) == 29 and rows[0].startswith("video,true_class,predicted_class")

    video = next(videos.glob("CircleThenSquare/*_g01_*.avi"))
    result = runner.invoke(app, ["predict", str(run), str(video), "--json", "--top", "2"])
    assert result.exit_code == 0, result.output
    (prediction,) = json.loads(result.stdout)
    assert len(prediction["top"]) == 2 and prediction["clips"] == 2
    assert abs(sum(t["probability"] for t in prediction["top"]) - 1) < 0.2


def test_lrcn_beats_the_single_frame_baseline_by_a_wide_margin(order_data, tmp_path):
    videos, features = order_data
    scores = {}
    for name in ("lrcn", "single_frame"):
        raw = _config(videos, features, name=name)
        train(validate_config(raw), tmp_path / name, log=lambda _: None)
        # The test split (28 videos), with best/ chosen on the validation videos.
        summary = evaluate_run(tmp_path / name, log=lambda _: None)[1]
        scores[name] = summary["video_top1"]
        scores[f"{name} probe"] = summary["single_frame_baseline"]["video_top1"]
    # evaluate's own single-frame baseline, fitted on the cached features, sees no order either.
    assert scores["lrcn probe"] == scores["single_frame probe"] < 0.72, scores
    # A single frame shows the pair of objects but not their order: about 0.5 at most.
    assert scores["single_frame"] < 0.72, scores
    assert scores["lrcn"] > 0.85, scores
    assert scores["lrcn"] - scores["single_frame"] > 0.2, scores


class _Interrupted(Exception):
    pass


def test_resume_ends_with_the_weights_of_an_uninterrupted_run(order_data, tmp_path):
    videos, features = order_data
    raw = _config(videos, features)
    raw["train"]["epochs"] = 4
    train(validate_config(raw), tmp_path / "straight", log=lambda _: None)

    def crash_after_epoch_2(message):
        if message.startswith("epoch 2/4"):
            raise _Interrupted

    with pytest.raises(_Interrupted):
        train(validate_config(raw), tmp_path / "resumed", log=crash_after_epoch_2)
    result = runner.invoke(app, ["train", "--resume", str(tmp_path / "resumed")])
    assert result.exit_code == 0, result.output
    straight = load_file(tmp_path / "straight" / "last" / "model.safetensors")
    resumed = load_file(tmp_path / "resumed" / "last" / "model.safetensors")
    assert straight.keys() == resumed.keys()
    for key in straight:
        assert torch.equal(straight[key], resumed[key]), key
    history = [
        json.loads(line)
        for line in (tmp_path / "resumed" / "metrics.jsonl").read_text().splitlines()
    ]
    assert [h["epoch"] for h in history] == [0, 1, 2, 3]


def test_training_from_the_cache_decodes_no_video(order_data, tmp_path, monkeypatch):
    videos, features = order_data
    raw = _config(videos, features)
    raw["train"]["epochs"] = 2
    train(validate_config(raw), tmp_path / "warm", log=lambda _: None)  # cache filled
    calls = []
    import lrcn.data.clips
    import lrcn.data.features

    def counting(*args, **kwargs):
        calls.append(args[0])
        raise AssertionError("a video was decoded")

    monkeypatch.setattr(lrcn.data.clips, "read_frames", counting)
    monkeypatch.setattr(lrcn.data.features, "read_frames", counting)
    report = train(validate_config(raw), tmp_path / "cold", log=lambda _: None)
    assert calls == [] and report["feature_cache"]


def test_fine_tuning_from_frames(order_data, tmp_path):
    """A trainable backbone reads decoded frames (with augmentation) instead of the cache."""
    videos, _ = order_data
    raw = _config(videos, tmp_path / "unused", backbone="simple_cnn", freeze_backbone=False)
    del raw["model"]["image_size"]
    raw["train"].update(epochs=1, clips_per_video=1)
    report = train(validate_config(raw), tmp_path / "ft", log=lambda _: None)
    assert report["feature_cache"] is None and not (tmp_path / "unused").exists()
    assert 0.0 <= report["final"]["val_video_top1"] <= 1.0


def test_a_config_typo_is_named(order_data, tmp_path):
    videos, features = order_data
    raw = _config(videos, features)
    raw["train"]["learning_rate"] = 0.1
    config = _write(tmp_path / "typo.yaml", raw)
    result = runner.invoke(app, ["train", str(config)])
    assert result.exit_code == 2
    assert "typo.yaml" in result.output and "train.learning_rate: unknown key" in result.output


def test_corrupt_video_is_named_or_skipped_and_reported(order_data, tmp_path):
    videos, _ = order_data
    data = tmp_path / "data"
    shutil.copytree(videos.parent, data)
    victim = next((data / "UCF-101" / "SquareThenCircle").glob("*_g20_*.avi"))
    victim.write_bytes(np.random.default_rng(0).integers(0, 256, 3000, dtype=np.uint8).tobytes())
    raw = _config(data / "UCF-101", tmp_path / "features")
    raw["train"]["epochs"] = 1
    config = _write(tmp_path / "c.yaml", raw)
    result = runner.invoke(app, ["train", str(config), "--out", str(tmp_path / "r1")])
    assert result.exit_code == 2
    assert f"{victim.name}: not a readable video" in result.output
    result = runner.invoke(
        app, ["train", str(config), "--out", str(tmp_path / "r2"), "--set", "data.on_error=skip"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "r2" / "report.json").read_text())
    assert any(victim.name in s for s in report["skipped"])
    assert report["train_videos"] + report["val_videos"] == 71


def test_a_truncated_video_is_named_or_skipped_in_training_and_evaluation_alike(
    order_data, tmp_path
):
    """The frozen-backbone path decodes whole videos: one that decodes short of the frame
    count its container declares is an error (or, under skip, reported by train and evaluate
    both), never a cache entry of its first frames."""
    videos, _ = order_data
    data = tmp_path / "data"
    shutil.copytree(videos.parent, data)
    victim = next((data / "UCF-101" / "SquareThenCircle").glob("*_g05_*.avi"))  # a test video
    data_bytes = victim.read_bytes()
    victim.write_bytes(data_bytes[: len(data_bytes) * 2 // 5])
    raw = _config(data / "UCF-101", tmp_path / "features")
    raw["train"]["epochs"] = 1
    config = _write(tmp_path / "c.yaml", raw)
    result = runner.invoke(app, ["train", str(config), "--out", str(tmp_path / "r1")])
    assert result.exit_code == 2
    assert (
        f"{victim.name}: truncated: " in result.output
        and "of the 20 its container" in result.output
    )
    result = runner.invoke(
        app, ["train", str(config), "--out", str(tmp_path / "r2"), "--set", "data.on_error=skip"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "r2" / "report.json").read_text())
    named = [s for s in report["skipped"] if victim.name in s]
    assert len(named) == 1 and "truncated" in named[0], report["skipped"]
    _, evaluated = evaluate_run(tmp_path / "r2", log=lambda m: None)
    assert [s for s in evaluated["skipped"] if victim.name in s] == named


def test_a_broken_video_in_a_loader_worker_is_named(order_data, tmp_path):
    """Decoding in worker processes: the error that reaches the user still names the file."""
    videos, _ = order_data
    data = tmp_path / "data"
    shutil.copytree(videos.parent, data)
    victim = next((data / "UCF-101" / "CircleThenSquare").glob("*_g12_*.avi"))
    data_bytes = victim.read_bytes()
    victim.write_bytes(data_bytes[: len(data_bytes) // 3])  # header intact: fails mid-decode
    raw = _config(
        data / "UCF-101", tmp_path / "unused", backbone="simple_cnn", freeze_backbone=False
    )
    del raw["model"]["image_size"]
    raw["data"]["num_workers"] = 2
    raw["train"].update(epochs=1, clips_per_video=1)
    config = _write(tmp_path / "c.yaml", raw)
    result = runner.invoke(app, ["train", str(config), "--out", str(tmp_path / "r")])
    assert result.exit_code == 2, result.output
    assert f"{victim.name}: frame" in result.output and "could be decoded" in result.output


def test_predict_errors_per_video_and_bad_run_folder(order_data, tmp_path):
    result = runner.invoke(app, ["evaluate", str(tmp_path / "nope")])
    assert result.exit_code == 2 and "no such run or bundle folder" in result.output
    (tmp_path / "fake").mkdir()
    (tmp_path / "fake" / "bundle.json").write_text('{"format": 1}')
    result = runner.invoke(app, ["predict", str(tmp_path / "fake"), "v.avi"])
    assert result.exit_code == 2 and "missing 'task'" in result.output


def test_flow_then_late_fusion_through_the_cli(order_ucf101, tmp_path):
    """lrcn flow -> train on the flow data set -> lrcn fuse with the RGB run."""
    raw = _config(order_ucf101, tmp_path / "features")
    raw["data"].update(clip_len=8, stride=4)
    raw["train"]["epochs"] = 2
    config = _write(tmp_path / "rgb.yaml", raw)
    result = runner.invoke(app, ["flow", str(config), "--out", str(tmp_path / "flow")])
    assert result.exit_code == 0, result.output
    flow_root = tmp_path / "flow" / "UCF-101"
    assert len(list(flow_root.rglob("flow_*.jpg"))) > 100

    for name, extra in (("rgb", []), ("flowrun", ["--set", f"data.root={flow_root}"])):
        result = runner.invoke(app, ["train", str(config), "--out", str(tmp_path / name), *extra])
        assert result.exit_code == 0, result.output
    result = runner.invoke(
        app, ["fuse", str(tmp_path / "rgb"), str(tmp_path / "flowrun"), "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert [f["weights"] for f in report["fused"]] == [[0.5, 0.5], [0.3333, 0.6667]]
    assert report["videos"] == 4  # test split of the 5-group data set: one group per class
    # Weight 1 on a run reproduces that run's own accuracy.
    result = runner.invoke(
        app,
        [
            "fuse",
            str(tmp_path / "rgb"),
            str(tmp_path / "flowrun"),
            "--weight",
            "1",
            "--weight",
            "0",
            "--json",
        ],
    )
    solo = json.loads(result.stdout.strip().splitlines()[-1])
    assert solo["fused"][0]["video_top1"] == solo["runs"][0]["video_top1"]
    result = runner.invoke(
        app, ["fuse", str(tmp_path / "rgb"), str(tmp_path / "flowrun"), "--weight", "1"]
    )
    assert result.exit_code != 0


def test_cnn_convlstm_trains_from_cached_feature_grids(order_ucf101, tmp_path):
    raw = _config(
        order_ucf101, tmp_path / "features", name="cnn_convlstm", filters=8, dense_size=16
    )
    raw["data"].update(clip_len=8, stride=4)
    raw["train"]["epochs"] = 2
    report = train(validate_config(raw), tmp_path / "convlstm", log=lambda _: None)
    grids = list((tmp_path / "features").rglob("*.npy"))
    assert grids and np.load(grids[0]).ndim == 4  # (T, C, h, w) per video
    assert 0.0 <= report["final"]["val_video_top1"] <= 1.0


def test_a_folder_per_class_data_set_trains_with_a_made_split(order_ucf101, tmp_path):
    raw = _config(order_ucf101, tmp_path / "features")
    raw["data"] = {
        "format": "folders",
        "root": str(order_ucf101),
        "test_fraction": 0.25,
        "clip_len": 8,
        "stride": 4,
        "num_workers": 0,
    }
    raw["train"]["epochs"] = 1
    report = train(validate_config(raw), tmp_path / "folders", log=lambda _: None)
    assert report["leaked_groups"] == []
    assert report["train_videos"] + report["val_videos"] + report["test_videos"] == 20
    assert report["test_videos"] >= 4 and report["val_videos"] >= 1


def test_the_verdict_says_plainly_when_the_model_does_not_beat_the_baseline():
    from lrcn.tasks.activity import verdict

    assert verdict(0.90, 0.50).startswith("the model beats the single-frame baseline by 0.400")
    worse = verdict(0.51, 0.50)
    assert "does NOT beat the single-frame baseline (0.510 vs 0.500)" in worse
    assert "optical flow" in worse


def test_a_run_with_a_relative_data_root_evaluates_from_any_folder(
    order_ucf101, tmp_path, monkeypatch
):
    """The run stores its paths absolute: evaluate finds the data from another folder."""
    import os

    monkeypatch.chdir(tmp_path)
    raw = _config(os.path.relpath(order_ucf101, tmp_path), "features", hidden_size=8)
    raw["data"]["clip_len"] = 8
    raw["train"].update(epochs=1, clips_per_video=1)
    result = runner.invoke(app, ["train", str(_write(tmp_path / "c.yaml", raw)), "-q"])
    assert result.exit_code == 0, result.output
    stored = yaml.safe_load((tmp_path / "runs" / "c" / "config.yaml").read_text())
    assert stored["data"]["root"] == str(order_ucf101)
    assert stored["train"]["feature_cache"] == str(tmp_path / "features")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    result = runner.invoke(app, ["evaluate", str(tmp_path / "runs" / "c"), "--json"])
    assert result.exit_code == 0, result.output
    assert not (elsewhere / "features").exists()  # the cache the run used, not a new one
