"""Greedy and beam search decoding, shared by every sequence-out model.

A model exposes one decoding step::

    step(tokens (N,), state) -> (log_probs (N, V), state)

where ``state`` is a dict of tensors whose first dimension is N (hidden states, image
features, anything the next step needs). Beam search runs all images and all their beams as one
batch of ``B * K`` rows and reorders the state with ``index_select`` when beams are
re-ranked: batched over images and beams in one tensor, which measured 7.4x faster than a loop
over images (PERF-NOTES).

Finished hypotheses (those that emitted ``<end>``) stay in the beam with their score frozen,
and every hypothesis still open at ``max_len`` ends there. The final ranking divides a
hypothesis' summed log-probability by the GNMT length penalty ``((5 + len) / 6) ** alpha``
(``alpha = 0`` ranks by raw log-probability).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor

State = dict[str, Tensor]
Step = Callable[[Tensor, State], tuple[Tensor, State]]

__all__ = ["BeamResult", "Hypothesis", "Step", "beam_search", "greedy_decode", "length_penalty"]


class Hypothesis(NamedTuple):
    """One decoded sequence: token ids without ``<start>``, ending with ``<end>`` when the model
    ended it (not when ``max_len`` did), its summed log-probability and its ranking score."""

    tokens: list[int]
    log_prob: float
    score: float


class BeamResult(NamedTuple):
    """``hypotheses[b]``: the n best hypotheses of image b, best first."""

    hypotheses: list[list[Hypothesis]]

    def best(self) -> list[list[int]]:
        return [h[0].tokens for h in self.hypotheses]


def length_penalty(length: Tensor | int, alpha: float) -> Tensor | float:
    """GNMT's ``((5 + length) / 6) ** alpha`` (Wu et al., 2016)."""
    return ((5.0 + length) / 6.0) ** alpha


def _reorder(state: State, index: Tensor) -> State:
    return {k: v.index_select(0, index) for k, v in state.items()}


def greedy_decode(
    step: Step, state: State, batch_size: int, start_id: int, end_id: int, max_len: int
) -> BeamResult:
    """The most likely next word at every step, for ``batch_size`` images at once."""
    device = next(iter(state.values())).device if state else torch.device("cpu")
    tokens = torch.full((batch_size,), start_id, dtype=torch.long, device=device)
    finished = torch.zeros(batch_size, dtype=torch.bool, device=device)
    log_prob = torch.zeros(batch_size, device=device)
    out = []
    for _ in range(max_len):
        log_probs, state = step(tokens, state)  # (B, V)
        best, tokens = log_probs.max(dim=1)
        log_prob += torch.where(finished, torch.zeros_like(best), best)
        out.append(torch.where(finished, torch.full_like(tokens, end_id), tokens))
        finished |= tokens == end_id
        if bool(finished.all()):
            break
    seqs = torch.stack(out, dim=1).tolist()  # (B, L)
    hyps = []
    for b, seq in enumerate(seqs):
        tokens_b = seq[: seq.index(end_id) + 1] if end_id in seq else seq
        lp = float(log_prob[b])
        hyps.append([Hypothesis(tokens_b, lp, lp)])
    return BeamResult(hyps)


def beam_search(
    step: Step,
    state: State,
    batch_size: int,
    start_id: int,
    end_id: int,
    beam_size: int = 5,
    max_len: int = 20,
    alpha: float = 0.0,
    n_best: int = 1,
) -> BeamResult:
    """Batched beam search; see the module docstring.

    Args:
        step: the model's decoding step.
        state: initial state, first dimension ``batch_size`` (expanded to the beams here).
        beam_size: K hypotheses kept per image; 1 is greedy decoding.
        max_len: most tokens generated per hypothesis, ``<end>`` included.
        alpha: length-penalty exponent for the final ranking.
        n_best: how many hypotheses to return per image (<= beam_size).
    """
    if not 1 <= n_best <= beam_size:
        raise ValueError(f"n_best must be in 1..beam_size ({beam_size}), got {n_best}")
    k = beam_size
    device = next(iter(state.values())).device if state else torch.device("cpu")
    offsets = torch.arange(batch_size, device=device).unsqueeze(1) * k  # (B, 1)
    # Step 1 from one row per image (its K beams would all be the same), then K beams each.
    start = torch.full((batch_size,), start_id, dtype=torch.long, device=device)
    log_probs, state = step(start, state)  # (B, V)
    top_scores, tokens = log_probs.topk(min(k, log_probs.shape[1]), dim=1)  # (B, K')
    if top_scores.shape[1] < k:  # fewer words than beams: pad with impossible beams
        pad = k - top_scores.shape[1]
        top_scores = torch.cat(
            [top_scores, top_scores.new_full((batch_size, pad), float("-inf"))], 1
        )
        tokens = torch.cat([tokens, tokens.new_full((batch_size, pad), end_id)], 1)
    state = _reorder(state, torch.arange(batch_size, device=device).repeat_interleave(k))
    tokens = tokens.reshape(-1)  # (B*K,)
    scores = top_scores.reshape(-1)  # (B*K,) summed log-probabilities
    history = tokens.unsqueeze(1)  # (B*K, 1)
    lengths = torch.ones(batch_size * k, dtype=torch.long, device=device)
    finished = tokens == end_id
    for _ in range(max_len - 1):
        if bool(finished.all()):
            break
        log_probs, state = step(tokens, state)  # (B*K, V)
        vocab = log_probs.shape[1]
        if bool(finished.any()):
            # A finished hypothesis may only "continue" with <end> at no cost: it stays as is.
            log_probs[finished] = float("-inf")
            log_probs[finished, end_id] = 0.0
        candidates = (scores.unsqueeze(1) + log_probs).view(batch_size, k * vocab)
        top_scores, top_index = candidates.topk(k, dim=1)  # (B, K)
        source = (top_index // vocab + offsets).view(-1)  # rows the new beams extend
        tokens = (top_index % vocab).view(-1)
        state = _reorder(state, source)
        history = torch.cat([history.index_select(0, source), tokens.unsqueeze(1)], dim=1)
        was_finished = finished.index_select(0, source)
        lengths = lengths.index_select(0, source) + (~was_finished).long()
        finished = was_finished | (tokens == end_id)
        scores = top_scores.view(-1)
    penalty = length_penalty(lengths.float(), alpha)
    ranked = (scores / penalty).view(batch_size, k)
    order = ranked.argsort(dim=1, descending=True)
    result = []
    for b in range(batch_size):
        hyps = []
        for j in order[b, :n_best].tolist():
            row = b * k + j
            seq = history[row, : int(lengths[row])].tolist()
            hyps.append(Hypothesis(seq, float(scores[row]), float(ranked[b, j])))
        result.append(hyps)
    return BeamResult(result)
