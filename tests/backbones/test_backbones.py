"""Backbones: the pretrained weights see real photographs correctly; one interface for all."""

import numpy as np
import pytest
import skimage.data
import torch

from lrcn.backbones import Preprocess, create_backbone
from lrcn.backbones.efficientnet_lite0 import PREPROCESS, efficientnet_lite0_classifier
from lrcn.config import ConfigError

# ImageNet indices: 281-285 are domestic cats, 967 is espresso.
CATS = set(range(281, 286))
ESPRESSO = 967


@pytest.fixture(scope="module")
def imagenet_classifier():
    return efficientnet_lite0_classifier().eval()


def _top(model, image):
    with torch.no_grad():
        probs = model(PREPROCESS.frames_to_tensor(image[None])).softmax(dim=1)[0]
    return probs


def test_packaged_weights_recognise_real_photographs(imagenet_classifier):
    cat = _top(imagenet_classifier, skimage.data.chelsea())
    assert int(cat.argmax()) in CATS
    assert float(cat[list(CATS)].sum()) > 0.8
    coffee = _top(imagenet_classifier, skimage.data.coffee())
    assert int(coffee.argmax()) == ESPRESSO and float(coffee[ESPRESSO]) > 0.9


@pytest.mark.parametrize(
    ("name", "channels"),
    [
        ("efficientnet_lite0", 1280),
        ("torchvision:resnet18", 512),
        ("torchvision:mobilenet_v3_small", 576),
        ("simple_cnn", 64),
    ],
)
def test_one_interface_for_every_backbone(name, channels):
    backbone = create_backbone(name, pretrained=name == "efficientnet_lite0").eval()
    assert backbone.out_features == channels
    x = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        grid = backbone.forward_features(x)
        pooled = backbone(x)
    assert grid.shape[:2] == (2, channels) and grid.dim() == 4
    torch.testing.assert_close(pooled, grid.mean(dim=(2, 3)))
    assert isinstance(backbone.preprocess, Preprocess)


def test_torchvision_weights_file_loads_safely(tmp_path):
    import torchvision

    source = torchvision.models.resnet18(weights=None)
    path = tmp_path / "resnet18.pth"
    torch.save(source.state_dict(), path)
    backbone = create_backbone("torchvision:resnet18", weights_path=path)
    torch.testing.assert_close(backbone.body[0].weight, source.conv1.weight)

    with pytest.raises(ConfigError, match="does not fit torchvision resnet34"):
        create_backbone("torchvision:resnet34", weights_path=path)
    with pytest.raises(ConfigError, match=r"model\.backbone_weights: weights file not found"):
        create_backbone("torchvision:resnet18", weights_path=tmp_path / "none.pth")


class _NotWeights:
    """An arbitrary object: torch.load(weights_only=True) must refuse to rebuild it."""


def test_pickled_code_is_refused(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"conv1.weight": _NotWeights()}, path)
    with pytest.raises(ConfigError, match="not a state dict that loads safely"):
        create_backbone("torchvision:resnet18", weights_path=path)


def test_unknown_names_list_what_exists():
    with pytest.raises(ValueError, match="expected 'efficientnet_lite0', 'torchvision:<arch>'"):
        create_backbone("resnet50")
    with pytest.raises(ValueError, match="unknown torchvision architecture 'resnet1'"):
        create_backbone("torchvision:resnet1")


def test_preprocess_resizes_crops_and_normalises():
    pre = Preprocess(resize=32, crop=24, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    frames = np.full((3, 48, 64, 3), 255, dtype=np.uint8)
    frames[:, :, :8] = 0  # a dark left edge: gone after a center crop, kept by a left crop
    center = pre.frames_to_tensor(frames)
    assert center.shape == (3, 3, 24, 24)
    torch.testing.assert_close(center, torch.ones_like(center))  # 255 -> 1 -> (1-0.5)/0.5
    left = pre.frames_to_tensor(frames, crop_offset=(0.5, 0.0))
    assert float(left[..., 0].mean()) < -0.9  # black -> -1
