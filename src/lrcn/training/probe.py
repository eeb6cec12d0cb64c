"""A single-frame baseline fitted in seconds: a linear probe on cached per-frame features.

The paper compares LRCN with a single-frame model that scores every frame on its own and
averages the softmax over the clip. With a frozen backbone that baseline needs no extra pass
over the videos: the feature cache already holds every frame's features, so a linear softmax
classifier trained full batch on them tells ``evaluate`` how much the recurrent head adds over
"what one frame shows".

Everything here is deterministic given ``seed`` and leaves the global torch RNG alone: the
training loop seeds the global RNG per epoch for exact resume, so fitting a probe between
epochs must not move it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["FrameProbe", "fit_frame_probe"]

_MIN_STD = 1e-6  # features constant over the training frames are centred, not scaled


def _pool(features: Tensor) -> Tensor:
    """``(..., C, h, w)`` grids -> ``(..., C)``: the spatial average a pooled backbone takes."""
    return features.float().mean(dim=(-2, -1))


class FrameProbe(nn.Module):
    """Standardise each frame's features, score it with one linear layer, average the softmax.

    ``feature_mean`` and ``feature_std`` come from the training frames; the probe keeps them so
    that a clip is scored exactly as the training frames were.
    """

    feature_mean: Tensor
    feature_std: Tensor

    def __init__(self, feature_mean: Tensor, feature_std: Tensor, classifier: nn.Linear) -> None:
        super().__init__()
        self.register_buffer("feature_mean", feature_mean)  # (D,)
        self.register_buffer("feature_std", feature_std)  # (D,)
        self.classifier = classifier

    @property
    def feature_size(self) -> int:
        return self.classifier.in_features

    @property
    def num_classes(self) -> int:
        return self.classifier.out_features

    def frame_logits(self, frame_features: Tensor) -> Tensor:
        """``(..., D)`` pooled features -> ``(..., K)`` logits (grids go through ``clip_probs``)."""
        x = frame_features.to(self.feature_mean.device, torch.float32)
        if x.shape[-1] != self.feature_size:
            raise ValueError(
                f"features have {x.shape[-1]} values per frame; the probe was fitted on "
                f"{self.feature_size}"
            )
        x = (x - self.feature_mean) / self.feature_std  # (..., D)
        return self.classifier(x)  # (..., K)

    def clip_probs(self, clip_features: Tensor) -> Tensor:
        """``(N, T, D)`` or ``(N, T, C, h, w)`` -> ``(N, K)``: the per-frame softmax averaged.

        This is how the paper's single-frame model scores a clip (and what
        ``SingleFrameHead`` returns as ``probs``), so the two are directly comparable.
        """
        if clip_features.dim() == 5:
            clip_features = _pool(clip_features)  # (N, T, C)
        elif clip_features.dim() != 3:
            raise ValueError(
                f"clip features must be (N, T, D) or (N, T, C, h, w); got shape "
                f"{tuple(clip_features.shape)}"
            )
        logits = self.frame_logits(clip_features)  # (N, T, K)
        return logits.softmax(dim=-1).mean(dim=1)  # (N, K)

    def forward(self, clip_features: Tensor) -> Tensor:
        """Same as :meth:`clip_probs`."""
        return self.clip_probs(clip_features)


def even_frame_indices(num_frames: int, max_frames: int) -> np.ndarray:
    """Indices of up to ``max_frames`` frames spread evenly over ``num_frames``: the centre of
    each of ``max_frames`` equal segments, or every frame when there are fewer.

    Example: ``even_frame_indices(10, 4)`` -> ``[1, 3, 6, 8]``.
    """
    if num_frames <= max_frames:
        return np.arange(num_frames)
    return ((np.arange(max_frames) + 0.5) * num_frames / max_frames).astype(np.int64)


def _training_frames(
    features: Sequence[np.ndarray], labels: Sequence[int], num_classes: int, max_frames: int
) -> tuple[Tensor, Tensor]:
    """Sampled frames of every video, pooled to ``(F, D)`` float32, and their labels ``(F,)``."""
    if len(features) != len(labels):
        raise ValueError(f"{len(features)} feature arrays but {len(labels)} labels")
    if not features:
        raise ValueError("no videos to fit the frame probe on")
    frames: list[Tensor] = []
    targets: list[Tensor] = []
    feature_size: int | None = None
    for i, (video, label) in enumerate(zip(features, labels, strict=True)):
        if video.ndim not in (2, 4):
            raise ValueError(
                f"video {i}: features must be (T, D) or (T, C, h, w); got shape {video.shape}"
            )
        if not 0 <= int(label) < num_classes:
            raise ValueError(f"video {i}: label {label} is outside 0..{num_classes - 1}")
        if video.shape[0] == 0:
            continue  # a video with no decodable frames adds nothing
        picked = torch.from_numpy(np.asarray(video)[even_frame_indices(video.shape[0], max_frames)])
        pooled = _pool(picked) if picked.dim() == 4 else picked.float()  # (t, D)
        if feature_size is None:
            feature_size = pooled.shape[1]
        elif pooled.shape[1] != feature_size:
            raise ValueError(
                f"video {i}: {pooled.shape[1]} values per frame, but video 0 has {feature_size}"
            )
        frames.append(pooled)
        targets.append(torch.full((pooled.shape[0],), int(label), dtype=torch.long))
    if not frames:
        raise ValueError("every video has zero frames; nothing to fit the frame probe on")
    return torch.cat(frames), torch.cat(targets)  # (F, D), (F,)


def fit_frame_probe(
    features: Sequence[np.ndarray],
    labels: Sequence[int],
    num_classes: int,
    *,
    seed: int = 0,
    epochs: int = 100,
    weight_decay: float = 1e-4,
    max_frames_per_video: int = 32,
    device: torch.device | str = "cpu",
) -> FrameProbe:
    """Fit a linear softmax classifier on single frames and return it as a :class:`FrameProbe`.

    Each video contributes up to ``max_frames_per_video`` evenly spaced frames, all labelled
    with the video's class, so a long video cannot outweigh many short ones without bound.
    Features are standardised with the training frames' mean and std so that one L2 penalty
    and L-BFGS's default step suit every backbone. The problem is convex; L-BFGS runs full
    batch for ``epochs`` iterations (one full pass over the frames each, plus line search).

    Args:
        features: one array per video, ``(T, D)`` pooled vectors or ``(T, C, h, w)`` grids
            (averaged over h, w), float16 or float32, as the feature cache stores them.
        labels: the class of each video.
        num_classes: K, the number of classes of the task (not only those present).
        seed: seeds the initial weights through a local generator; the global RNG is untouched.
        epochs: L-BFGS iterations.
        weight_decay: λ in ``loss = cross_entropy + λ/2 · ‖W‖²`` (bias not penalised).
        max_frames_per_video: frames sampled per video for training.
        device: where to fit and where the returned probe lives.
    """
    if num_classes < 2:
        raise ValueError(f"num_classes must be at least 2; got {num_classes}")
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1; got {epochs}")
    if weight_decay < 0:
        raise ValueError(f"weight_decay must be >= 0; got {weight_decay}")
    if max_frames_per_video < 1:
        raise ValueError(f"max_frames_per_video must be at least 1; got {max_frames_per_video}")
    device = torch.device(device)
    x, y = _training_frames(features, labels, num_classes, max_frames_per_video)
    x, y = x.to(device), y.to(device)  # (F, D), (F,)

    # statistics in float64: cached features are float16 and F may be large
    mean = x.double().mean(dim=0)  # (D,)
    std = x.double().std(dim=0, unbiased=False)  # (D,)
    std = torch.where(std < _MIN_STD, torch.ones_like(std), std)
    mean, std = mean.float(), std.float()
    x = (x - mean) / std  # (F, D)

    # skip_init: building nn.Linear normally would draw its init from the global RNG
    classifier = nn.utils.skip_init(nn.Linear, x.shape[1], num_classes, device=device)
    generator = torch.Generator().manual_seed(seed)  # CPU generator: same draw on every device
    with torch.no_grad():
        weight = torch.randn(classifier.weight.shape, generator=generator) * 0.01  # (K, D)
        classifier.weight.copy_(weight)
        classifier.bias.zero_()

    optimizer = torch.optim.LBFGS(
        classifier.parameters(),
        lr=1.0,
        max_iter=epochs,
        history_size=20,
        tolerance_grad=1e-6,
        tolerance_change=1e-9,
        line_search_fn="strong_wolfe",  # no step size to tune, and no randomness
    )

    def closure() -> Tensor:
        optimizer.zero_grad()
        logits = classifier(x)  # (F, K)
        loss = F.cross_entropy(logits, y) + 0.5 * weight_decay * classifier.weight.square().sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    classifier.requires_grad_(False)
    return FrameProbe(mean, std, classifier).eval()
