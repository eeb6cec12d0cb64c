"""A plain PyTorch training loop, shared by every task.

The task supplies a dataset with ``set_epoch``, a collate function, a loss function and an
evaluation function; the loop owns the rest: shuffling, the optimizer step with gradient
clipping and AMP (on a GPU), the LR schedule, progress, and calling back after each epoch.

Exact resume: everything random in epoch e is seeded from (seed, e): the shuffle order, the
data (see data/clips.py) and the global torch RNG that dropout draws from. A run resumed after
epoch e therefore ends with the same weights as one that never stopped, given the optimizer
and scheduler state saved after epoch e.

Several processes (``torchrun``, see training/distributed.py): ``settings.batch_size`` is the
global batch. A ``DistributedSampler`` gives rank r the positions r, r + N, ... of the epoch's
shuffled order (the same order one process uses), so step s's sub-batches together are one
process's batch s. The loss (a task's ``loss_fn`` runs inside the DDP wrapper, whatever model
methods it calls) is weighted by the rank's share of the step's samples or tokens, so DDP's
mean of the ranks' gradients is the gradient of the global batch's mean loss.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from lrcn.config import ConfigError
from lrcn.training.distributed import World, all_concat, all_sum
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


class _LossOf(nn.Module):
    """``loss_fn(model, batch)`` as a module's forward, so that DDP sees the whole loss
    computation (tasks' losses call ``forward_head``, ``decoder``, ``encode_images``, ...,
    which a DDP wrapper of the model alone would not see)."""

    def __init__(self, model: nn.Module, loss_fn: LossFn) -> None:
        super().__init__()
        self.model = model
        self.loss_fn = loss_fn

    def forward(self, batch: dict[str, Any]) -> tuple[Tensor, int]:
        return self.loss_fn(self.model, batch)


def _loss_runner(model: nn.Module, loss_fn: LossFn, world: World) -> Callable[..., Any]:
    if not world.distributed:
        return lambda batch: loss_fn(model, batch)
    return DistributedDataParallel(_LossOf(model, loss_fn))


class _Shards(DistributedSampler):
    """The epoch's shuffled order, this rank's positions of it (rank, rank + N, ...).

    A ``DistributedSampler`` (seeded ``seed + epoch`` by ``set_epoch``)
    without its padding: it would repeat a few items to even out the shards, and the ranks'
    batches together would no longer be one process's batches. Uneven shards differ by one
    item; :func:`_steps` makes the ranks take the same number of steps anyway."""

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        # The loader that shared this generator before DDP drew its workers' base seed first:
        # the same draw here keeps single-process runs in the order they had.
        torch.empty((), dtype=torch.int64).random_(generator=generator)
        order = torch.randperm(len(self.dataset), generator=generator).tolist()  # type: ignore[arg-type]
        return iter(order[self.rank :: self.num_replicas])

    def __len__(self) -> int:
        return len(range(self.rank, len(self.dataset), self.num_replicas))  # type: ignore[arg-type]


def _shards(train_set: Dataset, settings: LoopSettings, world: World) -> _Shards:
    return _Shards(
        train_set,
        num_replicas=world.size,
        rank=world.rank,
        shuffle=True,
        seed=_epoch_seed(settings.seed, 0) + 1,
    )


Batch = dict[str, Any]


def _steps(
    loader: DataLoader, steps: int, world: World, device: torch.device
) -> Iterator[tuple[int, Batch | None, bool, list[str]]]:
    """``(step, batch, real, skipped)`` for each of the epoch's ``steps``, as many on every
    rank. ``batch`` is None when the step is skipped (one process: all its items were skipped;
    several: some rank has had no usable batch yet). A rank out of items (the last step of
    uneven shards) or whose items were all skipped takes part with its last usable batch and
    ``real`` False: its loss then weighs 0, and DDP's collectives still meet."""
    batches = iter(loader)
    last: Batch | None = None
    for step in range(1, steps + 1):
        batch = next(batches, None)
        skipped = batch["skipped"] if batch is not None else []
        usable = batch if batch is not None and batch["labels"] is not None else None
        last = usable or last
        if world.distributed and all_sum([float(last is not None)], device)[0] < world.size:
            yield step, None, False, skipped
        elif usable is not None or not world.distributed:
            yield step, usable, usable is not None, skipped
        else:
            yield step, last, False, skipped


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
    world: World | None = None,
) -> list[EpochResult]:
    """Train epochs ``start_epoch .. settings.epochs-1``; return their results. With a
    ``world`` of several processes every rank calls this (see the module docstring)."""
    world = world or World()
    if settings.batch_size % world.size:
        raise ConfigError(
            "train.batch_size",
            f"{settings.batch_size} cannot be split over {world.size} processes",
            expected="a multiple of the number of processes (it is the global batch)",
        )
    use_amp = settings.amp and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    run_loss = _loss_runner(model, loss_fn, world)
    sampler = _shards(train_set, settings, world)
    per_rank = settings.batch_size // world.size
    steps = math.ceil(len(range(0, len(train_set), world.size)) / per_rank)  # type: ignore[arg-type]
    results = []
    for epoch in range(start_epoch, settings.epochs):
        started = time.perf_counter()
        # Dropout & co. for this epoch; rank 0 draws what a single process draws.
        torch.manual_seed(_epoch_seed(settings.seed, epoch) + 7919 * world.rank)
        set_epoch = getattr(train_set, "set_epoch", None)
        if set_epoch is not None:
            set_epoch(epoch)
        sampler.set_epoch(epoch)
        workers_seed = torch.Generator().manual_seed(_epoch_seed(settings.seed, epoch) + 1)
        loader = DataLoader(
            train_set,
            batch_size=per_rank,
            sampler=sampler,
            generator=workers_seed,
            collate_fn=collate,
            num_workers=settings.num_workers,
            persistent_workers=False,
            pin_memory=device.type == "cuda",
        )
        model.train()
        total, count, skipped = 0.0, 0, []
        for step, batch, real, missed in _steps(loader, steps, world, device):
            skipped += missed
            if batch is None:
                continue
            with torch.autocast(device.type, enabled=use_amp):
                loss, n = run_loss(batch)
            n = n if real else 0
            share = loss
            if world.distributed:  # this rank's share of the global batch's mean
                (global_n,) = all_sum([float(n)], device)
                share = loss * (n * world.size / max(global_n, 1.0))
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(share).backward()
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
                    steps,
                )
        lr = optimizer.param_groups[0]["lr"]
        if scheduler is not None:
            scheduler.step()
        if world.distributed:
            total, summed = all_sum([total, count], device)
            count = int(summed)
            skipped = all_concat(skipped)
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
