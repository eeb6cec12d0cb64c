"""Text-to-image retrieval through the CLI: train -> evaluate -> index -> search on the
built-in shapes captions (Flickr8k layout), and the captioner's generative retrieval."""

import json
import shutil

import pytest
import yaml
from typer.testing import CliRunner

from lrcn.cli import app
from lrcn.data.synthetic import write_shapes_flickr8k

runner = CliRunner()
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    root = tmp_path_factory.mktemp("retrieval")
    return write_shapes_flickr8k(root / "flickr", num_images=240, size=64, seed=3)


def _config(tmp_path, data, task, model, epochs, image_size=64):
    raw = {
        "task": task,
        "data": {"format": "flickr8k", "root": str(data), "min_count": 1, "num_workers": 0},
        "model": {"backbone": "efficientnet_lite0", "image_size": image_size, **model},
        "train": {"epochs": epochs, "batch_size": 64, "lr": 0.003, "device": "cpu",
                  "feature_cache": str(data.parent / "features")},
    }  # fmt: skip
    if task == "captioning":
        raw["decode"] = {"beam_size": 1, "max_len": 16}
    path = tmp_path / f"{model['name']}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _errors(result):
    return [line for line in result.stderr.splitlines() if line.startswith("error: ")]


def test_train_evaluate_index_search_through_the_cli(shapes, tmp_path):
    model = {"name": "vse", "embed_size": 32, "hidden_size": 64, "joint_size": 64}
    config = _config(tmp_path, shapes, "retrieval", model, 12)
    run = tmp_path / "vse"
    trained = runner.invoke(app, ["train", str(config), "--out", str(run), "-q"])
    assert trained.exit_code == 0, trained.output
    evaluated = runner.invoke(app, ["evaluate", str(run), "--json"])
    assert evaluated.exit_code == 0, evaluated.output
    metrics = json.loads((run / "eval-best-test" / "metrics.json").read_text())
    for direction in ("text_to_image", "image_to_text"):
        model_r1 = metrics[direction]["R@1"]
        chance_r1 = metrics["random_ranking"][direction]["R@1"]
        assert model_r1 > 4 * chance_r1 and model_r1 > chance_r1 + 10, (direction, metrics)
        assert metrics[direction]["median_rank"] < metrics["random_ranking"][direction][
            "median_rank"
        ] / 3  # fmt: skip
    assert (run / "eval-best-test" / "rankings.csv").is_file()

    images = shapes / "Flicker8k_Dataset"
    index = tmp_path / "index"
    made = runner.invoke(app, ["index", str(run), str(images), "--out", str(index)])
    assert made.exit_code == 0, made.output
    assert json.loads((index / "index.json").read_text())["count"] == 240
    page = tmp_path / "page.html"
    found = runner.invoke(app, [
        "search", str(index), "a red zebra on the left", "--top", "5", "--json",
        "--html", str(page),
    ])  # fmt: skip
    assert found.exit_code == 0, found.output
    result = json.loads(found.stdout)
    assert result["unknown_words"] == ["zebra"] and len(result["results"]) == 5
    scores = [r["score"] for r in result["results"]]
    assert scores == sorted(scores, reverse=True)
    assert page.read_text().count('<img src="data:image/jpeg;base64,') == 5

    moved = tmp_path / "moved.jpg"
    shutil.move(result["results"][0]["image"], moved)  # deleted since it was indexed
    gone = runner.invoke(
        app, ["search", str(index), "a red zebra on the left", "--top", "5", "--html", str(page)]
    )
    assert gone.exit_code == 0 and "no longer exist" in gone.stderr, gone.output
    assert "missing or unreadable since it was indexed" in page.read_text()
    shutil.move(moved, result["results"][0]["image"])

    nothing = runner.invoke(app, ["search", str(index), "zebra giraffe"])
    assert nothing.exit_code == 2 and len(_errors(nothing)) == 1, nothing.stderr
    assert "no word of 'zebra giraffe' was seen in training" in _errors(nothing)[0]

    ranked = runner.invoke(app, [
        "predict", str(run), *[str(p) for p in sorted(images.glob("*.jpg"))[:4]],
        "--text", "a blue square", "--json",
    ])  # fmt: skip
    assert ranked.exit_code == 0, ranked.output
    assert [r["rank"] for r in json.loads(ranked.stdout)] == [1, 2, 3, 4]

    shutil.copy(run / "last" / "model.safetensors", run / "best" / "model.safetensors")
    stale = runner.invoke(app, ["search", str(index), "a red circle"])
    assert stale.exit_code == 2 and "built with other weights" in _errors(stale)[0]


def test_a_captioner_ranks_by_likelihood_without_more_training(shapes, tmp_path):
    model = {"name": "show_and_tell", "embed_size": 32, "hidden_size": 128, "dropout": 0.1}
    config = _config(tmp_path, shapes, "captioning", model, 15, image_size=128)
    run = tmp_path / "captioner"
    trained = runner.invoke(app, ["train", str(config), "--out", str(run), "-q"])
    assert trained.exit_code == 0, trained.output
    evaluated = runner.invoke(app, ["evaluate", str(run), "--retrieval", "--json"])
    assert evaluated.exit_code == 0, evaluated.output
    ranked = json.loads((run / "eval-best-test" / "metrics.json").read_text())["retrieval"]
    chance = ranked["random_ranking"]["text_to_image"]
    # Several test images fit one templated sentence ("a red square on the bottom"), which caps
    # R@1; the median rank shows the ranking.
    assert ranked["text_to_image"]["R@1"] > 2 * chance["R@1"], ranked
    assert ranked["text_to_image"]["R@5"] > 2 * chance["R@5"], ranked
    assert ranked["text_to_image"]["median_rank"] < chance["median_rank"] / 2, ranked
    folds = runner.invoke(app, ["evaluate", str(run), "--retrieval", "--folds", "7"])
    assert folds.exit_code == 2 and "equal folds" in _errors(folds)[0], folds.stderr
