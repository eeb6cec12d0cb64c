"""Activity recognition: a video clip in, one label out (LRCN paper, section 4).

Donahue et al., "Long-term Recurrent Convolutional Networks for Visual Recognition and
Description", CVPR 2015. Each of T frames goes through a CNN; an LSTM runs over the T feature
vectors; a linear classifier reads every step; the softmax predictions are averaged over the
steps. At test time clip scores are averaged over all clips of a video (see data/sampling.py).

Three models share one shape, ``backbone`` (a per-frame CNN, optional) + ``head``:

* ``lrcn``: pooled CNN features ``(B, T, D)`` -> LSTM -> classifier per step -> mean.
* ``single_frame``: the same features -> classifier per frame -> mean (the paper's baseline;
  it sees no order).
* ``cnn_convlstm``: the CNN's feature *grid* ``(B, T, C, h, w)`` -> ConvLSTM2d -> flatten ->
  dense -> classifier, the Keras model many tutorials build.

With a frozen backbone, training runs only the head on cached features (``forward_head``);
``forward`` runs the whole model on frames for prediction and fine-tuning.
"""

from __future__ import annotations

from typing import Annotated, Literal, NamedTuple

import torch
from pydantic import BaseModel, Field
from torch import Tensor, nn

from lrcn.backbones import Backbone
from lrcn.config import BackboneConfig
from lrcn.models._registry import ModelFamily, register_model
from lrcn.nn import LSTM, ConvLSTM2d, TimeDistributed

FeatureKind = Literal["pooled", "grid"]

__all__ = [
    "ACTIVITY",
    "ActivityExtras",
    "ActivityModelConfig",
    "ActivityOutput",
    "ConvLSTMHead",
    "LRCNHead",
    "SingleFrameHead",
    "VideoClassifier",
]


class ActivityOutput(NamedTuple):
    """``step_logits (B, T', K)``: one prediction per step (T' = 1 for cnn_convlstm);
    ``probs (B, K)``: the softmax averaged over steps, the clip's score."""

    step_logits: Tensor
    probs: Tensor


def _average(step_logits: Tensor) -> ActivityOutput:
    return ActivityOutput(step_logits, step_logits.softmax(dim=-1).mean(dim=1))


# --------------------------------------------------------------------------------------------
# Heads: features in, ActivityOutput out
# --------------------------------------------------------------------------------------------


class LRCNHead(nn.Module):
    """``(B, T, D)`` features -> dropout -> LSTM -> dropout -> linear at every step."""

    feature_kind: FeatureKind = "pooled"

    def __init__(
        self,
        feature_size: int,
        num_classes: int,
        hidden_size: int = 256,
        num_layers: int = 1,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        self.input_dropout = nn.Dropout(dropout)
        self.lstm = LSTM(
            feature_size, hidden_size, num_layers, batch_first=True,
            dropout=dropout if num_layers > 1 else 0.0,
        )  # fmt: skip
        self.output_dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden_size, num_classes)

    def forward(self, features: Tensor) -> ActivityOutput:
        """``features (B, T, D)`` -> :class:`ActivityOutput`."""
        hidden, _ = self.lstm(self.input_dropout(features))  # (B, T, H)
        return _average(self.classifier(self.output_dropout(hidden)))  # (B, T, K)


class SingleFrameHead(nn.Module):
    """``(B, T, D)`` features -> dropout -> linear per frame; frames are scored independently."""

    feature_kind: FeatureKind = "pooled"

    def __init__(self, feature_size: int, num_classes: int, dropout: float = 0.5) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(feature_size, num_classes)

    def forward(self, features: Tensor) -> ActivityOutput:
        """``features (B, T, D)`` -> :class:`ActivityOutput`."""
        return _average(self.classifier(self.dropout(features)))  # (B, T, K)


class ConvLSTMHead(nn.Module):
    """``(B, T, C, h, w)`` grids -> ConvLSTM2d (last state) -> flatten -> dense -> classifier."""

    feature_kind: FeatureKind = "grid"

    def __init__(
        self,
        feature_size: int,
        num_classes: int,
        grid_size: tuple[int, int],
        filters: int = 64,
        kernel_size: int = 3,
        dense_size: int = 256,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        self.conv_lstm = ConvLSTM2d(feature_size, filters, kernel_size, padding="same")
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(dropout),
            nn.Linear(filters * grid_size[0] * grid_size[1], dense_size),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(dense_size, num_classes),
        )

    def forward(self, grids: Tensor) -> ActivityOutput:
        """``grids (B, T, C, h, w)`` -> :class:`ActivityOutput` with one step."""
        last = self.conv_lstm(grids)  # (B, F, h, w)
        assert isinstance(last, Tensor)
        return _average(self.classifier(last).unsqueeze(1))  # (B, 1, K)


# --------------------------------------------------------------------------------------------
# The whole model
# --------------------------------------------------------------------------------------------


