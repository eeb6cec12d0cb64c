"""Video-caption data sets: MSR-VTT (2016 and 2017 releases) and MSVD (YouTube2Text).

Both readers return a :class:`VideoCaptionSplit`: per split, videos with all their reference
sentences as token lists (lower-case, punctuation dropped, as :func:`lrcn.data.vocab.tokenize`
makes them). Every problem is a :class:`DataError` naming the file and the entry
(``videos[3]``, ``sentences[12]``, ``train[5]``) or line; under ``on_error="skip"`` it is
recorded in ``skipped`` and the entry left out, so a run's report can list what was not used.

What is left out under ``skip``, and why:

- a bad video entry (wrong types, unknown split, missing file, no sentences): the video;
- a repeated video entry: the repeat (the first listing is kept, so a video never lands on
  two sides of the split);
- a bad sentence (empty, or for a video nobody listed): that sentence only. Dropping the whole
  video for one bad reference would change the test set, and scores on a test set that
  silently lost videos are not comparable with published ones.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from lrcn.data.formats.captions import (
    SPLITS,
    CaptionSplit,
    _Entry,
    _entry,
    _load_json,
    _load_lists,
)
from lrcn.data.items import DataError, OnError, Problem, handle, read_lines, require_root
from lrcn.data.vocab import tokenize

__all__ = [
    "MSVD_SPLIT_FILE",
    "SPLITS",
    "VIDEO_SUFFIXES",
    "VideoCaptionItem",
    "VideoCaptionSplit",
    "read_msrvtt",
    "read_msvd",
    "write_msvd_split",
]

VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".webm")  # preference order when a video has several
MSVD_SPLIT_FILE = "msvd_split.json"


@dataclass(frozen=True)
class VideoCaptionItem:
    """One video file and its reference sentences (each a tuple of lower-case tokens)."""

    path: Path
    captions: tuple[tuple[str, ...], ...]
    video_id: str  # MSR-VTT's "video0", MSVD's clip name "<youtube id>_<start>_<end>"


VideoCaptionSplit = CaptionSplit[VideoCaptionItem]


def _index_videos(folders: list[Path]) -> dict[str, Path]:
    """Video files by name without suffix, listing each folder once (MSR-VTT has 10 000
    videos: one directory listing beats a dozen ``stat`` calls per video). Earlier folders and
    earlier suffixes in :data:`VIDEO_SUFFIXES` win when a name appears twice."""
    rank = {suffix: i for i, suffix in enumerate(VIDEO_SUFFIXES)}
    found: dict[str, Path] = {}
    for folder in folders:
        if not folder.is_dir():
            continue
        files = [p for p in folder.iterdir() if p.suffix.lower() in rank and p.is_file()]
        for path in sorted(files, key=lambda p: (p.stem, rank[p.suffix.lower()])):
            found.setdefault(path.stem, path)
    return found


# --------------------------------------------------------------------------------------------
# MSR-VTT
# --------------------------------------------------------------------------------------------

_MSRVTT_2016 = ("train_val_videodatainfo.json", "test_videodatainfo.json")
_MSRVTT_2017 = "videodatainfo_2017.json"
_MSRVTT_FOLDERS = ("TrainValVideo", "TestVideo", "videos", ".")
_MSRVTT_SPLITS = {"train": "train", "validate": "val", "test": "test"}


class _MsrvttVideo(_Entry):
    video_id: str
    split: str
    category: int | None = None


class _MsrvttSentence(_Entry):
    video_id: str
    caption: str
    sen_id: int | None = None


def _msrvtt_files(root: Path) -> list[Path]:
    """The annotation files to read: the 2016 release's (train/val, and test when present),
    else the 2017 release's single file."""
    train_val, test = (root / name for name in _MSRVTT_2016)
    if train_val.is_file():
        return [train_val, test] if test.is_file() else [train_val]
    if (root / _MSRVTT_2017).is_file():
        return [root / _MSRVTT_2017]
    raise DataError(
        root,
        "MSR-VTT annotations not found",
        expected=f"{_MSRVTT_2016[0]} (and {_MSRVTT_2016[1]}) or {_MSRVTT_2017} inside it",
    )


