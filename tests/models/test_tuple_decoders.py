"""Sentences from visual tuples: the slot helpers on worked examples, shapes, teacher forcing
equals stepping, beam 1 is greedy, beams reorder the state, bad inputs are refused, the max-word
variants see only the argmax while the probability variant sees the distribution, and each
decoder learns to say its tuple."""

import time
from collections import Counter

import pytest
import torch

from lrcn.decoding import beam_search, greedy_decode
from lrcn.models.captioning import caption_loss
from lrcn.models.tuple_decoders import (
    TupleEncoderDecoder,
    TupleInputDecoder,
    slot_argmax,
    slot_one_hot,
)

SLOTS = (4, 3, 5)  # e.g. subject, verb, object
WIDTH = sum(SLOTS)
PAD, START, END = 0, 1, 2
WORDS = 3  # sentence word id of joint slot word j is WORDS + j
VOCAB = WORDS + WIDTH
DECODERS = ["encoder_decoder", "max_predictions", "probabilities"]


def _decoder(name, slot_sizes=SLOTS, vocab_size=VOCAB, embed_size=8, hidden_size=16, **kw):
    if name == "encoder_decoder":
        return TupleEncoderDecoder(slot_sizes, vocab_size, embed_size, hidden_size, **kw)
    return TupleInputDecoder(
        slot_sizes, vocab_size, embed_size, hidden_size, probabilities=name == "probabilities", **kw
    )


def _distributions(n, slot_sizes=SLOTS, generator=None):
    """``(n, W)``: a random distribution per slot (softmax of Gaussian scores), concatenated."""
    scores = torch.randn(n, sum(slot_sizes), generator=generator)
    return torch.cat([part.softmax(dim=1) for part in scores.split(slot_sizes, dim=1)], dim=1)


def _features(tuples):
    """``(B, W)`` tuples -> the decoder interface: ``features (B, 1, W)``, ``lengths (B,)`` 1s."""
    return tuples.unsqueeze(1), torch.ones(len(tuples), dtype=torch.long)


def _captions(batch, length):
    caps = torch.randint(WORDS, VOCAB, (batch, length))
    caps[:, 0] = START
    caps[:, -2] = END
    caps[:, -1] = PAD
    return caps


# --------------------------------------------------------------------------------------------
# slot_argmax / slot_one_hot
# --------------------------------------------------------------------------------------------


def test_slot_argmax_and_one_hot_worked_example():
    vector = torch.tensor(
        [
            [0.1, 0.6, 0.2, 0.1, 0.3, 0.3, 0.4, 0.0, 0.0, 0.0, 0.9, 0.1],
            [0.25, 0.25, 0.25, 0.25, 0.5, 0.2, 0.3, 0.7, 0.1, 0.1, 0.05, 0.05],
        ]
    )  # slot 0 of row 1: a four-way tie, which goes to the first word
    assert slot_argmax(vector, SLOTS).tolist() == [[1, 6, 10], [0, 4, 7]]  # with offsets 0, 4, 7
    expected = torch.zeros(2, WIDTH)
    expected[0, [1, 6, 10]] = 1.0
    expected[1, [0, 4, 7]] = 1.0
    assert torch.equal(slot_one_hot(vector, SLOTS), expected)


def test_slot_helpers_keep_leading_dimensions():
    vector = _distributions(6).view(2, 3, WIDTH)
    index = slot_argmax(vector, SLOTS)
    assert index.shape == (2, 3, 3) and index.dtype == torch.long
    one_hot = slot_one_hot(vector, SLOTS)
    assert one_hot.shape == (2, 3, WIDTH)
    assert torch.equal(one_hot.sum(dim=-1), torch.full((2, 3), 3.0))
    assert torch.equal(slot_argmax(one_hot, SLOTS), index)  # one-hot of the argmax: same argmax


@pytest.mark.parametrize("bad", [(), (4, 0, 5), (4, -1)])
def test_bad_slot_sizes_are_refused(bad):
    with pytest.raises(ValueError, match="slot_sizes"):
        slot_argmax(torch.zeros(3), bad)
    for name in DECODERS:
        with pytest.raises(ValueError, match="slot_sizes"):
            _decoder(name, slot_sizes=bad)


def test_slot_helpers_refuse_a_vector_of_the_wrong_width():
    with pytest.raises(ValueError, match=r"end in 12 values .*\(4, 3, 5\).* got shape \(2, 11\)"):
        slot_one_hot(torch.zeros(2, 11), SLOTS)
    with pytest.raises(ValueError, match="end in 12 values"):
        slot_argmax(torch.tensor(1.0), SLOTS)


# --------------------------------------------------------------------------------------------
# The decoders: interface, parity, decoding
# --------------------------------------------------------------------------------------------


