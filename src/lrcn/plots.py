"""Figures people want to look at. Functions return a matplotlib Figure; callers save PNGs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = [
    "plot_attention",
    "plot_confusion",
    "plot_curves",
    "plot_frame_attention",
    "save_figure",
]


def save_figure(fig: Any, path: Any, dpi: int = 110) -> None:
    """Save a figure as PNG (tight bounding box) and free it; a kill never leaves half a file."""
    from pathlib import Path

    plt = _pyplot()
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format=path.suffix.lstrip(".") or "png")
    plt.close(fig)
    tmp.replace(path)


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_curves(history: Sequence[dict[str, Any]], title: str = "Training") -> Any:
    """Loss per epoch (left), the evaluation metrics in [0, 1] per epoch (middle), and any
    others, such as a per-frame MSE in the hundreds, on a log axis of their own (right), so
    neither squashes the other."""
    plt = _pyplot()
    names = sorted(
        {k for h in history for k, v in h.get("metrics", {}).items() if isinstance(v, float)}
    )
    series = {
        name: [
            (h["epoch"] + 1, h["metrics"][name]) for h in history if name in h.get("metrics", {})
        ]
        for name in names
    }
    unit = [n for n in names if all(0 <= v <= 1 for _, v in series[n])]
    other = [n for n in names if n not in unit]
    panels = 3 if other else 2
    fig, axes = plt.subplots(1, panels, figsize=(5.5 * panels, 4), constrained_layout=True)
    ax_loss, ax_acc = axes[0], axes[1]
    epochs = [h["epoch"] + 1 for h in history]
    ax_loss.plot(epochs, [h["train_loss"] for h in history], marker="o", label="training loss")
    from matplotlib.ticker import MaxNLocator

    for ax in axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    ax_loss.set_ylabel("training loss (the task's)")
    ax_loss.legend()
    for name in unit:  # every name has points: it was read off the history
        ax_acc.plot(*zip(*series[name], strict=True), marker="o", label=name)
    ax_acc.set_ylim(0, 1.02)
    ax_acc.set_ylabel("evaluation metric")
    if unit:
        ax_acc.legend()
    if other:
        ax_other = axes[2]
        for name in other:
            ax_other.plot(*zip(*series[name], strict=True), marker="o", label=name)
        if all(v > 0 for n in other for _, v in series[n]):
            ax_other.set_yscale("log")
        ax_other.set_ylabel("evaluation metric (other scales)")
        ax_other.legend()
    fig.suptitle(title)
    return fig


def plot_confusion(confusion: Sequence[Sequence[int]], classes: Sequence[str], title: str) -> Any:
    """Row-normalised confusion matrix with counts; readable up to ~50 classes."""
    import numpy as np

    plt = _pyplot()
    counts = np.asarray(confusion, dtype=float)
    rows = counts.sum(axis=1, keepdims=True)
    normalised = np.divide(counts, rows, out=np.zeros_like(counts), where=rows > 0)
    k = len(classes)
    side = min(4 + 0.45 * k, 30)
    fig, ax = plt.subplots(figsize=(side + 1.5, side))
    image = ax.imshow(normalised, cmap="Blues", vmin=0, vmax=1)
    rotate = k > 4 or max(len(c) for c in classes) > 8
    fontsize = 8 if k > 20 else 10
    ax.set_xticks(range(k), classes, rotation=35 if rotate else 0, fontsize=fontsize,
                  ha="right" if rotate else "center", rotation_mode="anchor")  # fmt: skip
    ax.set_yticks(range(k), classes, fontsize=fontsize)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    if k <= 25:
        for i in range(k):
            for j in range(k):
                if counts[i, j]:
                    color = "white" if normalised[i, j] > 0.5 else "black"
                    ax.text(
                        j,
                        i,
                        f"{int(counts[i, j])}",
                        ha="center",
                        va="center",
                        color=color,
                        fontsize=9,
                    )
    fig.colorbar(image, ax=ax, fraction=0.046, label="fraction of the true class")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_attention(
    image: Any,
    alphas: Sequence[Any],
    words: Sequence[str],
    columns: int = 5,
    per: str = "word",
    heading: str | None = None,
) -> Any:
    """The image, then for each generated word the image lit where the model attended.

    Args:
        image: ``uint8 (S, S, 3)``, the crop the model saw.
        alphas: one ``(h, w)`` attention map per word, upsampled smoothly to S x S.
        words: the generated words, one per map (or any panel names: VQA's glimpses).
        per: what one map belongs to, for the title ("word", "glimpse").
        heading: a first title line (VQA: the question and the answer).

    All maps share one scale (the largest weight of the sentence), so a word whose attention
    is spread thin shows as dim everywhere rather than looking as sharp as a focused one.
    """
    import cv2
    import numpy as np

    plt = _pyplot()
    panels = len(words) + 1
    rows = -(-panels // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(2.4 * columns, 2.6 * rows), squeeze=False)
    size = image.shape[0]
    peak = max(float(np.max(a)) for a in alphas) if alphas else 1.0
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k == 0:
            ax.imshow(image)
            ax.set_title("input", fontsize=10)
        elif k < panels:
            alpha = np.asarray(alphas[k - 1], dtype=np.float32) / max(peak, 1e-8)
            heat = np.clip(cv2.resize(alpha, (size, size), interpolation=cv2.INTER_CUBIC), 0, 1)
            shade = np.zeros((size, size, 4), dtype=np.float32)
            shade[..., 3] = 0.85 * (1.0 - heat)  # dark where the model did not look
            ax.imshow(image)
            ax.imshow(shade)
            ax.set_title(f"{words[k - 1]}  (max {float(np.max(alphas[k - 1])):.2f})", fontsize=9)
    uniform = 1.0 / np.asarray(alphas[0]).size if alphas else 0.0
    title = f"attention per {per}; lit = attended (uniform weight would be {uniform:.3f})"
    fig.suptitle(title if heading is None else f"{heading}\n{title}", fontsize=11)
    fig.tight_layout()
    return fig


def plot_frame_attention(
    frames: Any, alphas: Any, words: Sequence[str], frame_numbers: Sequence[int] | None = None
) -> Any:
    """A video's sampled frames in a strip, and under each one how much every word attended
    to it: a word-by-frame grid whose columns line up with the frames above.

    Args:
        frames: ``uint8 (T, H, W, 3)``, the frames the model saw, in order.
        alphas: ``(L, T)``, one row of attention weights per word (each row sums to 1).
        words: the L generated words.
        frame_numbers: each frame's index in the video, for the column labels.
    """
    import numpy as np

    plt = _pyplot()
    frames = np.asarray(frames)
    alphas = np.asarray(alphas, dtype=np.float32)
    steps, height, width = frames.shape[:3]
    if alphas.shape != (len(words), steps):
        raise ValueError(f"alphas must be ({len(words)}, {steps}), got {alphas.shape}")
    strip = np.concatenate(list(frames), axis=1)  # (H, T*W, 3)
    column = 0.42  # inches per frame
    fig, (top, grid) = plt.subplots(
        2, 1, figsize=(max(6.0, 1.6 + column * steps), 1.2 + 0.28 * len(words) + column),
        gridspec_kw={"height_ratios": [column * height / width, 0.28 * len(words)]},
    )  # fmt: skip
    top.imshow(strip, extent=(-0.5, steps - 0.5, 0, 1), aspect="auto")
    top.set_axis_off()
    top.set_title("sampled frames, and each word's attention over them", fontsize=10)
    shown = grid.imshow(alphas, aspect="auto", cmap="magma", vmin=0, vmax=float(alphas.max()))
    grid.set_xlim(-0.5, steps - 0.5)
    grid.set_yticks(range(len(words)), words, fontsize=9)
    numbers = list(frame_numbers) if frame_numbers is not None else list(range(steps))
    every = max(1, steps // 16)
    grid.set_xticks(range(0, steps, every), [str(n) for n in numbers[::every]], fontsize=8)
    grid.set_xlabel(f"frame (uniform weight would be {1 / steps:.3f})", fontsize=9)
    fig.colorbar(shown, ax=[top, grid], fraction=0.02, pad=0.01, label="attention")
    return fig
