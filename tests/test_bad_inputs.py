"""A table of bad inputs walked through the CLI as a user meets them: each ends in one line on
stderr naming the file or key, no traceback, and the right exit code (2: bad input; 1: some
inputs of a predict failed)."""

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import yaml
from PIL import Image
from typer.testing import CliRunner

from lrcn.cli import app
from lrcn.data.synthetic import write_shapes_flickr8k

runner = CliRunner()
pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _no_traceback_escape_hatch(monkeypatch):
    monkeypatch.delenv("LRCN_TRACEBACK", raising=False)


def _activity(videos: Path, features: Path) -> dict:
    return {
        "task": "activity",
        "data": {"format": "ucf101", "root": str(videos), "clip_len": 8, "stride": 4,
                 "num_workers": 0},
        "model": {"name": "lrcn", "backbone": "efficientnet_lite0", "image_size": 64,
                  "hidden_size": 16, "dropout": 0.0},
        "train": {"epochs": 1, "batch_size": 8, "device": "cpu", "feature_cache": str(features)},
    }  # fmt: skip


def _write(path: Path, raw: dict) -> Path:
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory, order_ucf101):
    """A trained activity run and a trained captioning run, copied per test when edited."""
    root = tmp_path_factory.mktemp("bad")
    config = _write(root / "act.yaml", _activity(order_ucf101, root / "features"))
    result = runner.invoke(app, ["train", str(config), "--out", str(root / "act"), "-q"])
    assert result.exit_code == 0, result.output
    shapes = write_shapes_flickr8k(root / "flickr", num_images=60, size=48, seed=5)
    caption = {
        "task": "captioning",
        "data": {"format": "flickr8k", "root": str(shapes), "min_count": 1, "num_workers": 0},
        "model": {"name": "show_and_tell", "backbone": "efficientnet_lite0", "image_size": 64,
                  "embed_size": 16, "hidden_size": 16},
        "train": {"epochs": 1, "batch_size": 16, "device": "cpu",
                  "feature_cache": str(root / "features")},
    }  # fmt: skip
    config = _write(root / "cap.yaml", caption)
    result = runner.invoke(app, ["train", str(config), "--out", str(root / "cap"), "-q"])
    assert result.exit_code == 0, result.output
    return {"root": root, "videos": order_ucf101, "act": root / "act", "cap": root / "cap",
            "images": shapes / "Flicker8k_Dataset"}  # fmt: skip


def _copy(runs, name: str, tmp_path: Path) -> Path:
    return Path(shutil.copytree(runs[name], tmp_path / name))


def _edit_bundle(run: Path, change: Callable[[dict], None]) -> None:
    path = run / "best" / "bundle.json"
    meta = json.loads(path.read_text())
    change(meta)
    path.write_text(json.dumps(meta))


def _video(runs) -> str:
    return str(next(runs["videos"].glob("CircleThenSquare/*.avi")))


def _image(runs) -> str:
    return str(sorted(runs["images"].glob("*.jpg"))[0])


def _config(runs, tmp_path: Path, **changes) -> str:
    raw = _activity(runs["videos"], runs["root"] / "features")
    for key, value in changes.items():
        section, field = key.split("__")
        raw[section][field] = value
    return str(_write(tmp_path / "c.yaml", raw))


def _bomb(tmp_path: Path) -> str:
    """A small PNG whose header declares 20000 x 20000 pixels (PIL refuses over ~179 M)."""
    path = tmp_path / "bomb.png"
    Image.new("L", (20000, 20000)).save(path, optimize=True)
    return str(path)


def _weights_of_other_shapes(tmp_path: Path) -> str:
    path = tmp_path / "w.pth"
    torch.save({"conv1.weight": torch.zeros(8, 3, 3, 3)}, path)
    return str(path)


