"""Visual question answering: the VQA v2 (and v1) release layout, and a converter that writes
your own photos with questions and answers in that layout.

:func:`read_vqa` returns a :class:`VqaSplit`: per split, one item per question with its image,
its tokens (the caption tokeniser, so questions and captions share one vocabulary scheme) and
the human answers as written; normalising answers is the VQA metric's job, not the reader's.

Splits. The official test-dev/test answers are not public, so the official **val2014** is
lrcn's **test** split, and lrcn's **val** split (which picks ``best/``) is carved from train2014
*by image*: questions about one image look alike, and an image on both sides would let the
chosen epoch be the one that memorised it.

Every problem is a one-line :class:`DataError` naming the file, the JSON path
(``annotations[3].answers``) and what was expected. Under ``on_error="skip"`` it is recorded in
``skipped`` and only that question is left out (a missing image: its questions), so a run's
report can list what was not used.
"""

from __future__ import annotations

import csv
import json
import os
import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from lrcn.data.formats.captions import SPLITS, _Entry, _entry, _load_json, _load_lists
from lrcn.data.items import DataError, OnError, Problem, handle, require_root
from lrcn.data.vocab import tokenize
from lrcn.errors import LrcnError

__all__ = ["IMAGES_JSON", "VqaItem", "VqaSplit", "csv_to_vqa", "read_vqa"]

IMAGES_JSON = "images.json"  # {"<image_id>": "relative/path.jpg"}: own data, instead of COCO names
_SUBSETS = ("train2014", "val2014")  # VQA's train and val; lrcn's train(+val) and test
# File names of the releases, newest first: v2 wins when both are present. The official
# helper (GT-Vision-Lab/VQA, PythonHelperTools/vqaDemo.py) builds them the same way.
_RELEASES = {
    "v2": ("v2_OpenEnded_mscoco_{}_questions.json", "v2_mscoco_{}_annotations.json"),
    "v1": ("OpenEnded_mscoco_{}_questions.json", "mscoco_{}_annotations.json"),
}
_QUESTIONS_SHAPE = "an object with a 'questions' list (VQA questions file)"
_ANNOTATIONS_SHAPE = "an object with an 'annotations' list (VQA annotations file)"
_IMAGES_SHAPE = 'an object {"<image_id>": "relative/path.jpg", ...}'


@dataclass(frozen=True)
class VqaItem:
    """One question about one image, with the human answers."""

    image: Path
    image_id: int
    question_id: int
    question: tuple[str, ...]  # tokens, as lrcn.data.vocab.tokenize makes them
    question_text: str  # as written
    answers: tuple[str, ...]  # as written (usually 10); the metric normalises them
    answer_type: str  # "yes/no", "number", "other"; "" when the file has none
    question_type: str  # e.g. "what color is the"; "" when the file has none


@dataclass
class VqaSplit:
    """Questions by split, and what was skipped reading them."""

    train: list[VqaItem]
    val: list[VqaItem]
    test: list[VqaItem]
    skipped: list[Problem] = field(default_factory=list)

    def split(self, name: str) -> list[VqaItem]:
        """The questions of ``"train"``, ``"val"`` or ``"test"``."""
        if name not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {name!r}")
        items: list[VqaItem] = getattr(self, name)
        return items


# --------------------------------------------------------------------------------------------
# Reading the VQA layout
# --------------------------------------------------------------------------------------------


class _Question(_Entry):
    image_id: int
    question: str
    question_id: int


class _Answer(_Entry):
    answer: str


class _Annotation(_Entry):
    question_id: int
    image_id: int
    answers: list[_Answer]
    question_type: str = ""
    answer_type: str = ""


class _Asked(NamedTuple):
    image_id: int
    question: str
    question_id: int


class _Answered(NamedTuple):
    question_id: int
    image_id: int
    answers: tuple[str, ...]
    question_type: str
    answer_type: str


