"""Pieces every task pipeline shares: the device, the optimizer and schedule, the feature cache
a config implies, and the check that a config belongs to the task at hand."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, TypeVar

import torch
from torch import nn

from lrcn.backbones import Backbone
from lrcn.config import ConfigError, TaskConfig
from lrcn.data.features import FeatureCache

C = TypeVar("C")

__all__ = ["expect_task", "feature_cache", "make_optimizer", "make_scheduler", "resolve_device"]


def expect_task(config: TaskConfig, kind: type[C], task: str) -> C:
    """``config`` if it is a ``kind`` config, else a clear error naming both tasks."""
    if not isinstance(config, kind):
        raise ConfigError(f"this command is for task {task!r}; the config is for {config.task!r}")
    return config


def resolve_device(name: str) -> torch.device:
    """``train.device``: "auto" picks the GPU when there is one."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            f"train.device: {name!r} asked for, but no CUDA GPU is available; use 'cpu' or 'auto'"
        )
    return device


def make_optimizer(config: TaskConfig, model: nn.Module) -> torch.optim.Optimizer:
    """``train.optimizer`` over the parameters that train (a frozen backbone's do not)."""
    t = config.train
    params = [p for p in model.parameters() if p.requires_grad]
    if t.optimizer == "sgd":
        return torch.optim.SGD(params, lr=t.lr, momentum=t.momentum, weight_decay=t.weight_decay)
    if t.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=t.lr, weight_decay=t.weight_decay)
    return torch.optim.Adam(params, lr=t.lr, weight_decay=t.weight_decay)


def make_scheduler(
    config: TaskConfig, optimizer: torch.optim.Optimizer
) -> torch.optim.lr_scheduler.LRScheduler | None:
    """``train.schedule``, stepped once per epoch."""
    t = config.train
    if t.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=t.epochs)
    if t.schedule == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=t.step_size, gamma=t.gamma)
    return None


def _weights_identity(model_cfg: dict[str, Any]) -> str:
    if not model_cfg.get("pretrained", True):
        return "random-init"
    weights = model_cfg.get("backbone_weights")
    if weights:
        return "sha1:" + hashlib.sha1(Path(weights).read_bytes()).hexdigest()
    return "packaged"


def feature_cache(config: TaskConfig, backbone: Backbone, kind: str) -> FeatureCache:
    """The cache of ``backbone``'s features for this config's data, keyed by everything that
    changes them (backbone, weights, preprocessing, pooled or grid)."""
    root = config.train.feature_cache or (Path(config.data.root).parent / ".lrcn-features")
    identity = {
        "backbone": backbone.name,
        "weights": _weights_identity(config.model.model_dump(mode="json")),
        "preprocess": backbone.preprocess.to_dict(),
        "kind": kind,
    }
    return FeatureCache(root, identity)
