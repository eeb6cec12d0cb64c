"""Task pipelines (train, evaluate, predict), one module per task."""

from __future__ import annotations

from typing import Any

from torch import nn

__all__ = ["build_model_from_config"]


def build_model_from_config(
    config: dict[str, Any], num_classes: int, pretrained: bool = True
) -> nn.Module:
    """The model a (bundle's) config describes, for the config's task."""
    task = config.get("task")
    if task == "activity":
        from lrcn.tasks.activity import build_model

        return build_model(config, num_classes, pretrained)
    raise ValueError(f"unknown task {task!r} in config; this lrcn knows: activity")
