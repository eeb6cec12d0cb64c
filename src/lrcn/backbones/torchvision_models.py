"""Any torchvision classification architecture as a backbone, with a weights file the user has.

Nothing is downloaded: pass ``weights_path`` (a ``.pth`` state dict, as torchvision saves it,
loaded with ``weights_only=True``) or train from scratch. The feature grid is the output of the
last convolutional stage (``model.features`` for MobileNet/EfficientNet/ConvNeXt/VGG/DenseNet,
``layer4`` for ResNet/ResNeXt/RegNet-style models).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from lrcn.backbones.base import Backbone, Preprocess
from lrcn.config import ConfigError

IMAGENET = Preprocess(resize=256, crop=224, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))

__all__ = ["IMAGENET", "torchvision_backbone"]


def _body(model: Any, arch: str) -> nn.Module:
    if hasattr(model, "features") and isinstance(model.features, nn.Module):
        return model.features
    if all(hasattr(model, name) for name in ("conv1", "bn1", "relu", "maxpool", "layer4")):
        return nn.Sequential(
            model.conv1, model.bn1, model.relu, model.maxpool,
            model.layer1, model.layer2, model.layer3, model.layer4,
        )  # fmt: skip
    if hasattr(model, "stem") and hasattr(model, "trunk_output"):  # RegNet
        return nn.Sequential(model.stem, model.trunk_output)
    raise ConfigError(
        "model.backbone",
        f"torchvision:{arch}: no convolutional feature stage found",
        expected="a family with `.features` (MobileNet, EfficientNet, ConvNeXt, VGG, DenseNet) "
        "or ResNet's `layer4`",
    )


def _load_weights(model: nn.Module, path: Path, arch: str) -> None:
    """A local state dict into ``model``; every way it can fail names the file."""
    if not path.is_file():
        raise ConfigError(path, "weights file not found", key="model.backbone_weights")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch and safetensors raise many types for a bad file
        raise ConfigError(
            path,
            f"not a state dict that loads safely ({type(err).__name__})",
            key="model.backbone_weights",
            expected=f"a torchvision {arch} state dict saved with torch.save or safetensors",
        ) from None
    if not isinstance(state, dict):
        raise ConfigError(path, f"holds a {type(state).__name__}, not a state dict")
    own = model.state_dict()
    wrong = [
        f"{k} {tuple(v.shape)} (model: {tuple(own[k].shape)})"
        for k, v in state.items()
        if k in own and hasattr(v, "shape") and v.shape != own[k].shape
    ]
    missing = [k for k in own if k not in state]
    if wrong or missing:
        raise ConfigError(
            path,
            f"does not fit torchvision {arch}: {len(missing)} missing keys "
            f"(e.g. {missing[:3]}), {len(wrong)} of another shape (e.g. {wrong[:2]})",
            key="model.backbone_weights",
        )
    # Keys the model lacks (a classifier from elsewhere) are fine: the head is dropped anyway.
    model.load_state_dict({k: v for k, v in state.items() if k in own})


def torchvision_backbone(arch: str, weights_path: str | Path | None = None) -> Backbone:
    """``torchvision.models.<arch>`` as a :class:`Backbone`, optionally with local weights."""
    import torchvision

    try:
        model = torchvision.models.get_model(arch, weights=None)
    except ValueError:
        known = ", ".join(sorted(torchvision.models.list_models(torchvision.models))[:12])
        raise ConfigError(
            "model.backbone", f"unknown torchvision architecture {arch!r}", expected=f"{known}, ..."
        ) from None
    if weights_path is not None:
        _load_weights(model, Path(weights_path), arch)
    body = _body(model, arch)
    with torch.no_grad():
        out_features = int(body.eval()(torch.zeros(1, 3, 64, 64)).shape[1])
    return Backbone(body, out_features, IMAGENET, f"torchvision:{arch}")
