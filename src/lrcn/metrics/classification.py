"""Video classification metrics from scores: top-1/top-5, per-class accuracy, confusion matrix."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

__all__ = ["classification_metrics"]


def classification_metrics(probs: Tensor, labels: Tensor, classes: list[str]) -> dict[str, Any]:
    """Scores ``(N, K)`` and labels ``(N,)`` -> accuracy numbers and the confusion matrix.

    Returns ``top1``, ``top5`` (top-k with k = min(5, K)), ``mean_class_accuracy``,
    ``per_class`` (class -> accuracy, None for a class with no samples) and ``confusion``
    (``K x K`` counts, rows = true class, columns = predicted).
    """
    from torchmetrics.functional.classification import (
        multiclass_accuracy,
        multiclass_confusion_matrix,
    )

    num_classes = len(classes)
    if probs.shape[0] == 0:
        raise ValueError("no samples to score (every video was skipped?)")
    top5 = min(5, num_classes)
    per_class = multiclass_accuracy(probs, labels, num_classes, average=None)
    present = torch.bincount(labels, minlength=num_classes) > 0
    return {
        "top1": float(multiclass_accuracy(probs, labels, num_classes, average="micro", top_k=1)),
        f"top{top5}": float(
            multiclass_accuracy(probs, labels, num_classes, average="micro", top_k=top5)
        ),
        "mean_class_accuracy": float(per_class[present].mean()),
        "per_class": {
            c: (float(a) if p else None)
            for c, a, p in zip(classes, per_class, present, strict=True)
        },
        "confusion": multiclass_confusion_matrix(probs, labels, num_classes).tolist(),
        "count": int(probs.shape[0]),
    }
