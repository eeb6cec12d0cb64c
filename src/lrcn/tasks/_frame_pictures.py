"""Pictures of next-frame predictions: strips (context, truth and prediction as rows), an
animated GIF of truth beside prediction, and each metric against the horizon step.

Frames arrive as float ``(T, C, H, W)`` in [0, 1] (C = 1 or 3) and are scaled up by a whole
factor with nearest-neighbour sampling, so a 64x64 frame stays sharp on screen.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from torch import Tensor

from lrcn.plots import _pyplot, save_figure

__all__ = ["frames_to_rgb", "plot_horizon_metrics", "save_gif", "save_strip"]

GAP = 2  # pixels between frames and rows (at the scaled size)
RED = (220, 40, 40)  # the border of forecast frames in the GIF
LABELS = {"mse": "MSE per frame ↓", "mae": "MAE per frame ↓", "ssim": "SSIM ↑", "psnr": "PSNR dB ↑"}


def _scale_for(size: int) -> int:
    """A whole factor that shows a frame at roughly 96-128 pixels."""
    return max(1, 128 // max(size, 1))


def frames_to_rgb(frames: Tensor, scale: int = 1) -> np.ndarray:
    """``(T, C, H, W)`` in [0, 1] -> uint8 ``(T, H*s, W*s, 3)``, grey repeated to RGB,
    scaled up by ``scale`` (nearest neighbour)."""
    array = (frames.detach().float().clamp(0, 1) * 255).round().byte().cpu().numpy()
    array = array.transpose(0, 2, 3, 1)  # (T, H, W, C)
    if array.shape[-1] == 1:
        array = np.repeat(array, 3, axis=-1)
    return np.repeat(np.repeat(array, scale, axis=1), scale, axis=2)


def _row(frames: np.ndarray, width: int) -> np.ndarray:
    """Frames side by side with gaps, left-aligned on a ``width``-wide white canvas."""
    t, h, w, _ = frames.shape
    canvas = np.full((h, width, 3), 255, dtype=np.uint8)
    for i in range(t):
        canvas[:, i * (w + GAP) : i * (w + GAP) + w] = frames[i]
    return canvas


def save_strip(
    path: Path, rows: Sequence[tuple[str, Tensor, Sequence[int]]], title: str = ""
) -> Path:
    """A PNG with one labelled row per ``(label, frames (T, C, H, W), frame numbers)``: the
    context, the truth, the prediction, each frame numbered below. Rows may differ in
    length."""
    plt = _pyplot()
    size = int(rows[0][1].shape[-1])
    scale = _scale_for(size)
    pictures = [(label, frames_to_rgb(frames, scale)) for label, frames, _ in rows]
    longest = max(len(p) for _, p in pictures)
    side = pictures[0][1].shape[2]
    width = longest * (side + GAP) - GAP
    fig, axes = plt.subplots(
        len(rows), 1, figsize=(max(4.0, width / 90), 1.35 * len(rows) + 0.4), squeeze=False
    )
    for ax, (label, picture), (_, _, numbers) in zip(axes[:, 0], pictures, rows, strict=True):
        ax.imshow(_row(picture, width), interpolation="nearest")
        ax.set_yticks([])
        ax.set_xticks([(side + GAP) * i + side / 2 for i in range(len(picture))])
        ax.set_xticklabels([str(n) for n in numbers], fontsize=7)
        ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=9)
        for spine in ax.spines.values():
            spine.set_visible(False)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    save_figure(fig, path)
    return path


def save_gif(
    path: Path, grid: Sequence[Sequence[Tensor]], fps: int = 4, marked_from: int | None = None
) -> Path:
    """An animated GIF of rows of clips: frame k shows frame k of every ``(T, C, H, W)`` clip
    of ``grid[row][column]`` (e.g. a row of true clips over a row of predicted ones), looping.
    From frame ``marked_from`` on, the last row's frames get a red border (the forecast)."""
    from PIL import Image

    scale = _scale_for(int(grid[0][0].shape[-1]))
    rows = [[frames_to_rgb(clip, scale) for clip in row] for row in grid]
    steps = min(len(clip) for row in rows for clip in row)
    side = rows[0][0].shape[2]
    width = max(len(row) for row in rows) * (side + GAP) - GAP
    gap = np.full((GAP, width, 3), 255, dtype=np.uint8)
    images = []
    for k in range(steps):
        if marked_from is not None and k >= marked_from:
            for clip in rows[-1]:
                clip[k, :2], clip[k, -2:], clip[k, :, :2], clip[k, :, -2:] = RED, RED, RED, RED
        lines = [_row(np.stack([clip[k] for clip in row]), width) for row in rows]
        stacked = [part for line in lines for part in (line, gap)][:-1]
        images.append(Image.fromarray(np.concatenate(stacked)))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    images[0].save(
        tmp, format="GIF", save_all=True, append_images=images[1:], duration=1000 // fps, loop=0
    )
    tmp.replace(path)
    return path


def plot_horizon_metrics(
    path: Path, scores: Mapping[str, Mapping[str, Any]], title: str = ""
) -> Path:
    """One panel per metric, one line per predictor (the model, the baselines) against the
    horizon step. ``scores``: predictor -> ``FrameScores.as_dict()``."""
    plt = _pyplot()
    metrics = list(LABELS)
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.4))
    for ax, metric in zip(axes, metrics, strict=True):
        for name, result in scores.items():
            values = result["per_step"][metric]
            ax.plot(range(1, len(values) + 1), values, marker="o", markersize=3, label=name)
        ax.set_xlabel("horizon step (frames ahead)")
        ax.set_title(LABELS[metric], fontsize=10)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    save_figure(fig, path)
    return path
