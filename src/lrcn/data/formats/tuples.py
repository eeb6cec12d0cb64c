"""Visual tuples: per video, a probability distribution over the words of each slot.

The LRCN paper (Donahue et al., CVPR 2015, TACoS video description) generates a sentence from
a *visual tuple*: for every slot (subject, verb, object, place, ...) a classifier predicts a
distribution over that slot's words, and the sentence generator reads either the one-hot of
the most probable words or the probabilities themselves. This module is the file those tuples
are stored in, the labels a per-slot classifier is trained on (:func:`slot_labels`), and a way
to find the slots and their words from training sentences alone (:func:`mine_slots`).

File format ``lrcn-tuples/1`` (JSON)::

    {"format": "lrcn-tuples/1",
     "source": "free text: what produced it",
     "slots": {"colour": ["red", "green", "blue", "<none>"],
               "direction": ["left", "right", "up", "down", "<none>"]},
     "videos": {
      "video0": {"colour": {"red": 0.92, "green": 0.05, "blue": 0.03},
                 "direction": {"left": 1.0}},
      "video1": {"colour": {"blue": 1.0}, "direction": {"<none>": 1.0}}
     }}

- ``slots`` is required: it fixes the layout of every tuple vector (slots in order, each
  slot's words in order). ``<none>`` is the class of a slot a video's sentences do not fill.
- ``format`` may be absent; when present it must be ``"lrcn-tuples/1"``. ``source`` is
  optional free text.
- Every video gives every slot and no other. A slot's map is word -> probability: each word
  in that slot's list, each value a finite number in [0, 1], the values summing to 1 within
  0.01. Words left out are 0, so a one-hot is just ``{"left": 1.0}``.

Every problem is a :class:`~lrcn.data.items.DataError` naming the file and the JSON path
(``videos.video3.direction``); :func:`write_tuples` refuses to write what
:func:`read_tuples` would refuse to read.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ConfigDict, StrictFloat

from lrcn.data.formats.captions import _Entry, _entry, _load_json
from lrcn.data.items import DataError

__all__ = [
    "FORMAT",
    "NONE_WORD",
    "STOP_WORDS",
    "TupleSlots",
    "VideoTuples",
    "mine_slots",
    "read_tuples",
    "slot_labels",
    "write_tuples",
]

FORMAT = "lrcn-tuples/1"
NONE_WORD = "<none>"  # the class of a slot that a video's sentences do not fill
_SUM_TOLERANCE = 0.01
_DECIMALS = 6
_LISTED = 20  # words named in an "expected one of" message before it says "..."


def _one_of(words: Sequence[str]) -> str:
    """``words`` for an error message, cut short for slots with hundreds of words."""
    shown = ", ".join(words[:_LISTED])
    return shown if len(words) <= _LISTED else f"{shown}, ... ({len(words)} in all)"


def _slots_problem(slots: Mapping[str, Sequence[str]]) -> tuple[str, str] | None:
    """The first problem with a slot layout as (JSON path, problem), or None when it is fine;
    shared by the constructor (ValueError) and the reader (DataError naming the file)."""
    if not slots:
        return "slots", "no slots; expected at least one slot with its words"
    for name, words in slots.items():
        where = f"slots.{name}"
        if not name:
            return where, "empty slot name"
        if not words:
            return where, "no words; expected at least one"
        seen: set[str] = set()
        for n, word in enumerate(words):
            if not word:
                return f"{where}[{n}]", "empty word"
            if word in seen:
                return f"{where}[{n}]", f"duplicate word {word!r}"
            seen.add(word)
    return None


def _distribution_problem(values: Mapping[str, float], words: Sequence[str]) -> tuple[str, str]:
    """The first problem with one slot's word -> probability map as (sub-path, problem), or
    ``("", "")`` when it is a distribution over ``words``."""
    known = set(words)
    for word, p in values.items():
        if word not in known:
            return f".{word}", f"unknown word; expected one of {_one_of(words)}"
        if not (math.isfinite(p) and 0.0 <= p <= 1.0):
            return f".{word}", f"{p!r} is not a probability; expected a finite number in [0, 1]"
    total = math.fsum(values.values())
    if abs(total - 1.0) > _SUM_TOLERANCE:
        return "", f"probabilities sum to {total:.4g}; expected a distribution summing to 1"
    return "", ""


@dataclass(frozen=True)
class TupleSlots:
    """Slots and their words, in order; the layout of every tuple vector.

    A tuple vector is the slots' distributions concatenated in slot order, so a classifier
    can predict all slots with one linear layer split by :meth:`sizes`.
    """

    slots: dict[str, tuple[str, ...]]

    def __post_init__(self) -> None:
        problem = _slots_problem(self.slots)
        if problem is not None:
            raise ValueError(f"{problem[0]}: {problem[1]}")
        # tuples, whatever sequences were given: the layout must not change under a reader
        object.__setattr__(self, "slots", {k: tuple(v) for k, v in self.slots.items()})

    @classmethod
    def given(cls, slots: Mapping[str, Sequence[str]]) -> TupleSlots:
        """The layout of ``slots``, with :data:`NONE_WORD` appended to each slot that lacks it
        (so a video whose sentences leave a slot empty still has a class for it)."""
        return cls(
            {
                name: (*words, NONE_WORD) if words and NONE_WORD not in words else tuple(words)
                for name, words in slots.items()
            }
        )

    def sizes(self) -> list[int]:
        """Words per slot, in slot order (the split points of a tuple vector)."""
        return [len(words) for words in self.slots.values()]

    @property
    def width(self) -> int:
        """Length of a tuple vector: all slots' words together."""
        return sum(self.sizes())

    def to_dict(self) -> dict[str, list[str]]:
        """The layout as plain JSON-ready lists."""
        return {name: list(words) for name, words in self.slots.items()}

    def vector(self, distributions: Mapping[str, Mapping[str, float]]) -> np.ndarray:
        """``float32 (width,)``: each slot's word -> probability map placed at its words'
        positions, words not given 0. Every slot must be given (a slot left out is more often
        a bug than an intent); an unknown slot or word is a ValueError naming it."""
        unknown = [name for name in distributions if name not in self.slots]
        if unknown:
            raise ValueError(
                f"unknown slot {unknown[0]!r}; expected one of {_one_of([*self.slots])}"
            )
        out = np.zeros(self.width, dtype=np.float32)
        offset = 0
        for name, words in self.slots.items():
            if name not in distributions:
                raise ValueError(f"missing slot {name!r}")
            index = {word: i for i, word in enumerate(words)}
            for word, p in distributions[name].items():
                if word not in index:
                    raise ValueError(
                        f"slot {name!r}: unknown word {word!r}; expected one of {_one_of(words)}"
                    )
                out[offset + index[word]] = p
            offset += len(words)
        return out

    def _split(self, vector: np.ndarray) -> list[np.ndarray]:
        """``vector`` cut into its slots, after checking its shape."""
        vector = np.asarray(vector)
        if vector.shape != (self.width,):
            raise ValueError(f"expected a vector of shape ({self.width},), got {vector.shape}")
        return np.split(vector, np.cumsum(self.sizes())[:-1])

    def distributions(
        self, vector: np.ndarray, top: int | None = None
    ) -> dict[str, dict[str, float]]:
        """The inverse of :meth:`vector`: per slot, word -> probability (rounded to 6 decimals,
        as written to files), all words in slot order, or with ``top`` only the ``top`` most
        probable, highest first (ties in slot order)."""
        if top is not None and top < 1:
            raise ValueError(f"top must be >= 1 or None, got {top}")
        out: dict[str, dict[str, float]] = {}
        for (name, words), part in zip(self.slots.items(), self._split(vector), strict=True):
            order = range(len(words)) if top is None else np.argsort(-part, kind="stable")[:top]
            out[name] = {words[i]: round(float(part[i]), _DECIMALS) for i in order}
        return out

    def best_words(self, vector: np.ndarray) -> dict[str, str]:
        """The most probable word of each slot (the first listed on a tie): the one-hot
        tuple the paper's first sentence generator reads."""
        return {
            name: words[int(np.argmax(part))]
            for (name, words), part in zip(self.slots.items(), self._split(vector), strict=True)
        }


