"""Next-frame prediction: per-frame errors per horizon step, and the two baselines every model
is reported beside.

Conventions (those OpenSTL reports on Moving MNIST, so numbers compare): pixels in [0, 1];
MSE and MAE are *summed over a frame's pixels* and averaged over sequences (Moving MNIST's
ConvLSTM: MSE 29.80 per frame), SSIM and PSNR are computed per frame and averaged. SSIM and
PSNR come from torchmetrics (Gaussian window 11, sigma 1.5; data range 1), called per frame
so that each frame is one score; a frame predicted exactly, whose PSNR is infinite, counts
as 100 dB so that one such frame does not make the mean infinite. Every metric is given per
horizon step (the first predicted frame, the second, ...) and as the mean over steps.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = [
    "HIGHER_IS_BETTER",
    "METRICS",
    "FrameScores",
    "ScoreAccumulator",
    "copy_last_frame",
    "frame_scores",
    "linear_extrapolation",
]

METRICS = ("mse", "mae", "ssim", "psnr")
HIGHER_IS_BETTER = frozenset({"ssim", "psnr"})  # MSE and MAE are errors
PSNR_CAP = 100.0  # dB, for a frame predicted exactly (its PSNR is infinite)


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


def _per_sequence(pred: Tensor, target: Tensor) -> dict[str, Tensor]:
    """Every metric of every frame: name -> ``(N, T)``."""
    from torchmetrics.functional.image import (
        peak_signal_noise_ratio,
        structural_similarity_index_measure,
    )

    _check(pred, target)
    n, t = pred.shape[:2]
    pred, target = pred.float(), target.float()
    diff = pred - target
    frames_p, frames_t = pred.flatten(0, 1), target.flatten(0, 1)  # (N*T, C, H, W)
    ssim = structural_similarity_index_measure(
        frames_p, frames_t, data_range=1.0, reduction="none"
    )  # (N*T,)
    psnr = peak_signal_noise_ratio(
        frames_p, frames_t, data_range=1.0, reduction="none", dim=(1, 2, 3)
    )  # (N*T,)
    return {
        "mse": diff.pow(2).flatten(2).sum(2),  # (N, T): summed over a frame's pixels
        "mae": diff.abs().flatten(2).sum(2),
        "ssim": torch.as_tensor(ssim).view(n, t),
        "psnr": torch.as_tensor(psnr).view(n, t).clamp(max=PSNR_CAP),
    }


class ScoreAccumulator:
    """:func:`frame_scores` over a split too large to hold: ``add`` batch after batch of
    sequences (the same horizon), then ``result``. Equal to one call on all of them."""

    def __init__(self) -> None:
        self.sums: dict[str, Tensor] = {}  # name -> (T,) float64 sums over sequences
        self.count = 0

    def add(self, pred: Tensor, target: Tensor) -> None:
        """Score a batch ``(N, T, C, H, W)`` in [0, 1]."""
        for name, values in _per_sequence(pred, target).items():
            total = values.detach().double().sum(0).cpu()  # (T,)
            if name in self.sums and self.sums[name].shape != total.shape:
                raise ValueError(f"horizon {len(total)} after {len(self.sums[name])} frames")
            self.sums[name] = self.sums[name] + total if name in self.sums else total
        self.count += pred.shape[0]

    def result(self) -> FrameScores:
        if not self.count:
            raise ValueError("no sequences scored")
        per_step = {name: (self.sums[name] / self.count).tolist() for name in METRICS}
        mean = {name: float(sum(v) / len(v)) for name, v in per_step.items()}
        return FrameScores(per_step, mean, self.count)


def frame_scores(pred: Tensor, target: Tensor) -> FrameScores:
    """Scores of ``pred`` against ``target``, both float ``(N, T, C, H, W)`` in [0, 1]."""
    scores = ScoreAccumulator()
    scores.add(pred, target)
    return scores.result()


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
