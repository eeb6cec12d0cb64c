"""Visual question answering through the CLI, on the built-in shapes data in the VQA v2 layout."""

import json

import pytest
import yaml
from typer.testing import CliRunner

from lrcn.cli import app
from lrcn.data.synthetic_vqa import write_shapes_vqa

runner = CliRunner()
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    root = tmp_path_factory.mktemp("vqa")
    return write_shapes_vqa(root / "data", num_images=300, size=64, seed=1)


def _config(tmp_path, data, name, epochs, **model):
    raw = {
        "task": "vqa",
        "data": {"format": "vqa", "root": str(data), "num_answers": 50, "val_fraction": 0.1},
        "model": {"name": name, "backbone": "efficientnet_lite0", "image_size": 64,
                  "embed_size": 32, "dropout": 0.1, **model},
        "train": {"epochs": epochs, "batch_size": 64, "lr": 0.003, "device": "cpu",
                  "feature_cache": str(data.parent / "features")},
    }  # fmt: skip
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _train_and_evaluate(tmp_path, data, name, epochs, **model):
    run = tmp_path / name
    config = _config(tmp_path, data, name, epochs, **model)
    trained = runner.invoke(app, ["train", str(config), "--out", str(run), "-q"])
    assert trained.exit_code == 0, trained.output
    evaluated = runner.invoke(app, ["evaluate", str(run), "--json"])
    assert evaluated.exit_code == 0, evaluated.output
    return run, json.loads((run / "eval-best-test" / "metrics.json").read_text())


SIZES = {
    "question_only": {"hidden_size": 64, "fused_size": 128},
    "image_only": {"fused_size": 128},
    "deeper_lstm_q_norm_i": {"hidden_size": 64, "num_layers": 2, "fused_size": 128},
    "show_ask_attend_answer": {"hidden_size": 128, "glimpses": 2, "attention_size": 64,
                               "classifier_size": 128},
}  # fmt: skip


def test_both_models_beat_both_priors_and_answer_through_the_cli(shapes, tmp_path):
    scores = {}
    for name, sizes in SIZES.items():
        # the priors settle within a few epochs; attention needs the longest
        epochs = {"question_only": 6, "image_only": 6, "show_ask_attend_answer": 25}.get(name, 15)
        _, metrics = _train_and_evaluate(tmp_path, shapes, name, epochs, **sizes)
        scores[name] = metrics["vqa_accuracy"]
        assert set(metrics["per_answer_type"]) >= {"yes/no", "number", "other"}
    prior = metrics["question_type_prior"]["vqa_accuracy"]
    print(scores, prior)
    for model in ("deeper_lstm_q_norm_i", "show_ask_attend_answer"):
        for baseline in ("question_only", "image_only"):
            assert scores[model] > scores[baseline] + 0.1, scores
        assert scores[model] > prior + 0.1, (scores, prior)
    image = sorted((shapes / "val2014").glob("*.jpg"))[0]
    answered = runner.invoke(app, [
        "predict", str(tmp_path / "show_ask_attend_answer"), str(image), "--question",
        "is there a zebra?", "--top", "2", "--attention", str(tmp_path / "att"), "--json",
    ])  # fmt: skip
    assert answered.exit_code == 0, answered.output
    (result,) = json.loads(answered.stdout)
    assert len(result["answers"]) == 2 and result["unknown_words"] == ["zebra"]
    assert result["attention"].endswith("-attention.png")


