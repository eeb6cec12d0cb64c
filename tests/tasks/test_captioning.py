"""Image captioning through the CLI on generated data in the Flickr8k layout."""

import json

import pytest
import yaml
from PIL import Image
from typer.testing import CliRunner

from lrcn.cli import app
from lrcn.data.synthetic import write_shapes_flickr8k

runner = CliRunner()
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    root = tmp_path_factory.mktemp("captions")
    return write_shapes_flickr8k(
        root / "flickr", num_images=160, size=64, seed=5
    ), root / "features"


def _config(data, features, **model):
    return {
        "task": "captioning",
        "data": {"format": "flickr8k", "root": str(data), "min_count": 2, "num_workers": 0},
        "model": {"backbone": "efficientnet_lite0", "image_size": 96, "embed_size": 32, "hidden_size": 64, "dropout": 0.1, **model},
        "train": {"epochs": 8, "batch_size": 32, "lr": 0.005, "device": "cpu", "feature_cache": str(features)},
        "decode": {"beam_size": 3, "max_len": 16},
    }  # fmt: skip


def _run(args):
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return result


def test_show_attend_tell_train_evaluate_predict(shapes, tmp_path):
    data, features = shapes
    config = tmp_path / "sat.yaml"
    config.write_text(
        yaml.safe_dump(_config(data, features, name="show_attend_tell", attention_size=32))
    )
    _run(["train", str(config), "--out", str(tmp_path / "run")])
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert (
        report["vocabulary"] > 20
        and report["best"]["metric"] == "val_cider"
        and report["best"]["value"] > 0
    )

    result = _run(["evaluate", str(tmp_path / "run"), "--json"])
    metrics = json.loads(result.stdout.strip().splitlines()[-1])
    model, frequent = metrics["model"], metrics["most_frequent_caption"]
    assert set(model) == {"bleu1", "bleu2", "bleu3", "bleu4", "meteor", "rouge_l", "cider"}
    # Learning bought something: far above captioning every image the same way.
    assert model["cider"] > 2 * frequent["cider"] and model["bleu4"] > frequent["bleu4"] + 0.2
    assert (tmp_path / "run" / "eval-best-test" / "captions.csv").read_text().count("\n") == 25

    image = next((data / "Flicker8k_Dataset").glob("*.jpg"))
    result = _run(
        [
            "predict",
            str(tmp_path / "run"),
            str(image),
            "--n-best",
            "2",
            "--attention",
            str(tmp_path / "att"),
            "--json",
        ]
    )
    (prediction,) = json.loads(result.stdout)
    assert prediction["caption"] and len(prediction["n_best"]) == 2
    assert prediction["n_best"][0]["log_prob"] >= prediction["n_best"][1]["log_prob"]
    with Image.open(prediction["attention"]) as png:
        assert png.size[0] > 600


@pytest.mark.parametrize(
    "model",
    [
        {"name": "show_and_tell"},
        {"name": "lrcn_captioner"},
        {"name": "lrcn_captioner", "factored": False},
    ],
)
def test_pooled_feature_captioners_train_evaluate_predict(shapes, tmp_path, model):
    data, features = shapes
    raw = _config(data, features, **model)
    raw["train"]["epochs"] = 2
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(raw))
    _run(["train", str(config), "--out", str(tmp_path / "run")])
    result = _run(["evaluate", str(tmp_path / "run"), "--json", "--beam", "1"])
    metrics = json.loads(result.stdout.strip().splitlines()[-1])
    assert 0 <= metrics["model"]["bleu4"] <= 1 and metrics["images"] == 24
    assert metrics["beam_size"] == 1
    image = next((data / "Flicker8k_Dataset").glob("*.jpg"))
    result = _run(["predict", str(tmp_path / "run"), str(image), "--beam", "1"])
    assert image.name in result.output
    result = runner.invoke(
        app, ["predict", str(tmp_path / "run"), str(image), "--attention", str(tmp_path / "att")]
    )
    assert result.exit_code == 2 and "needs an attention model" in result.output


def test_edited_vocabulary_and_bad_images_are_refused(shapes, tmp_path):
    data, features = shapes
    raw = _config(data, features, name="show_and_tell")
    raw["train"]["epochs"] = 1
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(raw))
    _run(["train", str(config), "--out", str(tmp_path / "run")])
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not an image")
    result = runner.invoke(app, ["predict", str(tmp_path / "run"), str(broken)])
    assert result.exit_code == 1 and "broken.jpg: unreadable image" in result.output
    meta_path = tmp_path / "run" / "best" / "bundle.json"
    meta = json.loads(meta_path.read_text())
    words = meta["extras"]["vocab"]["words"]
    words[5], words[6] = words[6], words[5]
    meta_path.write_text(json.dumps(meta))
    result = runner.invoke(app, ["predict", str(tmp_path / "run"), str(broken)])
    assert result.exit_code == 2
    assert "bundle.json: extras.vocab: the stored vocabulary does not match" in result.output


def test_fine_tuning_reads_pixels_not_the_cache(shapes, tmp_path):
    import shutil

    data = tmp_path / "flickr"
    shutil.copytree(shapes[0], data)
    train_list = (data / "Flickr8k_text" / "Flickr_8k.trainImages.txt").read_text().split()
    gray = data / "Flicker8k_Dataset" / train_list[0]
    Image.open(gray).convert("L").save(gray)  # a grayscale photo among RGB ones
    raw = _config(
        data,
        tmp_path / "unused",
        name="show_and_tell",
        backbone="simple_cnn",
        freeze_backbone=False,
    )
    del raw["model"]["image_size"]
    raw["train"]["epochs"] = 1
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(raw))
    result = _run(["train", str(config), "--out", str(tmp_path / "run")])
    assert not (tmp_path / "unused").exists()
    assert "converted 1 non-RGB images to RGB" in result.output
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert report["converted_to_rgb"] == [f"{gray}: converted L to RGB"]
    image = next((data / "Flicker8k_Dataset").glob("*.jpg"))
    assert image.name in _run(["predict", str(tmp_path / "run"), str(image)]).output
