"""Soft (additive) attention: Show-Attend-and-Tell's spatial attention and attention over frames.

Xu et al., "Show, Attend and Tell" (ICML 2015), eq. 4-6 with Bahdanau-style scoring: for
features a_p ``(D,)`` at P positions and a decoder state h ``(H,)``::

    e_p   = w_aᵀ tanh(W_f a_p + W_h h + b)        score of position p
    α     = softmax_p(e)                          weights, sum to 1 over p
    ẑ     = Σ_p α_p a_p                           context vector

A mask removes positions (padding of a variable-size grid, frames past a video's end): their
score is set to -inf before the softmax, so their weight is exactly 0.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

__all__ = ["AttentionOutput", "SoftAttention", "TemporalAttention"]


class AttentionOutput(NamedTuple):
    """Context vector ``(B, D)`` and attention weights ``(B, P)`` (rows sum to 1)."""

    context: Tensor
    weights: Tensor


class SoftAttention(nn.Module):
    """Spatial soft attention over a CNN feature grid (Show-Attend-and-Tell).

    Args:
        feature_size: D, channels of each grid position (e.g. 1280 for EfficientNet-Lite0).
        hidden_size: H, size of the decoder state that asks the question.
        attention_size: A, width of the scoring layer.

    ``forward(features (B, P, D), hidden (B, H), mask (B, P) bool or None)`` returns an
    :class:`AttentionOutput`. A decoder that attends at every word can call
    :meth:`project_features` once per image and pass the result as ``projected``.
    """

    def __init__(self, feature_size: int, hidden_size: int, attention_size: int) -> None:
        super().__init__()
        self.feature_proj = nn.Linear(feature_size, attention_size)  # W_f (and b)
        self.hidden_proj = nn.Linear(hidden_size, attention_size, bias=False)  # W_h
        self.score = nn.Linear(attention_size, 1, bias=False)  # w_a

    def project_features(self, features: Tensor) -> Tensor:
        """``W_f a + b`` for every position: ``(B, P, D)`` -> ``(B, P, A)``."""
        return self.feature_proj(features)

    def forward(
        self,
        features: Tensor,
        hidden: Tensor,
        mask: Tensor | None = None,
        projected: Tensor | None = None,
    ) -> AttentionOutput:
        """Attend over ``features (B, P, D)`` given ``hidden (B, H)``; see the module doc."""
        if features.dim() != 3 or hidden.dim() != 2 or features.shape[0] != hidden.shape[0]:
            raise ValueError(
                f"{type(self).__name__} expects features (B, P, D) and hidden (B, H) with the "
                f"same B, got {tuple(features.shape)} and {tuple(hidden.shape)}"
            )
        if projected is None:
            projected = self.project_features(features)  # (B, P, A)
        query = self.hidden_proj(hidden).unsqueeze(1)  # (B, 1, A)
        scores = self.score(torch.tanh(projected + query)).squeeze(2)  # (B, P)
        if mask is not None:
            if mask.shape != scores.shape:
                raise ValueError(
                    f"mask must have shape {tuple(scores.shape)} (B, P), got {tuple(mask.shape)}"
                )
            mask = mask.bool()
            if not bool(mask.any(dim=1).all()):
                raise ValueError("every row of the attention mask needs at least one True position")
            scores = scores.masked_fill(~mask, float("-inf"))
        weights = torch.softmax(scores, dim=1)  # (B, P); masked positions exactly 0
        context = torch.bmm(weights.unsqueeze(1), features).squeeze(1)  # (B, D)
        return AttentionOutput(context, weights)


class TemporalAttention(SoftAttention):
    """Soft attention over the frames of a video: ``features (B, T, D)`` -> context ``(B, D)``
    and weights ``(B, T)``, with a ``(B, T)`` mask for videos shorter than T.

    The same scoring as :class:`SoftAttention` (Yao et al., "Describing Videos by Exploiting
    Temporal Structure", ICCV 2015, use it to let a sentence decoder pick frames per word).
    """
