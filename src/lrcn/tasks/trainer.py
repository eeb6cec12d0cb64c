"""One ``train`` for every task: run folder -> device -> seed -> model -> optimizer and
schedule -> recorder -> resume -> loop -> report. A task supplies only what differs
(:class:`~lrcn.tasks.base.Task`: data, extras, datasets, loss, validation).

Under ``torchrun`` every process runs this (see training/distributed.py): rank 0 alone locks,
writes and reports the run folder and logs; every rank builds the same model from the same
seed, reads the data, trains its shard of each batch, and (on resume) reads ``last/``, so the
run folder must be on a file system every machine sees.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lrcn.checkpoint import save_bundle, with_stored_defaults
from lrcn.config import ConfigError, absolute_paths, read_config_file
from lrcn.errors import LrcnError
from lrcn.models import build_model
from lrcn.tasks._common import make_optimizer, make_scheduler, resolve_device
from lrcn.tasks.base import Log, Progress, Task, TaskConfig, TrainingSetup, get_task
from lrcn.tasks.configs import validate_config
from lrcn.training.distributed import (
    World,
    barrier,
    broadcast,
    join,
    leave,
    peers_may_fail,
    rank_device,
)
from lrcn.training.lock import RunLock
from lrcn.training.loop import LoopSettings, fit
from lrcn.training.run import MARKER, STAGING, RunRecorder, open_run, recover, refuse_used_run

__all__ = ["check_resumable", "load_run_config", "train"]


def load_run_config(run_dir: str | Path) -> TaskConfig:
    """The config a run folder was trained with (its ``config.yaml``), validated."""
    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        raise ConfigError(Path(run_dir), "no config.yaml; is this a run folder?")
    raw, lines = read_config_file(path)
    if isinstance(raw, dict) and isinstance(raw.get("model"), dict):  # else validation says
        raw["model"] = with_stored_defaults(raw["model"], str(path))
    return validate_config(raw, str(path), lines)


def train(
    config: TaskConfig | None,
    run_dir: str | Path,
    *,
    resume: bool = False,
    log: Log = print,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Train ``config`` into ``run_dir``, or with ``resume`` continue the run there from its
    saved config and ``last/`` (``config`` None). Returns the run's report."""
    if resume and not Path(run_dir).is_dir():
        check_resumable(run_dir)
    world = join()
    try:
        if not world.is_main:  # rank 0 speaks for the run
            log, progress = _silent, None
        lock = RunLock(run_dir, log) if world.is_main else contextlib.nullcontext()
        with peers_may_fail(world), lock:
            return _train_locked(config, Path(run_dir), resume, log, progress, world)
    finally:
        leave()


def check_resumable(run_dir: str | Path) -> None:
    """Refuse a ``--resume`` of a folder that is not a run with a finished epoch (after
    :func:`recover` has finished an interrupted commit, if any)."""
    run = Path(run_dir)
    if not run.is_dir():
        raise LrcnError(run_dir, "no such run folder", expected="a run folder to --resume")
    if not (run / "last" / "bundle.json").is_file() and not (run / STAGING / MARKER).is_file():
        raise LrcnError(
            run_dir, "has no finished epoch to resume from (no last/ bundle)",
            expected="a run folder that finished at least one epoch; train it again "
            "without --resume",
        )  # fmt: skip


def _silent(message: str) -> None:
    pass


def _train_locked(
    config: TaskConfig | None,
    run_dir: Path,
    resume: bool,
    log: Log,
    progress: Progress | None,
    world: World,
) -> dict[str, Any]:
    if world.is_main:
        done = recover(run_dir)
        if done:
            log(f"{run_dir}: {done}")
        if resume:
            check_resumable(run_dir)
        else:
            refuse_used_run(run_dir)  # before minutes of reading data
    barrier()  # the others read the folder once rank 0 has recovered it
    if resume:
        config = load_run_config(run_dir)
    elif config is None:
        raise ValueError("a config is needed unless resuming")
    task: Task[Any] = get_task(config.task)
    # Paths are stored absolute, so evaluate and predict find the data from any folder.
    config = absolute_paths(task.expect_config(config))
    prepared = task.prepare(config, log)
    device = rank_device(resolve_device(config.train.device), world)
    torch.manual_seed(config.train.seed)
    model = build_model(config.model, prepared.extras).to(device)
    # config.yaml is written once the data and the model are known to be good, so a typo in
    # either leaves nothing behind (the lock removes the folder it made).
    run = open_run(run_dir, config, resume) if world.is_main else run_dir
    setup = task.training(config, model, prepared, device, log, progress)
    optimizer = make_optimizer(config, model)
    scheduler = make_scheduler(config, optimizer)
    config_dict = config.model_dump(mode="json")
    preprocess = task.preprocess(model)

    def bundle_to(folder: Path, epoch: int, metrics: dict[str, float]) -> None:
        save_bundle(folder, model, config_dict, prepared.extras, preprocess, epoch, metrics)

    t = config.train
    recorder = RunRecorder(
        run, bundle_to, task.primary_metric, optimizer, scheduler,
        f"{run.resolve().name}: {task.run_title(config)}",
        log, t.epochs, task.logged_metrics, minimize=task.primary_goal == "min",
    )  # fmt: skip
    start_epoch = recorder.resume(model, device) if resume else 0
    settings = LoopSettings(
        t.epochs,
        t.batch_size,
        t.seed,
        t.grad_clip,
        t.amp,
        num_workers=setup.num_workers,
        eval_every=t.eval_every,
    )
    results = fit(
        model=model,
        train_set=setup.train_set,
        collate=setup.collate,
        loss_fn=setup.loss,
        optimizer=optimizer,
        scheduler=scheduler,
        settings=settings,
        device=device,
        evaluate=_validation(setup, world),
        start_epoch=start_epoch,
        on_epoch_end=[recorder] if world.is_main else [],
        progress=progress,
        world=world,
    )
    skipped = set(prepared.skipped) | set(setup.skipped)
    skipped |= {message for r in results for message in r.skipped}
    report = {
        "run": str(run),
        "task": task.name,
        **setup.report,
        "skipped": sorted(skipped),
        "best": {
            "metric": task.primary_metric,
            "value": recorder.best if recorder.best_epoch is not None else None,
            "epoch": None if recorder.best_epoch is None else recorder.best_epoch + 1,
        },
        "final": recorder.history[-1]["metrics"] if recorder.history else {},
    }
    if not world.is_main:  # its history is empty: rank 0 reports
        return report | {"summary": ""}
    recorder.write_report(report)
    best = recorder.best_epoch
    where = f" at epoch {best + 1}" if best is not None else ""
    summary = f"best {task.primary_metric} {recorder.best:.3f}{where} (best/); run folder {run}"
    if skipped:
        first = sorted(skipped)[0]
        summary += f"\nskipped {len(skipped)} (listed in report.json), e.g. {first}"
    return report | {"summary": summary}


def _validation(setup: TrainingSetup, world: World) -> Callable[[nn.Module], dict[str, float]]:
    """The task's validation for this world: every rank runs a task's sharded validation (its
    own shard, gathered inside); another runs on rank 0 alone while the others wait for its
    numbers."""
    if not world.distributed or setup.sharded_validation:
        return setup.validate

    def on_rank_zero(model: nn.Module) -> dict[str, float]:
        return broadcast(setup.validate(model) if world.is_main else {})

    return on_rank_zero
