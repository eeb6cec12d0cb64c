"""Pieces every task pipeline shares: the device, the optimizer and schedule, and the feature
cache a config implies."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np
import torch
from torch import Tensor, nn

from lrcn.backbones import Backbone
from lrcn.config import ConfigError
from lrcn.data.features import FeatureCache, FrameLoader, weights_digest
from lrcn.data.items import Problem
from lrcn.data.video_io import read_frames, read_image
from lrcn.data.vocab import Vocabulary, tokenize
from lrcn.training.distributed import all_concat, broadcast, current_world, shard


class _HasImage(Protocol):
    @property
    def image(self) -> Path: ...


ImageItem = TypeVar("ImageItem", bound=_HasImage)

IMAGES_HELD_POOLED = 65_536  # pooled features kept in memory: 65k x 5 KB = 330 MB at most

__all__ = [
    "cached_image_features",
    "feature_cache",
    "fill_feature_cache",
    "make_optimizer",
    "make_scheduler",
    "resolve_device",
    "typed_words",
    "word_ids",
]


def resolve_device(name: str) -> torch.device:
    """``train.device``: "auto" picks the GPU when there is one."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(
            "train.device", f"{name!r} is not a device", expected="auto, cpu, cuda or cuda:N"
        ) from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            "train.device",
            f"{name!r} asked for, but no CUDA GPU is available",
            expected="'cpu' or 'auto'",
        )
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise ConfigError(
            "train.device",
            f"{name!r} asked for, but this machine has {torch.cuda.device_count()} GPU(s)",
        )
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("train.device", "'mps' asked for, but no Apple GPU is available")
    return device


def make_optimizer(config: Any, model: nn.Module) -> torch.optim.Optimizer:
    """``train.optimizer`` over the parameters that train (a frozen backbone's do not)."""
    t = config.train
    params = [p for p in model.parameters() if p.requires_grad]
    if t.optimizer == "sgd":
        return torch.optim.SGD(params, lr=t.lr, momentum=t.momentum, weight_decay=t.weight_decay)
    if t.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=t.lr, weight_decay=t.weight_decay)
    return torch.optim.Adam(params, lr=t.lr, weight_decay=t.weight_decay)


def make_scheduler(
    config: Any, optimizer: torch.optim.Optimizer
) -> torch.optim.lr_scheduler.LRScheduler | None:
    """``train.schedule``, stepped once per epoch."""
    t = config.train
    if t.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=t.epochs)
    if t.schedule == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=t.step_size, gamma=t.gamma)
    return None


def feature_cache(config: Any, backbone: Backbone, kind: str) -> FeatureCache:
    """The cache of ``backbone``'s features for this config's data, keyed by everything that
    changes them: the backbone, a hash of its actual weights, its preprocessing, pooled or
    grid (see :mod:`lrcn.data.features`)."""
    data_root = Path(config.data.root)
    root = config.train.feature_cache or (data_root.parent / ".lrcn-features")
    identity = {
        "backbone": backbone.name,
        "weights": "sha1:" + weights_digest(backbone),
        "preprocess": backbone.preprocess.to_dict(),
        "kind": kind,
    }
    return FeatureCache(root, identity)