# Each case: the arguments (made from the trained runs and a scratch folder), the exit code, and
# what the one line must say.
CASES: dict[str, tuple[Callable[[dict, Path], list[str]], int, str]] = {
    "fuse with one run": (
        lambda r, t: ["fuse", str(r["act"])],
        2,
        "lrcn fuse: got 1 run; expected two or more runs",
    ),
    "extract-features of a fine-tuned config": (
        lambda r, t: ["extract-features", _config(r, t, model__freeze_backbone=False)],
        2,
        "model.freeze_backbone: is false: a fine-tuned backbone has no fixed features",
    ),
    "bundle.json: hidden size edited (predict)": (
        lambda r, t: [
            "predict",
            str(_edited(r, t, lambda m: m["config"]["model"].update(hidden_size=32))),
            _video(r),
        ],
        2,
        "model.safetensors: weights do not fit the model bundle.json describes",
    ),
    "bundle.json: hidden size edited (evaluate)": (
        lambda r, t: [
            "evaluate",
            str(_edited(r, t, lambda m: m["config"]["model"].update(hidden_size=32))),
        ],
        2,
        "model.safetensors: weights do not fit the model bundle.json describes",
    ),
    "bundle.json: model name edited": (
        lambda r, t: [
            "predict",
            str(_edited(r, t, lambda m: m["config"]["model"].update(name="cnn_convlstm"))),
            _video(r),
        ],
        2,
        "bundle.json: model.hidden_size: unknown key",
    ),
    "bundle.json: a class removed": (
        lambda r, t: ["evaluate", str(_edited(r, t, lambda m: m["extras"]["classes"].pop()))],
        2,
        "head.classifier.weight (4, 16) in the file, (3, 16) in the model",
    ),
    "bundle.json: not JSON": (
        lambda r, t: ["predict", str(_broken_meta(r, t)), _video(r)],
        2,
        "bundle.json: not valid JSON",
    ),
    "resume: a run with no finished epoch": (
        lambda r, t: ["train", "--resume", str(_no_epoch_run(r, t))],
        2,
        "has no finished epoch to resume from (no last/ bundle); expected a run folder that",
    ),
    "resume: no such folder": (
        lambda r, t: ["train", "--resume", str(t / "nowhere")],
        2,
        "nowhere: no such run folder",
    ),
    "a data root that does not exist": (
        lambda r, t: ["train", _config(r, t, data__root=str(t / "gone")), "--out", str(t / "r")],
        2,
        "gone: data.root: data root not found",
    ),
    "a duplicated section in the config": (
        lambda r, t: ["train", _duplicated_section(r, t), "--out", str(t / "r")],
        2,
        "c.yaml:",
    ),
    "resume: config.yaml not YAML": (
        lambda r, t: ["train", "--resume", str(_resume_config(r, t, "task: [activity\n"))],
        2,
        "config.yaml: not valid YAML",
    ),
    "resume: config.yaml with an unknown key": (
        lambda r, t: ["train", "--resume", str(_resume_config(r, t, None))],
        2,
        "config.yaml:",
    ),
    "train.device=tpu": (
        lambda r, t: ["train", _config(r, t), "--set", "train.device=tpu", "--out", str(t / "r")],
        2,
        "(--set): train.device: String should match pattern",
    ),
    "an invalid group_pattern": (
        lambda r, t: [
            "train",
            _config(r, t, data__format="folders", data__group_pattern="_g(\\d+"),
            "--out",
            str(t / "r"),
        ],
        2,
        "data.group_pattern: not a valid regular expression",
    ),
    "an unknown backbone": (
        lambda r, t: ["train", _config(r, t, model__backbone="resnet999"), "--out", str(t / "r")],
        2,
        "model.backbone: unknown backbone 'resnet999'",
    ),
    "backbone weights missing": (
        lambda r, t: [
            "train",
            _config(
                r,
                t,
                model__backbone="torchvision:resnet18",
                model__backbone_weights=str(t / "none.pth"),
            ),
            "--out",
            str(t / "r"),
        ],
        2,
        "none.pth: model.backbone_weights: weights file not found",
    ),
    "backbone weights not a state dict": (
        lambda r, t: [
            "train",
            _config(
                r, t, model__backbone="torchvision:resnet18", model__backbone_weights=str(_text(t))
            ),
            "--out",
            str(t / "r"),
        ],
        2,
        "w.txt: model.backbone_weights: not a state dict that loads safely",
    ),
    "backbone weights of other shapes": (
        lambda r, t: [
            "train",
            _config(
                r,
                t,
                model__backbone="torchvision:resnet18",
                model__backbone_weights=_weights_of_other_shapes(t),
            ),
            "--out",
            str(t / "r"),
        ],
        2,
        "w.pth: model.backbone_weights: does not fit torchvision resnet18",
    ),
    "a run folder that cannot be made": (
        lambda r, t: ["train", _config(r, t), "--out", str(_a_file(t) / "run")],
        2,
        "Not a directory",
    ),
    "a feature cache that cannot be made": (
        lambda r, t: [
            "train",
            _config(r, t, train__feature_cache=str(_a_file(t) / "cache")),
            "--out",
            str(t / "r"),
        ],
        2,
        "Not a directory",
    ),
    "evaluate where results cannot be written": (
        lambda r, t: ["evaluate", str(_unwritable_eval(r, t))],
        2,
        "eval-best-test",
    ),
    "fuse: one run twice": (
        lambda r, t: ["fuse", str(r["act"]), str(r["act"])],
        2,
        "a run is given twice",
    ),
    "fuse: a captioning run": (
        lambda r, t: ["fuse", str(r["act"]), str(r["cap"])],
        2,
        "cap: is a captioning run; expected activity runs to fuse",
    ),
    "resume a folder with no last/": (
        lambda r, t: ["train", "--resume", str(_text(t, "config.yaml", "task: x\n").parent)],
        2,
        "has no finished epoch to resume from",
    ),
    "a folder as the config": (
        lambda r, t: ["train", str(t)],
        2,
        "is a folder; expected a YAML config file",
    ),
    "weights for simple_cnn": (
        lambda r, t: [
            "train",
            _config(
                r,
                t,
                model__backbone="simple_cnn",
                model__backbone_weights=_weights_of_other_shapes(t),
            ),
            "--out",
            str(t / "r"),
        ],
        2,
        "model.backbone_weights: simple_cnn is trained from scratch and takes no weights file",
    ),
    "split-folders with an invalid group pattern": (
        lambda r, t: [
            "datasets",
            "split-folders",
            str(r["videos"]),
            "--group-pattern",
            "_g(\\d+",
            "--out",
            str(t / "s.txt"),
        ],
        2,
        "is not a valid regular expression (missing ), unterminated subpattern",
    ),
    "evaluate --split train": (
        lambda r, t: ["evaluate", str(r["act"]), "--split", "train"],
        2,
        "--split: 'train' is not a split to evaluate; expected test or val",
    ),
    "a run folder that holds a run": (
        lambda r, t: ["train", _config(r, t), "--out", str(r["act"])],
        2,
        "act: already holds a run; expected --resume to continue it, or another --out",
    ),
    "evaluate --set model.*": (
        lambda r, t: ["evaluate", str(r["act"]), "--set", "model.hidden_size=8"],
        2,
        "model.hidden_size cannot change after training",
    ),
    "--beam on an activity run": (
        lambda r, t: ["predict", str(r["act"]), _video(r), "--beam", "3"],
        2,
        "--beam: does not apply to activity runs; for them lrcn predict takes --top",
    ),
    "evaluate --beam on an activity run": (
        lambda r, t: ["evaluate", str(r["act"]), "--beam", "3"],
        2,
        "--beam: does not apply to activity runs; for them lrcn evaluate takes no task options",
    ),
    "--top on a captioning run": (
        lambda r, t: ["predict", str(r["cap"]), _image(r), "--top", "3"],
        2,
        "--top: does not apply to captioning runs",
    ),
    "--set without =": (
        lambda r, t: ["train", _config(r, t), "--set", "data.root"],
        2,
        "--set 'data.root': expected key.path=value",
    ),
    "an empty config": (
        lambda r, t: ["train", str(_text(t, "empty.yaml", ""))],
        2,
        "empty.yaml: expected a mapping with task, data, model and train sections",
    ),
    "a config without task": (
        lambda r, t: ["train", str(_text(t, "notask.yaml", "data: {}\n"))],
        2,
        "notask.yaml: task: unknown task None; expected activity, captioning",
    ),
}


