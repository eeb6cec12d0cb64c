"""A run folder, shared by every task: config, per-epoch metrics, curves, bundles, resume.

::

    config.yaml            the resolved config
    metrics.jsonl/.csv     one row per epoch
    curves.png             loss and metrics per epoch
    best/ last/            checkpoint bundles (last/ also holds train_state.pt for --resume)
    report.json            what the task reports at the end

:class:`RunRecorder` is the loop's epoch-end callback: it appends the metrics, redraws the
curves, saves ``last/`` with the training state and ``best/`` when the task's primary metric
improves.
"""

from __future__ import annotations

import csv
import json
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
from lrcn.training.loop import EpochResult

__all__ = ["RunRecorder", "open_run", "refuse_used_run"]

SaveBundle = Callable[[Path, int, dict[str, float]], None]  # (folder, epoch, metrics)


def open_run(run_dir: str | Path, config: BaseModel, resume: bool) -> Path:
    """Create a run folder for ``config`` (or reopen one with ``resume``) and save the config.

    A folder that already holds a run is refused unless resuming: a run folder holds one run.
    """
    run = Path(run_dir)
    if not resume:
        refuse_used_run(run)
    run.mkdir(parents=True, exist_ok=True)
    (run / "config.yaml").write_text(config_to_yaml(config))
    return run


def refuse_used_run(run_dir: str | Path) -> None:
    """A run folder holds one run: refuse one that already has a ``last/`` bundle."""
    if (Path(run_dir) / "last").exists():
        raise LrcnError(
            run_dir, "already holds a run", expected="--resume to continue it, or another --out"
        )


class RunRecorder:
    """Epoch-end bookkeeping of one run; ``save_bundle(folder, epoch, metrics)`` writes a
    bundle. ``primary`` is the validation metric that picks ``best/``; ``shown`` the metrics
    logged after each epoch."""

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
        self.best = float("-inf")
        self.best_epoch: int | None = None

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
        row = asdict(result)
        self.history.append(row)
        with (self.run / "metrics.jsonl").open("a") as f:
            f.write(json.dumps({k: v for k, v in row.items() if k != "skipped"}) + "\n")
        self._write_csv()
        score = result.metrics.get(self.primary)
        improved = score is not None and score > self.best
        if improved:
            self.best, self.best_epoch = float(score), result.epoch  # type: ignore[arg-type]
        self.save_bundle(self.run / "last", result.epoch, result.metrics)
        save_train_state(self.run / "last", {
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "epoch": result.epoch, "best": self.best, "best_epoch": self.best_epoch,
            "history": json.dumps(self.history),
        })  # fmt: skip
        if improved:
            self.save_bundle(self.run / "best", result.epoch, result.metrics)
        from lrcn.plots import plot_curves, save_figure

        save_figure(plot_curves(self.history, title=self.title), self.run / "curves.png")
        shown = ", ".join(f"{k} {result.metrics[k]:.3f}" for k in self.shown if k in result.metrics)
        self.log(
            f"epoch {result.epoch + 1}/{self.epochs}: loss {result.train_loss:.4f}"
            + (f", {shown}" if shown else "")
            + f" ({result.seconds:.1f} s training, {result.eval_seconds:.1f} s evaluating)"
        )

    def _write_csv(self) -> None:
        names = sorted({k for h in self.history for k in h["metrics"]})
        with (self.run / "metrics.csv").open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["epoch", "train_loss", "lr", "seconds", *names])
            for h in self.history:
                first = [h["epoch"] + 1, f"{h['train_loss']:.6f}", h["lr"], f"{h['seconds']:.2f}"]
                writer.writerow([*first, *(h["metrics"].get(k, "") for k in names)])

    def write_report(self, report: dict[str, Any]) -> None:
        (self.run / "report.json").write_text(json.dumps(report, indent=1))
