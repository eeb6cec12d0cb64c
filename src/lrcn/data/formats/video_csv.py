"""Your own videos with captions, written as an MSR-VTT 2017 annotation file.

A folder of video files and a CSV (or TSV) of captions, several rows per video, become
``videodatainfo_2017.json`` beside the videos, so :func:`~lrcn.data.formats.video_captions.
read_msrvtt` (``data.format: msrvtt``) reads them like the real data set. Every problem is a
:class:`DataError` naming the CSV and the row's line: a wrong row found now costs less than a
video silently missing from a training run later.
"""

from __future__ import annotations

import csv
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from lrcn.data.formats.video_captions import (
    _MSRVTT_2016,
    _MSRVTT_2017,
    _MSRVTT_FOLDERS,
    VIDEO_SUFFIXES,
    _index_videos,
)
from lrcn.data.items import DataError, require_root
from lrcn.data.vocab import tokenize
from lrcn.errors import LrcnError

__all__ = ["MsrvttWritten", "videos_csv_to_msrvtt"]

_COLUMNS = ("video", "caption")
_MSRVTT_SIDES = ("train", "validate", "test")  # MSR-VTT's names; read_msrvtt calls validate val


@dataclass(frozen=True)
class MsrvttWritten:
    """What :func:`videos_csv_to_msrvtt` wrote: the file, the ``data.root`` to train with,
    videos per MSR-VTT split (``train``, ``validate``, ``test``) and the number of sentences."""

    path: Path
    root: Path
    videos: dict[str, int]
    sentences: int


@dataclass(frozen=True)
class _Row:
    line: int
    video: str  # file name inside the videos folder
    caption: str


def videos_csv_to_msrvtt(
    videos_dir: str | Path,
    captions_file: str | Path,
    out: str | Path | None = None,
    val_fraction: float = 0.1,
    test_fraction: float = 0.2,
    seed: int = 0,
) -> MsrvttWritten:
    """Write an MSR-VTT 2017 annotation file for the videos in ``videos_dir``.

    Args:
        videos_dir: the folder of video files (.mp4, .avi, .mkv, .webm); every video in it
            must have a caption.
        captions_file: CSV (``.csv``) or TSV (any other suffix) whose header names a ``video``
            column (a file name inside ``videos_dir``, with its suffix) and a ``caption``
            column; a video may have several rows. The video id is the file name's stem.
        out: ``videos_dir/videodatainfo_2017.json`` by default; else that name in
            ``videos_dir`` or, when ``videos_dir`` is named ``videos``, in its parent: the two
            places :func:`read_msrvtt` finds the videos from.
        val_fraction, test_fraction: shares of the videos for validation and testing. The
            split is per video (all sentences of a video on one side), by ``seed``, with at
            least one video on each side.
    """
    videos_dir, captions_file = Path(videos_dir), Path(captions_file)
    require_root(videos_dir)
    path = _annotation_path(videos_dir, Path(out) if out is not None else None)
    _check_fractions(val_fraction, test_fraction)
    rows = list(_read_rows(captions_file))
    if not rows:
        raise DataError(captions_file, "no captions in it", expected="rows 'video,caption'")
    names = _video_names(videos_dir, captions_file, rows)
    _check_all_captioned(videos_dir, captions_file, names)
    _check_reader_finds(path.parent, videos_dir, captions_file, names)
    split_of = _split(sorted(names), val_fraction, test_fraction, seed, captions_file)
    path.write_text(json.dumps(_annotations(split_of, rows, captions_file), indent=1) + "\n")
    counts = {side: sum(1 for s in split_of.values() if s == side) for side in _MSRVTT_SIDES}
    return MsrvttWritten(path, path.parent, counts, len(rows))


def _annotation_path(videos_dir: Path, out: Path | None) -> Path:
    """Where the file goes: a place read_msrvtt reads it from and finds the videos from."""
    if out is None:
        path = videos_dir / _MSRVTT_2017
    else:
        path = out
        folder, videos = path.parent.resolve(), videos_dir.resolve()
        if not (folder == videos or (videos.name == "videos" and folder == videos.parent)):
            raise DataError(
                path,
                "the annotation file must lie where read_msrvtt finds the videos",
                expected=f"{videos_dir}, or its parent when that folder is named 'videos'",
            )
        if path.name != _MSRVTT_2017:
            raise DataError(path, f"read_msrvtt reads only {_MSRVTT_2017}", expected="that name")
    older = path.parent / _MSRVTT_2016[0]
    if older.is_file():
        raise DataError(
            older,
            f"read_msrvtt would read this MSR-VTT 2016 file instead of {_MSRVTT_2017}",
            expected="no other annotation file beside it",
        )
    return path


def _check_fractions(val_fraction: float, test_fraction: float) -> None:
    for name, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0 <= value < 1:
            raise LrcnError(name, f"{value} is out of range", expected="0 <= value < 1")
    if val_fraction + test_fraction >= 1:
        raise LrcnError(
            "val_fraction + test_fraction",
            f"{val_fraction} + {test_fraction} leaves no video to train on",
            expected="a sum below 1",
        )


