"""Beam search against exhaustive search on a toy model; beam 1 equals greedy."""

import itertools
import math

import pytest
import torch

from lrcn.decoding import beam_search, greedy_decode, length_penalty

V, END, START = 5, 2, 1  # token 2 ends a sentence, 1 starts it


class ToyModel:
    """Log-probs depend on a running state, so reordering the state wrongly changes results."""

    def __init__(self, seed: int) -> None:
        g = torch.Generator().manual_seed(seed)
        self.emb = torch.randn(V, 6, generator=g)
        self.out = torch.randn(6, V, generator=g) * 2
        self.bias = torch.randn(V, generator=g)

    def step(self, tokens, state):
        h = torch.tanh(0.7 * state["h"] + self.emb[tokens] + state["image"])  # (N, 6)
        logits = h @ self.out + self.bias
        logits[:, START] = -1e9  # never predicts <start>
        return logits.log_softmax(dim=1), {"h": h, "image": state["image"]}

    def initial(self, batch: int, seed: int = 0):
        g = torch.Generator().manual_seed(seed + 100)
        return {"h": torch.zeros(batch, 6), "image": torch.randn(batch, 6, generator=g) * 0.5}


def _sequence_log_prob(model, image_state, seq):
    state = image_state
    tokens = torch.tensor([START])
    total = 0.0
    for t in seq:
        log_probs, state = model.step(tokens, state)
        total += float(log_probs[0, t])
        tokens = torch.tensor([t])
    return total


def _exhaustive(model, state_b, max_len, alpha):
    """Every hypothesis: ended by <end> at some length, or cut at max_len."""
    best = None
    words = [t for t in range(V) if t not in (START, END)] + [END]
    for n in range(1, max_len + 1):
        for seq in itertools.product(words, repeat=n):
            if END in seq[:-1] or (n < max_len and seq[-1] != END):
                continue
            lp = _sequence_log_prob(model, state_b, list(seq))
            score = lp / length_penalty(n, alpha)
            if best is None or score > best[0] + 1e-9:
                best = (score, list(seq))
    return best


@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_wide_beam_finds_the_exhaustive_optimum(alpha):
    model = ToyModel(seed=3)
    batch, max_len = 3, 4
    state = model.initial(batch)
    result = beam_search(
        model.step, state, batch, START, END, beam_size=200, max_len=max_len, alpha=alpha
    )
    for b in range(batch):
        one = {k: v[b : b + 1] for k, v in state.items()}
        score, seq = _exhaustive(model, one, max_len, alpha)
        got = result.hypotheses[b][0]
        assert got.tokens == seq, (b, got, seq)
        assert math.isclose(got.score, score, rel_tol=1e-5, abs_tol=1e-5)
        assert math.isclose(
            got.log_prob, _sequence_log_prob(model, one, seq), rel_tol=1e-5, abs_tol=1e-5
        )


@pytest.mark.parametrize("seed", range(5))
def test_beam_of_one_is_exactly_greedy(seed):
    model = ToyModel(seed)
    state = model.initial(8, seed)
    greedy = greedy_decode(model.step, state, 8, START, END, max_len=12)
    beam = beam_search(model.step, state, 8, START, END, beam_size=1, max_len=12)
    assert beam.best() == greedy.best()
    for g, b in zip(greedy.hypotheses, beam.hypotheses, strict=True):
        assert math.isclose(g[0].log_prob, b[0].log_prob, rel_tol=1e-6, abs_tol=1e-6)


def test_every_hypothesis_ends_by_max_len_and_n_best_is_sorted():
    model = ToyModel(seed=1)
    result = beam_search(
        model.step, model.initial(4), 4, START, END, beam_size=5, max_len=3, n_best=5
    )
    for hyps in result.hypotheses:
        assert len(hyps) == 5
        assert all(1 <= len(h.tokens) <= 3 for h in hyps)
        assert all(h.tokens[-1] == END or len(h.tokens) == 3 for h in hyps)
        assert all(END not in h.tokens[:-1] for h in hyps)
        scores = [h.score for h in hyps]
        assert scores == sorted(scores, reverse=True)
        assert len({tuple(h.tokens) for h in hyps}) == 5  # distinct hypotheses


def test_batched_beams_equal_one_image_at_a_time():
    model = ToyModel(seed=7)
    state = model.initial(5)
    together = beam_search(model.step, state, 5, START, END, beam_size=3, max_len=6, n_best=3)
    for b in range(5):
        alone = beam_search(
            model.step,
            {k: v[b : b + 1] for k, v in state.items()},
            1,
            START,
            END,
            beam_size=3,
            max_len=6,
            n_best=3,
        )
        assert [h.tokens for h in alone.hypotheses[0]] == [h.tokens for h in together.hypotheses[b]]


def test_n_best_larger_than_beam_is_refused():
    model = ToyModel(seed=0)
    with pytest.raises(ValueError, match=r"n_best must be in 1\.\.beam_size"):
        beam_search(model.step, model.initial(1), 1, START, END, beam_size=2, n_best=3)
