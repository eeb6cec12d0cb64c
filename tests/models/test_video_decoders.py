"""Video description decoders: shapes, teacher forcing equals stepping, padding changes nothing,
masked attention, beam 1 is greedy, and each learns; S2VT learns frame order, mean pooling
cannot."""

import pytest
import torch

from lrcn.decoding import beam_search, greedy_decode
from lrcn.models.captioning import caption_loss
from lrcn.models.video_decoders import MeanPoolDecoder, S2VTDecoder, TemporalAttentionDecoder

FEATURES, VOCAB = 10, 12
START, END = 1, 2
DECODERS = {
    "mean_pool": MeanPoolDecoder,
    "s2vt": S2VTDecoder,
    "temporal_attention": TemporalAttentionDecoder,
}


def _decoder(name, feature_size=FEATURES, embed_size=8, hidden_size=16, **kw):
    cls = DECODERS[name]
    if cls is TemporalAttentionDecoder:
        kw.setdefault("attention_size", 8)
    return cls(feature_size, VOCAB, embed_size=embed_size, hidden_size=hidden_size, **kw)


def _captions(batch, length):
    caps = torch.randint(4, VOCAB, (batch, length))
    caps[:, 0] = START
    caps[:, -2] = END
    caps[:, -1] = 0  # one <pad>
    return caps


def _padded(lengths, steps, feature_size=FEATURES):
    """Random frames; the padding is large garbage, which must change nothing."""
    features = torch.randn(len(lengths), steps, feature_size)
    for b, n in enumerate(lengths):
        features[b, n:] = 1e3 * torch.randn(steps - n, feature_size)
    return features, torch.tensor(lengths)


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
    features, lengths = _padded([6, 2, 1], 6)
    caps = _captions(3, 7)
    out = decoder(features, lengths, caps)
    assert out.logits.shape == (3, 6, VOCAB)
    if name == "temporal_attention":
        assert out.alphas.shape == (3, 6, 6)
    else:
        assert out.alphas is None
    caption_loss(out, caps, attention_weight=1.0).backward()
    assert all(p.grad is not None for p in decoder.parameters())
    assert decoder.feature_kind == "pooled"


