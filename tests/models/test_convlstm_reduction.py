"""cnn_convlstm's 1x1 channel reduction: shapes, training, config, old bundles and export."""

import json

import pytest
import torch

from lrcn.backbones import create_backbone
from lrcn.checkpoint import load_bundle, save_bundle
from lrcn.config import ConfigError
from lrcn.models import build_model, create_model
from lrcn.models.activity import (
    REDUCE_CHANNELS,
    ActivityExtras,
    CNNConvLSTMModelConfig,
    ConvLSTMHead,
)

EXTRAS = ActivityExtras(classes=["a", "b", "c"])


def _section(**model):
    return {"name": "cnn_convlstm", "backbone": "simple_cnn", "filters": 4, "dense_size": 8,
            "dropout": 0.0, **model}  # fmt: skip


@pytest.mark.parametrize("reduce", [None, 0, 6])
def test_the_head_reduces_each_frame_before_the_conv_lstm(reduce):
    head = ConvLSTMHead(32, 3, (5, 4), filters=4, dense_size=8, reduce_channels=reduce)
    grids = torch.rand(2, 7, 32, 5, 4)
    if reduce:
        assert head.reduce is not None
        assert head.reduce(grids).shape == (2, 7, reduce, 5, 4)
    else:
        assert head.reduce is None
    assert head.conv_lstm.cell.weight_ih.shape[1] == (reduce or 32)
    out = head(grids)
    assert out.step_logits.shape == (2, 1, 3) and out.probs.shape == (2, 3)


def test_the_reduction_sees_each_frame_alone():
    """Per frame, not across time: changing frame 3 changes only frame 3's reduced grid."""
    head = ConvLSTMHead(16, 3, (3, 3), filters=4, reduce_channels=5)
    assert head.reduce is not None
    grids = torch.rand(2, 6, 16, 3, 3)
    edited = grids.clone()
    edited[:, 3] += 1.0
    before, after = head.reduce(grids), head.reduce(edited)
    changed = (before - after).abs().amax(dim=(0, 2, 3, 4))  # (T,)
    assert changed[3] > 0 and torch.count_nonzero(changed) == 1


@pytest.mark.parametrize("reduce", [None, 8])
def test_forward_backward_reaches_every_head_parameter(reduce):
    model = create_model(
        "cnn_convlstm", backbone=create_backbone("simple_cnn"), num_classes=3, filters=4,
        dense_size=8, reduce_channels=reduce,
    )  # fmt: skip
    out = model(torch.randn(2, 5, 3, 64, 64))
    torch.nn.functional.cross_entropy(out.step_logits[:, 0], torch.tensor([0, 2])).backward()
    grads = {name: p.grad for name, p in model.head.named_parameters()}
    assert any(name.startswith("reduce.") for name in grads) == bool(reduce)
    assert all(g is not None and g.abs().sum() > 0 for g in grads.values()), [
        n for n, g in grads.items() if g is None or g.abs().sum() == 0
    ]


def test_new_configs_reduce_by_default_and_zero_or_null_turns_it_off():
    assert CNNConvLSTMModelConfig(name="cnn_convlstm").reduce_channels == REDUCE_CHANNELS == 32
    assert build_model(_section(), EXTRAS, pretrained=False).head.reduce is not None
    for off in (0, None):
        assert build_model(_section(reduce_channels=off), EXTRAS).head.reduce is None


def test_a_negative_width_is_refused_naming_the_key():
    with pytest.raises(ConfigError, match=r"model\.reduce_channels: .*greater than or equal to 0"):
        build_model(_section(reduce_channels=-1), EXTRAS)


def _saved(folder, section):
    torch.manual_seed(0)
    model = build_model(section, EXTRAS, pretrained=False).eval()
    config = {"task": "activity", "data": {"format": "ucf101", "root": "UCF-101"},
              "model": section, "train": {"device": "cpu"}}  # fmt: skip
    save_bundle(folder, model, config, EXTRAS, model.backbone.preprocess, epoch=0)
    return model


def test_a_bundle_saved_before_the_reduction_existed_loads_unreduced(tmp_path):
    """bundle.json without ``reduce_channels`` (as every bundle before it was): the head is
    built without the reduction and the old weights load into it."""
    old = _saved(tmp_path, _section(reduce_channels=None))
    meta = json.loads((tmp_path / "bundle.json").read_text())
    del meta["config"]["model"]["reduce_channels"]
    (tmp_path / "bundle.json").write_text(json.dumps(meta))

    loaded = load_bundle(tmp_path)
    assert loaded.model.head.reduce is None
    assert loaded.config["model"]["reduce_channels"] is None  # what was built, for evaluate
    frames = torch.rand(1, 4, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(loaded.model(frames).probs, old(frames).probs)


def test_a_bundle_with_the_reduction_loads_reduced(tmp_path):
    new = _saved(tmp_path, _section(reduce_channels=6))
    loaded = load_bundle(tmp_path)
    assert loaded.model.head.reduce is not None
    frames = torch.rand(1, 4, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(loaded.model(frames).probs, new(frames).probs)


def test_the_reduced_model_exports_to_onnx_with_a_free_batch_axis(tmp_path):
    """The export checks every graph against eager at batch 2 (traced) and 3."""
    pytest.importorskip("onnxruntime")
    from lrcn.export.engine import MANIFEST
    from lrcn.export.writer import export_bundle

    section = _section(reduce_channels=6)
    _saved(tmp_path / "run" / "best", section)
    meta = json.loads((tmp_path / "run" / "best" / "bundle.json").read_text())
    meta["config"]["data"].update(clip_len=4, stride=4)
    (tmp_path / "run" / "best" / "bundle.json").write_text(json.dumps(meta))
    export_bundle(tmp_path / "run", "onnx", log=lambda _: None)
    manifest = json.loads((tmp_path / "run" / "best-onnx" / MANIFEST).read_text())
    assert set(manifest["graphs"]) == {"forward", "forward_head"}
    for name, graph in manifest["graphs"].items():
        assert 0 <= graph["max_difference"] <= graph["tolerance"], name
