"""Sentences from visual tuples (LRCN paper, Donahue et al., CVPR 2015, section 5, TACoS
multilevel).

There a CRF first predicts, per video, a probability distribution over the words of each
semantic slot (subject, verb, object, place, ...), and an LSTM turns that *visual tuple* into a
sentence. A tuple here is one vector per video, the slots' distributions concatenated in slot
order: shape ``(W,)`` with ``W = sum(slot_sizes)``. Word ``j`` of slot ``s`` has the joint
index ``offset_s + j`` (``offset_s`` = the sizes of the slots before ``s``), so one table of
``W`` rows holds the words of every slot.

The decoders follow the interface of :mod:`lrcn.models.video_decoders` exactly, so training,
:func:`lrcn.models.captioning.caption_loss` and :mod:`lrcn.decoding` take them unchanged: a
tuple is a "video" of one pooled feature, ``features (B, 1, W)`` with ``lengths (B,)`` all 1
(checked: anything else is a ValueError, never a silent reshape).

The paper's three variants:

* :class:`TupleEncoderDecoder` ("LSTM encoder-decoder"): the max-probability word of each slot,
  read as a sequence by an encoder LSTM whose final state starts the decoder LSTM.
* :class:`TupleInputDecoder` with ``probabilities=False`` ("LSTM decoder, max predictions"):
  the one-hot of each slot's max word is an input at every word, beside the previous word.
* :class:`TupleInputDecoder` with ``probabilities=True`` ("LSTM decoder, probability
  distributions", the paper's best on TACoS): the distributions themselves are that input,
  so the decoder also sees how sure the CRF was and what came second.

The first two see only each slot's argmax: two tuples with the same max words give exactly the
same sentence.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from lrcn.models.captioning import (
    CaptionOutput,
    FeatureKind,
    State,
    _batch_first_state,
    _layer_first,
)
from lrcn.nn import LSTM

__all__ = ["TupleEncoderDecoder", "TupleInputDecoder", "slot_argmax", "slot_one_hot"]


# --------------------------------------------------------------------------------------------
# Slot helpers: per-slot argmax over a concatenated tuple vector
# --------------------------------------------------------------------------------------------


def _check_slot_sizes(slot_sizes: Sequence[int]) -> tuple[int, ...]:
    """``slot_sizes`` as a tuple of positive ints, or a ValueError naming the bad value."""
    sizes = tuple(slot_sizes)
    if not sizes or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in sizes):
        raise ValueError(
            f"slot_sizes must be one or more positive word counts (one per slot), got {sizes}"
        )
    return sizes


def slot_argmax(vector: Tensor, slot_sizes: Sequence[int]) -> Tensor:
    """Each slot's highest-scoring word, as an index into the joint word table.

    Args:
        vector: ``(..., W)`` the slots' scores (probabilities, or anything ordered like them)
            concatenated in slot order, ``W = sum(slot_sizes)``.
        slot_sizes: how many words each slot has.

    Returns:
        ``(..., S)`` long: ``offset_s + argmax`` of slot ``s``; ties go to the first word.
    """
    sizes = _check_slot_sizes(slot_sizes)
    width = sum(sizes)
    if vector.dim() == 0 or vector.shape[-1] != width:
        raise ValueError(
            f"a tuple vector must end in {width} values (slot sizes {sizes} concatenated), got "
            f"shape {tuple(vector.shape)}"
        )
    offsets = [sum(sizes[:s]) for s in range(len(sizes))]
    # torch.argmax returns the first of equal maxima, which is the tie rule we promise.
    return torch.stack(
        [
            part.argmax(dim=-1) + offset
            for part, offset in zip(vector.split(sizes, dim=-1), offsets, strict=True)
        ],
        dim=-1,
    )  # (..., S)


def slot_one_hot(vector: Tensor, slot_sizes: Sequence[int]) -> Tensor:
    """The one-hot of each slot's highest-scoring word (ties: the first), concatenated.

    Args:
        vector: ``(..., W)`` the slots' scores concatenated in slot order.
        slot_sizes: how many words each slot has.

    Returns:
        ``(..., W)`` of ``vector``'s dtype: 1 at each slot's max word, 0 elsewhere, so exactly
        ``S`` ones.
    """
    index = slot_argmax(vector, slot_sizes)  # (..., S), joint indices
    return torch.zeros_like(vector).scatter_(-1, index, 1.0)  # (..., W)


def _tuples(features: Tensor, lengths: Tensor, width: int) -> Tensor:
    """Check ``features (B, 1, W)`` and ``lengths (B,)`` (all 1: one tuple per video, the
    video-decoder interface with a single "frame"); return the tuples ``(B, W)``."""
    if features.dim() != 3 or features.shape[1] != 1 or features.shape[2] != width:
        raise ValueError(
            f"features must be (B, 1, {width}) visual tuples (one vector of the slots' "
            f"{width} word scores per video), got {tuple(features.shape)}"
        )
    batch = features.shape[0]
    if lengths.shape != (batch,) or lengths.dtype.is_floating_point:
        raise ValueError(
            f"lengths must be integer counts of shape ({batch},), got "
            f"{tuple(lengths.shape)} {lengths.dtype}"
        )
    if batch and bool((lengths != 1).any()):
        raise ValueError(
            f"every length must be 1 (one visual tuple per video), got {lengths.tolist()}"
        )
    return features[:, 0]  # (B, W)


# --------------------------------------------------------------------------------------------
# Encoder-decoder: an LSTM reads the max words, another writes the sentence
# --------------------------------------------------------------------------------------------


class TupleEncoderDecoder(nn.Module):
    """The encoder LSTM reads the S slots' max words as a sequence; its final ``(h, c)`` is the
    initial state of the decoder LSTM, which then reads only the embedded previous word.

    The paper feeds the encoder one-hot vectors; a one-hot times a weight matrix is a row of
    that matrix, so an :class:`torch.nn.Embedding` of ``W`` rows (one table for the words of
    every slot, indexed by :func:`slot_argmax`) is the same model without the zeros. Encoder and
    decoder have their own weights: reading slots and writing words are different jobs. Only the
    argmax reaches the model, so no gradient flows into the tuple, as in the paper (the CRF is
    trained apart).
    """

    feature_kind: FeatureKind = "pooled"

    def __init__(
        self,
        slot_sizes: Sequence[int],
        vocab_size: int,
        embed_size: int = 256,
        hidden_size: int = 512,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        self.slot_sizes = _check_slot_sizes(slot_sizes)
        self.tuple_size = sum(self.slot_sizes)
        self.slot_embed = nn.Embedding(self.tuple_size, embed_size)  # one-hot @ matrix
        self.encoder = LSTM(embed_size, hidden_size, batch_first=True)
        self.word_embed = nn.Embedding(vocab_size, embed_size, padding_idx=0)
        self.decoder = LSTM(embed_size, hidden_size, batch_first=True)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden_size, vocab_size)

    def init_state(self, features: Tensor, lengths: Tensor) -> State:
        """``h``, ``c`` ``(B, 1, H)``: the encoder's state after the last slot."""
        slots = slot_argmax(_tuples(features, lengths, self.tuple_size), self.slot_sizes)  # (B, S)
        _, (h, c) = self.encoder(self.dropout(self.slot_embed(slots)))  # (1, B, H) each
        return _batch_first_state(h, c)

    def forward(self, features: Tensor, lengths: Tensor, captions: Tensor) -> CaptionOutput:
        """``features (B, 1, W)``, ``lengths (B,)`` all 1, ``captions (B, L)`` -> logits
        ``(B, L-1, V)`` for tokens 1..L-1."""
        state = self.init_state(features, lengths)
        words = self.dropout(self.word_embed(captions[:, :-1]))  # (B, L-1, E)
        hidden, _ = self.decoder(words, _layer_first(state))  # (B, L-1, H)
        return CaptionOutput(self.classifier(self.dropout(hidden)))  # (B, L-1, V)

    def step(self, tokens: Tensor, state: State) -> tuple[Tensor, State]:
        """``tokens (N,)`` -> ``log_probs (N, V)`` and the new state."""
        words = self.word_embed(tokens).unsqueeze(1)  # (N, 1, E)
        hidden, (h, c) = self.decoder(words, _layer_first(state))  # (N, 1, H)
        return self.classifier(hidden[:, 0]).log_softmax(dim=-1), _batch_first_state(h, c)


