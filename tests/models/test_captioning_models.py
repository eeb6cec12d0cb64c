"""Captioning models: teacher forcing equals step-by-step decoding; they learn; attention."""

import itertools

import pytest
import torch

from lrcn.backbones import create_backbone
from lrcn.decoding import beam_search, greedy_decode
from lrcn.models import create_model
from lrcn.models.captioning import caption_loss

VARIANTS = [
    ("show_and_tell", {}),
    ("show_and_tell", {"num_layers": 2}),
    ("lrcn_captioner", {}),
    ("lrcn_captioner", {"factored": False}),
    ("show_attend_tell", {}),
]


def _model(name, **kw):
    return create_model(
        name,
        backbone=create_backbone("simple_cnn"),
        vocab_size=20,
        embed_size=16,
        hidden_size=24,
        **kw,
    )


def _captions(batch, length):
    caps = torch.randint(4, 20, (batch, length))
    caps[:, 0] = 1
    caps[:, -2] = 2
    caps[:, -1] = 0  # one <pad>
    return caps


@pytest.mark.parametrize(("name", "kw"), VARIANTS)
def test_teacher_forcing_equals_step_by_step_decoding(name, kw):
    model = _model(name, **kw).eval()
    images, caps = torch.randn(3, 3, 64, 64), _captions(3, 7)
    with torch.no_grad():
        out = model(images, caps)
        state = model.decoder.init_state(model.features(images))
        steps = []
        for t in range(caps.shape[1] - 1):
            log_probs, state = model.decoder.step(caps[:, t], state)
            steps.append(log_probs)
    torch.testing.assert_close(
        torch.stack(steps, dim=1), out.logits.log_softmax(dim=-1), atol=1e-5, rtol=1e-5
    )


@pytest.mark.parametrize(("name", "kw"), VARIANTS)
def test_forward_backward_and_frozen_backbone(name, kw):
    model = _model(name, **kw).train()
    caps = _captions(2, 6)
    out = model(torch.randn(2, 3, 64, 64), caps)
    assert out.logits.shape == (2, 5, 20)
    caption_loss(out, caps, attention_weight=1.0).backward()
    assert all(p.grad is None for p in model.backbone.parameters())
    assert all(
        p.grad is not None for n, p in model.decoder.named_parameters() if "word_embed" not in n
    )


def test_attention_weights_and_the_doubly_stochastic_regulariser():
    model = _model("show_attend_tell").eval()
    caps = _captions(2, 6)
    out = model(torch.randn(2, 3, 64, 64), caps)
    assert out.alphas.shape == (2, 5, 16)  # 4x4 grid of simple_cnn at 64 px
    torch.testing.assert_close(out.alphas.sum(dim=2), torch.ones(2, 5))
    plain = caption_loss(out, caps)
    regularised = caption_loss(out, caps, attention_weight=1.0)
    mask = (caps[:, 1:] != 0).unsqueeze(2)
    expected = ((1 - (out.alphas * mask).sum(dim=1)) ** 2).mean()
    torch.testing.assert_close(regularised - plain, expected)


@pytest.mark.parametrize("name", ["show_and_tell", "lrcn_captioner", "show_attend_tell"])
def test_decoders_learn_to_describe_their_image(name):
    """Eight 'images' (random feature vectors or grids), each with its own 5-word caption:
    after training, greedy and beam decoding reproduce every caption."""
    torch.manual_seed(0)
    model = _model(name, dropout=0.0)
    decoder = model.decoder
    kind = model.feature_kind
    features = torch.randn(8, 16, 64) if kind == "grid" else torch.randn(8, 64)
    model = create_model(
        name,
        backbone=create_backbone("simple_cnn"),
        vocab_size=20,
        embed_size=32,
        hidden_size=64,
        dropout=0.0,
    )
    decoder = model.decoder
    captions = torch.stack(
        [torch.tensor([1, *torch.randint(4, 20, (5,)).tolist(), 2]) for _ in range(8)]
    )
    optimizer = torch.optim.Adam(decoder.parameters(), lr=0.01)
    first = None
    for _ in range(150):
        loss = caption_loss(decoder(features, captions), captions)
        first = first if first is not None else loss.item()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.1 * first
    decoder.eval()
    with torch.no_grad():
        greedy = greedy_decode(
            decoder.step, decoder.init_state(features), 8, 1, 2, max_len=10
        ).best()
        beam = beam_search(
            decoder.step, decoder.init_state(features), 8, 1, 2, beam_size=3, max_len=10
        ).best()
    expected = [c[1:].tolist() for c in captions]
    assert greedy == expected
    assert beam == expected


@pytest.mark.parametrize("name", ["show_and_tell", "show_attend_tell"])
def test_generative_retrieval_scores_are_step_by_step_log_likelihoods(name):
    """Every (image, sentence) score is the sum of the decoder's step log-probabilities of the
    sentence's words, <end> included, <pad> excluded, whatever the chunking."""
    from lrcn.tasks.retrieval import generative_scores

    torch.manual_seed(0)
    model = _model(name).eval()
    with torch.no_grad():
        features = model.features(torch.randn(3, 3, 64, 64))  # (I, ...)
    captions = [[1, 5, 6, 2], [1, 7, 2], [1, 8, 9, 10, 11, 2]]
    scores = generative_scores(model, features, captions, torch.device("cpu"), chunk=2)
    assert scores.shape == (3, 3)
    for i in range(3):
        for t, caption in enumerate(captions):
            with torch.no_grad():
                state = model.init_state(features[i : i + 1])
                total = 0.0
                for word, following in itertools.pairwise(caption):
                    log_probs, state = model.step(torch.tensor([word]), state)
                    total += float(log_probs[0, following])
            assert abs(float(scores[i, t]) - total) < 1e-4, (i, t)