def _msrvtt_lists(path: Path) -> tuple[list[Any], list[Any]]:
    data = _load_lists(
        path, ("videos", "sentences"),
        "an object with 'videos' and 'sentences' lists (MSR-VTT format)",
    )  # fmt: skip
    return data["videos"], data["sentences"]


def read_msrvtt(root: str | Path, on_error: OnError = "raise") -> VideoCaptionSplit:
    """MSR-VTT in its release layout under ``root``.

    Annotations: ``train_val_videodatainfo.json`` (splits ``train`` and ``validate``) plus, when
    present, ``test_videodatainfo.json`` (the 2016 release); or ``videodatainfo_2017.json``
    (all three splits in one file), read only when the 2016 files are absent. Each holds
    ``videos[]`` (``video_id``, ``split``, ``category``, ...) and ``sentences[]``
    (``video_id``, ``caption``, ``sen_id``); sentences may be in any of the files. ``validate``
    is returned as ``val``; items keep the order of ``videos[]``.

    Videos: ``<video_id>`` with suffix .mp4, .avi, .mkv or .webm in ``TrainValVideo/``,
    ``TestVideo/``, ``videos/`` or ``root`` itself (whatever the video's split: people re-pack
    the archives).
    """
    root = Path(root)
    require_root(root)
    files = _msrvtt_files(root)
    on_disk = _index_videos([root / folder for folder in _MSRVTT_FOLDERS])
    skipped: list[Problem] = []
    # video_id -> (annotation file, index in its videos[], split)
    listed: dict[str, tuple[Path, int, str]] = {}
    left_out: set[str] = set()  # listed, but the entry was bad: its sentences are not errors
    captions: dict[str, list[tuple[str, ...]]] = defaultdict(list)
    lists = [(path, *_msrvtt_lists(path)) for path in files]

    for path, videos, _ in lists:
        for n, value in enumerate(videos):
            where = f"videos[{n}]"
            try:
                try:
                    video = _entry(_MsrvttVideo, value, path, where)
                except DataError:
                    named = value.get("video_id") if isinstance(value, dict) else None
                    if isinstance(named, str):
                        left_out.add(named)
                    raise
                if video.video_id in listed:
                    first_path, first_n, _ = listed[video.video_id]
                    first = f"videos[{first_n}]" + (
                        "" if first_path == path else f" of {first_path.name}"
                    )
                    raise DataError(
                        path, f"{where}: video {video.video_id} is listed again (first as {first})"
                    )
                if video.split not in _MSRVTT_SPLITS:
                    left_out.add(video.video_id)
                    raise DataError(
                        path,
                        f"{where} ({video.video_id}): split {video.split!r} is unknown; "
                        f"expected one of {', '.join(_MSRVTT_SPLITS)}",
                    )
                listed[video.video_id] = (path, n, _MSRVTT_SPLITS[video.split])
            except DataError as problem:
                handle(problem, on_error, skipped)

    for path, _, sentences in lists:
        for n, value in enumerate(sentences):
            where = f"sentences[{n}]"
            try:
                sentence = _entry(_MsrvttSentence, value, path, where)
                if sentence.video_id not in listed:
                    if sentence.video_id in left_out:
                        continue  # its video's problem is already reported
                    raise DataError(
                        path,
                        f"{where}: video_id {sentence.video_id!r} is not in 'videos' of "
                        + " or ".join(p.name for p in files),
                    )
                tokens = tuple(tokenize(sentence.caption))
                if not tokens:
                    raise DataError(
                        path,
                        f"{where} ({sentence.video_id}): empty caption {sentence.caption!r}; "
                        "expected words",
                    )
                captions[sentence.video_id].append(tokens)
            except DataError as problem:
                handle(problem, on_error, skipped)

    sides: dict[str, list[VideoCaptionItem]] = {s: [] for s in SPLITS}
    for video_id, (path, n, split) in listed.items():
        try:
            video_path = on_disk.get(video_id)
            if video_path is None:
                raise DataError(
                    path,
                    f"videos[{n}] ({video_id}): video not found; expected {video_id} with "
                    f"suffix {'/'.join(VIDEO_SUFFIXES)} in {root} or its "
                    f"{', '.join(f + '/' for f in _MSRVTT_FOLDERS if f != '.')} folder",
                )
            if not captions.get(video_id):
                raise DataError(
                    path, f"videos[{n}] ({video_id}): no sentences; expected at least one"
                )
            sides[split].append(VideoCaptionItem(video_path, tuple(captions[video_id]), video_id))
        except DataError as problem:
            handle(problem, on_error, skipped)
    return VideoCaptionSplit(sides["train"], sides["val"], sides["test"], skipped)


