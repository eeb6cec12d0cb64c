"""Per-feature standardisation with statistics from the training data, kept in the model.

Frozen CNN features of different inputs live on different scales: EfficientNet's pooled
features of RGB frames and of optical-flow images differ in mean and spread, and a few large
dimensions of one stream drown the other when the two are concatenated (an RGB+flow S2VT then
learns what the RGB stream says and ignores the motion). Scaling every dimension to zero mean
and unit variance over the training split puts the streams on one footing. The statistics are
buffers, so a bundle carries them and evaluate / predict apply exactly what training saw.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor, nn

__all__ = ["Standardize"]


class Standardize(nn.Module):
    """``(..., D) -> (x - mean) / std`` per feature; identity until :meth:`fit`."""

    mean: Tensor
    std: Tensor

    def __init__(self, num_features: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.register_buffer("mean", torch.zeros(num_features))
        self.register_buffer("std", torch.ones(num_features))

    @torch.no_grad()
    def fit(self, batches: Iterable[Tensor]) -> Standardize:
        """Set the statistics from ``batches`` of ``(..., D)`` features (all leading dims are
        samples), accumulated in float64 so millions of frames sum without drift. A constant
        feature gets std 1 (left as is, only centred)."""
        count = 0
        total = torch.zeros(self.mean.shape, dtype=torch.float64)
        squares = torch.zeros(self.mean.shape, dtype=torch.float64)
        for batch in batches:
            rows = batch.detach().reshape(-1, batch.shape[-1]).to("cpu", torch.float64)  # (N, D)
            if rows.shape[1] != self.mean.numel():
                raise ValueError(
                    f"features have {rows.shape[1]} dimensions, expected {self.mean.numel()}"
                )
            count += len(rows)
            total += rows.sum(dim=0)
            squares += (rows * rows).sum(dim=0)
        if count == 0:
            raise ValueError("no features to fit the standardisation on")
        mean = total / count
        var = (squares / count - mean * mean).clamp(min=0)
        std = var.sqrt()
        std = torch.where(std > self.eps, std, torch.ones_like(std))
        self.mean.copy_(mean.to(self.mean.dtype))
        self.std.copy_(std.to(self.std.dtype))
        return self

    def forward(self, x: Tensor) -> Tensor:
        """``x (..., D)`` standardised, same shape."""
        return (x - self.mean) / self.std

    def extra_repr(self) -> str:
        return f"{self.mean.numel()}"