@pytest.mark.parametrize("name", DECODERS)
def test_teacher_forcing_equals_step_by_step_decoding(name):
    decoder = _decoder(name).eval()
    features, lengths = _padded([6, 3, 1], 6)
    caps = _captions(3, 7)
    with torch.no_grad():
        out = decoder(features, lengths, caps)
        steps = _step_through(decoder, features, lengths, caps)
    torch.testing.assert_close(steps, out.logits.log_softmax(dim=-1), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", DECODERS)
def test_padding_changes_nothing(name):
    """Two videos of 5 and 8 frames padded to 8 give what each gives alone, unpadded."""
    decoder = _decoder(name).eval()
    features, lengths = _padded([5, 8], 8)
    caps = _captions(2, 7)
    with torch.no_grad():
        batched = decoder(features, lengths, caps)
        stepped = _step_through(decoder, features, lengths, caps)
        for b, n in enumerate([5, 8]):
            alone = decoder(features[b : b + 1, :n], torch.tensor([n]), caps[b : b + 1])
            torch.testing.assert_close(batched.logits[b : b + 1], alone.logits, atol=1e-5, rtol=0)
            torch.testing.assert_close(
                stepped[b : b + 1], alone.logits.log_softmax(-1), atol=1e-5, rtol=0
            )
            if batched.alphas is not None:
                torch.testing.assert_close(
                    batched.alphas[b : b + 1, :, :n], alone.alphas, atol=1e-5, rtol=0
                )


def test_attention_is_masked_to_the_real_frames():
    decoder = _decoder("temporal_attention").eval()
    features, lengths = _padded([3, 8, 1], 8)
    alphas = decoder(features, lengths, _captions(3, 6)).alphas  # (B, L-1, T)
    real = torch.arange(8) < lengths.unsqueeze(1)  # (B, T)
    assert torch.all(alphas.masked_select(~real.unsqueeze(1)) == 0)  # exactly zero
    torch.testing.assert_close(alphas.sum(dim=2), torch.ones(3, 5))
    torch.testing.assert_close(alphas[2, :, 0], torch.ones(5))  # one frame: all of it
    _, state = decoder.step(torch.full((3,), START), decoder.init_state(features, lengths))
    torch.testing.assert_close(state["alpha"], alphas[:, 0])


def test_mean_pool_is_the_mean_of_the_real_frames():
    features, lengths = _padded([3, 5], 5)
    pooled = MeanPoolDecoder(FEATURES, VOCAB).pool(features, lengths)
    torch.testing.assert_close(pooled[0], features[0, :3].mean(dim=0))
    torch.testing.assert_close(pooled[1], features[1].mean(dim=0))


@pytest.mark.parametrize("name", DECODERS)
@pytest.mark.parametrize("bad", [[0, 4], [5, 4], [[4], [4]]])
def test_lengths_out_of_range_are_refused(name, bad):
    decoder = _decoder(name)
    with pytest.raises(ValueError, match="length"):
        decoder(torch.randn(2, 4, FEATURES), torch.tensor(bad), _captions(2, 5))


@pytest.mark.parametrize("name", DECODERS)
def test_beam_of_one_is_greedy(name):
    decoder = _decoder(name).eval()
    features, lengths = _padded([4, 7, 1, 7], 7)
    with torch.no_grad():
        greedy = greedy_decode(
            decoder.step, decoder.init_state(features, lengths), 4, START, END, 8
        )
        beam = beam_search(decoder.step, decoder.init_state(features, lengths), 4, START, END, 1, 8)
    assert beam.best() == greedy.best()
    for g, b in zip(greedy.hypotheses, beam.hypotheses, strict=True):
        assert b[0].log_prob == pytest.approx(g[0].log_prob, abs=1e-4)


def _train(decoder, features, lengths, captions, steps):
    optimizer = torch.optim.Adam(decoder.parameters(), lr=0.01)
    for _ in range(steps):
        loss = caption_loss(decoder(features, lengths, captions), captions)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    decoder.eval()
    with torch.no_grad():
        state = decoder.init_state(features, lengths)
        return greedy_decode(decoder.step, state, len(captions), START, END, max_len=10).best()


def _random_captions(n):
    return torch.stack([torch.tensor([START, *torch.randint(4, VOCAB, (5,)).tolist(), END])
                        for _ in range(n)])  # fmt: skip


@pytest.mark.parametrize("name", DECODERS)
def test_decoders_learn_to_describe_their_video(name):
    """Eight videos of 2-6 random frames (padded to 6), each with its own 5-word caption over a 12-word
    vocabulary: after training, greedy decoding reproduces every caption."""
    features, lengths = _padded([6, 3, 5, 4, 6, 2, 5, 6], 6, feature_size=16)
    captions = _random_captions(8)
    decoder = _decoder(name, feature_size=16, embed_size=16, hidden_size=32, dropout=0.0)
    assert _train(decoder, features, lengths, captions, 150) == [c[1:].tolist() for c in captions]


def test_s2vt_learns_frame_order_and_mean_pooling_cannot():
    """Four videos and the same four with their frames reversed, each of the eight with its own
    caption: S2VT reads frames in order and learns all eight; the mean of the frames is the
    same both ways round, so mean pooling gets at most one video of each pair (as does temporal
    attention, whose context is a weighted sum that never sees the order)."""
    frames, lengths = _padded([6, 4, 5, 6], 6, feature_size=16)
    reversed_ = frames.clone()
    for b, n in enumerate(lengths.tolist()):
        reversed_[b, :n] = frames[b, :n].flip(0)
    features, lengths = torch.cat([frames, reversed_]), lengths.repeat(2)
    captions = _random_captions(8)
    assert all(not torch.equal(captions[i], captions[i + 4]) for i in range(4))
    expected = [c[1:].tolist() for c in captions]

    def pairs_right(decoded):
        return sum(
            decoded[i] == expected[i] and decoded[i + 4] == expected[i + 4] for i in range(4)
        )

    s2vt = _decoder("s2vt", feature_size=16, embed_size=16, hidden_size=32, dropout=0.0)
    assert _train(s2vt, features, lengths, captions, 200) == expected
    for blind in ("mean_pool", "temporal_attention"):  # a mean, a weighted sum: order-blind
        decoder = _decoder(blind, feature_size=16, embed_size=16, hidden_size=32, dropout=0.0)
        assert pairs_right(_train(decoder, features, lengths, captions, 200)) <= 2, blind
