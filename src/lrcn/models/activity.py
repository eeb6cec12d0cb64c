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
  dense -> classifier, the Keras model many tutorials build, by default with a learned 1x1
  channel reduction per frame before the ConvLSTM (``reduce_channels``), which makes it
  several times cheaper to train on a wide grid.

With a frozen backbone, training runs only the head on cached features (``forward_head``);
``forward`` runs the whole model on frames for prediction and fine-tuning.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal, NamedTuple

import torch
from pydantic import BaseModel, Field
from torch import Tensor, nn

from lrcn.backbones import Backbone
from lrcn.config import BackboneConfig
from lrcn.models._registry import ModelFamily, register_model
from lrcn.nn import LSTM, ConvLSTM2d, TimeDistributed

FeatureKind = Literal["pooled", "grid"]
# cnn_convlstm's default 1x1 reduction width, chosen with benchmarks/bench_convlstm_epoch.py
REDUCE_CHANNELS = 32

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
    """``(B, T, C, h, w)`` grids -> [1x1 conv + ReLU per frame] -> ConvLSTM2d (last state) ->
    flatten -> dense -> classifier.

    The optional 1x1 convolution (``reduce_channels`` R) is what makes this head cheap: the
    ConvLSTM's input convolution (C -> 4F, k x k) on a backbone's wide grid (1280 channels for
    EfficientNet-Lite0) is nearly the whole cost of the head, and projecting each frame to a
    few dozen channels first costs C*R + (R+F)*4F*k^2 multiply-adds per position instead of
    (C+F)*4F*k^2 (C=1280, F=64, k=3, R=32: 0.26 M instead of 3.1 M). With a ReLU after it, the
    demo data's validation top-1 over 3 seeds was as good as with a purely linear projection
    or slightly better (0.82 vs 0.81), at no measurable cost, and the reduced grid stays
    non-negative like the backbone's. The projection trains with the head, so it cannot be
    precomputed into the feature cache: the cache keeps the backbone's full grid (float16).
    """

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
        reduce_channels: int | None = None,
    ) -> None:
        super().__init__()
        self.reduce = _channel_reduction(feature_size, reduce_channels)
        lstm_in = reduce_channels if reduce_channels else feature_size
        self.conv_lstm = ConvLSTM2d(lstm_in, filters, kernel_size, padding="same")
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
        if self.reduce is not None:
            grids = self.reduce(grids)  # (B, T, R, h, w)
        last = self.conv_lstm(grids)  # (B, F, h, w)
        assert isinstance(last, Tensor)
        return _average(self.classifier(last).unsqueeze(1))  # (B, 1, K)


def _channel_reduction(channels: int, reduce_channels: int | None) -> nn.Module | None:
    """A per-frame 1x1 conv from ``channels`` to ``reduce_channels`` and a ReLU, or None (off:
    ``reduce_channels`` None or 0). TimeDistributed folds time into the batch with a -1
    reshape, so an ONNX export keeps the batch axis free."""
    if not reduce_channels:
        return None
    if reduce_channels < 0:
        raise ValueError(f"reduce_channels must be >= 1, or 0/None for off; got {reduce_channels}")
    projection = nn.Sequential(nn.Conv2d(channels, reduce_channels, 1), nn.ReLU(inplace=True))
    return TimeDistributed(projection)  # (B, T, C, h, w) -> (B, T, R, h, w)


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
    """The CNN-ConvLSTM head; ``reduce_channels`` defaults to on for new configs.

    A bundle's ``config.model`` is a full dump of this class, so one without
    ``reduce_channels`` was saved before the field existed, with the un-reduced head:
    ``stored_defaults`` says so, and :func:`lrcn.checkpoint.load_bundle` fills it in.
    """

    # Values for fields a stored config (bundle.json) predates; read by load_bundle.
    stored_defaults: ClassVar[dict[str, Any]] = {"reduce_channels": None}

    name: Literal["cnn_convlstm"]
    filters: int = Field(64, ge=1)
    kernel_size: int = Field(3, ge=1)
    dense_size: int = Field(256, ge=1)
    dropout: float = Field(0.5, ge=0, lt=1)
    reduce_channels: int | None = Field(
        REDUCE_CHANNELS,
        ge=0,
        description="channels of a learned 1x1 conv + ReLU applied to each frame's grid before "
        "ConvLSTM2d; 0 or null = off: the ConvLSTM reads the full grid (at Lite0's 1280 "
        "channels, 12x the forward multiply-adds of the default 32 and about 4x the epoch "
        "time). It trains with the head, so the feature cache still holds the full grid.",
    )


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
    reduce_channels: int | None = REDUCE_CHANNELS,
    freeze_backbone: bool = True,
) -> VideoClassifier:
    """CNN feature grid per frame -> [1x1 conv to ``reduce_channels``] -> ConvLSTM2d ->
    flatten -> dense -> softmax. ``reduce_channels`` None or 0 builds the un-reduced head."""
    crop = backbone.preprocess.crop
    with torch.no_grad():
        was_training = backbone.training
        grid = backbone.eval().forward_features(torch.zeros(1, 3, crop, crop))
        backbone.train(was_training)
    head = ConvLSTMHead(
        backbone.out_features, num_classes, (grid.shape[2], grid.shape[3]),
        filters, kernel_size, dense_size, dropout, reduce_channels,
    )  # fmt: skip
    return VideoClassifier(backbone, head, freeze_backbone)