def _edited(runs, tmp_path: Path, change: Callable[[dict], None]) -> Path:
    run = _copy(runs, "act", tmp_path)
    _edit_bundle(run, change)
    return run


def _broken_meta(runs, tmp_path: Path) -> Path:
    run = _copy(runs, "act", tmp_path)
    (run / "best" / "bundle.json").write_text("{not json")
    return run


def _no_epoch_run(runs, tmp_path: Path) -> Path:
    """What a kill during the first epoch leaves: a config, no bundle."""
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(runs["act"] / "config.yaml", run / "config.yaml")
    return run


def _duplicated_section(runs, tmp_path: Path) -> str:
    path = Path(_config(runs, tmp_path))
    path.write_text(path.read_text() + "train:\n  epochs: 2\n")
    return str(path)


def _resume_config(runs, tmp_path: Path, text: str | None) -> Path:
    run = _copy(runs, "act", tmp_path)
    if text is None:
        raw = yaml.safe_load((run / "config.yaml").read_text())
        raw["train"]["learning_rate"] = 0.1
        text = yaml.safe_dump(raw)
    (run / "config.yaml").write_text(text)
    return run


def _text(tmp_path: Path, name: str = "w.txt", text: str = "not weights") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _a_file(tmp_path: Path) -> Path:
    """A file where a folder is needed: root can write anywhere, but not into a file."""
    return _text(tmp_path, "a-file", "")


