"""A small CNN trained from scratch: for tests, tiny demo data and CPUs without time to spare."""

from __future__ import annotations

import itertools

from torch import nn

from lrcn.backbones.base import Backbone, Preprocess

__all__ = ["simple_cnn"]


def simple_cnn(width: int = 32, size: int = 64) -> Backbone:
    """Four conv-BN-ReLU stages, each halving the resolution: grid ``(N, 2·width, h, w)``."""
    channels = [3, width // 2, width, width, 2 * width]
    layers: list[nn.Module] = []
    for c_in, c_out in itertools.pairwise(channels):
        layers += [
            nn.Conv2d(c_in, c_out, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True),
        ]
    preprocess = Preprocess(resize=size, crop=size, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    return Backbone(nn.Sequential(*layers), channels[-1], preprocess, f"simple_cnn{width}")
