"""Video description through the CLI, on the built-in motion data set in the MSR-VTT layout."""

import csv
import json
import shutil

import pytest
import yaml
from PIL import Image
from typer.testing import CliRunner

from lrcn.cli import app
from lrcn.data.synthetic_motion import motion_word_accuracy, write_motion_msrvtt
from lrcn.data.video_io import read_frames, write_video

runner = CliRunner()
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def motion(tmp_path_factory):
    """120 videos of a coloured shape moving one of four ways; one shared feature cache."""
    root = tmp_path_factory.mktemp("motion")
    return write_motion_msrvtt(root / "data", num_videos=120, frames=12, size=48, seed=3)


def _config(tmp_path, data, name, epochs, **model):
    raw = {
        "task": "video_captioning",
        "data": {"format": "msrvtt", "root": str(data), "frames": 8, "min_count": 1},
        "model": {"name": name, "backbone": "efficientnet_lite0", "image_size": 64,
                  "embed_size": 32, "hidden_size": 64, "dropout": 0.2, **model},
        "train": {"epochs": epochs, "batch_size": 32, "lr": 0.003, "device": "cpu",
                  "feature_cache": str(data.parent / "features")},
        "decode": {"beam_size": 2, "max_len": 12},
    }  # fmt: skip
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.mark.parametrize(
    ("name", "inputs"),
    [("mean_pool", "rgb"), ("s2vt", "rgb+flow"), ("temporal_attention", "flow")],
)
def test_train_evaluate_predict_through_the_cli(motion, tmp_path, name, inputs):
    run = tmp_path / "run"
    config = _config(tmp_path, motion, name, 2, inputs=inputs)
    trained = runner.invoke(app, ["train", str(config), "--out", str(run), "-q"])
    assert trained.exit_code == 0, trained.output
    assert "best val_cider" in trained.output
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [0, 1] and "val_cider" in rows[0]["metrics"]
    evaluated = runner.invoke(app, ["evaluate", str(run), "--json", "--beam", "3"])
    assert evaluated.exit_code == 0, evaluated.output
    metrics = json.loads((run / "eval-best-test" / "metrics.json").read_text())
    assert metrics["videos"] == 24 and metrics["beam_size"] == 3
    assert set(metrics) >= {"model", "nearest_neighbour", "most_frequent_caption"}
    video = sorted((motion / "TestVideo").glob("*.mp4"))[0]
    predicted = runner.invoke(app, ["predict", str(run), str(video), "--n-best", "2"])
    assert predicted.exit_code == 0, predicted.output
    first = predicted.stdout.splitlines()[0]
    assert first.startswith(f"{video}: ") and first.split(": ", 1)[1].strip()


@pytest.mark.parametrize(
    ("name", "inputs", "over_nearest"),
    [("s2vt", "rgb", 0.05), ("temporal_attention", "rgb+flow", 0.15)],
)
def test_describes_far_better_than_the_baselines(motion, tmp_path, name, inputs, over_nearest):
    """On the test split, S2VT and the attention decoder beat the most frequent training
    sentence by a wide margin and the nearest training video's sentence (RGB features) too."""
    run = tmp_path / "run"
    config = _config(tmp_path, motion, name, 25, inputs=inputs, embed_size=64, hidden_size=128)
    assert runner.invoke(app, ["train", str(config), "--out", str(run), "-q"]).exit_code == 0
    result = runner.invoke(app, ["evaluate", str(run), "--json"])
    assert result.exit_code == 0, result.output
    metrics = json.loads((run / "eval-best-test" / "metrics.json").read_text())
    model, frequent = metrics["model"], metrics["most_frequent_caption"]
    assert model["cider"] > 2 * frequent["cider"], (model, frequent)
    nearest = metrics["nearest_neighbour"]
    # when written (Xeon): S2VT 1.267 vs 0.968; temporal attention 1.451 vs 1.089 (most frequent
    # 0.505). On an AMD EPYC the same seeds train S2VT to 1.084 (float sums in another order),
    # hence its smaller margin.
    assert model["cider"] > nearest["cider"] + over_nearest, (model, nearest)
    assert model["bleu4"] > frequent["bleu4"] + 0.05, (model, frequent)


