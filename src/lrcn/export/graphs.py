"""What a task asks ``lrcn export`` to export: graphs, each one model method on example
inputs, and the plain attributes predict reads off the model."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from lrcn.backbones import Preprocess

__all__ = ["ExportPlan", "Graph", "example_pixels"]


@dataclass(frozen=True)
class Graph:
    """``model.<method>(*args)`` as one exported graph.

    ``args`` are the example inputs it is traced and checked on: tensors (the first axis of
    each is the batch and stays free in the export), dicts or tuples of them (a decoder's
    state), and plain constants, which the trace fixes (a call with another value is refused).
    ``dynamic`` frees more axes by flat input name (``{"question": {1: "words"}}``): a task
    is asked for its plan twice (batch 2, then 3) and should vary those axes between the two,
    so the check proves them free. ``tolerance``: the largest ``|eager - exported|``
    accepted, relative to ``max(1, |eager|)``.
    """

    method: str
    args: tuple[Any, ...]
    dynamic: dict[str, dict[int, str]] = field(default_factory=dict)
    tolerance: float = 1e-4


@dataclass
class ExportPlan:
    """A model's graphs, and ``attributes`` (plain values such as ``inputs="rgb"``) that its
    task's predict reads off the model, so an exported engine can stand in for it."""

    graphs: list[Graph]
    attributes: dict[str, Any] = field(default_factory=dict)


def example_pixels(preprocess: Preprocess, count: int) -> Tensor:
    """``count`` images of random pixels, a little larger than the crop, through the model's
    own preset (resize, crop, normalise): ``(count, 3, S, S)``, the value range predict feeds."""
    side = preprocess.resize
    pixels = torch.randint(0, 256, (count, side + 8, side + 12, 3), dtype=torch.uint8)
    return preprocess.frames_to_tensor(pixels.numpy())