# Plain type checks pass the common well-formed entry; pydantic (``_entry``) only words the
# error of one that fails them. Validating VQA v2's 443k annotations (ten answer objects each)
# with pydantic one by one took 20 s of a 40 s read. ``type(x) is int`` also turns away bools
# and numeric strings, which then take pydantic's path and get its lax answer, as elsewhere.


def _question(value: Any, path: Path, where: str) -> _Asked:
    if isinstance(value, dict):
        image_id, text, qid = value.get("image_id"), value.get("question"), value.get("question_id")
        if type(image_id) is int and type(text) is str and type(qid) is int:
            return _Asked(image_id, text, qid)
    entry = _entry(_Question, value, path, where)
    return _Asked(entry.image_id, entry.question, entry.question_id)


def _annotation(value: Any, path: Path, where: str) -> _Answered:
    if isinstance(value, dict):
        qid, image_id, answers = (
            value.get("question_id"),
            value.get("image_id"),
            value.get("answers"),
        )
        qtype, atype = value.get("question_type", ""), value.get("answer_type", "")
        if (
            type(qid) is int
            and type(image_id) is int
            and type(qtype) is str
            and type(atype) is str
            and type(answers) is list
            and all(type(a) is dict and type(a.get("answer")) is str for a in answers)
        ):
            return _Answered(qid, image_id, tuple(a["answer"] for a in answers), qtype, atype)
    entry = _entry(_Annotation, value, path, where)
    return _Answered(
        entry.question_id,
        entry.image_id,
        tuple(a.answer for a in entry.answers),
        entry.question_type,
        entry.answer_type,
    )


def _release_files(root: Path) -> dict[str, tuple[Path, Path]]:
    """(questions, annotations) per subset, of the newest release with any file in ``root``;
    all four of its files must be there (mixing releases would mix question sets)."""
    for release, (q_name, a_name) in _RELEASES.items():
        files = {s: (root / q_name.format(s), root / a_name.format(s)) for s in _SUBSETS}
        present = [p for pair in files.values() for p in pair if p.is_file()]
        if not present:
            continue
        for pair in files.values():
            for path in pair:
                if not path.is_file():
                    raise DataError(
                        path,
                        "file not found",
                        expected=f"the four VQA {release} files together, as beside "
                        f"{present[0].name}",
                    )
        return files
    names = ", ".join(n.format(s) for s in _SUBSETS for n in _RELEASES["v2"])
    raise DataError(
        root,
        "VQA questions and annotations not found",
        expected=f"{names} (or the VQA v1 names, without 'v2_') inside it",
    )


def _read_images_json(path: Path) -> dict[int, Path]:
    """Image paths by image id from ``images.json``, relative to the folder it lies in."""
    data = _load_json(path)
    if not isinstance(data, dict):
        raise DataError(path, f"got {type(data).__name__}", expected=_IMAGES_SHAPE)
    paths: dict[int, Path] = {}
    for key, value in data.items():
        if not (key.isascii() and key.isdigit()):
            raise DataError(path, f"key {key!r} is not an image id", expected=_IMAGES_SHAPE)
        if not isinstance(value, str) or not value.strip():
            raise DataError(
                path, f"got {value!r}", key=f'"{key}"', expected="the image's path, relative"
            )
        if int(key) in paths:
            raise DataError(path, f"image_id {int(key)} is listed again", key=f'"{key}"')
        paths[int(key)] = path.parent / value
    return paths


def _check_subtype(path: Path, data: dict[str, Any], subset: str) -> None:
    """A file whose ``data_subtype`` contradicts its name was renamed: read as train, a val
    file would put lrcn's test questions into training."""
    subtype = data.get("data_subtype")
    if isinstance(subtype, str) and subtype != subset:
        raise DataError(
            path, repr(subtype), key="data_subtype", expected=f"{subset!r}, as the file name says"
        )


def _note_id(value: Any, left_out: set[int]) -> None:
    """Remember the question id of a bad entry, so its other half is not reported again."""
    named = value.get("question_id") if isinstance(value, dict) else None
    if isinstance(named, int):
        left_out.add(named)