@dataclass(frozen=True)
class VideoTuples:
    """A tuples file: the layout, and each video's tuple vector (``float32 (width,)``)."""

    slots: TupleSlots
    videos: dict[str, np.ndarray]


class _Video(_Entry):
    """One video's entry: slot -> {word: probability}. Slot names are the keys, so they are
    validated as typed extras; strict floats, so ``"0.5"`` or ``true`` is an error, not 0.5."""

    model_config = ConfigDict(extra="allow")
    __pydantic_extra__: dict[str, dict[str, StrictFloat]]


def read_tuples(path: str | Path) -> VideoTuples:
    """A ``lrcn-tuples/1`` file (see the module docstring), checked entry by entry."""
    path = Path(path)
    data = _load_json(path)
    shape = f"an object with 'slots' and 'videos' objects ({FORMAT} format)"
    if not isinstance(data, dict):
        raise DataError(path, f"top level is a {type(data).__name__}", expected=shape)
    for key in ("slots", "videos"):
        if key not in data:
            raise DataError(path, f"missing {key!r}", expected=shape)
    if "format" in data and data["format"] != FORMAT:
        raise DataError(
            path, f"{data['format']!r} is not supported", key="format", expected=repr(FORMAT)
        )
    if not isinstance(data.get("source", ""), str):
        raise DataError(
            path, f"got {type(data['source']).__name__}", key="source", expected="a string"
        )
    slots = _read_slots(path, data["slots"])
    videos_data = data["videos"]
    if not isinstance(videos_data, dict):
        raise DataError(
            path,
            f"got {type(videos_data).__name__}",
            key="videos",
            expected="an object mapping each video id to its tuple",
        )
    videos = {
        str(video_id): _read_video(path, f"videos.{video_id}", value, slots)
        for video_id, value in videos_data.items()
    }
    return VideoTuples(slots, videos)


