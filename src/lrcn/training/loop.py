"""A plain PyTorch training loop, shared by every task.

The task supplies a dataset with ``set_epoch``, a collate function, a loss function and an
evaluation function; the loop owns the rest: shuffling, the optimizer step with gradient
clipping and AMP (on a GPU), the LR schedule, progress, and calling back after each epoch.

Exact resume: everything random in epoch e is seeded from (seed, e): the shuffle order, the
data (see data/clips.py) and the global torch RNG that dropout draws from. A run resumed after
epoch e therefore ends with the same weights as one that never stopped, given the optimizer
and scheduler state saved after epoch e.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from lrcn.training.faults import kill_point

__all__ = ["EpochResult", "LoopSettings", "fit"]

LossFn = Callable[[nn.Module, dict[str, Any]], tuple[Tensor, int]]


@dataclass(frozen=True)
class LoopSettings:
    epochs: int
    batch_size: int
    seed: int = 0
    grad_clip: float | None = None
    amp: bool = False
    num_workers: int = 0
    eval_every: int = 1


@dataclass
class EpochResult:
    """What one epoch did; ``metrics`` holds the evaluation's numbers when it ran."""

    epoch: int
    train_loss: float
    lr: float
    seconds: float  # training only
    samples: int
    skipped: list[str] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    eval_seconds: float = 0.0


def _epoch_seed(seed: int, epoch: int) -> int:
    return (seed * 1_000_003 + epoch) % (2**63)


def fit(
    *,
    model: nn.Module,
    train_set: Dataset,
    collate: Callable[[list[Any]], dict[str, Any]],
    loss_fn: LossFn,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None,
    settings: LoopSettings,
    device: torch.device,
    evaluate: Callable[[nn.Module], dict[str, float]] | None = None,
    start_epoch: int = 0,
    on_epoch_end: list[Callable[[EpochResult], None]] | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> list[EpochResult]:
    """Train epochs ``start_epoch .. settings.epochs-1``; return their results."""
    use_amp = settings.amp and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    results = []
    for epoch in range(start_epoch, settings.epochs):
        started = time.perf_counter()
        torch.manual_seed(_epoch_seed(settings.seed, epoch))  # dropout & co. for this epoch
        set_epoch = getattr(train_set, "set_epoch", None)
        if set_epoch is not None:
            set_epoch(epoch)
        order = torch.Generator().manual_seed(_epoch_seed(settings.seed, epoch) + 1)
        loader = DataLoader(
            train_set,
            batch_size=settings.batch_size,
            shuffle=True,
            generator=order,
            collate_fn=collate,
            num_workers=settings.num_workers,
            persistent_workers=False,
            pin_memory=device.type == "cuda",
        )
        model.train()
        total, count, skipped = 0.0, 0, []
        batches = len(loader)
        for step, batch in enumerate(loader, start=1):
            skipped += batch["skipped"]
            if batch["labels"] is None:
                continue
            with torch.autocast(device.type, enabled=use_amp):
                loss, n = loss_fn(model, batch)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if settings.grad_clip is not None:
                scaler.unscale_(optimizer)
                nn.utils.clip_grad_norm_(model.parameters(), settings.grad_clip)
            scaler.step(optimizer)
            scaler.update()
            if step == 1:
                kill_point("step", epoch)  # a no-op unless a test asks for a kill here
            if not math.isfinite(loss.item()):
                raise FloatingPointError(
                    f"epoch {epoch + 1}, step {step}: the loss is {loss.item()}; lower train.lr "
                    "or set train.grad_clip"
                )
            total += loss.item() * n
            count += n
            if progress is not None:
                progress(
                    f"epoch {epoch + 1}/{settings.epochs} loss {total / max(count, 1):.3f}",
                    step,
                    batches,
                )
        lr = optimizer.param_groups[0]["lr"]
        if scheduler is not None:
            scheduler.step()
        result = EpochResult(
            epoch, total / max(count, 1), lr, time.perf_counter() - started, count, skipped
        )
        is_last = epoch == settings.epochs - 1
        if evaluate is not None and ((epoch + 1) % settings.eval_every == 0 or is_last):
            started = time.perf_counter()
            result.metrics = evaluate(model)
            result.eval_seconds = time.perf_counter() - started
        for callback in on_epoch_end or []:
            callback(result)
        results.append(result)
    return results
