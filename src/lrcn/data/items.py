"""What every video-classification format reader returns, and the checks shared by all of them."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from lrcn.errors import LrcnError

OnError = Literal["raise", "skip"]

__all__ = [
    "DataError",
    "OnError",
    "Problem",
    "VideoItem",
    "VideoSplit",
    "drop_duplicates",
    "find_group_leaks",
    "require_root",
]


class DataError(LrcnError):
    """Bad data on disk. The message names the file (and line) and what was expected."""


@dataclass(frozen=True)
class Problem:
    """A skipped entry, kept so the run's report can list it (``data.on_error: skip``)."""

    path: str
    problem: str


@dataclass(frozen=True)
class VideoItem:
    """One labelled video: a file, or a folder of frame images."""

    path: Path
    label: int
    group: str  # the source it was cut from (UCF-101's gNN); never split across train and test


@dataclass
class VideoSplit:
    """A data set's classes and one train/test split of its videos; ``val`` is carved from the
    training list (by whole source groups) to choose the best epoch on."""

    classes: list[str]
    train: list[VideoItem]
    test: list[VideoItem]
    skipped: list[Problem] = field(default_factory=list)
    val: list[VideoItem] = field(default_factory=list)

    def group_leaks(self) -> list[str]:
        """Source groups found on two sides: train and test, or train and validation (see
        :func:`find_group_leaks`)."""
        return sorted(
            set(find_group_leaks(self.train, self.test))
            | set(find_group_leaks(self.train, self.val))
        )

    def split(self, name: str) -> list[VideoItem]:
        """The videos of ``"train"``, ``"val"`` or ``"test"``."""
        sides = {"train": self.train, "val": self.val, "test": self.test}
        if name not in sides:
            raise ValueError(f"unknown split {name!r}; expected train, val or test")
        return sides[name]


def find_group_leaks(train: Iterable[VideoItem], test: Iterable[VideoItem]) -> list[str]:
    """Groups with videos in both train and test, as ``"<class>/<group>"``, sorted.

    Clips of one source (UCF-101's group gNN: one actor, one background) look alike; when a
    source is on both sides, test accuracy measures recognising the source, not the action.
    This is the most common way to publish an inflated number in this field.
    """
    train_groups = {(item.label, item.group) for item in train}
    leaks = {(item.label, item.group) for item in test} & train_groups
    return sorted(f"{label}/{group}" for label, group in leaks)


def handle(problem: DataError, on_error: OnError, skipped: list[Problem]) -> None:
    """Raise ``problem``, or record it under ``on_error="skip"``."""
    if on_error == "raise":
        raise problem
    if on_error != "skip":
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    skipped.append(Problem(problem.path, str(problem)))


def drop_duplicates(
    path: Path,
    lines: list[tuple[int, str]],
    key: Callable[[str], str],
    on_error: OnError,
    skipped: list[Problem],
) -> list[tuple[int, str]]:
    """``lines`` without the ones listing a video (``key(line)``) already listed: a video
    listed twice would count twice in training and in the test metric. Each repeat is an
    error, or under ``skip`` left out and reported."""
    first: dict[str, int] = {}
    kept = []
    for number, line in lines:
        name = key(line)
        if name in first:
            problem = DataError(
                path, f"duplicate: {name!r} is listed again (first on line {first[name]})", number
            )
            handle(problem, on_error, skipped)
            continue
        first[name] = number
        kept.append((number, line))
    return kept


def first_field(line: str) -> str:
    return line.split(maxsplit=1)[0]


def require_root(root: Path, key: str | None = None) -> None:
    """A data root that is missing is named as such, before any reader looks inside it."""
    if not root.exists():
        raise DataError(root, "data root not found", key=key, expected="an existing folder")
    if not root.is_dir():
        raise DataError(root, "is a file, not a folder", key=key, expected="the data set folder")


def read_lines(path: Path) -> list[tuple[int, str]]:
    """Non-blank lines of a text file with their 1-based numbers; CRLF and BOM tolerated."""
    if not path.is_file():
        raise DataError(path, "split file not found")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise DataError(
            path, f"not UTF-8 text (byte {err.start}: {data[err.start : err.start + 1]!r})", line
        ) from None
    return [(n, line.strip()) for n, line in enumerate(text.splitlines(), start=1) if line.strip()]