def _read_subset(
    subset: str,
    questions_path: Path,
    annotations_path: Path,
    image_of: dict[int, Path] | None,
    root: Path,
    on_error: OnError,
    skipped: list[Problem],
) -> list[VqaItem]:
    """The questions of one VQA subset that have an annotation and an image on disk."""
    q_data = _load_lists(questions_path, ("questions",), _QUESTIONS_SHAPE)
    a_data = _load_lists(annotations_path, ("annotations",), _ANNOTATIONS_SHAPE)
    _check_subtype(questions_path, q_data, subset)
    _check_subtype(annotations_path, a_data, subset)
    left_out: set[int] = set()  # question ids whose problem is already reported

    questions: dict[int, tuple[int, _Asked, tuple[str, ...]]] = {}
    first: dict[int, int] = {}
    for n, value in enumerate(q_data["questions"]):
        where = f"questions[{n}]"
        try:
            try:
                question = _question(value, questions_path, where)
            except DataError:
                _note_id(value, left_out)
                raise
            qid = question.question_id
            if qid in first:
                raise DataError(
                    questions_path,
                    f"{qid} is listed again (first as questions[{first[qid]}])",
                    key=f"{where}.question_id",
                )
            first[qid] = n
            tokens = tuple(tokenize(question.question))
            if not tokens:
                left_out.add(qid)
                raise DataError(
                    questions_path,
                    f"empty question {question.question!r}",
                    key=f"{where}.question",
                    expected="words",
                )
            questions[qid] = (n, question, tokens)
        except DataError as problem:
            handle(problem, on_error, skipped)

    annotations: dict[int, _Answered] = {}
    annotated: dict[int, int] = {}
    for n, value in enumerate(a_data["annotations"]):
        where = f"annotations[{n}]"
        try:
            try:
                ann = _annotation(value, annotations_path, where)
            except DataError:
                _note_id(value, left_out)
                raise
            qid = ann.question_id
            if qid in annotated:
                raise DataError(
                    annotations_path,
                    f"{qid} is annotated again (first in annotations[{annotated[qid]}])",
                    key=f"{where}.question_id",
                )
            annotated[qid] = n
            if qid not in questions:
                if qid in left_out:
                    continue  # its question's problem is already reported
                raise DataError(
                    annotations_path,
                    f"{qid} is not a question in {questions_path.name}",
                    key=f"{where}.question_id",
                )
            q_n, question, _ = questions[qid]
            if ann.image_id != question.image_id:
                left_out.add(qid)
                raise DataError(
                    annotations_path,
                    f"{ann.image_id}, but questions[{q_n}] of {questions_path.name} has image_id "
                    f"{question.image_id}",
                    key=f"{where}.image_id",
                )
            if not any(a.strip() for a in ann.answers):
                left_out.add(qid)
                raise DataError(
                    annotations_path,
                    "no answers",
                    key=f"{where}.answers",
                    expected="at least one human answer",
                )
            annotations[qid] = ann
        except DataError as problem:
            handle(problem, on_error, skipped)

    answered: list[int] = []
    for qid, (n, _, _) in questions.items():
        try:
            if qid in left_out:
                continue
            if qid not in annotations:
                raise DataError(
                    questions_path,
                    f"question_id {qid} has no annotation in {annotations_path.name}",
                    key=f"questions[{n}]",
                )
            answered.append(qid)
        except DataError as problem:
            handle(problem, on_error, skipped)

    asked = Counter(questions[qid][1].image_id for qid in answered)
    found: dict[int, Path | None] = {}  # image id -> its file, None when missing (reported)
    items: list[VqaItem] = []
    for qid in answered:
        n, question, tokens = questions[qid]
        image_id = question.image_id
        try:
            if image_id not in found:
                found[image_id] = None
                path = _image_path(root, subset, image_id, image_of, questions_path, n)
                if not path.is_file():
                    raise DataError(
                        questions_path,
                        f"image {path} does not exist ({asked[image_id]} question(s) about "
                        f"image_id {image_id})",
                        key=f"questions[{n}].image_id",
                    )
                found[image_id] = path
        except DataError as problem:
            handle(problem, on_error, skipped)
        image = found[image_id]
        if image is None:
            continue
        ann = annotations[qid]
        items.append(
            VqaItem(
                image=image,
                image_id=image_id,
                question_id=qid,
                question=tokens,
                question_text=question.question,
                answers=ann.answers,
                answer_type=ann.answer_type,
                question_type=ann.question_type,
            )
        )
    return items