def _read_slots(path: Path, value: Any) -> TupleSlots:
    if not isinstance(value, dict):
        raise DataError(
            path,
            f"got {type(value).__name__}",
            key="slots",
            expected="an object mapping each slot name to its list of words",
        )
    for name, words in value.items():
        if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
            raise DataError(
                path,
                "not a list of strings",
                key=f"slots.{name}",
                expected="the slot's words in order",
            )
    problem = _slots_problem(value)
    if problem is not None:
        raise DataError(path, problem[1], key=problem[0])
    return TupleSlots(value)  # as written: the file fixes the layout, NONE_WORD or not


def _read_video(path: Path, where: str, value: Any, slots: TupleSlots) -> np.ndarray:
    if not isinstance(value, dict):
        raise DataError(
            path,
            f"got {type(value).__name__}",
            key=where,
            expected="an object mapping each slot to {word: probability}",
        )
    given = _entry(_Video, value, path, where).model_extra or {}
    for name in given:
        if name not in slots.slots:
            raise DataError(
                path,
                "unknown slot",
                key=f"{where}.{name}",
                expected=f"one of {_one_of([*slots.slots])}",
            )
    for name, words in slots.slots.items():
        if name not in given:
            raise DataError(path, f"missing slot {name!r}", key=where)
        sub, problem = _distribution_problem(given[name], words)
        if problem:
            raise DataError(path, problem, key=f"{where}.{name}{sub}")
    return slots.vector(given)


def write_tuples(
    path: str | Path, slots: TupleSlots, videos: Mapping[str, np.ndarray], source: str = ""
) -> Path:
    """Write ``videos`` (id -> tuple vector) as a ``lrcn-tuples/1`` file; return its path.

    Video ids sorted, one video per line, each distribution with only its non-zero words
    (6 decimals), so the file reads back with :func:`read_tuples` to the same vectors up to
    that rounding. Written to a temporary file in the same folder and moved into place, so a
    reader never sees half a file. A vector that is not a distribution per slot is a
    ValueError naming the video and slot: the file would not read back.
    """
    path = Path(path)
    lines = [
        f'{{"format": {json.dumps(FORMAT)},',
        f' "source": {json.dumps(source)},',
        f' "slots": {json.dumps(slots.to_dict())},',
        ' "videos": {',
    ]
    entries = []
    for video_id in sorted(videos):
        rounded = slots.distributions(videos[video_id])
        kept = {name: {w: p for w, p in dist.items() if p != 0.0} for name, dist in rounded.items()}
        for name, dist in kept.items():
            sub, problem = _distribution_problem(dist, slots.slots[name])
            if problem:
                raise ValueError(f"video {video_id!r}: slot {name!r}{sub}: {problem}")
        entries.append(f"  {json.dumps(str(video_id))}: {json.dumps(kept)}")
    lines += [",\n".join(entries)] if entries else []
    text = "\n".join([*lines, " }}"]) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return path


