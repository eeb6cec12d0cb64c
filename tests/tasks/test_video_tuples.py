"""Visual tuples through the CLI, on the built-in motion data set in the MSR-VTT layout: the
per-slot tuple classifier (``task: video_tuples``) and the three tuple-to-sentence captioners
that read the ``tuples.json`` its ``evaluate`` writes (``task: video_captioning``)."""

import csv
import json
import shutil
from collections import Counter

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from lrcn.cli import app
from lrcn.data.formats.tuples import TupleSlots, read_tuples, slot_labels, write_tuples
from lrcn.data.formats.video_captions import read_msrvtt
from lrcn.data.synthetic_motion import motion_word_accuracy, write_motion_msrvtt

runner = CliRunner()
pytestmark = pytest.mark.slow

SLOTS = {
    "colour": ["red", "green", "blue"],
    "shape": ["circle", "square", "triangle"],
    "direction": ["left", "right", "up", "down"],
}
ALIASES = {
    "disc": "circle", "ball": "circle", "box": "square", "block": "square", "wedge": "triangle",
    "leftwards": "left", "rightwards": "right",
    "upwards": "up", "upward": "up", "top": "up",
    "downwards": "down", "downward": "down", "bottom": "down",
}  # fmt: skip
MODEL = {"backbone": "efficientnet_lite0", "image_size": 64}


@pytest.fixture(scope="module")
def motion(tmp_path_factory):
    """120 videos of a coloured shape moving one of four ways; one shared feature cache
    (``data.parent / "features"``)."""
    root = tmp_path_factory.mktemp("motion")
    return write_motion_msrvtt(root / "data", num_videos=120, frames=12, size=48, seed=3)


def _train_section(data, epochs):
    return {"epochs": epochs, "batch_size": 32, "lr": 0.003, "device": "cpu",
            "feature_cache": str(data.parent / "features")}  # fmt: skip


def _tuples_config(folder, data, epochs, slots, name="tuples", **extra):
    raw = {
        "task": "video_tuples",
        "data": {"format": "msrvtt", "root": str(data), "frames": 8, "slots": slots, **extra},
        "model": {"name": "tuple_heads", **MODEL, "inputs": "rgb+flow", "hidden_size": 128,
                  "dropout": 0.2},
        "train": _train_section(data, epochs),
    }  # fmt: skip
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _captioner_config(folder, data, name, epochs, tuples, **model):
    """A tuple captioner's config; ``tuples=None`` leaves ``data.tuples`` out."""
    raw = {
        "task": "video_captioning",
        "data": {"format": "msrvtt", "root": str(data), "frames": 8, "min_count": 1},
        "model": {"name": name, **MODEL, "embed_size": 32, "hidden_size": 64, "dropout": 0.2,
                  **model},
        "train": _train_section(data, epochs),
        "decode": {"beam_size": 2, "max_len": 12},
    }  # fmt: skip
    if tuples is not None:
        raw["data"]["tuples"] = str(tuples)
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _train(config, run, *extra):
    result = runner.invoke(app, ["train", str(config), "--out", str(run), "-q", *extra])
    assert result.exit_code == 0, result.output
    return result


def _one_error(result):
    """The one ``error: `` line a refused command printed on stderr."""
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.output
    return errors[0]


@pytest.fixture(scope="module")
def classifier(motion, tmp_path_factory):
    """The tuple classifier on the given slots (aliases for the synonyms), trained 30 epochs
    and evaluated on the test split: its run folder, whose ``eval-best-test/`` holds
    ``metrics.json`` and ``tuples.json`` (every video of every split)."""
    folder = tmp_path_factory.mktemp("classifier")
    config = _tuples_config(folder, motion, 30, SLOTS, aliases=ALIASES)
    run = folder / "run"
    _train(config, run)
    evaluated = runner.invoke(app, ["evaluate", str(run), "--json"])
    assert evaluated.exit_code == 0, evaluated.output
    assert json.loads(evaluated.stdout)["outputs"]["tuples"] == str(
        run / "eval-best-test" / "tuples.json"
    )
    return run