def _image_path(
    root: Path,
    subset: str,
    image_id: int,
    image_of: dict[int, Path] | None,
    questions_path: Path,
    n: int,
) -> Path:
    """From ``images.json`` when there is one, else COCO's ``<subset>/COCO_<subset>_%012d.jpg``."""
    if image_of is None:
        return root.joinpath(subset, f"COCO_{subset}_{image_id:012d}.jpg")
    path = image_of.get(image_id)
    if path is None:
        raise DataError(
            root / IMAGES_JSON,
            f"no path for image_id {image_id} (questions[{n}] of {questions_path.name})",
            expected=f'"{image_id}": "relative/path.jpg"',
        )
    return path


def _check_fraction(name: str, value: float) -> None:
    if not 0 <= value < 1:
        raise LrcnError(name, f"{value} is out of range", expected=f"0 <= {name} < 1")


def _carve_by_image(
    items: list[VqaItem], fraction: float, seed: int
) -> tuple[list[VqaItem], list[VqaItem]]:
    """(kept, carved): ``fraction`` of the images, by ``seed``, with all their questions; one
    image at least when ``fraction > 0`` and one image at least left."""
    images = sorted({item.image_id for item in items})
    n = len(images)
    k = 0 if fraction == 0 or n < 2 else min(n - 1, max(1, round(n * fraction)))
    random.Random(seed).shuffle(images)
    carved = set(images[:k])
    return (
        [item for item in items if item.image_id not in carved],
        [item for item in items if item.image_id in carved],
    )


def read_vqa(
    root: str | Path, val_fraction: float = 0.05, seed: int = 0, on_error: OnError = "raise"
) -> VqaSplit:
    """VQA v2 (or v1) as released, under ``root``.

    Files: ``v2_OpenEnded_mscoco_{train,val}2014_questions.json`` (``questions[]`` with
    ``image_id``, ``question``, ``question_id``) and ``v2_mscoco_{train,val}2014_annotations.json``
    (``annotations[]`` with ``question_id``, ``image_id``, ``question_type``, ``answer_type``,
    ``answers[].answer``); the v1 names (without ``v2_``) are read when no v2 file is there.
    Images: ``train2014/COCO_train2014_%012d.jpg`` and ``val2014/COCO_val2014_%012d.jpg``, or,
    when ``root/images.json`` exists, the paths it gives (``{"<image_id>": "relative/path"}``,
    what :func:`csv_to_vqa` writes).

    Args:
        root: the folder holding the files.
        val_fraction: share of the train2014 *images* carved out as lrcn's val split (all
            questions of an image on one side), shuffled by ``seed``. val2014 is the test split.
        seed: the carving's seed; the same seed gives the same split.
        on_error: ``"raise"`` on the first problem, or ``"skip"`` the question and record it.
    """
    root = Path(root)
    require_root(root)
    _check_fraction("val_fraction", val_fraction)
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    files = _release_files(root)
    images_json = root / IMAGES_JSON
    image_of = _read_images_json(images_json) if images_json.is_file() else None
    skipped: list[Problem] = []
    sides = {
        subset: _read_subset(subset, *files[subset], image_of, root, on_error, skipped)
        for subset in _SUBSETS
    }
    train, val = _carve_by_image(sides["train2014"], val_fraction, seed)
    return VqaSplit(train, val, sides["val2014"], skipped)


