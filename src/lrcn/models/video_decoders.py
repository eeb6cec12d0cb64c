"""Video description decoders: per-frame features in, a sentence out.

Each decoder reads ``features (B, T, D)`` (one CNN feature per frame, RGB or RGB+flow
concatenated, padded along T) with ``lengths (B,)`` (each video's real frame count, >= 1) and
is trained with teacher forcing on ``captions (B, L)`` that start with ``<start>``, predicting
tokens 1..L-1 exactly like the image decoders of :mod:`lrcn.models.captioning` (same
:class:`CaptionOutput`, same :func:`caption_loss`). Decoding goes through
:mod:`lrcn.decoding` unchanged: ``init_state(features, lengths)`` builds a dict of tensors with
first dimension B, and ``step(tokens, state)`` is the one step greedy and beam search call.
Beam search reorders every state tensor along dim 0, so whatever a step reads (frames, masks)
lives in the state.

Padding never changes an answer: a video padded to T frames gives the same outputs as the same
video alone, because padded frames are zeroed, left out of every mean, given zero attention,
and never fed to a recurrence.

* :class:`MeanPoolDecoder` (Venugopalan et al., NAACL 2015, "Translating Videos to Natural
  Language Using Deep Recurrent Neural Networks"): the mean of the real frames is a video's
  "image"; Show-and-Tell describes it. Blind to frame order by construction.
* :class:`S2VTDecoder` (Venugopalan et al., ICCV 2015, "Sequence to Sequence - Video to Text"):
  two stacked LSTMs read the frames, then write the words, with one set of weights for both
  stages. The only decoder here that sees frame order.
* :class:`TemporalAttentionDecoder` (Yao et al., ICCV 2015, "Describing Videos by Exploiting
  Temporal Structure"): soft attention over the frames at every word. The context is a weighted
  sum, so it too is blind to frame order (Yao et al. get order from a 3-D CNN, not from here).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from lrcn.models.captioning import (
    AttentionDecoder,
    CaptionOutput,
    FeatureKind,
    ShowAndTellDecoder,
    State,
    _batch_first_state,
    _layer_first,
    masked_mean,
)
from lrcn.nn import LSTM, TemporalAttention

__all__ = ["MeanPoolDecoder", "S2VTDecoder", "TemporalAttentionDecoder"]


def _real_frames(features: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
    """Check ``features (B, T, D)`` against ``lengths (B,)``; return the features with padded
    frames set to 0 (so no garbage, not even NaN, can leak through a 0 weight) and the frame
    mask ``(B, T)``, True on real frames."""
    if features.dim() != 3:
        raise ValueError(f"features must be (B, T, D) frame features, got {tuple(features.shape)}")
    batch, steps = features.shape[:2]
    if lengths.shape != (batch,) or lengths.dtype.is_floating_point:
        raise ValueError(
            f"lengths must be integer frame counts of shape ({batch},), got "
            f"{tuple(lengths.shape)} {lengths.dtype}"
        )
    if batch and (int(lengths.min()) < 1 or int(lengths.max()) > steps):
        raise ValueError(
            f"every length must be in 1..{steps} (the padded frame count), got "
            f"min {int(lengths.min())}, max {int(lengths.max())}"
        )
    mask = torch.arange(steps, device=features.device) < lengths.to(features.device).unsqueeze(1)
    return features.masked_fill(~mask.unsqueeze(2), 0.0), mask  # (B, T, D), (B, T)


# --------------------------------------------------------------------------------------------
# Mean pooling + Show and Tell
# --------------------------------------------------------------------------------------------


class MeanPoolDecoder(nn.Module):
    """The mean of the real frames' features, described by a :class:`ShowAndTellDecoder`: the
    embedded mean is the LSTM's first input, then the words.

    Reusing the image decoder whole keeps the two models one function apart: a video here is
    exactly an image whose feature is the frames' mean.
    """

    feature_kind: FeatureKind = "pooled"

    def __init__(
        self,
        feature_size: int,
        vocab_size: int,
        embed_size: int = 256,
        hidden_size: int = 512,
        num_layers: int = 1,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        self.captioner = ShowAndTellDecoder(
            feature_size, vocab_size, embed_size, hidden_size, num_layers, dropout
        )

    def pool(self, features: Tensor, lengths: Tensor) -> Tensor:
        """``features (B, T, D)``, ``lengths (B,)`` -> the mean real frame ``(B, D)``."""
        return masked_mean(*_real_frames(features, lengths))

    def forward(self, features: Tensor, lengths: Tensor, captions: Tensor) -> CaptionOutput:
        """``features (B, T, D)``, ``lengths (B,)``, ``captions (B, L)`` -> logits
        ``(B, L-1, V)`` for tokens 1..L-1."""
        return self.captioner(self.pool(features, lengths), captions)

    def init_state(self, features: Tensor, lengths: Tensor) -> State:
        """``h``, ``c`` ``(B, num_layers, H)`` after the LSTM has read the mean frame."""
        return self.captioner.init_state(self.pool(features, lengths))

    def step(self, tokens: Tensor, state: State) -> tuple[Tensor, State]:
        """``tokens (N,)`` -> ``log_probs (N, V)`` and the new state."""
        return self.captioner.step(tokens, state)


# --------------------------------------------------------------------------------------------
# S2VT: read the frames, then write the words, with the same two LSTMs
# --------------------------------------------------------------------------------------------


class S2VTDecoder(nn.Module):
    """Two stacked LSTMs, one set of weights for reading and writing (S2VT, figure 2).

    ====================  =====================================  ==============================
    stage                 frame LSTM (first) reads               word LSTM (second) reads
    ====================  =====================================  ==============================
    encoding, T steps     the embedded frame                     [frame LSTM out, 0 (no word)]
    decoding, L-1 steps   0 (no frame)                           [frame LSTM out, embedded word]
    ====================  =====================================  ==============================

    A linear layer scores the vocabulary from the word LSTM's output at decoding steps only.
    The "no frame" input is a zero vector in the embedded frame space (what the frame LSTM
    reads), the "no word" input a zero word embedding (``<pad>``'s, which ``padding_idx`` keeps
    at 0).

    Lengths: encoding runs :class:`lrcn.nn.LSTM` with ``lengths``, which stops each video at
    its own last frame (its ``h_n``, ``c_n`` are the states there), so decoding of a short video
    starts right after its last real frame, as if it were alone in the batch. Decoding starts
    from those states for every row and needs no mask.
    """

    feature_kind: FeatureKind = "pooled"

    def __init__(
        self,
        feature_size: int,
        vocab_size: int,
        embed_size: int = 256,
        hidden_size: int = 512,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        self.embed_size = embed_size
        self.frame_embed = nn.Linear(feature_size, embed_size)
        self.word_embed = nn.Embedding(vocab_size, embed_size, padding_idx=0)
        self.frame_lstm = LSTM(embed_size, hidden_size, batch_first=True)
        self.word_lstm = LSTM(hidden_size + embed_size, hidden_size, batch_first=True)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden_size, vocab_size)

    def _encode(self, features: Tensor, lengths: Tensor) -> State:
        """Read the real frames: ``features (B, T, D)`` -> the states of both LSTMs at each
        video's last real frame, ``frame_h/c`` and ``word_h/c`` each ``(B, 1, H)``."""
        features, _ = _real_frames(features, lengths)
        frames = self.dropout(self.frame_embed(features))  # (B, T, E)
        out1, (h1, c1) = self.frame_lstm(frames, lengths=lengths)  # (B, T, H), (1, B, H)
        assert isinstance(out1, Tensor)
        no_word = out1.new_zeros(*out1.shape[:2], self.embed_size)  # (B, T, E)
        _, (h2, c2) = self.word_lstm(
            torch.cat([self.dropout(out1), no_word], dim=2), lengths=lengths
        )  # (1, B, H) each: the state after each video's own last frame
        return {
            **{"frame_" + k: v for k, v in _batch_first_state(h1, c1).items()},
            **{"word_" + k: v for k, v in _batch_first_state(h2, c2).items()},
        }

    def _decode(self, words: Tensor, state: State) -> tuple[Tensor, State]:
        """``words (B, S, E)`` embedded, from ``state`` -> word LSTM outputs ``(B, S, H)`` and
        the new state. The frame LSTM reads no frame, so it runs over all S steps at once."""
        no_frame = words.new_zeros(*words.shape[:2], self.embed_size)  # (B, S, E)
        out1, (h1, c1) = self.frame_lstm(no_frame, _layer_first(state, "frame_"))  # (B, S, H)
        assert isinstance(out1, Tensor)
        hidden, (h2, c2) = self.word_lstm(
            torch.cat([self.dropout(out1), words], dim=2), _layer_first(state, "word_")
        )  # (B, S, H)
        assert isinstance(hidden, Tensor)
        return hidden, {
            **{"frame_" + k: v for k, v in _batch_first_state(h1, c1).items()},
            **{"word_" + k: v for k, v in _batch_first_state(h2, c2).items()},
        }

    def forward(self, features: Tensor, lengths: Tensor, captions: Tensor) -> CaptionOutput:
        """``features (B, T, D)``, ``lengths (B,)``, ``captions (B, L)`` -> logits
        ``(B, L-1, V)`` for tokens 1..L-1."""
        words = self.dropout(self.word_embed(captions[:, :-1]))  # (B, L-1, E)
        hidden, _ = self._decode(words, self._encode(features, lengths))  # (B, L-1, H)
        return CaptionOutput(self.classifier(self.dropout(hidden)))  # (B, L-1, V)

    def init_state(self, features: Tensor, lengths: Tensor) -> State:
        """``frame_h``, ``frame_c``, ``word_h``, ``word_c`` ``(B, 1, H)`` after the frames."""
        return self._encode(features, lengths)

    def step(self, tokens: Tensor, state: State) -> tuple[Tensor, State]:
        """``tokens (N,)`` -> ``log_probs (N, V)`` and the new state."""
        hidden, state = self._decode(self.word_embed(tokens).unsqueeze(1), state)  # (N, 1, H)
        return self.classifier(hidden[:, 0]).log_softmax(dim=-1), state


