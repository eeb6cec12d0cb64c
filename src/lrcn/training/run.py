"""A run folder, shared by every task: config, per-epoch metrics, curves, bundles, resume.

::

    config.yaml            the resolved config (paths made absolute)
    metrics.jsonl/.csv     one row per finished epoch
    curves.png             loss and metrics per epoch
    best/ last/            checkpoint bundles (last/ also holds train_state.pt for --resume)
    report.json            what the task reports at the end
    .lock                  while a training writes here (see lock.py)
    .commit/               only while an epoch's end is being committed

:class:`RunRecorder` is the loop's epoch-end callback. An epoch's end is one atomic commit:
``last/`` (weights, and the training state with the whole history and the best score so far)
and ``best/`` (when the primary validation metric improved) are written into ``.commit/``,
then a ``COMMIT`` marker (the epoch and the history the views are drawn from) is renamed into
place: that rename is the commit point. The bundles
are then moved into place and ``metrics.jsonl``, ``metrics.csv`` and ``curves.png`` are
rewritten from the history, which is their single source (``curves.png`` after the first and
the last epoch and at most every ``CURVES_EVERY_S`` seconds between: drawing it costs as much
as an epoch of a small model; after a kill it may lag the metrics files by those seconds until
``--resume`` redraws it). :func:`recover` finishes a
committed epoch whose moves a kill interrupted, and drops an uncommitted one, so after a
kill at any moment the folder holds the last committed epoch, whole, and ``--resume``
continues from it to the same weights as a run that never stopped.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel
from torch import nn

from lrcn.checkpoint import load_bundle, load_train_state, save_train_state
from lrcn.config import config_to_yaml
from lrcn.errors import LrcnError
from lrcn.training.faults import kill_point
from lrcn.training.loop import EpochResult

__all__ = ["RunRecorder", "open_run", "recover", "refuse_used_run"]

SaveBundle = Callable[[Path, int, dict[str, float]], None]  # (folder, epoch, metrics)
STAGING = ".commit"
MARKER = "COMMIT"
BUNDLES = ("last", "best")
CURVES_EVERY_S = 20.0  # curves.png redrawn at most this often between the first and last epoch


def open_run(run_dir: str | Path, config: BaseModel, resume: bool) -> Path:
    """Create a run folder for ``config`` (or reopen one with ``resume``) and save the config.

    A folder that already holds a run is refused unless resuming: a run folder holds one run.
    The caller holds the folder's lock.
    """
    run = Path(run_dir)
    if not resume:
        refuse_used_run(run)
    run.mkdir(parents=True, exist_ok=True)
    _write_atomic(run / "config.yaml", config_to_yaml(config))
    return run


def refuse_used_run(run_dir: str | Path) -> None:
    """A run folder holds one run: refuse one that already has a ``last/`` bundle (or an
    epoch committed but not yet moved into place)."""
    run = Path(run_dir)
    if (run / "last").exists() or (run / STAGING / MARKER).exists():
        raise LrcnError(
            run_dir, "already holds a run", expected="--resume to continue it, or another --out"
        )


def recover(run_dir: str | Path) -> str | None:
    """Finish or drop an epoch commit a kill interrupted; say what was done (None: nothing).

    The caller holds the folder's lock, so no one else is committing.
    """
    run = Path(run_dir)
    staging = run / STAGING
    if not staging.exists():
        return None
    if not (staging / MARKER).is_file():
        shutil.rmtree(staging)
        return "dropped an epoch whose end was interrupted before its commit"
    marker = json.loads((staging / MARKER).read_text())
    _finish_commit(run, marker["epoch"], marker["title"], marker["history"])
    return f"finished the commit of epoch {marker['epoch'] + 1}, which a kill interrupted"


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def _fsync_tree(folder: Path) -> None:
    """Flush the staged files to disk before the commit marker names them (power cuts)."""
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


def _finish_commit(
    run: Path, epoch: int, title: str, history: list[dict[str, Any]], draw: bool = True
) -> None:
    """Move a committed ``.commit/`` into place and rewrite the views of ``history`` (the
    committed epoch's), ``curves.png`` only with ``draw``; safe to repeat after a kill at any
    step."""
    staging = run / STAGING
    for name in BUNDLES:
        new, live, old = staging / name, run / name, staging / f"{name}.old"
        if new.exists():
            if live.exists():
                if old.exists():
                    shutil.rmtree(old)
                live.rename(old)
            new.rename(live)
        kill_point(f"moved-{name}", epoch)
    write_views(run, history)
    kill_point("views", epoch)
    if draw:
        from lrcn.plots import plot_curves, save_figure

        save_figure(plot_curves(history, title=title), run / "curves.png")
    (staging / MARKER).unlink()  # the views are written: the commit needs no redo
    kill_point("done", epoch)
    shutil.rmtree(staging)


def write_views(run: Path, history: list[dict[str, Any]]) -> None:
    """``metrics.jsonl`` and ``metrics.csv`` from the history (rewritten whole, atomically)."""
    rows = [json.dumps({k: v for k, v in row.items() if k != "skipped"}) for row in history]
    _write_atomic(run / "metrics.jsonl", "".join(row + "\n" for row in rows))
    names = sorted({k for h in history for k in h["metrics"]})
    tmp = run / "metrics.csv.tmp"
    with tmp.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["epoch", "train_loss", "lr", "seconds", *names])
        for h in history:
            first = [h["epoch"] + 1, f"{h['train_loss']:.6f}", h["lr"], f"{h['seconds']:.2f}"]
            writer.writerow([*first, *(h["metrics"].get(k, "") for k in names)])
    tmp.replace(run / "metrics.csv")


class RunRecorder:
    """Epoch-end bookkeeping of one run; ``save_bundle(folder, epoch, metrics)`` writes a
    bundle. ``primary`` is the validation metric that picks ``best/`` (the highest, or with
    ``minimize`` the lowest: an error such as MSE); ``shown`` the metrics logged after each
    epoch."""

    def __init__(
        self,
        run: Path,
        save_bundle: SaveBundle,
        primary: str,
        optimizer: torch.optim.Optimizer,
        scheduler: torch.optim.lr_scheduler.LRScheduler | None,
        title: str,
        log: Callable[[str], None],
        epochs: int,
        shown: tuple[str, ...] = (),
        minimize: bool = False,
    ) -> None:
        self.run = run
        self.save_bundle = save_bundle
        self.primary = primary
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.title = title
        self.log = log
        self.epochs = epochs
        self.shown = shown or (primary,)
        self.history: list[dict[str, Any]] = []
        self.minimize = minimize
        self.best = float("inf") if minimize else float("-inf")
        self.best_epoch: int | None = None
        self.drawn_at: float | None = None  # when curves.png was last drawn (monotonic s)

    def resume(self, model: nn.Module, device: torch.device) -> int:
        """Load ``last/``'s weights, optimizer, scheduler and history; return the next epoch."""
        bundle = load_bundle(self.run, which="last", device=device)
        model.load_state_dict(bundle.model.state_dict())
        state = load_train_state(self.run / "last")
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and state.get("scheduler") is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        self.best, self.history = state["best"], json.loads(state["history"])
        self.best_epoch = state.get("best_epoch")
        self.log(f"resuming {self.run} after epoch {state['epoch'] + 1}")
        return int(state["epoch"]) + 1

    def __call__(self, result: EpochResult) -> None:
        """Commit the epoch's end (see the module docstring), then redraw and log."""
        row = asdict(result)
        self.history.append(row)
        score = result.metrics.get(self.primary)
        improved = score is not None and (score < self.best if self.minimize else score > self.best)
        if improved:
            self.best, self.best_epoch = float(score), result.epoch  # type: ignore[arg-type]
        staging = self.run / STAGING
        if staging.exists():
            shutil.rmtree(staging)
        self.save_bundle(staging / "last", result.epoch, result.metrics)
        save_train_state(staging / "last", {
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "epoch": result.epoch, "best": self.best, "best_epoch": self.best_epoch,
            "history": json.dumps(self.history),
        })  # fmt: skip
        kill_point("staged-last", result.epoch)
        if improved:
            self.save_bundle(staging / "best", result.epoch, result.metrics)
            kill_point("staged-best", result.epoch)
        _fsync_tree(staging)
        marker = {"epoch": result.epoch, "title": self.title, "history": self.history}
        _write_atomic(staging / MARKER, json.dumps(marker))  # the commit point
        kill_point("committed", result.epoch)
        # Drawing the curves costs ~0.5 s, as much as an epoch of a small model: redraw them
        # after the first and the last epoch, and in between at most every CURVES_EVERY_S.
        now = time.monotonic()
        draw = (
            self.drawn_at is None
            or result.epoch + 1 >= self.epochs
            or now - self.drawn_at >= CURVES_EVERY_S
        )
        _finish_commit(self.run, result.epoch, self.title, self.history, draw)
        if draw:
            self.drawn_at = now
        shown = ", ".join(f"{k} {result.metrics[k]:.3f}" for k in self.shown if k in result.metrics)
        self.log(
            f"epoch {result.epoch + 1}/{self.epochs}: loss {result.train_loss:.4f}"
            + (f", {shown}" if shown else "")
            + f" ({result.seconds:.1f} s training, {result.eval_seconds:.1f} s evaluating)"
        )

    def write_report(self, report: dict[str, Any]) -> None:
        _write_atomic(self.run / "report.json", json.dumps(report, indent=1))
