"""Next-frame prediction through the CLI: generated Moving MNIST (train -> evaluate ->
predict), your own videos as frame folders (a model that learns motion and beats the
baselines), causality of the predict path, exact resume, and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image
from safetensors.torch import load_file
from typer.testing import CliRunner

from lrcn.cli import app
from lrcn.data.video_io import read_frames, write_video
from lrcn.tasks import predict_run, train
from lrcn.tasks.configs import validate_config

runner = CliRunner()
pytestmark = pytest.mark.slow

TINY = {"name": "convlstm_encoder_forecaster", "filters": [8], "patch_size": 4}


def _invoke(*args):
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result


def _one_error(result):
    assert result.exit_code != 0, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.output
    assert "Traceback" not in result.output
    return errors[0]


def _write_config(path, data, model=TINY, **train):
    raw = {
        "task": "next_frame",
        "data": data,
        "model": model,
        "train": {"epochs": 1, "batch_size": 8, "device": "cpu", **train},
    }
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.fixture(scope="module")
def moving_mnist(tmp_path_factory):
    """Generated Moving MNIST, 32x32, 8 frames (4 in, 4 out): train.npy and test.npy."""
    folder = tmp_path_factory.mktemp("mm")
    _invoke("datasets", "moving-mnist", "--out", folder, "--train", 40, "--test", 8,
            "--frames", 8, "--size", 32)  # fmt: skip
    return {
        "format": "moving_mnist",
        "train": str(folder / "train.npy"),
        "test": str(folder / "test.npy"),
        "context": 4,
        "horizon": 4,
    }


@pytest.fixture(scope="module")
def mm_run(moving_mnist, tmp_path_factory):
    folder = tmp_path_factory.mktemp("mm-run")
    config = _write_config(folder / "nf.yaml", moving_mnist)
    _invoke("train", config, "--out", folder / "run", "-q")
    return folder / "run"


def test_train_evaluate_on_moving_mnist_writes_scores_strips_gif_and_plot(mm_run):
    result = _invoke("evaluate", mm_run, "--json")
    summary = json.loads(result.stdout)
    assert summary["split"] == "test" and summary["sequences"] == 8
    assert set(summary["scores"]) == {"model", "copy last frame", "linear extrapolation"}
    for scores in summary["scores"].values():
        assert len(scores["per_step"]["ssim"]) == 4
        assert scores["mean"]["mse"] > 0
    outputs = summary["outputs"]
    rows = (mm_run / "eval-best-test" / "per_step.csv").read_text().splitlines()
    assert len(rows) == 1 + 3 * 4
    strips = sorted((mm_run / "eval-best-test" / "strips").glob("*.png"))
    assert len(strips) == 4
    gif = Image.open(outputs["gif"])
    assert gif.n_frames == 8  # the 4 context frames, then the 4 predicted
    assert Image.open(outputs["plot"]).size[0] > 600
    report = json.loads((mm_run / "report.json").read_text())
    assert report["best"]["metric"] == "val_mse"
    assert report["windows"] == {"train": 36, "val": 4, "test": 8}
    shown = _invoke("evaluate", mm_run).stdout
    assert "copy last frame" in shown and "linear extrapolation" in shown


def test_predict_continues_a_video_and_writes_the_video_and_strip(mm_run, moving_mnist, tmp_path):
    from lrcn.data.formats.moving_mnist import read_moving_mnist, sequences

    clip = np.asarray(sequences(read_moving_mnist(moving_mnist["test"]))[0])  # (8, 32, 32)
    video = tmp_path / "clip.mp4"
    write_video(video, np.repeat(clip[..., None], 3, axis=-1), fps=8)
    out, strip = tmp_path / "pred.mp4", tmp_path / "strip.png"
    result = _invoke("predict", mm_run, video, "--horizon", 6, "--out", out, "--strip", strip,
                     "--json")  # fmt: skip
    [prediction] = json.loads(result.stdout)
    assert prediction["context_frames"] == [4, 5, 6, 7]  # the last 4: past the end
    assert prediction["predicted_frames"] == [8, 13]
    assert "mse" not in prediction  # nothing after the end to score against
    assert len(read_frames(out)) == 4 + 6
    assert read_frames(out).shape[1:3] == (64, 64)  # scaled up 2x to be seen
    assert Image.open(strip).size[1] > 100

    from_start = _invoke("predict", mm_run, video, "--start", 0, "--json")
    [scored] = json.loads(from_start.stdout)
    assert scored["context_frames"] == [0, 1, 2, 3] and scored["true_frames"] == 4
    assert set(scored["mse"]) == {"model", "copy last frame"}
    shown = _invoke("predict", mm_run, video, "--start", 0).stdout
    assert "copy last frame" in shown


def test_predict_path_is_causal(mm_run, tmp_path):
    """Frames after the context, changed in the video on disk, leave the prediction as it
    was: the written video (context + prediction) is byte-identical."""
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, size=(10, 32, 32, 3), dtype=np.uint8)
    outputs = []
    for name, tail in (("a", frames[6:]), ("b", 255 - frames[6:])):
        folder = tmp_path / name
        folder.mkdir()
        for i, frame in enumerate(np.concatenate([frames[:6], tail])):
            Image.fromarray(frame).save(folder / f"{i:03d}.png")
        out = tmp_path / f"{name}.mp4"
        _, [result] = predict_run(mm_run, [folder], {"start": 2, "out": out})
        assert result["context_frames"] == [2, 3, 4, 5]
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1]


def test_output_names_and_formats(mm_run, tmp_path):
    """Several inputs get one file each, also when two share a name; a format that is not a
    video (or not a PNG) is refused before anything runs."""
    frames = np.zeros((6, 32, 32, 3), np.uint8)
    inputs = []
    for folder in ("a", "b"):
        video = tmp_path / folder / "clip"
        video.mkdir(parents=True)
        for i, frame in enumerate(frames):
            Image.fromarray(frame).save(video / f"{i}.png")
        inputs.append(video)
    out, strip = tmp_path / "out" / "p.mp4", tmp_path / "out" / "s.png"
    _, results = predict_run(mm_run, inputs, {"out": out, "strip": strip})
    assert [r["out"] for r in results] == [
        str(tmp_path / "out" / "p-1-clip.mp4"), str(tmp_path / "out" / "p-2-clip.mp4")
    ]  # fmt: skip
    assert all(Path(r["strip"]).is_file() for r in results)
    for flag, name in (("--out", "p.gif"), ("--strip", "s.txt")):
        error = _one_error(runner.invoke(app, ["predict", str(mm_run), str(inputs[0]), flag,
                                               str(tmp_path / name)]))  # fmt: skip
        assert flag in error and name in error


def test_predict_reads_frames_with_the_runs_frame_step(tmp_path):
    """A run trained on every 2nd frame continues a video from every 2nd frame."""
    root = _squares(tmp_path / "videos", videos=4, frames=24)
    data = {"format": "videos", "root": str(root), "size": 16, "context": 3, "horizon": 3,
            "frame_step": 2, "val_fraction": 0.25, "test_fraction": 0.25}  # fmt: skip
    config = _write_config(tmp_path / "fs.yaml", data, {**TINY, "patch_size": 2})
    _invoke("train", config, "--out", tmp_path / "run", "-q")
    _, [result] = predict_run(tmp_path / "run", [root / "square-00"], {"start": 4})
    assert result["context_frames"] == [4, 6, 8]
    assert result["predicted_frames"] == [10, 14]
    assert result["true_frames"] == 3
    _, [result] = predict_run(tmp_path / "run", [root / "square-00"], {})
    assert result["context_frames"] == [18, 20, 22]


def test_evaluate_takes_another_horizon(mm_run):
    summary = json.loads(
        _invoke(
            "evaluate", mm_run, "--set", "data.horizon=2", "--out", mm_run / "h2", "--json"
        ).stdout
    )
    assert summary["horizon"] == 2
    assert len(summary["scores"]["model"]["per_step"]["mse"]) == 2


def test_an_unreadable_video_is_reported_and_the_others_predicted(mm_run, tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video")
    good = tmp_path / "good"
    good.mkdir()
    for i in range(5):
        Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(good / f"{i}.png")
    result = runner.invoke(app, ["predict", str(mm_run), str(bad), str(good)])
    assert result.exit_code == 1
    assert str(bad) in result.stderr and "good" in result.stdout


def _squares(root, videos, frames=24, size=16, side=4, seed=0):
    """Frame folders: one bright square bouncing diagonally at 1 pixel per frame."""
    rng = np.random.default_rng(seed)
    for v in range(videos):
        folder = root / f"square-{v:02d}"
        folder.mkdir(parents=True)
        y, x = rng.integers(0, size - side + 1, 2)
        vy, vx = rng.choice([-1, 1], 2)
        for t in range(frames):
            frame = np.zeros((size, size, 3), np.uint8)
            frame[y : y + side, x : x + side] = 255
            Image.fromarray(frame).save(folder / f"{t:03d}.png")
            vy = -vy if not 0 <= y + vy <= size - side else vy
            vx = -vx if not 0 <= x + vx <= size - side else vx
            y, x = y + vy, x + vx
    return root


def test_learns_motion_from_your_own_videos_and_beats_the_baselines(tmp_path):
    """A square moving 1 px a frame: copying the last frame (and, the frames being binary,
    linear extrapolation too) is wrong on ~2 squares' area per frame, a blank frame on 1. The
    one-stack ConvLSTM must be well under both, so it has learned where the square goes."""
    root = _squares(tmp_path / "videos", videos=60)
    data = {"format": "videos", "root": str(root), "size": 16, "context": 6, "horizon": 6,
            "window_stride": 4, "val_fraction": 0.1, "test_fraction": 0.2}  # fmt: skip
    model = {"name": "convlstm", "filters": [24], "patch_size": 2, "loss": "bce"}
    config = _write_config(tmp_path / "sq.yaml", data, model, epochs=20, lr=0.01,
                           batch_size=16)  # fmt: skip
    _invoke("train", config, "--out", tmp_path / "run", "-q")
    summary = json.loads(_invoke("evaluate", tmp_path / "run", "--json").stdout)
    scores = {name: s["mean"] for name, s in summary["scores"].items()}
    blank_mse = 16.0  # a frame of zeros misses the 4x4 square's 16 pixels
    assert scores["model"]["mse"] < 0.5 * blank_mse, scores
    assert scores["model"]["mse"] < 0.3 * scores["copy last frame"]["mse"], scores
    assert scores["model"]["ssim"] > scores["copy last frame"]["ssim"] + 0.05, scores
    assert all(summary["beats_baselines"].values()) and not summary["not_beaten"]
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert report["videos"] == {"test": 12, "val": 6, "train": 42}


class _Interrupted(Exception):
    pass


def test_resume_ends_with_the_weights_of_an_uninterrupted_run(moving_mnist, tmp_path):
    """Scheduled sampling draws its masks from (seed, epoch, index): a resumed run feeds the
    same frames and ends with the same weights."""
    raw = {"task": "next_frame", "data": moving_mnist, "model": TINY,
           "train": {"epochs": 3, "batch_size": 8, "device": "cpu"}}  # fmt: skip
    train(validate_config(raw), tmp_path / "straight", log=lambda _: None)

    def crash_after_epoch_1(message):
        if message.startswith("epoch 1/3"):
            raise _Interrupted

    with pytest.raises(_Interrupted):
        train(validate_config(raw), tmp_path / "resumed", log=crash_after_epoch_1)
    _invoke("train", "--resume", tmp_path / "resumed", "-q")
    straight = load_file(tmp_path / "straight" / "last" / "model.safetensors")
    resumed = load_file(tmp_path / "resumed" / "last" / "model.safetensors")
    for key in straight:
        assert torch.equal(straight[key], resumed[key]), key


def test_bad_inputs_are_one_line_errors(moving_mnist, tmp_path):
    no_test = {k: v for k, v in moving_mnist.items() if k != "test"}
    error = _one_error(
        runner.invoke(app, ["train", str(_write_config(tmp_path / "a.yaml", no_test))])
    )
    assert "test" in error
    odd_patch = {**TINY, "patch_size": 3}
    error = _one_error(
        runner.invoke(
            app, ["train", str(_write_config(tmp_path / "b.yaml", moving_mnist, odd_patch))]
        )
    )
    assert "model.patch_size" in error and "32" in error
    too_long = {**moving_mnist, "horizon": 10}
    error = _one_error(
        runner.invoke(app, ["train", str(_write_config(tmp_path / "c.yaml", too_long))])
    )
    assert "train.npy" in error and "8 frames" in error
    sequence_first = tmp_path / "nthw.npy"
    np.save(sequence_first, np.zeros((30, 20, 32, 32), np.uint8))  # 30 sequences of 20 frames
    swapped = {**moving_mnist, "train": str(sequence_first)}
    error = _one_error(
        runner.invoke(app, ["train", str(_write_config(tmp_path / "d.yaml", swapped))])
    )
    assert "nthw.npy" in error and "(N, T, H, W)" in error


def test_a_short_video_is_an_error_or_skipped_and_reported(tmp_path):
    from lrcn.data.formats.video_windows import find_videos, split_by_video

    root = _squares(tmp_path / "videos", videos=5, frames=12)
    short = root / "square-00"
    for extra in sorted(short.glob("*.png"))[4:]:
        extra.unlink()
    videos = find_videos(root)
    seed = next(s for s in range(50) if short in split_by_video(videos, 0.2, 0.2, s, root)["train"])
    data = {"format": "videos", "root": str(root), "size": 16, "context": 4, "horizon": 4,
            "val_fraction": 0.2, "test_fraction": 0.2, "split_seed": seed}  # fmt: skip
    config = _write_config(tmp_path / "v.yaml", data, TINY)
    error = _one_error(runner.invoke(app, ["train", str(config), "--out", str(tmp_path / "r1")]))
    assert "square-00" in error and "4 frames" in error
    skip = _write_config(tmp_path / "s.yaml", {**data, "on_error": "skip"}, TINY)
    _invoke("train", skip, "--out", tmp_path / "r2", "-q")
    report = json.loads((tmp_path / "r2" / "report.json").read_text())
    assert [s for s in report["skipped"] if "square-00" in s], report["skipped"]


def test_the_demo_runs_small_and_prints_the_table(tmp_path):
    result = _invoke("demo", "next-frame", "--out", tmp_path, "--epochs", 1, "--sequences", 40)
    assert "| copy last frame (baseline) |" in result.stdout
    assert "| linear extrapolation (baseline) |" in result.stdout
    assert "both baselines on MSE" in result.stdout
    assert (tmp_path / "runs" / "convlstm" / "eval-best-test" / "predictions.gif").is_file()
    assert (tmp_path / "configs" / "moving_mnist_demo.yaml").is_file()