# --------------------------------------------------------------------------------------------
# MSVD (Microsoft Research Video Description Corpus, "YouTube2Text")
# --------------------------------------------------------------------------------------------

_MSVD_CORPUS = "AllVideoDescriptions.txt"
_MSVD_CLIPS = "YouTubeClips"
_CLIP_NAME = re.compile(r"^.+_\d+(?:\.\d+)?_\d+(?:\.\d+)?$")  # <youtube id>_<start>_<end>
# The split used since Venugopalan et al. 2015 and Yao et al. 2015, out of 1970 clips.
_MSVD_TRAIN, _MSVD_VAL, _MSVD_TOTAL = 1200, 100, 1970


class _MsvdSplitFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    train: list[str]
    val: list[str]
    test: list[str]


def _how_to_split(root: Path) -> str:
    return (
        f"write one with lrcn.data.formats.video_captions.write_msvd_split({str(root)!r}) "
        "(the 1200/100/670 proportions over the sorted clip names), or write JSON "
        '{"train": [clip names], "val": [...], "test": [...]} yourself'
    )


def _read_msvd_split(path: Path, root: Path) -> _MsvdSplitFile:
    if not path.is_file():
        raise DataError(path, f"MSVD split file not found; {_how_to_split(root)}")
    data = _load_json(path)
    try:
        return _MsvdSplitFile.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        loc = first["loc"]
        key = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")
        expected = 'an object {"train": [clip names], "val": [...], "test": [...]}'
        if not loc:
            problem = f"got {type(data).__name__}"
        elif first["type"] == "missing":
            problem = "missing"
        elif first["type"] == "extra_forbidden":
            problem = "unknown key"
        else:
            problem = first["msg"][0].lower() + first["msg"][1:]
        raise DataError(path, problem, key=key or None, expected=expected) from None


def _read_msvd_corpus(
    corpus: Path, wanted: set[str], on_error: OnError, skipped: list[Problem]
) -> dict[str, list[tuple[str, ...]]]:
    """Sentences of the clips in ``wanted``; lines of other clips are passed over (the corpus
    may describe clips a split leaves out), but every line must be well formed."""
    captions: dict[str, list[tuple[str, ...]]] = defaultdict(list)
    if not corpus.is_file():
        raise DataError(
            corpus, "MSVD sentence file not found", expected="lines '<clip> <sentence>'"
        )
    for number, line in read_lines(corpus):
        if line.startswith("#"):
            continue
        try:
            clip, _, sentence = line.partition(" ")
            if not _CLIP_NAME.match(clip):
                shown = line if len(line) <= 80 else line[:77] + "..."
                raise DataError(
                    corpus,
                    f"expected '<youtube id>_<start>_<end> <sentence>', got {shown!r}",
                    number,
                )
            if clip not in wanted:
                continue
            tokens = tuple(tokenize(sentence))
            if not tokens:
                raise DataError(corpus, f"clip {clip}: empty caption {sentence.strip()!r}", number)
            captions[clip].append(tokens)
        except DataError as problem:
            handle(problem, on_error, skipped)
    return captions