def slot_labels(
    sentences: Sequence[Sequence[str]],
    slots: TupleSlots,
    aliases: Mapping[str, str] | None = None,
) -> list[int]:
    """Per slot, the index (into the slot's words) of the word one video's sentences name most
    often: the targets of a per-slot tuple classifier.

    Each sentence votes once for each slot word it names (a word counts for every slot whose
    list holds it, or holds ``aliases[word]``: ``{"disc": "circle"}``), so one long sentence
    cannot outvote the others. Ties go to the word listed first. A slot no sentence fills
    gets :data:`NONE_WORD`'s index, or a ValueError naming the slot when it has none.

    Args:
        sentences: the video's reference sentences, tokenised and lower-case.
        slots: the layout.
        aliases: synonym -> slot word; a target no slot holds is a ValueError (a typo would
            otherwise silently never count).
    """
    aliases = dict(aliases or {})
    index = {name: {w: i for i, w in enumerate(words)} for name, words in slots.slots.items()}
    for synonym, target in aliases.items():
        if not any(target in words for words in index.values()):
            raise ValueError(f"alias {synonym!r} -> {target!r}: no slot has the word {target!r}")
    votes = {name: Counter[int]() for name in slots.slots}
    for sentence in sentences:
        named = {aliases.get(word, word) for word in sentence} - {NONE_WORD}
        for name, words in index.items():
            votes[name].update(words[w] for w in named if w in words)
    labels = []
    for name, counts in votes.items():
        if counts:  # most votes, then the lowest index
            labels.append(max(counts.items(), key=lambda item: (item[1], -item[0]))[0])
        elif NONE_WORD in index[name]:
            labels.append(index[name][NONE_WORD])
        else:
            raise ValueError(
                f"slot {name!r}: no sentence names any of its words and it has no {NONE_WORD!r}"
            )
    return labels


# Function words never fill a slot. Short and explicit on purpose; the particles up, down, out
# and off are left out: they are slot words in video descriptions ("moves up").
_STOP_WORDS_BY_KIND = {
    "articles, determiners": ("a", "an", "the", "this", "that", "these", "those", "its", "their"),
    "pronouns": ("i", "you", "he", "she", "it", "we", "they", "him", "her", "them", "there"),
    "auxiliaries": ("is", "are", "was", "were", "be", "been", "am", "has", "have", "had", "do"),
    "prepositions": ("to", "towards", "toward", "of", "in", "on", "at", "by", "for", "with"),
    "conjunctions": ("and", "or", "but", "while", "as", "then"),
}
STOP_WORDS = frozenset(w for words in _STOP_WORDS_BY_KIND.values() for w in words)


def mine_slots(
    sentences: Iterable[Sequence[str]],
    max_slots: int = 4,
    words_per_slot: int = 12,
    min_count: int = 5,
) -> TupleSlots:
    """Slots and their words found in training sentences by co-occurrence (no tagger needed).

    Words that fill the same slot are alternatives, so they (almost) never appear in the same
    sentence ("red" / "green" / "blue"; "left" / "right"), while words of different slots
    co-occur freely. The algorithm:

    1. Content words: seen at least ``min_count`` times, not in :data:`STOP_WORDS`, at least
       2 characters; most frequent first (ties alphabetical).
    2. Two words are *exclusive* when the sentences holding both are at most 1 % of the
       sentences holding the rarer one.
    3. Each word, in that order, joins the first slot whose every word it is exclusive with
       and that has fewer than ``words_per_slot`` words; otherwise it opens a new slot while
       there are fewer than ``max_slots``; otherwise it is dropped.
    4. Slots with at least 2 words are kept, named ``slot1``, ``slot2``, ... in order, and
       :data:`NONE_WORD` is appended to each (:meth:`TupleSlots.given`).

    Raises:
        ValueError: when no slot with 2 or more words is found.
    """
    if max_slots < 1 or words_per_slot < 2 or min_count < 1:
        raise ValueError(
            "expected max_slots >= 1, words_per_slot >= 2 and min_count >= 1, got "
            f"{max_slots}, {words_per_slot}, {min_count}"
        )
    counts: Counter[str] = Counter()
    holding: dict[str, set[int]] = {}  # word -> ids of the sentences that contain it
    for n, sentence in enumerate(sentences):
        counts.update(sentence)
        for word in set(sentence):
            holding.setdefault(word, set()).add(n)
    content = sorted(
        (w for w, c in counts.items() if c >= min_count and len(w) >= 2 and w not in STOP_WORDS),
        key=lambda w: (-counts[w], w),
    )

    def exclusive(a: str, b: str) -> bool:
        both = len(holding[a] & holding[b])
        return both <= 0.01 * min(len(holding[a]), len(holding[b]))

    found: list[list[str]] = []
    for word in content:
        for slot in found:
            if len(slot) < words_per_slot and all(exclusive(word, other) for other in slot):
                slot.append(word)
                break
        else:
            if len(found) < max_slots:
                found.append([word])
    kept = [slot for slot in found if len(slot) >= 2]
    if not kept:
        raise ValueError(
            f"no slot of 2 or more mutually exclusive words among {len(content)} content words "
            f"(seen >= {min_count} times); more sentences or a lower min_count may help"
        )
    return TupleSlots.given({f"slot{k}": slot for k, slot in enumerate(kept, start=1)})
