"""Bundles: loading imports no training code, and a hand-edited bundle.json is refused with
the file and the mismatch named."""

import json
import subprocess
import sys

import pytest
import torch

from lrcn import create_model, list_models, load_bundle
from lrcn.checkpoint import BundleError, save_bundle
from lrcn.models import build_model
from lrcn.models.activity import ActivityExtras

CONFIG = {
    "task": "activity",
    "data": {"format": "ucf101", "root": "data/UCF-101"},
    "model": {"name": "lrcn", "backbone": "simple_cnn", "hidden_size": 8, "dropout": 0.0},
    "train": {"device": "cpu"},
}


@pytest.fixture
def bundle(tmp_path):
    model = build_model(CONFIG["model"], ActivityExtras(classes=["a", "b", "c"]))
    save_bundle(
        tmp_path / "run" / "best",
        model,
        CONFIG,
        ActivityExtras(classes=["a", "b", "c"]),
        model.backbone.preprocess,
        epoch=2,
        metrics={"val_video_top1": 0.5},
    )
    return tmp_path / "run"


def test_a_bundle_round_trips_with_typed_extras(bundle):
    loaded = load_bundle(bundle)
    assert loaded.task == "activity" and loaded.epoch == 2
    assert isinstance(loaded.extras, ActivityExtras) and loaded.extras.classes == ["a", "b", "c"]
    frames = torch.rand(1, 4, 3, 32, 32)
    assert loaded.model(frames).probs.shape == (1, 3)
    assert "lrcn" in list_models() and "show_attend_tell" in list_models()
    assert list_models("activity") == ["cnn_convlstm", "lrcn", "single_frame"]
    assert create_model is not None


def test_loading_a_bundle_imports_no_training_or_task_code(bundle):
    code = (
        "import sys\n"
        "from lrcn.checkpoint import load_bundle\n"
        f"b = load_bundle({str(bundle)!r})\n"
        "bad = sorted(m for m in sys.modules if m.startswith(('lrcn.training', 'lrcn.tasks')))\n"
        "assert not bad, bad\n"
        "print(b.task)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "activity"


def _edit(bundle, change):
    path = bundle / "best" / "bundle.json"
    meta = json.loads(path.read_text())
    change(meta)
    path.write_text(json.dumps(meta))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda m: m["config"]["model"].update(hidden_size=16),
            r"weights do not fit the model bundle.json describes: \d+ of another shape "
            r"\(e.g. \['head.lstm.weight_ih_l0 \(32, 64\) in the file, \(64, 64\) in the model",
        ),
        (
            lambda m: m["config"]["model"].update(name="single_frame", hidden_size=None),
            r"bundle.json: model.hidden_size: unknown key",
        ),
        (
            lambda m: m["config"]["model"].update(name="resnet_lstm"),
            r"bundle.json: model.name: unknown model 'resnet_lstm'; expected cnn_convlstm, ",
        ),
        (
            lambda m: m["extras"].update(classes=["a", "b"]),
            r"weights do not fit .*head.classifier.weight \(3, 8\) in the file, \(2, 8\)",
        ),
        (lambda m: m.pop("extras"), r"bundle.json: missing 'extras'"),
        (lambda m: m["extras"].pop("classes"), r"bundle.json: extras.classes: Field required"),
        (lambda m: m.update(format=1), r"bundle format 1 is not 2"),
        (
            lambda m: m.update(task="captioning"),
            r"task 'captioning' does not match model 'lrcn'",
        ),
    ],
    ids=[
        "hidden size",
        "model name",
        "unknown model",
        "class count",
        "no extras",
        "no classes",
        "old format",
        "wrong task",
    ],
)
def test_an_edited_bundle_is_refused_naming_the_file(bundle, change, message):
    _edit(bundle, change)
    with pytest.raises(BundleError, match=message) as err:
        load_bundle(bundle)
    assert str(err.value).startswith(str(bundle / "best"))
    assert "\n" not in str(err.value)
