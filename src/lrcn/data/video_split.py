"""The ``data`` section of every video task, and the split it reads: classes and the train,
validation and test videos, from UCF-101, HMDB-51 or a folder per class.

The validation videos are carved from the training list by whole source groups, the way the
official UCF-101 and HMDB-51 splits hold out test groups: a group id goes to validation for
every class at once (in UCF-101 and in the built-in data, ``g03`` of one class shares its
setting with ``g03`` of the others), until about ``val_fraction`` of the training videos are
held out, and every class keeps training videos. The best epoch is therefore chosen without
looking at the test split, which is kept for the reported number.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from lrcn.config import StrictConfig
from lrcn.data.formats.folders import read_folders
from lrcn.data.formats.hmdb51 import read_hmdb51
from lrcn.data.formats.ucf101 import read_ucf101
from lrcn.data.items import DataError, VideoItem, VideoSplit, require_root

__all__ = ["VideoDataConfig", "carve_validation", "read_video_split", "split_dirs"]


class VideoDataConfig(StrictConfig):
    """Where the videos are and how clips are cut from them."""

    format: Literal["ucf101", "hmdb51", "folders"]
    root: Path  # UCF-101/ folder, HMDB-51 videos folder, or <root>/<class>/ folders
    split: Literal[1, 2, 3] = 1
    split_dir: Path | None = None  # ucfTrainTestlist/ or testTrainMulti_7030_splits/
    split_file: Path | None = None  # folders: '<class>/<video> train|test' per line
    test_fraction: float = Field(0.2, gt=0, lt=1)  # folders without a split_file
    val_fraction: float = Field(0.1, gt=0, lt=1)  # of each class's training groups
    split_seed: int = 0
    group_pattern: str = r"_g(\d+)_"  # folders: regex whose first group names a source
    clip_len: int = Field(16, ge=1)
    stride: int = Field(8, ge=1)  # between evaluation clips
    frame_step: int = Field(1, ge=1)  # frames skipped inside a clip
    # Use every k-th frame of each video, e.g. 3 turns 30 fps into 10 fps; applies to the
    # feature cache, training, evaluation and predict (clip_len, stride and frame_step then
    # count kept frames). A flow data set's images are kept every k-th likewise.
    frame_every: int = Field(1, ge=1)
    short_video: Literal["loop", "repeat_last"] = "loop"
    on_error: Literal["raise", "skip"] = "raise"
    num_workers: int = Field(2, ge=0)

    @field_validator("group_pattern")
    @classmethod
    def _one_capture_group(cls, pattern: str) -> str:
        try:
            compiled = re.compile(pattern)
        except re.error as err:
            raise ValueError(f"not a valid regular expression ({err})") from None
        if compiled.groups < 1:
            raise ValueError("needs a capture group, e.g. _g(\\d+)_, whose text names the source")
        return pattern


def read_video_split(data: VideoDataConfig) -> VideoSplit:
    """The configured data set's classes and train / validation / test videos."""
    require_root(Path(data.root), "data.root")
    if data.format == "ucf101":
        split = read_ucf101(data.root, data.split, data.split_dir, data.on_error)
    elif data.format == "hmdb51":
        split = read_hmdb51(data.root, data.split, data.split_dir, data.on_error)
    else:
        split = read_folders(
            data.root,
            data.split_file,
            data.test_fraction,
            data.split_seed,
            data.group_pattern,
            data.on_error,
        )
    split.train, split.val = carve_validation(split.train, data.val_fraction, data.split_seed)
    if not split.train or not split.val or not split.test:
        raise DataError(
            data.root,
            f"the split has {len(split.train)} training, {len(split.val)} validation and "
            f"{len(split.test)} test videos",
            expected="at least one of each (a class needs two source groups in its training "
            "list to give one to validation)",
        )
    return split


def carve_validation(
    train: list[VideoItem], fraction: float, seed: int = 0
) -> tuple[list[VideoItem], list[VideoItem]]:
    """Hold out whole group ids (for all classes at once) until ``fraction`` of ``train`` is
    held out; a group whose removal would leave a class without training videos stays."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must be between 0 and 1, got {fraction}")
    groups = sorted({item.group for item in train})
    random.Random(seed).shuffle(groups)
    left = Counter(item.label for item in train)
    per_group: dict[str, Counter[int]] = {g: Counter() for g in groups}
    for item in train:
        per_group[item.group][item.label] += 1
    held: set[str] = set()
    taken = 0
    for group in groups:
        if taken >= fraction * len(train):
            break
        if any(left[label] - n <= 0 for label, n in per_group[group].items()):
            continue  # the last training videos of some class
        held.add(group)
        taken += sum(per_group[group].values())
        left -= per_group[group]
    return (
        [item for item in train if item.group not in held],
        [item for item in train if item.group in held],
    )


def split_dirs(data: VideoDataConfig) -> list[Path]:
    """The folders of official split files that belong beside a copy of the data set (flow)."""
    from lrcn.data.formats import hmdb51, ucf101

    if data.format == "ucf101":
        return [ucf101.find_split_dir(data.root, data.split_dir)]
    if data.format == "hmdb51":
        return [hmdb51.find_split_dir(data.root, data.split_dir)]
    return []