def read_msvd(
    root: str | Path, split_file: str | Path | None = None, on_error: OnError = "raise"
) -> VideoCaptionSplit:
    """MSVD as distributed for video captioning, under ``root``.

    Files: ``YouTubeClips/<youtube id>_<start>_<end>.avi`` (also .mp4/.mkv/.webm),
    ``AllVideoDescriptions.txt`` with lines ``<clip> <sentence>`` (``#`` lines are comments; the
    cleaned English corpus), and a split file, ``msvd_split.json`` by default:
    ``{"train": [clip names], "val": [...], "test": [...]}``. MSVD ships no split file; write
    one with :func:`write_msvd_split`. Only clips named in the split are read; items keep the
    split file's order.
    """
    root = Path(root)
    require_root(root)
    clips_dir = root / _MSVD_CLIPS
    if not clips_dir.is_dir():
        raise DataError(root, f"no {_MSVD_CLIPS}/ folder", expected="the MSVD clips in it")
    split_path = Path(split_file) if split_file is not None else root / MSVD_SPLIT_FILE
    split = _read_msvd_split(split_path, root)
    skipped: list[Problem] = []
    wanted = {name for side in SPLITS for name in getattr(split, side)}
    captions = _read_msvd_corpus(root / _MSVD_CORPUS, wanted, on_error, skipped)
    on_disk = _index_videos([clips_dir])
    sides: dict[str, list[VideoCaptionItem]] = {s: [] for s in SPLITS}
    first: dict[str, str] = {}
    for side in SPLITS:
        for n, clip in enumerate(getattr(split, side)):
            where = f"{side}[{n}]"
            try:
                if clip in first:
                    raise DataError(
                        split_path, f"{where}: clip {clip} is listed again (first as {first[clip]})"
                    )
                first[clip] = where
                path = on_disk.get(clip)
                if path is None:
                    raise DataError(
                        split_path,
                        f"{where}: clip {clip} not found; expected {clips_dir / clip}.avi (or "
                        f"{'/'.join(VIDEO_SUFFIXES)})",
                    )
                if not captions.get(clip):
                    raise DataError(
                        split_path, f"{where}: clip {clip} has no sentences in {_MSVD_CORPUS}"
                    )
                sides[side].append(VideoCaptionItem(path, tuple(captions[clip]), clip))
            except DataError as problem:
                handle(problem, on_error, skipped)
    return VideoCaptionSplit(sides["train"], sides["val"], sides["test"], skipped)


def write_msvd_split(root: str | Path, path: str | Path | None = None) -> Path:
    """Write a train/val/test split of the clips in ``root/YouTubeClips/``; return its path.

    The split used in the literature (Venugopalan et al. 2015, Yao et al. 2015) is 1200 train,
    100 val and 670 test clips, taken in the order of the original 1970-clip list, which lrcn
    cannot download. This writes the same *sizes* over the clip names *sorted*: with all 1970
    clips, the first 1200 / next 100 / remaining 670; with another number of clips, the same
    proportions (1200/1970 and 100/1970, rounded), the rest to test. The sizes match the
    papers, the clip assignment does not: scores on it are close to, not the same as, the
    published ones. For the exact split, write the JSON from that list yourself.

    Args:
        root: the MSVD folder, with ``YouTubeClips/``.
        path: where to write; ``root/msvd_split.json`` by default (what :func:`read_msvd`
            reads). An existing file is replaced.
    """
    root = Path(root)
    require_root(root)
    clips_dir = root / _MSVD_CLIPS
    names = sorted(_index_videos([clips_dir]))
    if not names:
        raise DataError(
            clips_dir, "no clips found", expected=f"video files ({', '.join(VIDEO_SUFFIXES)})"
        )
    n_train = round(len(names) * _MSVD_TRAIN / _MSVD_TOTAL)
    n_val = round(len(names) * _MSVD_VAL / _MSVD_TOTAL)
    split = _MsvdSplitFile(
        train=names[:n_train],
        val=names[n_train : n_train + n_val],
        test=names[n_train + n_val :],
    )
    out = Path(path) if path is not None else root / MSVD_SPLIT_FILE
    out.write_text(split.model_dump_json(indent=1) + "\n")
    return out
