"""Visual tuples from video: one classifier head per slot over a video's frame features.

The LRCN paper's tuple-to-sentence models read, per video, a distribution over the words of
each slot (subject / verb / object / place; here any slots given or mined from the captions).
The paper took them from a CRF; here a small network predicts them from the same cached frame
features every video captioner reads (RGB, flow or both): the frames are summarised by a mean
(order-blind) or an LSTM (sees order, so motion direction from flow), then one linear head per
slot scores that slot's words. ``task: video_tuples`` trains it and writes the distributions as
an ``lrcn-tuples/1`` file (:mod:`lrcn.data.formats.tuples`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from pydantic import BaseModel, Field
from torch import Tensor, nn

from lrcn.backbones import Backbone
from lrcn.config import BackboneConfig
from lrcn.models._registry import ModelFamily, register_model
from lrcn.models.video_decoders import _real_frames
from lrcn.nn import LSTM, Standardize

Inputs = Literal["rgb", "flow", "rgb+flow"]

__all__ = ["VIDEO_TUPLES", "TupleHeads", "TupleHeadsConfig", "VideoTupleExtras", "slot_log_probs"]


class VideoTupleExtras(BaseModel):
    """A tuple classifier's bundle: the slots and their words, in the order of its outputs."""

    slots: dict[str, list[str]]


VIDEO_TUPLES = ModelFamily(
    "video_tuples", VideoTupleExtras,
    lambda e: {"slot_sizes": [len(words) for words in e.slots.values()]},
)  # fmt: skip


def slot_log_probs(logits: Tensor, slot_sizes: Sequence[int]) -> Tensor:
    """``logits (B, W)`` -> log-softmax within each slot, concatenated ``(B, W)``."""
    return torch.cat([part.log_softmax(dim=-1) for part in logits.split(list(slot_sizes), -1)], -1)


class TupleHeads(nn.Module):
    """Frozen per-frame CNN features -> standardised -> a summary of the frames -> one softmax
    per slot. ``forward`` returns the slots' logits side by side, ``(B, W)``."""

    feature_kind = "pooled"

    def __init__(
        self,
        backbone: Backbone,
        slot_sizes: Sequence[int],
        inputs: Inputs = "rgb+flow",
        temporal: Literal["mean", "lstm"] = "lstm",
        hidden_size: int = 256,
        dropout: float = 0.3,
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.inputs = inputs
        self.temporal = temporal
        self.slot_sizes = [int(n) for n in slot_sizes]
        self.freeze_backbone = True
        for p in self.backbone.parameters():
            p.requires_grad_(False)
        width = backbone.out_features * len(inputs.split("+"))
        self.standardize = Standardize(width)  # fitted on the training split by the task
        self.project = nn.Linear(width, hidden_size)
        self.lstm = LSTM(hidden_size, hidden_size, batch_first=True) if temporal == "lstm" else None
        self.dropout = nn.Dropout(dropout)
        self.heads = nn.Linear(hidden_size, sum(self.slot_sizes))  # every slot's head, stacked

    def train(self, mode: bool = True) -> TupleHeads:
        super().train(mode)
        self.backbone.eval()
        return self

    def features(self, frames: Tensor) -> Tensor:
        """``(B, T, 3, S, S)`` normalised frames (or flow images) -> ``(B, T, D)``."""
        b, t = frames.shape[:2]
        return self.backbone(frames.flatten(0, 1)).view(b, t, -1)  # (B, T, D)

    def forward(self, features: Tensor, lengths: Tensor) -> Tensor:
        """``features (B, T, D)`` raw cached frame features, ``lengths (B,)`` -> logits
        ``(B, W)``, slot after slot."""
        features, mask = _real_frames(self.standardize(features), lengths)  # (B, T, D), (B, T)
        x = self.dropout(torch.relu(self.project(features)))  # (B, T, H)
        if self.lstm is None:
            weights = mask.unsqueeze(2).to(x.dtype)  # (B, T, 1)
            summary = (x * weights).sum(1) / weights.sum(1)  # (B, H): mean of the real frames
        else:
            _, (h, _) = self.lstm(x, lengths=lengths)  # h (1, B, H) at each video's last frame
            summary = h[0]  # (B, H)
        return self.heads(self.dropout(summary))  # (B, W)

    def probabilities(self, features: Tensor, lengths: Tensor) -> Tensor:
        """Each slot's distribution over its words, side by side: ``(B, W)``."""
        return slot_log_probs(self(features, lengths), self.slot_sizes).exp()


class TupleHeadsConfig(BackboneConfig):
    name: Literal["tuple_heads"]
    freeze_backbone: Literal[True] = True  # features are cached
    inputs: Inputs = "rgb+flow"
    temporal: Literal["mean", "lstm"] = "lstm"
    hidden_size: int = Field(256, ge=1)
    dropout: float = Field(0.3, ge=0, lt=1)


@register_model(VIDEO_TUPLES, TupleHeadsConfig)
def tuple_heads(
    *,
    backbone: Backbone,
    slot_sizes: Sequence[int],
    inputs: Inputs = "rgb+flow",
    temporal: Literal["mean", "lstm"] = "lstm",
    hidden_size: int = 256,
    dropout: float = 0.3,
) -> TupleHeads:
    """One classifier head per tuple slot on a video's frame features."""
    return TupleHeads(backbone, slot_sizes, inputs, temporal, hidden_size, dropout)
