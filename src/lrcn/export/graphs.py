"""What a task asks ``lrcn export`` to export: graphs, each one model method on example
inputs, and the plain attributes predict reads off the model."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from lrcn.backbones import Preprocess
from lrcn.data.vocab import Vocabulary

__all__ = [
    "ExportPlan",
    "Graph",
    "example_frame_features",
    "example_pixels",
    "example_sentences",
    "example_step",
]


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


def example_sentences(vocab_size: int, batch: int, longest: int) -> tuple[Tensor, Tensor]:
    """Random word ids ``(B, L)`` and unequal lengths ``(B,)``, the longest ``L``. The second
    plan of an export (batch 3) is 3 words shorter than the first (batch 2), so the check
    proves the sentence axis free."""
    length = max(1, longest - (batch - 2) * 3)
    ids = torch.randint(4, vocab_size, (batch, length))  # (B, L), past the special words
    return ids, length - torch.arange(batch) % length  # (B,)


def example_frame_features(
    model: Any, preprocess: Preprocess, batch: int, frames: int
) -> tuple[Tensor, Tensor]:
    """Clips of random pixels ``(B, T, 3, S, S)`` and their features through ``model.features``
    repeated once per input stream (``model.inputs``, e.g. "rgb+flow"): ``(B, T, D * streams)``,
    as a video model's predict concatenates them."""
    pixels = example_pixels(preprocess, batch * frames)
    clips = pixels.view(batch, frames, *pixels.shape[1:])  # (B, T, 3, S, S)
    with torch.no_grad():
        feats = model.features(clips)  # (B, T, D)
    streams = len(str(model.inputs).split("+"))
    return clips, feats.repeat(1, 1, streams)


def example_step(model: Any, start: dict[str, Tensor], vocab_size: int) -> Graph:
    """The ``step`` graph of a decoder on what a beam sees from its second word on: random
    tokens ``(B,)`` and the state ``start`` becomes after one step from ``<start>``."""
    batch = next(iter(start.values())).shape[0]
    first = torch.full((batch,), Vocabulary.start_id, dtype=torch.long)
    with torch.no_grad():
        _, state = model.step(first, start)
    return Graph("step", (torch.randint(0, vocab_size, (batch,)), state))
