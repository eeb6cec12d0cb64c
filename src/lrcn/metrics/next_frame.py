"""Next-frame prediction: per-frame errors per horizon step, and the two baselines every model
is reported beside.

Conventions (those OpenSTL reports on Moving MNIST, so numbers compare): pixels in [0, 1];
MSE and MAE are *summed over a frame's pixels* and averaged over sequences (Moving MNIST's
ConvLSTM: MSE 29.80 per frame), SSIM and PSNR are computed per frame and averaged. SSIM and
PSNR come from torchmetrics (Gaussian window 11, sigma 1.5; data range 1), called per frame
so that each frame is one score. Every metric is given per horizon step (the first predicted
frame, the second, ...) and as the mean over steps.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = [
    "FrameScores",
    "copy_last_frame",
    "frame_scores",
    "linear_extrapolation",
]

METRICS = ("mse", "mae", "ssim", "psnr")


@dataclass(frozen=True)
class FrameScores:
    """Each metric per horizon step (``per_step[name][k]`` is step k+1) and its mean."""

    per_step: dict[str, list[float]]
    mean: dict[str, float]
    sequences: int

    def as_dict(self) -> dict[str, object]:
        return {"per_step": self.per_step, "mean": self.mean, "sequences": self.sequences}


def _check(pred: Tensor, target: Tensor) -> None:
    if pred.shape != target.shape or pred.dim() != 5:
        raise ValueError(
            f"predictions {tuple(pred.shape)} and targets {tuple(target.shape)} must both be "
            "(N, T, C, H, W)"
        )
    if pred.shape[0] == 0 or pred.shape[1] == 0:
        raise ValueError("no sequences or no frames to score")


def frame_scores(pred: Tensor, target: Tensor) -> FrameScores:
    """Scores of ``pred`` against ``target``, both float ``(N, T, C, H, W)`` in [0, 1]."""
    from torchmetrics.functional.image import (
        peak_signal_noise_ratio,
        structural_similarity_index_measure,
    )

    _check(pred, target)
    n, t = pred.shape[:2]
    pred, target = pred.float(), target.float()
    diff = pred - target
    mse = diff.pow(2).flatten(2).sum(2).mean(0)  # (T,): summed over pixels, mean over sequences
    mae = diff.abs().flatten(2).sum(2).mean(0)  # (T,)
    frames_p, frames_t = pred.flatten(0, 1), target.flatten(0, 1)  # (N*T, C, H, W)
    ssim = structural_similarity_index_measure(
        frames_p, frames_t, data_range=1.0, reduction="none"
    )  # (N*T,)
    psnr = peak_signal_noise_ratio(
        frames_p, frames_t, data_range=1.0, reduction="none", dim=(1, 2, 3)
    )  # (N*T,)
    per_step = {
        "mse": mse.tolist(),
        "mae": mae.tolist(),
        "ssim": torch.as_tensor(ssim).view(n, t).mean(0).tolist(),
        "psnr": torch.as_tensor(psnr).view(n, t).mean(0).tolist(),
    }
    mean = {name: float(sum(v) / len(v)) for name, v in per_step.items()}
    return FrameScores(per_step, mean, n)


def copy_last_frame(context: Tensor, horizon: int) -> Tensor:
    """The last context frame, repeated: ``(N, Tc, C, H, W)`` -> ``(N, horizon, C, H, W)``."""
    if context.dim() != 5 or context.shape[1] < 1 or horizon < 1:
        raise ValueError("context must be (N, T>=1, C, H, W) and horizon >= 1")
    return context[:, -1:].expand(-1, horizon, -1, -1, -1).clone()


def linear_extrapolation(context: Tensor, horizon: int) -> Tensor:
    """Each pixel continues its last change: frame ``last + k * (last - previous)`` for step
    k = 1..horizon, clipped to [0, 1]; ``(N, Tc>=2, C, H, W)`` -> ``(N, horizon, C, H, W)``."""
    if context.dim() != 5 or context.shape[1] < 2 or horizon < 1:
        raise ValueError("context must be (N, T>=2, C, H, W) and horizon >= 1")
    last, change = context[:, -1:], context[:, -1:] - context[:, -2:-1]  # (N, 1, C, H, W) each
    steps = torch.arange(1, horizon + 1, dtype=context.dtype, device=context.device)
    return (last + steps.view(1, -1, 1, 1, 1) * change).clamp(0, 1)
