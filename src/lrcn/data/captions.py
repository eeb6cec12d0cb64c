"""The ``data`` section of image captioning, the split it reads, and the training pairs.

Formats: Flickr8k's own files, Karpathy's split JSONs (Flickr8k/30k, COCO) and COCO's
``captions_*.json``; see :mod:`lrcn.data.formats.captions`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal, Protocol

import torch
from pydantic import Field
from torch import Tensor
from torch.utils.data import Dataset

from lrcn.config import ConfigError, StrictConfig
from lrcn.data.formats.captions import (
    CaptionSplit,
    read_coco_captions,
    read_flickr8k,
    read_karpathy_json,
)
from lrcn.data.items import require_root
from lrcn.data.vocab import Vocabulary

Source = Callable[[int], Tensor]  # item index -> features or a preprocessed image

__all__ = ["CaptionDataConfig", "CaptionPairs", "collate_pairs", "read_caption_split"]


class CaptionDataConfig(StrictConfig):
    """Images with reference captions."""

    format: Literal["flickr8k", "karpathy", "coco"]
    root: Path  # flickr8k: the folder with Flicker8k_Dataset/; karpathy/coco: the image folder
    annotations: Path | None = None  # karpathy: dataset_*.json; coco: captions_train2014.json
    val_annotations: Path | None = None  # coco: captions_val2014.json
    val_root: Path | None = None  # coco: the val2014 image folder
    min_count: int = Field(5, ge=1)  # words seen fewer times become <unk>
    max_len: int = Field(20, ge=1)  # caption tokens kept for training (longer ones are cut)
    on_error: Literal["raise", "skip"] = "raise"
    num_workers: int = Field(2, ge=0)


def read_caption_split(data: CaptionDataConfig) -> CaptionSplit:
    """The configured captions, per split."""
    require_root(Path(data.root), "data.root")
    if data.format == "flickr8k":
        return read_flickr8k(data.root, data.on_error)
    if data.annotations is None:
        raise ConfigError("data.annotations", f"is required for format {data.format!r}")
    if data.format == "karpathy":
        return read_karpathy_json(data.annotations, data.root, data.on_error)
    if data.val_annotations is None or data.val_root is None:
        raise ConfigError("data.val_annotations", "format 'coco' needs it and data.val_root too")
    return read_coco_captions(
        data.annotations, data.root, data.val_annotations, data.val_root, on_error=data.on_error
    )


class Captioned(Protocol):
    """An image or a video with its reference captions (tokenised)."""

    @property
    def captions(self) -> tuple[tuple[str, ...], ...]: ...


class CaptionPairs(Dataset[tuple[Tensor, list[int]]]):
    """Every (input, reference caption) pair: ``(input, ids (L,))``; ``source(i)`` gives item
    ``i``'s input (cached features, a preprocessed image, a video's frame features)."""

    def __init__(
        self, items: Sequence[Captioned], source: Source, vocab: Vocabulary, max_len: int
    ) -> None:
        self.source = source
        self.pairs = [
            (i, vocab.encode(list(c[:max_len])))
            for i, item in enumerate(items)
            for c in item.captions
        ]

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> tuple[Tensor, list[int]]:
        i, ids = self.pairs[index]
        return self.source(i), ids


def pad_captions(captions: Sequence[Sequence[int]]) -> Tensor:
    """Token ids padded with ``<pad>`` (id 0) to the longest: ``(B, L)``."""
    out = torch.zeros(len(captions), max(len(ids) for ids in captions), dtype=torch.long)
    for row, ids in enumerate(captions):
        out[row, : len(ids)] = torch.tensor(ids)
    return out


def collate_pairs(batch: list[tuple[Tensor, list[int]]]) -> dict[str, Any]:
    """Inputs stacked, captions padded with ``<pad>`` (id 0) to the longest: ``(B, L)``."""
    captions = pad_captions([ids for _, ids in batch])
    return {"inputs": torch.stack([x for x, _ in batch]), "labels": captions, "skipped": []}
