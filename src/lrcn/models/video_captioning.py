"""Video description: a sequence of frames in, a sentence out (LRCN paper, section 6).

A frozen per-frame CNN turns each of a video's sampled frames into a feature vector; a decoder
from :mod:`lrcn.models.video_decoders` turns the sequence ``(B, T, D)`` into words:

* ``mean_pool`` (Venugopalan et al., NAACL 2015): the mean frame feature conditions an LSTM;
  it cannot see the order of frames, so it is the baseline that motion input must beat.
* ``s2vt`` (Venugopalan et al., ICCV 2015): two stacked LSTMs read the frames, then emit the
  words, with one set of weights for both stages.
* ``temporal_attention`` (Yao et al., ICCV 2015): soft attention over the frames at every word.

``inputs`` says what each frame's feature vector is made of: ``rgb`` (the frame), ``flow``
(the optical flow from it to the next frame, encoded as an image: x, y, magnitude; see
:mod:`lrcn.data.flow`) or ``rgb+flow`` (both, concatenated: S2VT's best setting). Flow is what
lets a captioner say *how* something moves: pooled appearance features barely record where an
object is, so they cannot tell "moves left" from "moves right". The same frozen backbone sees
the flow images (S2VT and LRCN trained a separate flow CNN; this keeps everything offline).

Before the decoder, every feature dimension is standardised with the mean and standard deviation
of the training split's frames (:class:`lrcn.nn.Standardize`, fitted by the task, kept in the
bundle): RGB and flow features differ in scale, and unscaled, the RGB stream drowns the flow
stream (on the motion demo an RGB+flow S2VT then names directions at chance).

The bundle carries the vocabulary, as image captioning's does (:class:`CaptioningExtras`), and
for the visual-tuple models of :mod:`lrcn.models.tuple_captioning` the tuple slots.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field
from torch import Tensor, nn

from lrcn.backbones import Backbone
from lrcn.config import BackboneConfig
from lrcn.models._registry import ModelFamily, register_model
from lrcn.models.captioning import CaptioningExtras, CaptionOutput
from lrcn.models.video_decoders import MeanPoolDecoder, S2VTDecoder, TemporalAttentionDecoder
from lrcn.nn import Standardize

State = dict[str, Tensor]
Inputs = Literal["rgb", "flow", "rgb+flow"]
Decoder = MeanPoolDecoder | S2VTDecoder | TemporalAttentionDecoder

__all__ = [
    "VIDEO_CAPTIONING",
    "VideoCaptionModelConfig",
    "VideoCaptioner",
    "VideoCaptioningExtras",
]


class VideoCaptioner(nn.Module):
    """A frozen per-frame backbone and a video decoder. Training and evaluation read cached
    frame features; ``features`` runs the backbone for videos given as frames (predict)."""

    feature_kind = "pooled"

    def __init__(self, backbone: Backbone, decoder: Decoder, inputs: Inputs = "rgb") -> None:
        super().__init__()
        self.backbone = backbone
        self.decoder = decoder
        self.inputs = inputs
        # fitted on the training split's cached features by the task; stored in the bundle
        self.standardize = Standardize(_width(backbone, inputs))
        self.freeze_backbone = True
        for p in self.backbone.parameters():
            p.requires_grad_(False)

    def train(self, mode: bool = True) -> VideoCaptioner:
        super().train(mode)
        self.backbone.eval()  # frozen: batch-norm statistics stay those it was trained with
        return self

    def features(self, frames: Tensor) -> Tensor:
        """``(B, T, 3, S, S)`` normalised frames (or flow images) -> ``(B, T, D)`` pooled
        features of one input stream."""
        b, t = frames.shape[:2]
        return self.backbone(frames.flatten(0, 1)).view(b, t, -1)  # (B, T, D)

    def forward(self, features: Tensor, lengths: Tensor, captions: Tensor) -> CaptionOutput:
        """``features (B, T, D)`` (raw, as cached), ``lengths (B,)``, ``captions (B, L)`` ->
        logits of 1..L-1."""
        return self.decoder(self.standardize(features), lengths, captions)

    def init_state(self, features: Tensor, lengths: Tensor) -> State:
        """Decoding state for ``features (B, T, D)`` (raw, as cached) and ``lengths (B,)``."""
        return self.decoder.init_state(self.standardize(features), lengths)

    def step(self, tokens: Tensor, state: State) -> tuple[Tensor, State]:
        return self.decoder.step(tokens, state)


# --------------------------------------------------------------------------------------------
# Configs
# --------------------------------------------------------------------------------------------


class _VideoModelConfig(BackboneConfig):
    freeze_backbone: Literal[True] = True  # features are cached; fine-tuning is not offered
    embed_size: int = Field(256, ge=1)
    hidden_size: int = Field(512, ge=1)
    dropout: float = Field(0.5, ge=0, lt=1)
    inputs: Inputs = "rgb"


def _width(backbone: Backbone, inputs: Inputs) -> int:
    """Per-frame feature size: one backbone vector per input stream, concatenated."""
    return backbone.out_features * len(inputs.split("+"))


class MeanPoolConfig(_VideoModelConfig):
    name: Literal["mean_pool"]
    num_layers: int = Field(1, ge=1)


class S2VTConfig(_VideoModelConfig):
    name: Literal["s2vt"]


class TemporalAttentionConfig(_VideoModelConfig):
    name: Literal["temporal_attention"]
    attention_size: int = Field(256, ge=1)


VideoCaptionModelConfig = Annotated[
    MeanPoolConfig | S2VTConfig | TemporalAttentionConfig, Field(discriminator="name")
]


class VideoCaptioningExtras(CaptioningExtras):
    """A video captioner's bundle: the vocabulary and, for the tuple models, the slots and
    words of the visual tuples it reads (the layout of its input vector)."""

    tuple_slots: dict[str, list[str]] | None = None


def _sizes(extras: VideoCaptioningExtras) -> dict[str, Any]:
    slots = extras.tuple_slots
    return {
        "vocab_size": len(extras.vocab.words),
        "slot_sizes": None if slots is None else [len(words) for words in slots.values()],
    }


VIDEO_CAPTIONING = ModelFamily("video_captioning", VideoCaptioningExtras, _sizes)


# --------------------------------------------------------------------------------------------
# Builders
# --------------------------------------------------------------------------------------------


@register_model(VIDEO_CAPTIONING, MeanPoolConfig)
def mean_pool(
    *,
    backbone: Backbone,
    vocab_size: int,
    embed_size: int = 256,
    hidden_size: int = 512,
    num_layers: int = 1,
    dropout: float = 0.5,
    inputs: Inputs = "rgb",
) -> VideoCaptioner:
    """The mean-pooled baseline: order-blind by construction."""
    decoder = MeanPoolDecoder(
        _width(backbone, inputs), vocab_size, embed_size, hidden_size, num_layers, dropout
    )
    return VideoCaptioner(backbone, decoder, inputs)


@register_model(VIDEO_CAPTIONING, S2VTConfig)
def s2vt(
    *,
    backbone: Backbone,
    vocab_size: int,
    embed_size: int = 256,
    hidden_size: int = 512,
    dropout: float = 0.5,
    inputs: Inputs = "rgb",
) -> VideoCaptioner:
    """S2VT: read the frames, then say the words, with one two-layer LSTM."""
    decoder = S2VTDecoder(_width(backbone, inputs), vocab_size, embed_size, hidden_size, dropout)
    return VideoCaptioner(backbone, decoder, inputs)


@register_model(VIDEO_CAPTIONING, TemporalAttentionConfig)
def temporal_attention(
    *,
    backbone: Backbone,
    vocab_size: int,
    embed_size: int = 256,
    hidden_size: int = 512,
    attention_size: int = 256,
    dropout: float = 0.5,
    inputs: Inputs = "rgb",
) -> VideoCaptioner:
    """Soft attention over the frames at every word."""
    decoder = TemporalAttentionDecoder(
        _width(backbone, inputs), vocab_size, embed_size, hidden_size, attention_size, dropout
    )
    return VideoCaptioner(backbone, decoder, inputs)
