"""Task pipelines (train, evaluate, predict), one module per task."""

from __future__ import annotations

from typing import Any

from torch import nn

__all__ = ["build_model_from_config"]


def build_model_from_config(
    config: dict[str, Any], meta: dict[str, Any], pretrained: bool = True
) -> nn.Module:
    """The model a bundle's config describes; its classes or vocabulary come from the bundle's
    metadata."""
    task = config.get("task")
    if task == "activity":
        from lrcn.tasks.activity import build_model

        return build_model(config, len(meta["classes"]), pretrained)
    if task == "captioning":
        from lrcn.tasks.captioning import build_model as build_captioner

        if "vocab" not in meta:
            raise ValueError("a captioning bundle must carry its vocabulary ('vocab')")
        return build_captioner(config, len(meta["vocab"]["words"]), pretrained)
    raise ValueError(f"unknown task {task!r} in config; this lrcn knows: activity, captioning")