def test_fixed_stride_sampling_trains_on_videos_of_different_lengths(motion, tmp_path):
    """data.stride: every 5th frame, at most 8: the 12-frame demo videos give 3 frames each,
    a 3-frame copy of one gives 1; batches mix them (padded, lengths respected)."""
    data = tmp_path / "data"
    shutil.copytree(motion, data)
    short = sorted((data / "TrainValVideo").glob("*.mp4"))[0]
    write_video(short, read_frames(short, [0, 1, 2]), fps=25, codec="mpeg4")
    config = _config(tmp_path, data, "s2vt", 1)
    run = tmp_path / "run"
    trained = runner.invoke(
        app, ["train", str(config), "--out", str(run), "-q", "--set", "data.stride=5"]
    )
    assert trained.exit_code == 0, trained.output
    assert json.loads((run / "report.json").read_text())["sampling"] == "every 5, at most 8"
    cached = runner.invoke(app, ["extract-features", str(config), "--set", "data.stride=5"])
    assert cached.exit_code == 0, cached.output
    assert f"120 inputs, {119 * 3 + 1} frames cached in" in cached.stdout  # one short video
    assert runner.invoke(app, ["evaluate", str(run), "--beam", "2"]).exit_code == 0
    predicted = runner.invoke(app, ["predict", str(run), str(short)])
    assert predicted.exit_code == 0, predicted.output


def _word_accuracy(run):
    """Colour / shape / direction accuracy of the test captions ``evaluate`` wrote."""
    with (run / "eval-best-test" / "captions.csv").open() as f:
        rows = list(csv.DictReader(f))
    return motion_word_accuracy(
        [r["caption"] for r in rows], [r["references"].split(" | ") for r in rows]
    )


def test_motion_input_names_the_direction_that_pooled_appearance_cannot(motion, tmp_path):
    """The demo data's first frames do not tell the way a shape will move: a mean-pooled RGB
    captioner names the direction about at chance (1 in 4), an S2VT reading optical flow gets
    most of them. (README table: the same comparison on the demo's larger set.)"""
    accuracy = {}
    for name, inputs in (("mean_pool", "rgb"), ("s2vt", "flow")):
        run = tmp_path / f"{name}-{inputs}"
        config = _config(tmp_path, motion, name, 25, inputs=inputs, embed_size=64, hidden_size=128)
        trained = runner.invoke(app, ["train", str(config), "--out", str(run), "-q"])
        assert trained.exit_code == 0, trained.output
        assert runner.invoke(app, ["evaluate", str(run), "--beam", "1"]).exit_code == 0
        accuracy[inputs] = _word_accuracy(run)
    assert accuracy["rgb"]["direction"] <= 0.45, accuracy  # 0.17 when written
    assert accuracy["flow"]["direction"] >= accuracy["rgb"]["direction"] + 0.3, accuracy  # 0.83
    assert accuracy["rgb"]["colour"] >= 0.6, accuracy  # appearance does see what is there


def test_the_attention_strip_shows_each_word_over_the_sampled_frames(motion, tmp_path):
    run = tmp_path / "run"
    config = _config(tmp_path, motion, "temporal_attention", 2)
    assert runner.invoke(app, ["train", str(config), "--out", str(run), "-q"]).exit_code == 0
    video = sorted((motion / "TestVideo").glob("*.mp4"))[0]
    shown = runner.invoke(
        app, ["predict", str(run), str(video), "--attention", str(tmp_path / "att"), "--json"]
    )
    assert shown.exit_code == 0, shown.output
    (result,) = json.loads(shown.stdout)
    strip = Image.open(result["attention"])
    assert result["attention"].endswith(f"{video.stem}-attention.png") and strip.width > 400
    pooled = tmp_path / "pooled"
    config = _config(tmp_path, motion, "mean_pool", 1)
    assert runner.invoke(app, ["train", str(config), "--out", str(pooled), "-q"]).exit_code == 0
    refused = runner.invoke(app, ["predict", str(pooled), str(video), "--attention", "x"])
    assert refused.exit_code == 2 and "needs an attention model" in refused.output


def test_a_video_missing_on_disk_is_named_or_skipped_and_reported(motion, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(motion, data)
    victim = sorted((data / "TrainValVideo").glob("*.mp4"))[0]
    victim.unlink()
    config = _config(tmp_path, data, "mean_pool", 1)
    failed = runner.invoke(app, ["train", str(config), "--out", str(tmp_path / "r1")])
    assert failed.exit_code == 2
    errors = [line for line in failed.output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and f"({victim.stem}): video not found" in errors[0], errors
    skipped = runner.invoke(
        app,
        ["train", str(config), "--out", str(tmp_path / "r2"), "-q",
         "--set", "data.on_error=skip"],
    )  # fmt: skip
    assert skipped.exit_code == 0, skipped.output
    report = json.loads((tmp_path / "r2" / "report.json").read_text())
    assert [s for s in report["skipped"] if victim.stem in s]
