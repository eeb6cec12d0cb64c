"""Soft attention: weights are a distribution, masks are exact, the context is their average."""

import pytest
import torch

from lrcn.nn import SoftAttention, TemporalAttention


@pytest.mark.parametrize("cls", [SoftAttention, TemporalAttention])
def test_weights_sum_to_one_and_context_is_the_weighted_mean(cls):
    attn = cls(feature_size=6, hidden_size=5, attention_size=7)
    features, hidden = torch.randn(3, 10, 6), torch.randn(3, 5)
    context, weights = attn(features, hidden)
    assert context.shape == (3, 6) and weights.shape == (3, 10)
    torch.testing.assert_close(weights.sum(dim=1), torch.ones(3))
    assert bool((weights > 0).all())
    torch.testing.assert_close(context, (weights.unsqueeze(2) * features).sum(dim=1))
    # the scores are the additive formula w_aᵀ tanh(W_f a + b + W_h h)
    scores = attn.score(
        torch.tanh(attn.feature_proj(features) + attn.hidden_proj(hidden)[:, None])
    ).squeeze(2)
    torch.testing.assert_close(weights, torch.softmax(scores, dim=1))


def test_masked_positions_get_exactly_zero_weight_and_no_gradient():
    attn = TemporalAttention(4, 3, 8)
    features = torch.randn(2, 6, 4, requires_grad=True)
    mask = torch.tensor([[1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 1]], dtype=torch.bool)
    context, weights = attn(features, torch.randn(2, 3), mask=mask)
    assert torch.equal(weights[0, 3:], torch.zeros(3))
    torch.testing.assert_close(weights.sum(dim=1), torch.ones(2))
    context.sum().backward()
    assert torch.equal(features.grad[0, 3:], torch.zeros(3, 4))
    # a masked batch equals the same batch truncated
    short, _ = attn(features[:1, :3].detach(), attn.hidden_proj.weight.new_zeros(1, 3))
    masked, _ = attn(features[:1].detach(), attn.hidden_proj.weight.new_zeros(1, 3), mask=mask[:1])
    torch.testing.assert_close(masked, short)


def test_precomputed_projection_gives_the_same_result():
    attn = SoftAttention(5, 4, 6)
    features, hidden = torch.randn(2, 9, 5), torch.randn(2, 4)
    projected = attn.project_features(features)
    a = attn(features, hidden)
    b = attn(features, hidden, projected=projected)
    torch.testing.assert_close(a.context, b.context)


def _located_features(batch, positions, dim):
    """Random content plus a one-hot code of each position, as a feature grid carries location."""
    content = torch.randn(batch, positions, dim)
    code = torch.eye(positions).expand(batch, -1, -1)
    return torch.cat([content, code], dim=2), content  # (B, P, D + P), (B, P, D)


def test_attention_learns_to_find_the_asked_for_position():
    """Asked for position k, the weights learn to point there (uniform would give 1/P)."""
    torch.manual_seed(0)
    positions, dim = 8, 8
    attn = SoftAttention(dim + positions, positions, 16)
    opt = torch.optim.Adam(attn.parameters(), lr=0.05)
    for _ in range(150):
        features, content = _located_features(32, positions, dim)
        target = torch.randint(positions, (32,))
        query = torch.nn.functional.one_hot(target, positions).float()
        context, _ = attn(features, query)
        loss = (context[:, :dim] - content[torch.arange(32), target]).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    features, _ = _located_features(256, positions, dim)
    target = torch.randint(positions, (256,))
    _, weights = attn(features, torch.nn.functional.one_hot(target, positions).float())
    picked = weights[torch.arange(256), target].mean()
    assert picked > 0.8


def test_errors_name_the_bad_shapes():
    attn = SoftAttention(4, 3, 5)
    with pytest.raises(ValueError, match=r"features \(B, P, D\) and hidden \(B, H\)"):
        attn(torch.randn(2, 4), torch.randn(2, 3))
    with pytest.raises(ValueError, match=r"mask must have shape \(2, 6\)"):
        attn(torch.randn(2, 6, 4), torch.randn(2, 3), mask=torch.ones(2, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match="at least one True"):
        attn(torch.randn(1, 6, 4), torch.randn(1, 3), mask=torch.zeros(1, 6, dtype=torch.bool))