# --------------------------------------------------------------------------------------------
# A folder of photos + a CSV of questions and answers -> the VQA v2 layout
# --------------------------------------------------------------------------------------------

_COLUMNS = ("image", "question", "answer")


@dataclass
class _CsvQuestion:
    image: str  # path inside the images folder, as posix
    text: str
    line: int  # its first row
    answers: list[str]


def _read_csv(images: Path, csv_path: Path) -> list[_CsvQuestion]:
    """Questions in the order first asked; rows with the same image and the same words are one
    question's answers. The delimiter follows the suffix, as for the other converters: .csv
    comma, else tab."""
    if not csv_path.is_file():
        raise DataError(csv_path, "file not found")
    delimiter = "," if csv_path.suffix.lower() == ".csv" else "\t"
    questions: dict[tuple[str, tuple[str, ...]], _CsvQuestion] = {}
    exists: dict[str, bool] = {}
    with csv_path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f, delimiter=delimiter)
        try:
            if reader.fieldnames is None:
                raise DataError(csv_path, "empty file", expected="a header 'image,question,answer'")
            if not set(_COLUMNS) <= set(reader.fieldnames):
                other = "\t" if delimiter == "," else ","
                hint = (
                    f" (it looks {'tab' if other == chr(9) else 'comma'}-separated: a .csv file "
                    "is read with commas, any other suffix with tabs)"
                    if len(reader.fieldnames) == 1 and other in reader.fieldnames[0]
                    else ""
                )
                raise DataError(
                    csv_path,
                    f"the header must name 'image', 'question' and 'answer' columns, got "
                    f"{reader.fieldnames}{hint}",
                    1,
                )
            for line, image, text, answer in _rows(reader, csv_path):
                if image not in exists:
                    exists[image] = (images / image).is_file()
                if not exists[image]:
                    raise DataError(csv_path, f"image {images / image} does not exist", line)
                key = (image, tuple(tokenize(text)))
                if key not in questions:
                    questions[key] = _CsvQuestion(image, text, line, [])
                questions[key].answers.append(answer)
        except UnicodeDecodeError as err:
            raise DataError(
                csv_path, f"not UTF-8 text ({err.reason})", reader.line_num + 1
            ) from None
    if not questions:
        raise DataError(csv_path, "no questions in it", expected="rows 'image,question,answer'")
    return list(questions.values())


def _rows(reader: csv.DictReader[str], csv_path: Path) -> Iterator[tuple[int, str, str, str]]:
    """(line, image, question, answer) of each row, checked for an image name, a question with
    words and an answer."""
    for row in reader:
        line = reader.line_num
        if None in row:  # DictReader files the fields past the header's under None
            extra = row[None]
            raise DataError(
                csv_path,
                f"{len(reader.fieldnames or []) + len(extra)} fields, the last {extra!r} beyond "
                "the header's",
                line,
                expected="one field per column; quote a question that holds a comma",
            )
        image = (row.get("image") or "").strip()
        text = (row.get("question") or "").strip()
        answer = (row.get("answer") or "").strip()
        if not image:
            raise DataError(csv_path, "empty image name", line, expected="a file in the folder")
        if not tokenize(text):
            raise DataError(csv_path, f"empty question {text!r}", line, expected="words")
        if not answer:
            raise DataError(
                csv_path, f"empty answer to {text!r}", line, expected="the answer a person gave"
            )
        yield line, Path(image).as_posix(), text, answer


def _answer_type(answers: list[str]) -> str:
    """VQA's three answer types, by majority over the answers given, as VQA assigns them
    (ties: yes/no, then number)."""

    def kind(answer: str) -> str:
        word = answer.strip().lower().rstrip(".!")
        if word in ("yes", "no"):
            return "yes/no"
        return "number" if word.isascii() and word.isdigit() else "other"

    counts = Counter(kind(a) for a in answers)
    return max(("yes/no", "number", "other"), key=lambda k: counts[k])


