"""TimeDistributed equals a Python loop over time."""

from typing import NamedTuple

import pytest
import torch
from torch import nn

from lrcn.nn import TimeDistributed


def test_equals_a_loop_over_time_for_a_cnn():
    cnn = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
    ).eval()
    x = torch.randn(2, 5, 3, 8, 8)  # (B, T, C, H, W)
    out = TimeDistributed(cnn)(x)
    loop = torch.stack([cnn(x[:, t]) for t in range(5)], dim=1)
    assert out.shape == (2, 5, 4)
    torch.testing.assert_close(out, loop)


def test_gradients_flow_to_every_step():
    layer = TimeDistributed(nn.Linear(3, 2))
    x = torch.randn(4, 6, 3, requires_grad=True)
    layer(x).sum().backward()
    assert x.grad is not None and bool((x.grad.abs().sum(dim=2) > 0).all())


class Pair(NamedTuple):
    pooled: torch.Tensor
    grid: torch.Tensor


class TwoOutputs(nn.Module):
    def forward(self, x):
        return Pair(x.mean(dim=(2, 3)), x * 2)


def test_tuple_outputs_are_each_reshaped():
    out = TimeDistributed(TwoOutputs())(torch.randn(2, 3, 4, 5, 5))
    assert isinstance(out, Pair)
    assert out.pooled.shape == (2, 3, 4) and out.grid.shape == (2, 3, 4, 5, 5)


def test_rejects_inputs_without_a_time_axis():
    with pytest.raises(ValueError, match=r"expects \(B, T, \.\.\.\)"):
        TimeDistributed(nn.Identity())(torch.randn(4, 3))
