"""Figures people want to look at. Functions return a matplotlib Figure; callers save PNGs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["plot_confusion", "plot_curves", "save_figure"]


def save_figure(fig: Any, path: Any, dpi: int = 110) -> None:
    """Save a figure as PNG (tight bounding box) and free it."""
    plt = _pyplot()
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    plt.close(fig)


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_curves(history: Sequence[dict[str, Any]], title: str = "Training") -> Any:
    """Loss per epoch (left) and every evaluation metric in [0, 1] per epoch (right)."""
    plt = _pyplot()
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
    epochs = [h["epoch"] + 1 for h in history]
    ax_loss.plot(epochs, [h["train_loss"] for h in history], marker="o", label="training loss")
    from matplotlib.ticker import MaxNLocator

    for ax in (ax_loss, ax_acc):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("cross-entropy")
    ax_loss.grid(alpha=0.3)
    ax_loss.legend()
    names = sorted(
        {k for h in history for k, v in h.get("metrics", {}).items() if isinstance(v, float)}
    )
    for name in names:
        points = [
            (h["epoch"] + 1, h["metrics"][name]) for h in history if name in h.get("metrics", {})
        ]
        if points:
            ax_acc.plot(*zip(*points, strict=True), marker="o", label=name)
    values = [h["metrics"][n] for h in history for n in names if n in h.get("metrics", {})]
    ax_acc.set_ylim(0, max(1.02, max(values, default=0) * 1.05))
    ax_acc.set_xlabel("epoch")
    ax_acc.set_ylabel("evaluation metric")
    ax_acc.grid(alpha=0.3)
    if names:
        ax_acc.legend()
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