def test_predict_needs_a_question_and_attention_needs_an_attention_model(shapes, tmp_path):
    run, _ = _train_and_evaluate(tmp_path, shapes, "image_only", 1, fused_size=32)
    image = sorted((shapes / "val2014").glob("*.jpg"))[0]
    missing = runner.invoke(app, ["predict", str(run), str(image)])
    assert missing.exit_code == 2 and "--question" in missing.output
    refused = runner.invoke(
        app, ["predict", str(run), str(image), "--question", "how many?", "--attention", "x"]
    )
    assert refused.exit_code == 2 and "needs an attention model" in refused.output
    nothing = runner.invoke(app, ["predict", str(run), str(image), "--question", "zorg blip?"])
    assert nothing.exit_code == 2 and "no word of 'zorg blip?' was seen" in nothing.output
    bundle = run / "best" / "bundle.json"
    original = json.loads(bundle.read_text())
    for edit in ("swap", "drop"):  # an answer list that no longer fits the weights
        meta = json.loads(json.dumps(original))
        answers = meta["extras"]["answers"]
        if edit == "swap":
            answers[0], answers[1] = answers[1], answers[0]
        else:
            answers.pop()
        bundle.write_text(json.dumps(meta))
        edited = runner.invoke(app, ["predict", str(run), str(image), "--question", "how many?"])
        errors = [line for line in edited.stderr.splitlines() if line.startswith("error: ")]
        assert edited.exit_code == 2 and len(errors) == 1, edited.stderr
        assert "bundle.json: extras.answers_fingerprint" in errors[0], errors[0]
        assert "answer list does not match its fingerprint" in errors[0]


def _small_copy(shapes, tmp_path):
    """The shapes data's files, copied so a test can break them."""
    import shutil

    data = tmp_path / "data"
    shutil.copytree(shapes, data)
    return data


def test_a_bad_annotation_is_one_line_or_skipped_and_reported(shapes, tmp_path):
    data = _small_copy(shapes, tmp_path)
    annotations = data / "v2_mscoco_train2014_annotations.json"
    raw = json.loads(annotations.read_text())
    raw["annotations"][3]["answers"] = "red"
    annotations.write_text(json.dumps(raw))
    config = _config(tmp_path, data, "image_only", 1, fused_size=16)
    failed = runner.invoke(app, ["train", str(config), "--out", str(tmp_path / "r1")])
    errors = [line for line in failed.stderr.splitlines() if line.startswith("error: ")]
    assert failed.exit_code == 2 and len(errors) == 1, failed.stderr
    assert "v2_mscoco_train2014_annotations.json" in errors[0]
    assert "annotations[3].answers" in errors[0] and "Traceback" not in failed.output
    skipping = runner.invoke(app, [
        "train", str(config), "--out", str(tmp_path / "r2"), "-q", "--set", "data.on_error=skip",
    ])  # fmt: skip
    assert skipping.exit_code == 0, skipping.output
    report = json.loads((tmp_path / "r2" / "report.json").read_text())
    assert any("annotations[3].answers" in p for p in report["skipped"]), report["skipped"]


def test_vqa_from_csv_then_train_reads_it(tmp_path):
    from PIL import Image

    photos = tmp_path / "photos"
    photos.mkdir()
    rows = ["image,question,answer"]
    for k in range(6):
        colour = ("red", "blue")[k % 2]
        Image.new("RGB", (40, 40), colour).save(photos / f"p{k}.jpg")
        rows += [f"p{k}.jpg,what colour is it?,{colour}", f"p{k}.jpg,what colour is it?,{colour}"]
    (tmp_path / "qa.csv").write_text("\n".join(rows) + "\n")
    made = runner.invoke(app, ["datasets", "vqa-from-csv", str(photos), str(tmp_path / "qa.csv")])
    assert made.exit_code == 0, made.output
    assert "data.root=" in made.stdout and (photos / "images.json").is_file()
    rows.append("p9.jpg,is it red?,yes")
    (tmp_path / "bad.csv").write_text("\n".join(rows) + "\n")
    bad = runner.invoke(app, ["datasets", "vqa-from-csv", str(photos), str(tmp_path / "bad.csv")])
    errors = [line for line in bad.stderr.splitlines() if line.startswith("error: ")]
    assert bad.exit_code == 2 and len(errors) == 1, bad.stderr
    assert "bad.csv:14" in errors[0] and "p9.jpg" in errors[0]
