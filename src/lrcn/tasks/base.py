"""The task seam: what a task declares, and the registry the CLI and configs dispatch on.

A task (activity recognition, image captioning, ...) is one module in this package that
subclasses :class:`Task` and registers an instance with :func:`register_task`. It declares

* its config class (``task: <name>`` in a YAML file selects it),
* how to read its data and what typed extras its bundles carry (:meth:`Task.prepare`),
* the datasets, collate, loss and validation metrics of training (:meth:`Task.training`),
  and the validation metric that picks ``best/`` (:attr:`Task.primary_metric`),
* evaluate and predict, with the extra CLI options they take, and how the CLI prints them.

The shared :func:`lrcn.tasks.trainer.train` does the rest (run folder, device, seed, model,
optimizer, recorder, resume, loop, report). See ``docs/adding-a-task.md``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Literal, TypeVar

import torch
from pydantic import BaseModel
from torch import Tensor, nn
from torch.utils.data import Dataset

from lrcn.backbones import Preprocess
from lrcn.config import ConfigError, StrictConfig, TrainConfig

if TYPE_CHECKING:
    from lrcn.checkpoint import Bundle
    from lrcn.export.graphs import ExportPlan

Log = Callable[[str], None]
Progress = Callable[[str, int, int], None]  # (description, step, total)
Echo = Callable[[str], None]
LossFn = Callable[[nn.Module, dict[str, Any]], tuple[Tensor, int]]

__all__ = [
    "Echo",
    "Log",
    "Prepared",
    "Progress",
    "Task",
    "TaskConfig",
    "TaskOption",
    "TrainingSetup",
    "get_task",
    "list_tasks",
    "register_task",
]


class TaskConfig(StrictConfig):
    """What every task's config has; a task's own class gives ``data`` and ``model`` their
    types (a data section, a union of its models' configs) and may add sections."""

    task: str
    data: Any
    model: Any
    train: TrainConfig


C = TypeVar("C", bound=TaskConfig)


@dataclass(frozen=True)
class TaskOption:
    """An extra option of ``lrcn evaluate`` or ``lrcn predict`` that only some tasks take
    (``--beam``, ``--top``, ``--question``). Given to a task that does not declare it, it is an
    error naming the option and the task; not given, the task applies its own default."""

    name: str  # Python name; the flag is --name with "_" as "-"
    type: type  # int, float, str, Path or bool (a flag)
    help: str
    min: int | None = None
    # For a Path option naming a file predict writes: what the server creates for it when a
    # request asks for it ("dir" for a folder, else the file's suffix such as ".png").
    output: str | None = None

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


@dataclass
class Prepared:
    """What a task read before the model exists: the bundle extras that size the model (class
    names, a vocabulary), and the task's own data (its split), handed back to :meth:`training`."""

    extras: BaseModel
    data: Any
    skipped: list[str] = field(default_factory=list)


@dataclass
class TrainingSetup:
    """Everything the shared loop needs from a task for one run."""

    train_set: Dataset[Any]
    collate: Callable[[list[Any]], dict[str, Any]]
    loss: LossFn
    validate: Callable[[nn.Module], dict[str, float]]
    num_workers: int
    report: dict[str, Any]  # what the run's report.json says about the data
    skipped: list[str] = field(default_factory=list)
    # True when ``validate`` shards its items over the training's processes and gathers the
    # results itself (training/distributed.py); else it runs on rank 0 alone under torchrun.
    sharded_validation: bool = False


class Task(ABC, Generic[C]):
    """One task: subclass, set the class attributes, implement the methods, register."""

    name: ClassVar[str]
    config_class: ClassVar[type[TaskConfig]]
    primary_metric: ClassVar[str]  # a validation metric; picks best/
    primary_goal: ClassVar[Literal["max", "min"]] = "max"  # "min" for an error such as MSE
    logged_metrics: ClassVar[tuple[str, ...]]  # printed after every epoch
    evaluate_options: ClassVar[tuple[TaskOption, ...]] = ()
    predict_options: ClassVar[tuple[TaskOption, ...]] = ()
    input_kind: ClassVar[Literal["image", "video"]] = "video"  # what predict reads from a file
    # False when predict relates its inputs to each other (retrieval ranks them): the server
    # then never merges several requests' inputs into one predict call
    independent_inputs: ClassVar[bool] = True

    def expect_config(self, config: TaskConfig) -> C:
        """``config`` as this task's config, or an error naming both tasks."""
        if not isinstance(config, self.config_class):
            raise ConfigError(
                "task", f"this is a {self.name!r} command; the config is for {config.task!r}"
            )
        return config  # type: ignore[return-value]

    def run_title(self, config: C) -> str:
        """The title of a run's plots: the model and the data it learned from."""
        root = getattr(config.data, "root", None)
        return f"{config.model.name} on {Path(root).name}" if root else str(config.model.name)

    def preprocess(self, model: nn.Module) -> Preprocess:
        """The image preset stored in bundles (the model's backbone's, for CNN models)."""
        backbone = getattr(model, "backbone", None)
        if backbone is None:
            raise NotImplementedError(f"{type(model).__name__} has no backbone; override this")
        return backbone.preprocess

    @abstractmethod
    def prepare(self, config: C, log: Log) -> Prepared:
        """Read the data set; return the extras that size the model and the data."""

    @abstractmethod
    def training(
        self,
        config: C,
        model: nn.Module,
        prepared: Prepared,
        device: torch.device,
        log: Log,
        progress: Progress | None,
    ) -> TrainingSetup:
        """Datasets, collate, loss and validation for one run of ``model``."""

    @abstractmethod
    def evaluate(
        self,
        bundle: Bundle,
        config: C,
        split: str,
        options: dict[str, Any],
        out: Path,
        log: Log,
        progress: Progress | None,
    ) -> dict[str, Any]:
        """Score ``bundle`` on ``split`` ("test" or "val"); write files into ``out``; the
        summary's ``"outputs"`` maps names to the files written."""

    @abstractmethod
    def predict(
        self, bundle: Bundle, config: C, inputs: Sequence[Path], options: dict[str, Any]
    ) -> list[dict[str, Any]]:
        """One result per input; an unreadable input gets ``{"input": ..., "error": ...}`` and
        the others are still predicted."""

    @abstractmethod
    def render_evaluation(self, summary: dict[str, Any], echo: Echo) -> None:
        """Print an evaluation summary for a person."""

    @abstractmethod
    def render_predictions(self, results: list[dict[str, Any]], echo: Echo) -> None:
        """Print predictions for a person (errors are printed by the CLI, on stderr)."""

    def export_plan(self, bundle: Bundle, config: C, batch: int) -> ExportPlan:
        """What ``lrcn export`` writes for this task: the model methods predict calls, each on
        example inputs of ``batch`` items (see :class:`lrcn.export.graphs.Graph`)."""
        raise ConfigError("task", f"{self.name!r} runs cannot be exported yet")

    def extract_features(self, config: C, log: Log, progress: Progress | None) -> dict[str, Any]:
        """Fill the feature cache of a frozen backbone for the whole data set (every split)."""
        if not getattr(config.model, "freeze_backbone", False):
            raise ConfigError(
                "model.freeze_backbone",
                "is false: a fine-tuned backbone has no fixed features to cache",
                expected="true to extract features",
            )
        from lrcn.models import build_model
        from lrcn.tasks._common import resolve_device
        from lrcn.training.distributed import join, leave, peers_may_fail, rank_device

        world = join()  # under torchrun the ranks share the videos out (tasks/_common.py)
        try:
            with peers_may_fail(world):
                if not world.is_main:
                    log, progress = (lambda message: None), None
                prepared = self.prepare(config, log)
                # Seeded as train() seeds it, so a randomly initialised backbone is the one
                # training will build, and the cache (keyed by its weights) is the one training
                # reads.
                torch.manual_seed(config.train.seed)
                model = build_model(config.model, prepared.extras)
                device = rank_device(resolve_device(config.train.device), world)
                report = self.cache_features(config, model, prepared, device, log, progress)
                return report | {"main": world.is_main}
        finally:
            leave()

    def cache_features(
        self,
        config: C,
        model: nn.Module,
        prepared: Prepared,
        device: torch.device,
        log: Log,
        progress: Progress | None,
    ) -> dict[str, Any]:
        """Cache ``model``'s frozen backbone features of every split; return ``cache`` (the
        folder), ``inputs``, ``frames`` and ``skipped``."""
        raise ConfigError("task", f"{self.name!r} has no feature cache to fill")


_TASKS: dict[str, Task[Any]] = {}


def register_task(task: Task[Any]) -> Task[Any]:
    """Add ``task`` to the registry under ``task.name``."""
    if task.name in _TASKS:
        raise ValueError(f"task {task.name!r} is registered twice")
    _TASKS[task.name] = task
    return task


def get_task(name: object, source: str = "<config>") -> Task[Any]:
    """The registered task ``name``; a :class:`ConfigError` lists the known ones."""
    if not isinstance(name, str) or name not in _TASKS:
        raise ConfigError(
            source, f"unknown task {name!r}", key="task", expected=", ".join(list_tasks())
        )
    return _TASKS[name]


def list_tasks() -> list[str]:
    return sorted(_TASKS)
