"""Evaluate and predict for any run: load the bundle, find its task, check the options, call
the task. The CLI and the demos go through here, so no caller needs to know the task."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lrcn.checkpoint import Bundle, load_bundle
from lrcn.config import ConfigError, apply_overrides
from lrcn.tasks.base import Log, Progress, Task, TaskOption, get_task
from lrcn.tasks.configs import validate_config

__all__ = ["Predictor", "check_options", "evaluate_run", "load_predictor", "predict_run"]

# What `lrcn evaluate --set` may change: where the data is and how it is read or decoded. The
# model's architecture is fixed by its weights, and training settings no longer apply.
_EVALUATE_CAN_SET = ("data.", "decode.", "train.device", "train.feature_cache")


def check_options(
    task: Task[Any], declared: Sequence[TaskOption], given: dict[str, Any], command: str
) -> dict[str, Any]:
    """``given`` if the task takes every option in it; else an error naming one and the task."""
    known = {o.name for o in declared}
    for name in given:
        if name not in known:
            takes = ", ".join(o.flag for o in declared) or "no task options"
            raise ConfigError(
                f"--{name.replace('_', '-')}",
                f"does not apply to {task.name} runs; for them lrcn {command} takes {takes}",
            )
    return given


def _config_of(bundle: Bundle, overrides: Sequence[str]) -> Any:
    for item in overrides:
        key = item.partition("=")[0].strip()
        if not key.startswith(_EVALUATE_CAN_SET):
            raise ConfigError(
                f"--set {item!r}",
                f"{key} cannot change after training",
                expected=f"a key under {', '.join(_EVALUATE_CAN_SET)}",
            )
    raw = apply_overrides(bundle.config, list(overrides))
    changed = frozenset(item.partition("=")[0].strip() for item in overrides)
    return validate_config(raw, f"{bundle.path / 'bundle.json'}", overridden=changed)


def evaluate_run(
    run_dir: str | Path,
    overrides: Sequence[str] = (),
    which: str = "best",
    split: str = "test",
    options: dict[str, Any] | None = None,
    out: str | Path | None = None,
    log: Log = print,
    progress: Progress | None = None,
) -> tuple[Task[Any], dict[str, Any]]:
    """Score a run's ``best``/``last`` bundle on ``split``; results go to
    ``<run>/eval-<which>-<split>`` unless ``out`` is given."""
    if split not in ("test", "val"):
        raise ConfigError(
            "--split", f"{split!r} is not a split to evaluate", expected="test or val"
        )
    bundle = load_bundle(run_dir, which=which)
    task = get_task(bundle.task, str(bundle.path / "bundle.json"))
    given = check_options(task, task.evaluate_options, options or {}, "evaluate")
    config = task.expect_config(_config_of(bundle, overrides))
    folder = Path(out) if out is not None else Path(run_dir) / f"eval-{which}-{split}"
    folder.mkdir(parents=True, exist_ok=True)  # a folder that cannot be written fails now
    summary = task.evaluate(bundle, config, split, given, folder, log, progress)
    return task, summary


@dataclass
class Predictor:
    """A loaded run, ready to predict many times (the server keeps one per model)."""

    task: Task[Any]
    bundle: Bundle
    config: Any

    def __call__(
        self, inputs: Sequence[str | Path], options: dict[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        """One result per input; an unreadable input gets an ``error`` entry."""
        given = check_options(self.task, self.task.predict_options, options or {}, "predict")
        return self.task.predict(self.bundle, self.config, [Path(p) for p in inputs], given)

    def describe(self) -> dict[str, Any]:
        """What a client needs to call this model: its task, model, what it reads, its labels
        (class names, answers) or vocabulary size, and the options predict takes."""
        extras = self.bundle.extras.model_dump(mode="json")
        labels = extras.get("classes") or extras.get("answers")
        vocab = extras.get("vocab")
        return {
            "task": self.task.name,
            "model": str(self.config.model.name),
            "engine": self.bundle.engine,
            "input": self.task.input_kind,
            "independent_inputs": self.task.independent_inputs,
            "labels": labels,
            "vocabulary_size": len(vocab["words"]) if isinstance(vocab, dict) else None,
            "epoch": self.bundle.epoch,
            "metrics": self.bundle.metrics,
            "options": [
                {
                    "name": o.name,
                    "type": o.type.__name__ if o.output is None else "bool",
                    "help": o.help
                    if o.output is None
                    else f"true: make it and return it inline as a data URL ({o.help})",
                    "min": o.min,
                    "output": o.output,
                }
                for o in self.task.predict_options
            ],
        }


def load_predictor(run_dir: str | Path, which: str = "best", engine: str = "eager") -> Predictor:
    """Load a run's (or a bundle's, or an exported bundle's) model once for many predictions;
    ``engine`` is "eager" (PyTorch) or "onnxruntime" (an exported bundle)."""
    bundle = load_bundle(run_dir, which=which, engine=engine)
    task = get_task(bundle.task, str(bundle.path / "bundle.json"))
    config = task.expect_config(_config_of(bundle, ()))
    return Predictor(task, bundle, config)


def predict_run(
    run_dir: str | Path,
    inputs: Sequence[str | Path],
    options: dict[str, Any] | None = None,
    which: str = "best",
    engine: str = "eager",
) -> tuple[Task[Any], list[dict[str, Any]]]:
    """Predict every input with a run's bundle; an unreadable input gets an ``error`` entry."""
    predictor = load_predictor(run_dir, which, engine)
    return predictor.task, predictor(inputs, options)
