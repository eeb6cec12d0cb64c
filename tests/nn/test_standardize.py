"""Per-feature standardisation fitted on training features."""

import pytest
import torch

from lrcn.nn import Standardize


def test_identity_until_fitted_then_zero_mean_unit_variance():
    torch.manual_seed(0)
    x = torch.randn(50, 8, 6) * torch.tensor([1.0, 10, 100, 0.1, 1, 3]) + 7  # (N, T, D)
    layer = Standardize(6)
    assert torch.equal(layer(x), x)
    layer.fit([x[:20], x[20:]])  # batches accumulate as one
    y = layer(x).reshape(-1, 6)
    assert torch.allclose(y.mean(0), torch.zeros(6), atol=1e-4)
    assert torch.allclose(y.std(0, unbiased=False), torch.ones(6), atol=1e-4)


def test_a_constant_feature_is_centred_not_divided_by_zero():
    x = torch.stack([torch.arange(10.0), torch.full((10,), 3.0)], dim=1)  # (10, 2)
    layer = Standardize(2).fit([x])
    assert layer.std[1] == 1 and torch.equal(layer(x)[:, 1], torch.zeros(10))


def test_statistics_travel_in_the_state_dict():
    layer = Standardize(3).fit([torch.randn(40, 3) * 5 + 2])
    copy = Standardize(3)
    copy.load_state_dict(layer.state_dict())
    x = torch.randn(4, 3)
    assert torch.equal(copy(x), layer(x))


def test_wrong_width_and_no_data_are_refused():
    with pytest.raises(ValueError, match="5 dimensions, expected 3"):
        Standardize(3).fit([torch.randn(2, 5)])
    with pytest.raises(ValueError, match="no features"):
        Standardize(3).fit([])
