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
    raise ValueError(
        f"torchvision:{arch}: no convolutional feature stage found; supported families have "
        "`.features` (MobileNet, EfficientNet, ConvNeXt, VGG, DenseNet) or ResNet's `layer4`"
    )


def torchvision_backbone(arch: str, weights_path: str | Path | None = None) -> Backbone:
    """``torchvision.models.<arch>`` as a :class:`Backbone`, optionally with local weights."""
    import torchvision

    try:
        model = torchvision.models.get_model(arch, weights=None)
    except ValueError:
        known = ", ".join(sorted(torchvision.models.list_models(torchvision.models))[:12])
        raise ValueError(f"unknown torchvision architecture {arch!r}; e.g. {known}, ...") from None
    if weights_path is not None:
        path = Path(weights_path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: weights file not found")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:
            raise ValueError(f"{path}: not a plain state dict that loads safely ({err})") from None
        missing, unexpected = model.load_state_dict(state, strict=False)
        if missing:
            raise ValueError(
                f"{path}: does not fit torchvision {arch}: {len(missing)} missing keys, "
                f"e.g. {missing[:3]}"
            )
        del unexpected  # a classifier head from elsewhere is fine: we drop it anyway
    body = _body(model, arch)
    with torch.no_grad():
        out_features = int(body.eval()(torch.zeros(1, 3, 64, 64)).shape[1])
    return Backbone(body, out_features, IMAGENET, f"torchvision:{arch}")