def fill_feature_cache(
    config: Any,
    model: nn.Module,
    sources: Sequence[Path],
    device: torch.device,
    skipped: list[Problem],
    log: Callable[[str], None],
    progress: Callable[[str, int, int], None] | None,
    load_frames: FrameLoader = read_frames,
    noun: str = "videos",
    sampling: str | None = None,
) -> FeatureCache:
    """The cache of a frozen-backbone ``model``'s features (its ``backbone`` and
    ``feature_kind``), with every source of ``sources`` not there yet extracted into it;
    sources that fail under ``data.on_error: skip`` are added to ``skipped``. ``sampling``
    says which frames ``load_frames`` gives when not all of them (e.g. "32 uniform"); it is
    part of the cache's key, so differently sampled features never mix."""
    backbone: Backbone = model.backbone  # type: ignore[assignment]
    kind = str(model.feature_kind)
    cache = feature_cache(config, backbone, kind if sampling is None else f"{kind}/{sampling}")
    world = current_world()
    missing = broadcast(cache.missing(sources))  # rank 0's view: the ranks shard one list
    if missing:
        processes = f" in {world.size} processes" if world.distributed else ""
        log(
            f"extracting {backbone.name} features of {len(missing)} {noun} into "
            f"{cache.folder}{processes}"
        )

        share = f", this process's 1/{world.size}" if world.distributed else ""

        def extract(into: FeatureCache, todo: list[Path], show: bool) -> list[Problem]:
            def frames(done: int, total: int) -> None:
                if progress is not None and show:  # rank 0's share under torchrun
                    progress(f"features (frames{share})", done, total)

            return into.extract(
                todo, backbone, kind, device, on_error=config.data.on_error, progress=frames,
                load_frames=load_frames, engine=config.train.extract_engine, log=log,
            )  # fmt: skip

        problems = all_concat(extract(cache, shard(missing), True))  # also a barrier
        skipped += problems
        if world.distributed:
            # A fresh view of the folder, with the other ranks' entries; a machine that does
            # not share the cache folder with the others extracts what it cannot see.
            cache = FeatureCache(cache.folder.parent, cache.identity)  # forgets its checks
            failed = {Path(p.path) for p in problems}
            unseen = [s for s in cache.missing(missing) if s not in failed]
            if unseen:
                extract(cache, unseen, False)
    return cache


def cached_image_features(
    config: Any,
    model: nn.Module,
    items: Sequence[ImageItem],
    device: torch.device,
    skipped: list[Problem],
    log: Callable[[str], None],
    progress: Callable[[str, int, int], None] | None,
    notes: list[str] | None = None,
) -> tuple[list[ImageItem], Callable[[Path], Tensor]]:
    """The ``items`` (anything with an ``image`` path; several may share one) whose image has
    frozen-backbone features, extracted into the cache when missing (see
    :func:`fill_feature_cache`), and each image's features by path: pooled ``(D,)`` or a grid
    ``(P, C)`` (positions first, as the attention models read it). Images converted to RGB on
    the way are noted in ``notes``."""

    def one_frame_clip(path: Path) -> np.ndarray:
        return read_image(path, notes)[None]  # (1, H, W, 3)

    images = sorted({item.image for item in items})
    cache = fill_feature_cache(
        config, model, images, device, skipped, log, progress, one_frame_clip, "images"
    )

    # Every caption or question of an image reads that image's features, each epoch: keep the
    # last ones read in memory (pooled vectors are 5 KB, so all of a split's; a 7x7x1280 grid
    # is 250 KB, so the last 512), and a file is opened once an epoch at most.
    held = IMAGES_HELD_POOLED if str(getattr(model, "feature_kind", "")) == "pooled" else 512

    @functools.lru_cache(maxsize=held)
    def features(path: Path) -> Tensor:
        array = torch.from_numpy(np.asarray(cache.load(path), dtype=np.float32))[0]
        return array.flatten(1).transpose(0, 1) if array.dim() == 3 else array  # (P, C) | (D,)

    return [item for item in items if cache.has(item.image)], features


def typed_words(text: str, vocab: Vocabulary, where: str) -> tuple[list[str], list[str]]:
    """A typed sentence's tokens, and those the vocabulary lacks (they read as ``<unk>``;
    callers report them). A sentence with no known word is refused (``where`` names the flag):
    the model would see only ``<unk>``, and its answer or ranking would pretend otherwise."""
    tokens = tokenize(text)
    if not tokens:
        raise ConfigError(where, f"{text!r} holds no words", expected="a sentence")
    unknown = [t for t in tokens if t not in vocab.index]
    if len(unknown) == len(tokens):
        raise ConfigError(
            where,
            f"no word of {text!r} was seen in training",
            expected="a sentence with at least one word of the vocabulary",
        )
    return tokens, unknown


def word_ids(tokens: Sequence[str], vocab: Vocabulary, max_len: int) -> list[int]:
    """The first ``max_len`` tokens as ids, without ``<start>``/``<end>`` (an encoder's input,
    a question or a query); ``[<unk>]`` for none, so that every input has a length >= 1."""
    return vocab.encode(list(tokens[:max_len]), add_start_end=False) or [vocab.unk_id]
