"""UCF-101 (Soomro et al., 2012): ``UCF-101/<Class>/v_<Class>_gNN_cMM.avi`` plus
``ucfTrainTestlist/`` with ``classInd.txt`` (``1 ApplyEyeMakeup``), ``trainlist0{1,2,3}.txt``
(``ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1``) and ``testlist0{1,2,3}.txt`` (path only).

The three official splits hold out groups 1-7, 8-14 and 15-21 for testing; a group gNN is one
actor and setting, so no group is ever on both sides.
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

GROUP_PATTERN = re.compile(r"_g(\d+)_c\d+", re.IGNORECASE)
_NUMBER = re.compile(r"[0-9]+")


def _is_number(text: str) -> bool:
    """ASCII digits only: ``"¹".isdigit()`` is True, but ``int("¹")`` fails."""
    return _NUMBER.fullmatch(text) is not None


__all__ = ["GROUP_PATTERN", "find_split_dir", "read_class_index", "read_ucf101"]


def read_class_index(path: Path) -> list[str]:
    """``classInd.txt``: lines ``<1-based index> <ClassName>``, indices 1..N in order."""
    classes: list[str] = []
    seen: dict[str, int] = {}
    for number, line in read_lines(path):
        parts = line.split()
        if len(parts) != 2 or not _is_number(parts[0]):
            raise DataError(path, f"expected '<index> <ClassName>', got {line!r}", number)
        if int(parts[0]) != len(classes) + 1:
            raise DataError(
                path, f"expected class index {len(classes) + 1}, got {parts[0]}", number
            )
        first = seen.get(parts[1].lower())  # the lists match class names case-insensitively
        if first is not None:
            raise DataError(
                path, f"class {parts[1]!r} is listed twice (first on line {first})", number,
                expected="each class once",
            )  # fmt: skip
        seen[parts[1].lower()] = number
        classes.append(parts[1])
    if not classes:
        raise DataError(path, "no classes listed")
    return classes


def find_split_dir(root: Path, split_dir: str | Path | None = None) -> Path:
    """The ``ucfTrainTestlist`` folder: given, or inside or beside ``root``."""
    if split_dir is not None:
        return Path(split_dir)
    for candidate in (root / "ucfTrainTestlist", root.parent / "ucfTrainTestlist"):
        if candidate.is_dir():
            return candidate
    raise DataError(
        root, "no ucfTrainTestlist/ folder inside or beside it; pass the split folder explicitly"
    )


def read_ucf101(
    root: str | Path,
    split: int = 1,
    split_dir: str | Path | None = None,
    on_error: OnError = "raise",
) -> VideoSplit:
    """Read one official split.

    Args:
        root: the ``UCF-101`` folder of class folders.
        split: 1, 2 or 3.
        split_dir: the ``ucfTrainTestlist`` folder (default: inside or beside ``root``).
        on_error: "raise" at the first bad entry, or "skip" it and list it in ``skipped``.
    """
    if split not in (1, 2, 3):
        raise ValueError(f"UCF-101 split must be 1, 2 or 3, got {split!r}")
    root = Path(root)
    require_root(root)
    lists = find_split_dir(root, split_dir)
    classes = read_class_index(lists / "classInd.txt")
    by_name = {name.lower(): i for i, name in enumerate(classes)}
    skipped: list[Problem] = []
    sides: dict[str, list[VideoItem]] = {"train": [], "test": []}
    for side in ("train", "test"):
        list_path = lists / f"{side}list0{split}.txt"
        lines = drop_duplicates(list_path, read_lines(list_path), first_field, on_error, skipped)
        for number, line in lines:
            try:
                sides[side].append(
                    _parse_entry(root, list_path, number, line, side, classes, by_name)
                )
            except DataError as problem:
                handle(problem, on_error, skipped)
    return VideoSplit(classes, sides["train"], sides["test"], skipped)


def _parse_entry(
    root: Path,
    list_path: Path,
    number: int,
    line: str,
    side: str,
    classes: list[str],
    by_name: dict[str, int],
) -> VideoItem:
    parts = line.split()
    expected = "'<Class>/<video>.avi <label>'" if side == "train" else "'<Class>/<video>.avi'"
    if len(parts) != (2 if side == "train" else 1) or "/" not in parts[0]:
        raise DataError(list_path, f"expected {expected}, got {line!r}", number)
    relative = parts[0]
    class_name = relative.split("/", 1)[0]
    # Matched case-insensitively: the real lists say HandstandPushups, the files HandStandPushups.
    label = by_name.get(class_name.lower())
    if label is None:
        raise DataError(list_path, f"class {class_name!r} is not in classInd.txt", number)
    if side == "train" and (not _is_number(parts[1]) or int(parts[1]) != label + 1):
        raise DataError(
            list_path,
            f"label {parts[1]!r} does not match class {class_name!r} "
            f"(index {label + 1} in classInd.txt)",
            number,
        )
    path = root / relative
    if not path.exists():
        raise DataError(list_path, f"listed video {path} does not exist", number)
    match = GROUP_PATTERN.search(path.stem)
    group = f"g{int(match.group(1)):02d}" if match else path.stem
    return VideoItem(path, label, group)