def _unwritable_eval(runs, tmp_path: Path) -> Path:
    run = _copy(runs, "act", tmp_path)
    (run / "eval-best-test").write_text("a file where the results folder goes")
    return run


# Cases with two problems, and what the second line names.
SECOND_PROBLEM = {"bundle.json: model name edited": "bundle.json: model.num_layers: unknown key"}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_one_line_on_stderr(runs, tmp_path, case):
    make_args, code, message = CASES[case]
    result = runner.invoke(app, make_args(runs, tmp_path))
    assert result.exit_code == code, (result.exit_code, result.output)
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    # One line per problem, each a whole error; the other lines on stderr are the log ("run
    # folder: ..."). The edited model name leaves two keys the other model does not have.
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    expected = SECOND_PROBLEM.get(case)
    assert len(errors) == (2 if expected else 1), result.stderr
    assert message in errors[0], errors[0]
    if expected:
        assert expected in errors[1], errors[1]
    assert "internal error" not in result.stderr


def test_a_decompression_bomb_does_not_stop_the_other_images(runs, tmp_path):
    good = _image(runs)
    result = runner.invoke(app, ["predict", str(runs["cap"]), good, _bomb(tmp_path), good])
    assert result.exit_code == 1, result.output
    assert result.stdout.count(Path(good).name) == 2  # both good images captioned
    (error,) = result.stderr.strip().splitlines()
    assert error.startswith("error: ") and "bomb.png: refused" in error


def test_an_unexpected_error_is_one_line_too(runs, monkeypatch):
    import lrcn.tasks.inference

    def broken(*args, **kwargs):
        raise KeyError("oops")

    monkeypatch.setattr(lrcn.tasks.inference, "load_bundle", broken)
    result = runner.invoke(app, ["evaluate", str(runs["act"])])
    assert result.exit_code == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: internal error (KeyError: 'oops')") and "LRCN_TRACEBACK" in line
