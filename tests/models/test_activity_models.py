"""Every registered activity model: shapes, forward + backward, freezing, and the head alone."""

import pytest
import torch

from lrcn.backbones import create_backbone
from lrcn.models import create_model, list_models

ACTIVITY = ["cnn_convlstm", "lrcn", "single_frame"]


def test_registry_lists_the_activity_models():
    assert set(ACTIVITY) <= set(list_models())
    with pytest.raises(ValueError, match="unknown model 'lstm'; registered models: cnn_convlstm"):
        create_model("lstm")


@pytest.mark.parametrize("name", ACTIVITY)
@pytest.mark.parametrize("freeze", [True, False])
def test_forward_backward(name, freeze):
    model = create_model(
        name, backbone=create_backbone("simple_cnn"), num_classes=5, freeze_backbone=freeze
    )
    frames = torch.randn(2, 6, 3, 64, 64)
    out = model(frames)
    steps = 1 if name == "cnn_convlstm" else 6
    assert out.step_logits.shape == (2, steps, 5)
    torch.testing.assert_close(out.probs.sum(dim=1), torch.ones(2))
    loss = torch.nn.functional.cross_entropy(
        out.step_logits.flatten(0, 1), torch.tensor([1, 3]).repeat_interleave(steps)
    )
    loss.backward()
    assert all(p.grad is not None for p in model.head.parameters())
    backbone_grads = [p.grad for p in model.backbone.parameters()]
    assert (
        all(g is None for g in backbone_grads)
        if freeze
        else all(g is not None for g in backbone_grads)
    )


@pytest.mark.parametrize("name", ACTIVITY)
def test_head_on_features_equals_the_whole_model(name):
    model = create_model(name, backbone=create_backbone("simple_cnn"), num_classes=3).eval()
    frames = torch.randn(1, 4, 3, 64, 64)
    with torch.no_grad():
        whole = model(frames)
        split = model.forward_head(model.forward_features(frames))
    torch.testing.assert_close(whole.probs, split.probs)


def test_frozen_backbone_keeps_batchnorm_statistics_in_training():
    model = create_model("lrcn", backbone=create_backbone("simple_cnn"), num_classes=3)
    before = model.backbone.body[1].running_mean.clone()
    model.train()
    model(torch.randn(2, 4, 3, 64, 64) * 5 + 3)
    torch.testing.assert_close(model.backbone.body[1].running_mean, before)
    assert model.head.training and not model.backbone.training