# --------------------------------------------------------------------------------------------
# Soft attention over frames
# --------------------------------------------------------------------------------------------


class TemporalAttentionDecoder(AttentionDecoder):
    """At every word, soft attention over the real frames gives a context vector that, with the
    embedded previous word, feeds an LSTM cell; h0, c0 come from the mean real frame.

    :class:`lrcn.models.captioning.AttentionDecoder` (Show-Attend-and-Tell's loop) over frames
    instead of grid positions, without SAT's gate β (Yao et al. feed the context straight in).
    Each frame's feature is first embedded to ``embed_size`` (a linear layer, as S2VT embeds
    its frames): a 2560-wide RGB+flow feature fed raw swamps the word in the LSTM's input and
    the decoder repeats one word. Padded frames are masked out of the softmax: their weight is
    exactly 0, the real frames' sum to 1.
    """

    feature_kind: FeatureKind = "pooled"

    def __init__(
        self,
        feature_size: int,
        vocab_size: int,
        embed_size: int = 256,
        hidden_size: int = 512,
        attention_size: int = 256,
        dropout: float = 0.5,
    ) -> None:
        attention = TemporalAttention(embed_size, hidden_size, attention_size)
        super().__init__(
            attention, embed_size, vocab_size, embed_size, hidden_size, dropout, gated=False
        )
        self.frame_embed = nn.Linear(feature_size, embed_size)

    def init_state(self, features: Tensor, lengths: Tensor) -> State:
        """``h``, ``c`` ``(B, H)`` from the mean real frame; the embedded frames ``(B, T, E)``,
        their projection ``(B, T, A)`` done once, and the frame ``mask (B, T)`` for every
        step."""
        features, mask = _real_frames(features, lengths)
        frames = self.dropout(self.frame_embed(features)) * mask.unsqueeze(2)  # (B, T, E)
        return self._start(frames, mask)

    def forward(self, features: Tensor, lengths: Tensor, captions: Tensor) -> CaptionOutput:
        """``features (B, T, D)``, ``lengths (B,)``, ``captions (B, L)`` -> logits
        ``(B, L-1, V)`` and attention ``alphas (B, L-1, T)``."""
        return self._unroll(self.init_state(features, lengths), captions)