class VideoClassifier(nn.Module):
    """A per-frame backbone and a head. ``forward(frames (B, T, 3, H, W))`` runs both."""

    def __init__(self, backbone: Backbone, head: nn.Module, freeze_backbone: bool = True) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.freeze_backbone = freeze_backbone
        self.feature_kind: FeatureKind = head.feature_kind  # type: ignore[assignment]
        if freeze_backbone:
            self.backbone.requires_grad_(False)

    def train(self, mode: bool = True) -> VideoClassifier:
        super().train(mode)
        if self.freeze_backbone:
            self.backbone.eval()  # a frozen backbone keeps its BatchNorm statistics
        return self

    def forward_features(self, frames: Tensor) -> Tensor:
        """``frames (B, T, 3, H, W)`` -> ``(B, T, D)`` or ``(B, T, C, h, w)`` per the head."""
        # TimeDistributed built per call: holding it as a submodule would register the
        # backbone's weights twice in the state dict.
        per_frame = self.backbone if self.feature_kind == "pooled" else _GridOf(self.backbone)
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.freeze_backbone):
            return TimeDistributed(per_frame)(frames)

    def forward_head(self, features: Tensor) -> ActivityOutput:
        """Run only the head, on features from :meth:`forward_features` or a feature cache."""
        return self.head(features)

    def forward(self, frames: Tensor) -> ActivityOutput:
        """``frames (B, T, 3, H, W)`` -> :class:`ActivityOutput`."""
        return self.forward_head(self.forward_features(frames))


class _GridOf(nn.Module):
    def __init__(self, backbone: Backbone) -> None:
        super().__init__()
        self.backbone = backbone

    def forward(self, x: Tensor) -> Tensor:
        return self.backbone.forward_features(x)


# --------------------------------------------------------------------------------------------
# Configs, bundle extras and the family
# --------------------------------------------------------------------------------------------


class LRCNModelConfig(BackboneConfig):
    name: Literal["lrcn"]
    hidden_size: int = Field(256, ge=1)
    num_layers: int = Field(1, ge=1)
    dropout: float = Field(0.5, ge=0, lt=1)


class SingleFrameModelConfig(BackboneConfig):
    name: Literal["single_frame"]
    dropout: float = Field(0.5, ge=0, lt=1)


class CNNConvLSTMModelConfig(BackboneConfig):
    name: Literal["cnn_convlstm"]
    filters: int = Field(64, ge=1)
    kernel_size: int = Field(3, ge=1)
    dense_size: int = Field(256, ge=1)
    dropout: float = Field(0.5, ge=0, lt=1)


ActivityModelConfig = Annotated[
    LRCNModelConfig | SingleFrameModelConfig | CNNConvLSTMModelConfig,
    Field(discriminator="name"),
]


class ActivityExtras(BaseModel):
    """What an activity bundle carries beside its weights: the class names, in label order."""

    classes: list[str] = Field(min_length=1)


ACTIVITY = ModelFamily("activity", ActivityExtras, lambda e: {"num_classes": len(e.classes)})


# --------------------------------------------------------------------------------------------
# Builders
# --------------------------------------------------------------------------------------------


@register_model(ACTIVITY, LRCNModelConfig)
def lrcn(
    *,
    backbone: Backbone,
    num_classes: int,
    hidden_size: int = 256,
    num_layers: int = 1,
    dropout: float = 0.5,
    freeze_backbone: bool = True,
) -> VideoClassifier:
    """LRCN for activity recognition (the paper used hidden 256, dropout 0.5, 16-frame clips)."""
    head = LRCNHead(backbone.out_features, num_classes, hidden_size, num_layers, dropout)
    return VideoClassifier(backbone, head, freeze_backbone)


@register_model(ACTIVITY, SingleFrameModelConfig)
def single_frame(
    *, backbone: Backbone, num_classes: int, dropout: float = 0.5, freeze_backbone: bool = True
) -> VideoClassifier:
    """The single-frame baseline: per-frame classifier, scores averaged over frames."""
    return VideoClassifier(
        backbone, SingleFrameHead(backbone.out_features, num_classes, dropout), freeze_backbone
    )


@register_model(ACTIVITY, CNNConvLSTMModelConfig)
def cnn_convlstm(
    *,
    backbone: Backbone,
    num_classes: int,
    filters: int = 64,
    kernel_size: int = 3,
    dense_size: int = 256,
    dropout: float = 0.5,
    freeze_backbone: bool = True,
) -> VideoClassifier:
    """CNN feature grid per frame -> ConvLSTM2d -> flatten -> dense -> softmax."""
    crop = backbone.preprocess.crop
    with torch.no_grad():
        was_training = backbone.training
        grid = backbone.eval().forward_features(torch.zeros(1, 3, crop, crop))
        backbone.train(was_training)
    head = ConvLSTMHead(
        backbone.out_features, num_classes, (grid.shape[2], grid.shape[3]),
        filters, kernel_size, dense_size, dropout,
    )  # fmt: skip
    return VideoClassifier(backbone, head, freeze_backbone)
