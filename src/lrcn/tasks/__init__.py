"""Tasks: the :class:`Task` interface, its registry, one shared ``train`` and one module per
task (activity, captioning, ...).

Every public module of this package that is not part of the seam itself is imported here,
which registers its task: a new task is a new module, and nothing else changes.
"""

import importlib
import pkgutil

from lrcn.tasks.base import Task, TaskConfig, TaskOption, get_task, list_tasks, register_task
from lrcn.tasks.configs import load_config, validate_config
from lrcn.tasks.inference import Predictor, evaluate_run, load_predictor, predict_run
from lrcn.tasks.trainer import load_run_config, train

_SEAM = {"base", "configs", "inference", "trainer"}
for _module in pkgutil.iter_modules(__path__):
    if not _module.name.startswith("_") and _module.name not in _SEAM:
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = [
    "Predictor",
    "Task",
    "TaskConfig",
    "TaskOption",
    "evaluate_run",
    "get_task",
    "list_tasks",
    "load_config",
    "load_predictor",
    "load_run_config",
    "predict_run",
    "register_task",
    "train",
    "validate_config",
]