def _read_rows(captions_file: Path) -> Iterator[_Row]:
    """The CSV's rows, each checked for a video name and a caption with words. The delimiter
    follows the suffix, as for ``lrcn datasets captions-from-csv``: .csv comma, else tab."""
    if not captions_file.is_file():
        raise DataError(captions_file, "file not found")
    delimiter = "," if captions_file.suffix.lower() == ".csv" else "\t"
    with captions_file.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f, delimiter=delimiter)
        try:
            if reader.fieldnames is None or not set(_COLUMNS) <= set(reader.fieldnames):
                raise DataError(
                    captions_file,
                    f"the header must name 'video' and 'caption' columns, got {reader.fieldnames}",
                    1,
                )
            for row in reader:
                yield _row(captions_file, reader.line_num, row)
        except UnicodeDecodeError as err:
            raise DataError(
                captions_file, f"not UTF-8 text ({err.reason})", reader.line_num + 1
            ) from None


def _row(captions_file: Path, line: int, row: dict[str, str | None]) -> _Row:
    video = (row.get("video") or "").strip()
    caption = (row.get("caption") or "").strip()
    if not video:
        raise DataError(captions_file, "empty video name", line, expected="a file name")
    if Path(video).name != video:
        raise DataError(
            captions_file,
            f"video {video!r} is not a bare file name",
            line,
            expected="the name of a file directly in the videos folder",
        )
    if Path(video).suffix.lower() not in VIDEO_SUFFIXES:
        raise DataError(
            captions_file,
            f"video {video}: not a video file name",
            line,
            expected=f"a suffix {', '.join(VIDEO_SUFFIXES)}",
        )
    if not tokenize(caption):
        raise DataError(captions_file, f"empty caption {caption!r}", line, expected="words")
    return _Row(line, video, caption)


def _video_names(videos_dir: Path, captions_file: Path, rows: list[_Row]) -> dict[str, _Row]:
    """Each video's first row, by video id (the file stem), checking the file exists and no
    two files share a stem (MSR-VTT names a video by its id only)."""
    first: dict[str, _Row] = {}
    for row in rows:
        stem = Path(row.video).stem
        seen = first.get(stem)
        if seen is not None and seen.video != row.video:
            raise DataError(
                captions_file,
                f"video {row.video} has the stem of {seen.video} (line {seen.line})",
                row.line,
                expected="one file per name stem: the stem is the video's id",
            )
        if seen is None:
            if not (videos_dir / row.video).is_file():
                raise DataError(
                    captions_file, f"video {videos_dir / row.video} does not exist", row.line
                )
            first[stem] = row
    return first


def _check_all_captioned(videos_dir: Path, captions_file: Path, names: dict[str, _Row]) -> None:
    """Every video in the folder has a row: one without is a video the user meant to use."""
    for path in sorted(videos_dir.iterdir()):
        if path.suffix.lower() not in VIDEO_SUFFIXES or not path.is_file():
            continue
        named = names.get(path.stem)
        if named is None:
            raise DataError(
                captions_file,
                f"video {path} has no caption",
                expected="at least one row naming it (or the file moved out of the folder)",
            )
        if named.video != path.name:
            raise DataError(
                captions_file,
                f"video {named.video} has the stem of {path} too",
                named.line,
                expected="one file per name stem: the stem is the video's id",
            )


def _check_reader_finds(
    root: Path, videos_dir: Path, captions_file: Path, names: dict[str, _Row]
) -> None:
    """read_msrvtt picks a video by id among several folders under ``root``: it must pick the
    file the CSV names, not a namesake in another of those folders."""
    found = _index_videos([root / folder for folder in _MSRVTT_FOLDERS])
    for stem, row in names.items():
        path = found.get(stem)
        if path is None or path.resolve() != (videos_dir / row.video).resolve():
            raise DataError(
                captions_file,
                f"video {row.video}: read_msrvtt({str(root)!r}) would read {path} instead",
                row.line,
                expected="one file per name stem under the data root",
            )


def _split(
    video_ids: list[str], val_fraction: float, test_fraction: float, seed: int, source: Path
) -> dict[str, str]:
    """MSR-VTT split name per video id, shuffled by ``seed``; one video at least per side."""
    n = len(video_ids)
    if n < len(_MSRVTT_SIDES):
        raise DataError(
            source, f"{n} video(s)", expected="at least 3: one each for train, validate and test"
        )
    n_val, n_test = max(1, round(n * val_fraction)), max(1, round(n * test_fraction))
    while n_val + n_test > n - 1:  # rounding up left no video to train on
        if n_test >= n_val:
            n_test -= 1
        else:
            n_val -= 1
    order = list(video_ids)
    random.Random(seed).shuffle(order)
    split_of = dict.fromkeys(order[:n_test], "test")
    split_of |= dict.fromkeys(order[n_test : n_test + n_val], "validate")
    split_of |= dict.fromkeys(order[n_test + n_val :], "train")
    return split_of


def _annotations(split_of: dict[str, str], rows: list[_Row], source: Path) -> dict[str, object]:
    """The MSR-VTT 2017 file: ``videos[]`` sorted by id, ``sentences[]`` in the CSV's order."""
    videos = [
        {"video_id": video_id, "split": split_of[video_id], "category": 0, "url": "",
         "start time": 0.0, "end time": 0.0, "id": k}
        for k, video_id in enumerate(sorted(split_of))
    ]  # fmt: skip
    sentences = [
        {"caption": row.caption, "video_id": Path(row.video).stem, "sen_id": n}
        for n, row in enumerate(rows)
    ]
    info = {"description": f"written by lrcn datasets videos-from-csv from {source.name}"}
    return {"info": info, "videos": videos, "sentences": sentences}