@pytest.fixture(scope="module")
def tuples(classifier):
    """The classifier's ``tuples.json``: what the tuple captioners read as ``data.tuples``."""
    return classifier / "eval-best-test" / "tuples.json"


def _labels(items):
    """Each video's slot labels ``(N, 3)`` in the given slots' layout."""
    slots = TupleSlots.given(SLOTS)
    return slots, np.array([slot_labels(item.captions, slots, ALIASES) for item in items])


def test_the_tuple_classifier_learns_every_slot_beyond_the_majority_class(motion, classifier):
    metrics = json.loads((classifier / "eval-best-test" / "metrics.json").read_text())
    assert metrics["split"] == "test" and metrics["videos"] == 24
    assert set(metrics["slots"]) == set(SLOTS) and metrics["tuples_videos"] == 120
    assert metrics["slot_accuracy"] == pytest.approx(np.mean(list(metrics["slots"].values())))

    # tuples.json reads back, in the given layout (each slot with <none>), for all 120 videos
    written = read_tuples(classifier / "eval-best-test" / "tuples.json")
    split = read_msrvtt(motion, "raise")
    slots, train_labels = _labels(split.train)
    assert written.slots.to_dict() == slots.to_dict()
    assert set(written.videos) == {i.video_id for i in split.train + split.val + split.test}

    # the most probable words of the test videos' tuples are what metrics.json scored
    _, test_labels = _labels(split.test)
    names = list(slots.slots)
    for s, name in enumerate(names):
        best = [written.slots.best_words(written.videos[i.video_id])[name] for i in split.test]
        truth = [slots.slots[name][k] for k in test_labels[:, s]]
        right = np.mean([b == t for b, t in zip(best, truth, strict=True)])
        assert right == pytest.approx(metrics["slots"][name], abs=1e-6), name

    # learnt: well beyond always naming the most common training word of each slot
    majority = [Counter(train_labels[:, s]).most_common(1)[0][0] for s in range(len(names))]
    baseline = {name: float(np.mean(test_labels[:, s] == majority[s])) for s, name in
                enumerate(names)}  # fmt: skip
    mean_baseline = float(np.mean(list(baseline.values())))
    # 0.903 vs 0.222 when written (colour 1.0, shape 0.875, direction 0.833)
    assert metrics["slot_accuracy"] >= mean_baseline + 0.4, (metrics["slots"], baseline)
    # the direction is in the motion (flow), not in any one frame: 0.833 vs 0.208
    assert metrics["slots"]["direction"] >= baseline["direction"] + 0.3, (metrics, baseline)


def test_predict_prints_each_videos_tuple(motion, classifier):
    video = sorted((motion / "TestVideo").glob("*.mp4"))[0]
    shown = runner.invoke(app, ["predict", str(classifier), str(video)])
    assert shown.exit_code == 0, shown.output
    first, *rest = shown.stdout.splitlines()
    assert first.startswith(f"{video}: ") and len(first.split(": ", 1)[1].split(" / ")) == 3
    assert len(rest) == 3 and all(line.strip().split(":")[0] in SLOTS for line in rest)

    as_json = runner.invoke(app, ["predict", str(classifier), str(video), "--json", "--top", "2"])
    assert as_json.exit_code == 0, as_json.output
    (result,) = json.loads(as_json.stdout)
    assert result["input"] == str(video) and set(result["tuple"]) == set(SLOTS)
    assert first.split(": ", 1)[1] == " / ".join(result["tuple"].values())
    tuples = read_tuples(classifier / "eval-best-test" / "tuples.json")
    written = tuples.slots.distributions(tuples.videos[video.stem])
    for name, word in result["tuple"].items():
        top = result["slots"][name]  # the 2 most probable words, the best first
        assert len(top) == 2 and next(iter(top)) == word
        assert list(top.values()) == sorted(top.values(), reverse=True)
        # from the video file as from the feature cache evaluate read: the same distribution
        assert all(p == pytest.approx(written[name][w], abs=0.02) for w, p in top.items())


