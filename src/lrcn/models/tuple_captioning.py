"""Visual tuple in, sentence out: the LRCN paper's three sentence generators for TACoS.

The LRCN paper (Donahue et al., CVPR 2015, section on video description) does not read frames
when it writes a sentence: a classifier first predicts a *visual tuple* per video (for each slot,
subject / verb / object / place, a probability distribution over that slot's words), and an LSTM
turns the tuple into a sentence. Its three variants, all trained and compared here like any
other video captioner (``task: video_captioning``, ``data.tuples`` naming the tuple file):

* ``tuple_encoder_decoder``: an encoder LSTM reads the most probable word of each slot, a
  decoder LSTM writes the sentence from its final state.
* ``tuple_one_hot``: one decoder LSTM gets the one-hot of the most probable words as a
  constant input at every word.
* ``tuple_probabilities``: the same, with the probability vectors themselves (the paper's best:
  a hesitant classifier's second choice still reaches the sentence).

The input is a video's per-slot distributions concatenated in slot order, ``(W,)``, given as
``features (B, 1, W)`` with lengths 1 (the video-decoder interface with one "frame"); the
decoders are in :mod:`lrcn.models.tuple_decoders`, the file format in
:mod:`lrcn.data.formats.tuples`, and ``task: video_tuples`` trains the per-slot classifier that
writes such a file. The bundle carries the slots (:class:`VideoCaptioningExtras`), so a tuple
file with another layout is refused rather than misread.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import Field
from torch import Tensor, nn

from lrcn.backbones import Backbone, Preprocess
from lrcn.config import BackboneConfig
from lrcn.models._registry import register_model
from lrcn.models.captioning import CaptionOutput
from lrcn.models.tuple_decoders import TupleEncoderDecoder, TupleInputDecoder
from lrcn.models.video_captioning import VIDEO_CAPTIONING

State = dict[str, Tensor]

__all__ = ["TupleCaptioner", "TupleModelConfig"]


class TupleCaptioner(nn.Module):
    """A tuple-to-sentence decoder with the video-captioner interface. It has no CNN: the tuple
    is its input. ``preprocess`` is the image preset of the backbone the tuples' classifier
    would use, stored in bundles like every video captioner's."""

    feature_kind = "pooled"

    def __init__(
        self, decoder: TupleEncoderDecoder | TupleInputDecoder, preprocess: Preprocess
    ) -> None:
        super().__init__()
        self.decoder = decoder
        self.preprocess = preprocess
        self.slot_sizes = decoder.slot_sizes

    def forward(self, features: Tensor, lengths: Tensor, captions: Tensor) -> CaptionOutput:
        """``features (B, 1, W)`` tuples, ``lengths (B,)`` all 1, ``captions (B, L)`` -> logits
        of tokens 1..L-1."""
        return self.decoder(features, lengths, captions)

    def init_state(self, features: Tensor, lengths: Tensor) -> State:
        return self.decoder.init_state(features, lengths)

    def step(self, tokens: Tensor, state: State) -> tuple[Tensor, State]:
        return self.decoder.step(tokens, state)


class _TupleConfig(BackboneConfig):
    embed_size: int = Field(256, ge=1)
    hidden_size: int = Field(512, ge=1)
    dropout: float = Field(0.5, ge=0, lt=1)


class TupleEncoderDecoderConfig(_TupleConfig):
    name: Literal["tuple_encoder_decoder"]


class TupleOneHotConfig(_TupleConfig):
    name: Literal["tuple_one_hot"]


class TupleProbabilitiesConfig(_TupleConfig):
    name: Literal["tuple_probabilities"]


TupleModelConfig = TupleEncoderDecoderConfig | TupleOneHotConfig | TupleProbabilitiesConfig


Variant = Literal["encoder_decoder", "one_hot", "probabilities"]


def _captioner(
    variant: Variant,
    backbone: Backbone,
    vocab_size: int,
    slot_sizes: Sequence[int] | None,
    embed_size: int,
    hidden_size: int,
    dropout: float,
) -> TupleCaptioner:
    if not slot_sizes:
        raise ValueError("a tuple model needs the tuple slots (data.tuples) to be built")
    decoder: TupleEncoderDecoder | TupleInputDecoder
    if variant == "encoder_decoder":
        decoder = TupleEncoderDecoder(slot_sizes, vocab_size, embed_size, hidden_size, dropout)
    else:
        decoder = TupleInputDecoder(
            slot_sizes, vocab_size, embed_size, hidden_size, dropout,
            probabilities=variant == "probabilities",
        )  # fmt: skip
    return TupleCaptioner(decoder, backbone.preprocess)


@register_model(VIDEO_CAPTIONING, TupleEncoderDecoderConfig)
def tuple_encoder_decoder(
    *,
    backbone: Backbone,
    vocab_size: int,
    slot_sizes: Sequence[int] | None,
    embed_size: int = 256,
    hidden_size: int = 512,
    dropout: float = 0.5,
) -> TupleCaptioner:
    """LRCN variant 1: an LSTM encodes the most probable words, another writes the sentence."""
    args = (backbone, vocab_size, slot_sizes, embed_size, hidden_size, dropout)
    return _captioner("encoder_decoder", *args)


@register_model(VIDEO_CAPTIONING, TupleOneHotConfig)
def tuple_one_hot(
    *,
    backbone: Backbone,
    vocab_size: int,
    slot_sizes: Sequence[int] | None,
    embed_size: int = 256,
    hidden_size: int = 512,
    dropout: float = 0.5,
) -> TupleCaptioner:
    """LRCN variant 2: the one-hot most probable words at every decoder step."""
    return _captioner("one_hot", backbone, vocab_size, slot_sizes, embed_size, hidden_size, dropout)


@register_model(VIDEO_CAPTIONING, TupleProbabilitiesConfig)
def tuple_probabilities(
    *,
    backbone: Backbone,
    vocab_size: int,
    slot_sizes: Sequence[int] | None,
    embed_size: int = 256,
    hidden_size: int = 512,
    dropout: float = 0.5,
) -> TupleCaptioner:
    """LRCN variant 3: the slots' probability vectors at every decoder step."""
    args = (backbone, vocab_size, slot_sizes, embed_size, hidden_size, dropout)
    return _captioner("probabilities", *args)
