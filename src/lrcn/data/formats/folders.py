"""A folder per class, the layout of users' own videos: ``<root>/<class>/<video>.<ext>``.

Each entry of a class folder is a video: a file with a video suffix, or a folder of frame
images. The split comes from a split file (``<class>/<video> train|test`` per line), or is made
here with a seed, keeping every source group on one side. A group is what ``group_pattern``'s
first capture group finds in the file name (default: UCF-101's ``_gNN_``); a video it does not
match is its own group.
"""

from __future__ import annotations

import random
import re
from collections import defaultdict
from pathlib import Path

from lrcn.data.items import (
    DataError,
    OnError,
    Problem,
    VideoItem,
    VideoSplit,
    drop_duplicates,
    handle,
    read_lines,
    require_root,
)
from lrcn.data.video_io import FRAME_IMAGE_SUFFIXES
from lrcn.errors import LrcnError

VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".webm", ".mov")
DEFAULT_GROUP_PATTERN = r"_g(\d+)_"

__all__ = ["VIDEO_SUFFIXES", "list_videos", "make_split", "read_folders", "write_split_file"]


def _is_video(path: Path) -> bool:
    if path.is_file():
        return path.suffix.lower() in VIDEO_SUFFIXES
    return path.is_dir() and any(p.suffix.lower() in FRAME_IMAGE_SUFFIXES for p in path.iterdir())


def list_videos(
    root: str | Path, group_pattern: str = DEFAULT_GROUP_PATTERN
) -> tuple[list[str], list[VideoItem]]:
    """Classes (sorted folder names) and every video under them."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(root, "data folder not found")
    try:
        pattern = re.compile(group_pattern)
    except re.error as err:
        raise LrcnError(
            "group pattern", f"{group_pattern!r} is not a valid regular expression ({err})"
        ) from None
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise DataError(root, "no class folders in it (expected <root>/<class>/<video>)")
    items = []
    for label, name in enumerate(classes):
        for path in sorted((root / name).iterdir()):
            if _is_video(path):
                match = pattern.search(path.name)
                group = match.group(1) if match and match.groups() else path.stem
                items.append(VideoItem(path, label, group))
    if not items:
        raise DataError(root, f"no videos ({', '.join(VIDEO_SUFFIXES)} or frame folders) found")
    return classes, items


def make_split(
    items: list[VideoItem], test_fraction: float = 0.2, seed: int = 0
) -> tuple[list[VideoItem], list[VideoItem]]:
    """Split per class, by whole groups, so about ``test_fraction`` of each class is test."""
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be between 0 and 1, got {test_fraction}")
    rng = random.Random(seed)
    by_class: dict[int, dict[str, list[VideoItem]]] = defaultdict(lambda: defaultdict(list))
    for item in items:
        by_class[item.label][item.group].append(item)
    train: list[VideoItem] = []
    test: list[VideoItem] = []
    for label in sorted(by_class):
        groups = sorted(by_class[label])
        rng.shuffle(groups)
        total = sum(len(by_class[label][g]) for g in groups)
        taken = 0
        for g in groups:
            videos = by_class[label][g]
            # Fill test up to the fraction, but leave at least one group for training.
            if taken < test_fraction * total and len(groups) > 1 and g != groups[-1]:
                test.extend(videos)
                taken += len(videos)
            else:
                train.extend(videos)
    return train, test


def write_split_file(
    path: str | Path, root: str | Path, train: list[VideoItem], test: list[VideoItem]
) -> None:
    """Write ``<class>/<video> train|test`` lines, readable by :func:`read_folders`."""
    root = Path(root)
    lines = [f"{item.path.relative_to(root).as_posix()} train" for item in train]
    lines += [f"{item.path.relative_to(root).as_posix()} test" for item in test]
    Path(path).write_text("\n".join(lines) + "\n")


def read_folders(
    root: str | Path,
    split_file: str | Path | None = None,
    test_fraction: float = 0.2,
    seed: int = 0,
    group_pattern: str = DEFAULT_GROUP_PATTERN,
    on_error: OnError = "raise",
) -> VideoSplit:
    """Read ``<root>/<class>/<video>``; split by ``split_file`` or by seed (see module doc)."""
    root = Path(root)
    require_root(root)
    classes, items = list_videos(root, group_pattern)
    if split_file is None:
        train, test = make_split(items, test_fraction, seed)
        return VideoSplit(classes, train, test)
    by_path = {item.path.relative_to(root).as_posix(): item for item in items}
    skipped: list[Problem] = []
    sides: dict[str, list[VideoItem]] = {"train": [], "test": []}
    split_path = Path(split_file)
    lines = drop_duplicates(
        split_path, read_lines(split_path), lambda line: line.rsplit(maxsplit=1)[0], on_error,
        skipped,
    )  # fmt: skip
    for number, line in lines:
        try:
            parts = line.rsplit(maxsplit=1)
            if len(parts) != 2 or parts[1] not in sides:
                raise DataError(
                    split_path, f"expected '<class>/<video> train|test', got {line!r}", number
                )
            item = by_path.get(parts[0])
            if item is None:
                class_name = parts[0].split("/", 1)[0]
                problem = (
                    f"class {class_name!r} has no folder in {root}"
                    if class_name not in classes
                    else f"listed video {root / parts[0]} does not exist"
                )
                raise DataError(split_path, problem, number)
            sides[parts[1]].append(item)
        except DataError as problem:
            handle(problem, on_error, skipped)
    return VideoSplit(classes, sides["train"], sides["test"], skipped)