def test_mined_slots_train_evaluate_and_are_reported(motion, tmp_path):
    run = tmp_path / "run"
    _train(_tuples_config(tmp_path, motion, 2, "mined"), run)
    report = json.loads((run / "report.json").read_text())
    mined = report["slots"]
    assert list(mined) == [f"slot{k}" for k in range(1, len(mined) + 1)] and len(mined) >= 3
    assert all(words[-1] == "<none>" for words in mined.values())
    words = [set(w) for w in mined.values()]
    assert {"red", "green", "blue", "<none>"} in words  # the colours, and nothing else
    assert any({"circle", "square", "triangle"} <= w for w in words)
    assert any({"left", "right", "up", "down"} <= w for w in words)
    evaluated = runner.invoke(app, ["evaluate", str(run), "--json"])
    assert evaluated.exit_code == 0, evaluated.output
    metrics = json.loads((run / "eval-best-test" / "metrics.json").read_text())
    assert set(metrics["slots"]) == set(mined) and metrics["tuples_videos"] == 120
    assert read_tuples(run / "eval-best-test" / "tuples.json").slots.to_dict() == mined


def _evaluate_and_predict(run, motion):
    """Evaluate a captioner on the test split and describe a test video; the metrics."""
    evaluated = runner.invoke(app, ["evaluate", str(run), "--json"])
    assert evaluated.exit_code == 0, evaluated.output
    metrics = json.loads((run / "eval-best-test" / "metrics.json").read_text())
    assert metrics["videos"] == 24 and metrics["skipped"] == []
    assert set(metrics) >= {"model", "nearest_neighbour", "most_frequent_caption"}
    video = sorted((motion / "TestVideo").glob("*.mp4"))[0]
    predicted = runner.invoke(app, ["predict", str(run), str(video)])
    assert predicted.exit_code == 0, predicted.output
    first = predicted.stdout.splitlines()[0]
    assert first.startswith(f"{video}: ") and first.split(": ", 1)[1].strip()
    return metrics


@pytest.mark.parametrize("name", ["tuple_encoder_decoder", "tuple_one_hot"])
def test_tuple_captioners_train_evaluate_and_predict(motion, tuples, tmp_path, name):
    run = tmp_path / "run"
    _train(_captioner_config(tmp_path, motion, name, 3, tuples), run)
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [0, 1, 2] and "val_cider" in rows[0]["metrics"]
    _evaluate_and_predict(run, motion)


def _word_accuracy(run):
    """Colour / shape / direction accuracy of the test captions ``evaluate`` wrote."""
    with (run / "eval-best-test" / "captions.csv").open() as f:
        rows = list(csv.DictReader(f))
    return motion_word_accuracy(
        [r["caption"] for r in rows], [r["references"].split(" | ") for r in rows]
    )


def test_the_probabilities_captioner_names_what_the_tuples_say(motion, tuples, tmp_path):
    """The paper's best variant, on the classifier's probability vectors: far beyond the most
    frequent sentence, and the direction right on most test videos (it reads the tuple's
    direction slot; the classifier got 0.833 of them)."""
    run = tmp_path / "run"
    config = _captioner_config(
        tmp_path, motion, "tuple_probabilities", 30, tuples, embed_size=64, hidden_size=128
    )
    _train(config, run)
    metrics = _evaluate_and_predict(run, motion)
    model, frequent = metrics["model"], metrics["most_frequent_caption"]
    assert "meteor" in model and "meteor" in frequent  # the full protocol
    # CIDEr 1.639 vs 0.505 when written (nearest neighbour of the tuples: 1.424)
    assert model["cider"] > frequent["cider"] + 0.6, (model, frequent)
    accuracy = _word_accuracy(run)
    # colour 0.958, shape 0.875, direction 0.833, all three 0.750 when written
    assert accuracy["direction"] >= 0.6 and accuracy["colour"] >= 0.75, accuracy


