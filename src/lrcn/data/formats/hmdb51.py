"""HMDB-51 (Kuehne et al., 2011): ``<root>/<class>/<video>.avi`` plus
``testTrainMulti_7030_splits/<class>_test_split{1,2,3}.txt`` with lines ``<video>.avi <flag>``:
1 = train, 2 = test, 0 = not used in this split.

A video's group is the source film it was cut from: the part of its name before ``_<class>_``.
"""

from __future__ import annotations

import re
from pathlib import Path

from lrcn.data.items import (
    DataError,
    OnError,
    Problem,
    VideoItem,
    VideoSplit,
    drop_duplicates,
    first_field,
    handle,
    read_lines,
    require_root,
)

SPLIT_FILE = re.compile(r"^(?P<cls>.+)_test_split(?P<split>[123])\.txt$")

__all__ = ["find_split_dir", "read_hmdb51"]


def find_split_dir(root: Path, split_dir: str | Path | None = None) -> Path:
    """The ``testTrainMulti_7030_splits`` folder: given, or beside or inside ``root``."""
    if split_dir is not None:
        return Path(split_dir)
    for candidate in (
        root.parent / "testTrainMulti_7030_splits",
        root / "testTrainMulti_7030_splits",
    ):
        if candidate.is_dir():
            return candidate
    raise DataError(root, "no testTrainMulti_7030_splits/ folder beside or inside it")


def read_hmdb51(
    root: str | Path,
    split: int = 1,
    split_dir: str | Path | None = None,
    on_error: OnError = "raise",
) -> VideoSplit:
    """Read one official split; classes are the split files' class names, sorted."""
    if split not in (1, 2, 3):
        raise ValueError(f"HMDB-51 split must be 1, 2 or 3, got {split!r}")
    root = Path(root)
    require_root(root)
    lists = find_split_dir(root, split_dir)
    files = {}
    for path in lists.iterdir():
        match = SPLIT_FILE.match(path.name)
        if match and int(match["split"]) == split:
            files[match["cls"]] = path
    if not files:
        raise DataError(lists, f"no <class>_test_split{split}.txt files")
    classes = sorted(files)
    skipped: list[Problem] = []
    train: list[VideoItem] = []
    test: list[VideoItem] = []
    for label, name in enumerate(classes):
        lines = drop_duplicates(
            files[name], read_lines(files[name]), first_field, on_error, skipped
        )
        for number, line in lines:
            try:
                parts = line.split()
                if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
                    raise DataError(
                        files[name], f"expected '<video>.avi <0|1|2>', got {line!r}", number
                    )
                if parts[1] == "0":
                    continue
                path = root / name / parts[0]
                if not path.exists():
                    raise DataError(files[name], f"listed video {path} does not exist", number)
                stem = path.stem
                marker = f"_{name}_"
                group = stem.split(marker, 1)[0] if marker in stem else stem
                (train if parts[1] == "1" else test).append(VideoItem(path, label, group))
            except DataError as problem:
                handle(problem, on_error, skipped)
    return VideoSplit(classes, train, test, skipped)