def csv_to_vqa(
    images: Path,
    csv_path: Path,
    out: Path | None = None,
    test_fraction: float = 0.2,
    seed: int = 0,
) -> dict[str, int]:
    """Write your photos with questions and answers as VQA v2 files, for :func:`read_vqa`.

    Args:
        images: the folder of photos.
        csv_path: CSV (``.csv``) or TSV (any other suffix) whose header names ``image`` (a path
            inside ``images``), ``question`` and ``answer`` columns. Rows with the same image
            and the same question words are that question's human answers (repeats allowed:
            the VQA metric counts how many people gave an answer).
        out: where the four ``v2_*`` files and ``images.json`` go; ``images`` by default.
        test_fraction: share of the *images* written as val2014, which is lrcn's test split
            (lrcn's val is carved from train2014 when reading). At least one image each side.
        seed: the split's seed.

    Image ids number the sorted image paths from 1; question ids number the questions from 1
    in the order first asked. ``answer_type`` is guessed (``yes/no``, ``number``, ``other``),
    ``question_type`` left empty, ``multiple_choice_answer`` is the most common answer and
    ``answer_confidence`` is ``"yes"`` (the CSV has no confidence).

    Returns:
        ``train_images``, ``test_images``, ``train_questions``, ``test_questions``, ``answers``.
    """
    images, csv_path = Path(images), Path(csv_path)
    require_root(images)
    _check_fraction("test_fraction", test_fraction)
    out = images if out is None else Path(out)
    questions = _read_csv(images, csv_path)
    names = sorted({q.image for q in questions})
    if len(names) < 2:
        raise DataError(
            csv_path,
            f"{len(names)} image(s)",
            expected="at least 2: one for train2014 and one for val2014 (lrcn's test split)",
        )
    image_ids = {name: i for i, name in enumerate(names, start=1)}
    n_test = min(len(names) - 1, max(1, round(len(names) * test_fraction)))
    order = list(names)
    random.Random(seed).shuffle(order)
    test_images = set(order[:n_test])
    subset_of = {name: "val2014" if name in test_images else "train2014" for name in names}

    out.mkdir(parents=True, exist_ok=True)
    questions_name, annotations_name = _RELEASES["v2"]
    info = {"description": f"written by lrcn csv_to_vqa from {csv_path.name}", "version": "2.0"}
    counts = {"train_images": len(names) - n_test, "test_images": n_test}
    for subset, side in (("train2014", "train"), ("val2014", "test")):
        mine = [
            (qid, q) for qid, q in enumerate(questions, start=1) if subset_of[q.image] == subset
        ]
        header = {"info": info, "data_type": "mscoco", "data_subtype": subset, "license": {}}
        q_entries = [
            {"image_id": image_ids[q.image], "question": q.text, "question_id": qid}
            for qid, q in mine
        ]
        a_entries = [
            {"question_id": qid, "image_id": image_ids[q.image], "question_type": "",
             "answer_type": _answer_type(q.answers),
             "multiple_choice_answer": Counter(q.answers).most_common(1)[0][0],
             "answers": [{"answer": a, "answer_confidence": "yes", "answer_id": k}
                         for k, a in enumerate(q.answers, start=1)]}
            for qid, q in mine
        ]  # fmt: skip
        _write_json(
            out / questions_name.format(subset),
            {**header, "task_type": "Open-Ended", "questions": q_entries},
        )
        _write_json(out / annotations_name.format(subset), {**header, "annotations": a_entries})
        counts[f"{side}_questions"] = len(mine)
    base = os.path.abspath(out)
    paths = {
        str(image_ids[name]): Path(os.path.relpath(os.path.abspath(images / name), base)).as_posix()
        for name in names
    }
    _write_json(out / IMAGES_JSON, paths)
    counts["answers"] = sum(len(q.answers) for q in questions)
    return counts


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