def _step_through(decoder, features, lengths, captions):
    state = decoder.init_state(features, lengths)
    steps = []
    for t in range(captions.shape[1] - 1):
        log_probs, state = decoder.step(captions[:, t], state)
        steps.append(log_probs)
    return torch.stack(steps, dim=1)  # (B, L-1, V)


@pytest.mark.parametrize("name", DECODERS)
def test_forward_backward_shapes(name):
    decoder = _decoder(name).train()
    features, lengths = _features(_distributions(3))
    caps = _captions(3, 7)
    out = decoder(features, lengths, caps)
    assert out.logits.shape == (3, 6, VOCAB)
    assert out.alphas is None
    caption_loss(out, caps).backward()
    assert all(p.grad is not None for p in decoder.parameters())
    assert decoder.feature_kind == "pooled"
    state = decoder.init_state(features, lengths)
    assert all(v.shape[0] == 3 for v in state.values())  # batch-first, so beams can reorder it


@pytest.mark.parametrize("name", DECODERS)
def test_teacher_forcing_equals_step_by_step_decoding(name):
    decoder = _decoder(name).eval()
    features, lengths = _features(_distributions(4))
    caps = _captions(4, 7)
    with torch.no_grad():
        out = decoder(features, lengths, caps)
        steps = _step_through(decoder, features, lengths, caps)
    torch.testing.assert_close(steps, out.logits.log_softmax(dim=-1), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", DECODERS)
def test_beam_of_one_is_greedy(name):
    decoder = _decoder(name).eval()
    features, lengths = _features(_distributions(4))
    with torch.no_grad():
        greedy = greedy_decode(
            decoder.step, decoder.init_state(features, lengths), 4, START, END, 8
        )
        beam = beam_search(decoder.step, decoder.init_state(features, lengths), 4, START, END, 1, 8)
    assert beam.best() == greedy.best()
    for g, b in zip(greedy.hypotheses, beam.hypotheses, strict=True):
        assert b[0].log_prob == pytest.approx(g[0].log_prob, abs=1e-4)


@pytest.mark.parametrize("name", DECODERS)
def test_beam_search_of_a_batch_equals_each_tuple_alone(name):
    """Beam search reorders every state tensor (the projected tuple included) along dim 0: three
    tuples decoded together with 3 beams give what each gives alone."""
    decoder = _decoder(name).eval()
    features, lengths = _features(_distributions(3))
    with torch.no_grad():
        together = beam_search(
            decoder.step, decoder.init_state(features, lengths), 3, START, END, 3, 8, n_best=3
        )
        for b in range(3):
            state = decoder.init_state(features[b : b + 1], lengths[b : b + 1])
            alone = beam_search(decoder.step, state, 1, START, END, 3, 8, n_best=3)
            assert [h.tokens for h in together.hypotheses[b]] == [
                h.tokens for h in alone.hypotheses[0]
            ]
            for t, a in zip(together.hypotheses[b], alone.hypotheses[0], strict=True):
                assert t.log_prob == pytest.approx(a.log_prob, abs=1e-4)
    # The three tuples score differently, so a beam read from the wrong row would show.
    assert len({round(h[0].log_prob, 3) for h in together.hypotheses}) == 3


def test_only_the_probability_decoder_sees_more_than_the_argmax():
    """Two tuples with the same max word in every slot but different distributions: the
    encoder-decoder and the max-prediction decoder give exactly the same logits; the
    probability decoder does not."""
    first = _distributions(2)
    second = 0.5 * first + 0.5 * slot_one_hot(first, SLOTS)  # more confident, same max words
    assert torch.equal(slot_argmax(first, SLOTS), slot_argmax(second, SLOTS))
    assert not torch.allclose(first, second)
    caps = _captions(2, 6)
    for name in DECODERS:
        decoder = _decoder(name).eval()
        with torch.no_grad():
            logits_1 = decoder(*_features(first), caps).logits
            logits_2 = decoder(*_features(second), caps).logits
        if name == "probabilities":
            assert not torch.allclose(logits_1, logits_2, atol=1e-4), name
        else:
            assert torch.equal(logits_1, logits_2), name


@pytest.mark.parametrize("name", DECODERS)
@pytest.mark.parametrize(
    ("features", "lengths", "message"),
    [
        (torch.zeros(2, WIDTH), torch.ones(2, dtype=torch.long), r"\(B, 1, 12\).*got \(2, 12\)"),
        (
            torch.zeros(2, 2, WIDTH),
            torch.ones(2, dtype=torch.long),
            r"\(B, 1, 12\).*got \(2, 2, 12\)",
        ),
        (torch.zeros(2, 1, 11), torch.ones(2, dtype=torch.long), r"\(B, 1, 12\).*got \(2, 1, 11\)"),
        (torch.zeros(2, 1, WIDTH), torch.tensor([1, 2]), r"every length must be 1 .*\[1, 2\]"),
        (torch.zeros(2, 1, WIDTH), torch.tensor([0, 1]), r"every length must be 1"),
        (torch.zeros(2, 1, WIDTH), torch.ones(3, dtype=torch.long), r"lengths .* shape \(2,\)"),
        (torch.zeros(2, 1, WIDTH), torch.ones(2), r"lengths must be integer"),
    ],
)
def test_bad_inputs_are_refused(name, features, lengths, message):
    decoder = _decoder(name)
    with pytest.raises(ValueError, match=message):
        decoder(features, lengths, _captions(2, 5))
    with pytest.raises(ValueError, match=message):
        decoder.init_state(features, lengths)


# --------------------------------------------------------------------------------------------
# Learning
# --------------------------------------------------------------------------------------------


def _peaked(n, slot_sizes, generator):
    """``(n, W)`` tuples whose max word per slot is clear: a random word gets probability
    0.55-0.95, the rest is spread at random over the slot's other words."""
    parts = []
    for size in slot_sizes:
        noise = torch.rand(n, size, generator=generator)
        word = torch.randint(size, (n, 1), generator=generator)
        noise.scatter_(1, word, 0.0)
        noise = noise / noise.sum(dim=1, keepdim=True).clamp_min(1e-12)
        p = 0.55 + 0.4 * torch.rand(n, 1, generator=generator)
        parts.append((noise * (1 - p)).scatter_(1, word, p))
    return torch.cat(parts, dim=1)


def _close_calls(n, slot_sizes, generator):
    """``(n, W)`` tuples of two-word slots with noisy, close probabilities: p and 1 - p with
    p uniform on [0.05, 0.95] but never within 0.05 of a tie."""
    assert all(size == 2 for size in slot_sizes)
    p = 0.05 + 0.4 * torch.rand(n, len(slot_sizes), generator=generator)  # 0.05 .. 0.45
    p = torch.where(torch.rand(n, len(slot_sizes), generator=generator) < 0.5, p, 1 - p)
    return torch.stack([p, 1 - p], dim=2).flatten(1)  # (n, 2S)


def _say_the_max_words(tuples, slot_sizes):
    """The toy sentence of a tuple: its max word in each slot, in slot order."""
    words = WORDS + slot_argmax(tuples, slot_sizes)  # (n, S)
    start = torch.full((len(tuples), 1), START)
    end = torch.full((len(tuples), 1), END)
    return torch.cat([start, words, end], dim=1)  # (n, S + 2)


def _learn(name, make_tuples, slot_sizes, steps):
    """Train on 512 tuples with Adam; return (greedy accuracy, most-frequent-sentence accuracy)
    on 256 held-out tuples, counting whole sentences."""
    generator = torch.Generator().manual_seed(1)
    train = make_tuples(512, slot_sizes, generator)
    test = make_tuples(256, slot_sizes, generator)
    train_caps = _say_the_max_words(train, slot_sizes)
    expected = [c[1:].tolist() for c in _say_the_max_words(test, slot_sizes)]
    vocab = WORDS + sum(slot_sizes)
    decoder = _decoder(name, slot_sizes, vocab, embed_size=16, hidden_size=32, dropout=0.0)
    optimizer = torch.optim.Adam(decoder.parameters(), lr=0.01)
    features, lengths = _features(train)
    for _ in range(steps):
        loss = caption_loss(decoder(features, lengths, train_caps), train_caps)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    decoder.eval()
    with torch.no_grad():
        state = decoder.init_state(*_features(test))
        decoded = greedy_decode(decoder.step, state, len(test), START, END, max_len=10).best()
    accuracy = sum(d == e for d, e in zip(decoded, expected, strict=True)) / len(expected)
    most_frequent = Counter(tuple(c[1:].tolist()) for c in train_caps).most_common(1)[0][0]
    baseline = sum(tuple(e) == most_frequent for e in expected) / len(expected)
    return accuracy, baseline


@pytest.mark.parametrize("name", DECODERS)
def test_decoders_learn_to_say_the_max_words(name):
    """Sentence = the max word of each of 3 slots (4 x 3 x 5 = 60 sentences): every decoder
    gets >= 95% of held-out sentences exactly right, where always saying the most frequent
    training sentence gets few."""
    began = time.perf_counter()
    accuracy, baseline = _learn(name, _peaked, SLOTS, steps=200)
    assert accuracy >= 0.95, accuracy
    assert baseline <= 0.4, baseline
    assert time.perf_counter() - began < 10


def test_probability_decoder_learns_which_of_two_words_is_more_likely():
    """Four slots of two words each with noisy, close probabilities (down to 0.55 against 0.45):
    the sentence depends on which word of each pair is the more likely, and the probability
    decoder, which must learn that comparison from the raw numbers, gets it right."""
    began = time.perf_counter()
    accuracy, baseline = _learn("probabilities", _close_calls, (2, 2, 2, 2), steps=300)
    assert accuracy >= 0.95, accuracy
    assert baseline <= 0.4, baseline
    assert time.perf_counter() - began < 10