# --------------------------------------------------------------------------------------------
# Bad input: one line on stderr naming the file, exit code 2
# --------------------------------------------------------------------------------------------


def test_a_tuple_captioner_without_tuples_is_refused(motion, tmp_path):
    config = _captioner_config(tmp_path, motion, "tuple_probabilities", 1, None)
    refused = runner.invoke(app, ["train", str(config), "--out", str(tmp_path / "run")])
    assert refused.exit_code == 2, refused.output
    error = _one_error(refused)
    assert "data.tuples" in error and "tuple_probabilities reads visual tuples" in error, error
    assert not (tmp_path / "run").exists()


def test_a_training_video_without_a_tuple_is_named_or_skipped(motion, tuples, tmp_path):
    full = read_tuples(tuples)
    victim = read_msrvtt(motion, "raise").train[0]
    partial = tmp_path / "partial.json"
    kept = {k: v for k, v in full.videos.items() if k != victim.video_id}
    write_tuples(partial, full.slots, kept, source="all but one")
    config = _captioner_config(tmp_path, motion, "tuple_one_hot", 1, partial)
    refused = runner.invoke(app, ["train", str(config), "--out", str(tmp_path / "r1")])
    assert refused.exit_code == 2, refused.output
    error = _one_error(refused)
    assert str(partial) in error and f"no tuple for video {victim.video_id!r}" in error, error
    _train(config, tmp_path / "r2", "--set", "data.on_error=skip")
    report = json.loads((tmp_path / "r2" / "report.json").read_text())
    assert report["train_videos"] == 83
    assert [s for s in report["skipped"] if f"{victim.video_id!r}" in s] == report["skipped"]
    assert len(report["skipped"]) == 1


@pytest.fixture(scope="module")
def captioner(motion, tuples, tmp_path_factory):
    """A tuple captioner trained one epoch on the classifier's tuples: its run folder."""
    folder = tmp_path_factory.mktemp("captioner")
    run = folder / "run"
    _train(_captioner_config(folder, motion, "tuple_one_hot", 1, tuples), run)
    return run


def test_tuples_with_other_slots_are_refused(motion, tuples, captioner, tmp_path):
    """A file whose vectors mean other words than the run's: refused, not misread."""
    full = read_tuples(tuples)
    colours = TupleSlots.given({"colour": SLOTS["colour"]})
    one_hot = colours.vector({"colour": {"red": 1.0}})
    other = tmp_path / "colours-only.json"
    write_tuples(other, colours, dict.fromkeys(full.videos, one_hot))
    refused = runner.invoke(app, ["evaluate", str(captioner), "--set", f"data.tuples={other}"])
    assert refused.exit_code == 2, refused.output
    error = _one_error(refused)
    assert str(other) in error and "not the slots and words the model was trained" in error


def test_predict_names_the_video_that_has_no_tuple(motion, tuples, captioner, tmp_path):
    """The other video is still described; the one without a tuple is the one error line.
    (predict exits 1 when some input failed, as for an unreadable video.)"""
    video = sorted((motion / "TestVideo").glob("*.mp4"))[0]
    stranger = tmp_path / "stranger.mp4"
    shutil.copy(video, stranger)
    result = runner.invoke(app, ["predict", str(captioner), str(video), str(stranger)])
    assert result.exit_code == 1, result.output
    assert result.stdout.startswith(f"{video}: ") and str(stranger) not in result.stdout
    error = _one_error(result)
    assert str(tuples) in error and f"no tuple for video 'stranger' ({stranger})" in error