# --------------------------------------------------------------------------------------------
# Decoder with the tuple as an input at every word
# --------------------------------------------------------------------------------------------


class TupleInputDecoder(nn.Module):
    """One LSTM whose input at every word is ``[embedded previous word ; Linear(tuple)]``; it
    starts from zeros, so the tuple reaches it at the very first step, with ``<start>``.

    ``probabilities=False``: the tuple is the one-hot of each slot's max word
    (:func:`slot_one_hot`), which the linear layer turns into the sum of one learned vector per
    max word. ``probabilities=True``: the vector as given (the CRF's distributions); the layer
    then weighs every word by its probability, so a confident and a hesitant tuple with the
    same max words read differently. The projection ``(B, E)`` is computed once, in
    :meth:`init_state`, and kept in the state, so beam search reorders it with the beams.
    """

    feature_kind: FeatureKind = "pooled"

    def __init__(
        self,
        slot_sizes: Sequence[int],
        vocab_size: int,
        embed_size: int = 256,
        hidden_size: int = 512,
        dropout: float = 0.5,
        *,
        probabilities: bool,
    ) -> None:
        super().__init__()
        self.slot_sizes = _check_slot_sizes(slot_sizes)
        self.tuple_size = sum(self.slot_sizes)
        self.probabilities = probabilities
        self.tuple_proj = nn.Linear(self.tuple_size, embed_size)
        self.word_embed = nn.Embedding(vocab_size, embed_size, padding_idx=0)
        self.lstm = LSTM(2 * embed_size, hidden_size, batch_first=True)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden_size, vocab_size)

    def init_state(self, features: Tensor, lengths: Tensor) -> State:
        """``h``, ``c`` ``(B, 1, H)`` zeros and the projected ``tuple (B, E)``."""
        tuples = _tuples(features, lengths, self.tuple_size)  # (B, W)
        if not self.probabilities:
            tuples = slot_one_hot(tuples, self.slot_sizes)  # (B, W), S ones
        h = tuples.new_zeros(tuples.shape[0], 1, self.lstm.hidden_size)  # (B, 1, H)
        return {"h": h, "c": h.clone(), "tuple": self.tuple_proj(tuples)}  # tuple (B, E)

    def _run(self, words: Tensor, state: State) -> tuple[Tensor, State]:
        """``words (B, T, E)`` embedded, from ``state`` -> hidden ``(B, T, H)``, new state."""
        tuple_t = state["tuple"].unsqueeze(1).expand(-1, words.shape[1], -1)  # (B, T, E)
        inputs = self.dropout(torch.cat([words, tuple_t], dim=2))  # (B, T, 2E)
        hidden, (h, c) = self.lstm(inputs, _layer_first(state))  # (B, T, H)
        assert isinstance(hidden, Tensor)
        return hidden, {**_batch_first_state(h, c), "tuple": state["tuple"]}

    def forward(self, features: Tensor, lengths: Tensor, captions: Tensor) -> CaptionOutput:
        """``features (B, 1, W)``, ``lengths (B,)`` all 1, ``captions (B, L)`` -> logits
        ``(B, L-1, V)`` for tokens 1..L-1."""
        words = self.word_embed(captions[:, :-1])  # (B, L-1, E)
        hidden, _ = self._run(words, self.init_state(features, lengths))  # (B, L-1, H)
        return CaptionOutput(self.classifier(self.dropout(hidden)))  # (B, L-1, V)

    def step(self, tokens: Tensor, state: State) -> tuple[Tensor, State]:
        """``tokens (N,)`` -> ``log_probs (N, V)`` and the new state."""
        hidden, state = self._run(self.word_embed(tokens).unsqueeze(1), state)  # (N, 1, H)
        return self.classifier(hidden[:, 0]).log_softmax(dim=-1), state
