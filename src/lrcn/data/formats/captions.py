"""Image-caption data sets: Flickr8k, Karpathy split JSON (Flickr8k/30k, COCO), COCO captions,
and a converter from a folder of photos plus a CSV/TSV of captions to the Karpathy JSON.

Every reader returns a :class:`CaptionSplit`: per split, images with all their reference
captions as token lists. Empty captions, malformed lines and missing images are errors naming
the file and line, or skipped and listed under ``on_error="skip"``.
"""

from __future__ import annotations

import csv
import json
import random
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from lrcn.data.items import DataError, OnError, Problem, handle, read_lines
from lrcn.data.vocab import tokenize

_E = TypeVar("_E", bound="_Entry")

SPLITS = ("train", "val", "test")

__all__ = [
    "CaptionItem",
    "CaptionSplit",
    "csv_to_karpathy",
    "read_coco_captions",
    "read_flickr8k",
    "read_karpathy_json",
]


@dataclass(frozen=True)
class CaptionItem:
    """One image and its reference captions (each a list of tokens)."""

    image: Path
    captions: tuple[tuple[str, ...], ...]
    image_id: str


Item = TypeVar("Item")


@dataclass
class CaptionSplit(Generic[Item]):
    """Inputs (images, or videos: see video_captions.py) with their reference captions, by
    split, and what was skipped reading them."""

    train: list[Item]
    val: list[Item]
    test: list[Item]
    skipped: list[Problem] = field(default_factory=list)

    def split(self, name: str) -> list[Item]:
        """The inputs of ``"train"``, ``"val"`` or ``"test"``."""
        if name not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {name!r}")
        items: list[Item] = getattr(self, name)
        return items


ImageCaptionSplit = CaptionSplit[CaptionItem]


def _tokens(text: str, source: Path, line: int | None) -> tuple[str, ...]:
    tokens = tuple(tokenize(text))
    if not tokens:
        raise DataError(source, f"empty caption {text!r}", line)
    return tokens


# --------------------------------------------------------------------------------------------
# Flickr8k
# --------------------------------------------------------------------------------------------


def read_flickr8k(root: str | Path, on_error: OnError = "raise") -> ImageCaptionSplit:
    """``<root>/Flicker8k_Dataset/<id>.jpg`` (the archive's own spelling) and
    ``<root>/Flickr8k_text/`` with ``Flickr8k.token.txt`` (``<id>.jpg#k<TAB>caption``) and
    ``Flickr_8k.{train,dev,test}Images.txt`` (dev is returned as ``val``)."""
    root = Path(root)
    images = root / "Flicker8k_Dataset"
    if not images.is_dir():
        images = root / "Flickr8k_Dataset"
    text = root / "Flickr8k_text"
    if not images.is_dir() or not text.is_dir():
        raise DataError(root, "expected Flicker8k_Dataset/ and Flickr8k_text/ inside it")
    skipped: list[Problem] = []
    captions: dict[str, list[tuple[str, ...]]] = defaultdict(list)
    token_file = text / "Flickr8k.token.txt"
    seen_keys: dict[str, int] = {}
    for number, line in read_lines(token_file):
        try:
            key, sep, caption = line.partition("\t")
            name, hash_, k = key.partition("#")
            if not sep or not hash_ or not (k.isascii() and k.isdigit()):
                raise DataError(
                    token_file, f"expected '<image>.jpg#<k><TAB><caption>', got {line!r}", number
                )
            if key in seen_keys:
                first = seen_keys[key]
                raise DataError(
                    token_file, f"duplicate caption id {key} (first on line {first})", number
                )
            seen_keys[key] = number
            captions[name].append(_tokens(caption, token_file, number))
        except DataError as problem:
            handle(problem, on_error, skipped)
    sides: dict[str, list[CaptionItem]] = {s: [] for s in SPLITS}
    listed: dict[str, str] = {}  # image -> "file:line" where it was first listed
    for side, file_side in (("train", "train"), ("val", "dev"), ("test", "test")):
        list_file = text / f"Flickr_8k.{file_side}Images.txt"
        for number, name in read_lines(list_file):
            try:
                if name in listed:
                    raise DataError(
                        list_file, f"image {name} is already listed in {listed[name]}", number
                    )
                listed[name] = f"{list_file.name}:{number}"
                if name not in captions:
                    raise DataError(
                        list_file, f"image {name} has no captions in {token_file.name}", number
                    )
                path = images / name
                if not path.is_file():
                    raise DataError(list_file, f"listed image {path} does not exist", number)
                sides[side].append(CaptionItem(path, tuple(captions[name]), Path(name).stem))
            except DataError as problem:
                handle(problem, on_error, skipped)
    return ImageCaptionSplit(sides["train"], sides["val"], sides["test"], skipped)


# --------------------------------------------------------------------------------------------
# Karpathy split JSON
# --------------------------------------------------------------------------------------------


def _load_json(path: Path) -> Any:
    if not path.is_file():
        raise DataError(path, "file not found")
    data = path.read_bytes()
    try:
        return json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise DataError(path, f"not UTF-8 text (byte {err.start})", line) from None
    except json.JSONDecodeError as err:
        raise DataError(path, f"not valid JSON ({err.msg})", err.lineno) from None
    except RecursionError:
        raise DataError(path, "nested too deeply to be an annotation file") from None


def _load_lists(path: Path, keys: tuple[str, ...], expected: str) -> dict[str, Any]:
    """A JSON object whose ``keys`` are lists (the top level of an annotation file), or a
    DataError saying ``expected``."""
    data = _load_json(path)
    if not isinstance(data, dict) or not all(isinstance(data.get(k), list) for k in keys):
        raise DataError(path, f"expected {expected}")
    return data


class _Entry(BaseModel):
    """One JSON entry, checked for the fields and types lrcn reads (others are ignored)."""

    model_config = ConfigDict(extra="ignore")


class _KarpathySentence(_Entry):
    tokens: list[str] | None = None
    raw: str | None = None


class _KarpathyImage(_Entry):
    filename: str
    filepath: str = ""
    split: str
    sentences: list[_KarpathySentence]
    cocoid: int | str | None = None
    imgid: int | str | None = None


class _CocoImage(_Entry):
    id: int
    file_name: str


class _CocoAnnotation(_Entry):
    image_id: int
    caption: str


def _entry(kind: type[_E], value: Any, json_path: Path, where: str) -> _E:
    """``value`` as ``kind``, or a DataError naming the entry, the field and the problem."""
    try:
        return kind.model_validate(value)
    except ValidationError as err:
        first = err.errors()[0]
        field = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in first["loc"])
        required = ", ".join(repr(n) for n, f in kind.model_fields.items() if f.is_required())
        got = type(first["input"]).__name__
        if first["type"] == "missing":
            problem = "missing" if first["loc"][:-1] else f"missing (an entry needs {required})"
        elif first["type"] in ("model_type", "dict_type"):
            needs = "" if first["loc"] else f" with {required}"
            problem = f"expected an object{needs}, got {got}"
        else:
            problem = first["msg"][0].lower() + first["msg"][1:]
        raise DataError(json_path, f"{where}{field}: {problem}") from None


def read_karpathy_json(
    json_path: str | Path, image_root: str | Path, on_error: OnError = "raise"
) -> ImageCaptionSplit:
    """``dataset_{flickr8k,flickr30k,coco}.json``: ``images[]`` with ``filename``, optional
    ``filepath``, ``split`` (train/val/test/restval; restval joins train, as is standard) and
    ``sentences[].tokens``."""
    json_path, image_root = Path(json_path), Path(image_root)
    data = _load_lists(
        json_path, ("images",), "an object with an 'images' list (Karpathy split format)"
    )
    skipped: list[Problem] = []
    sides: dict[str, list[CaptionItem]] = {s: [] for s in SPLITS}
    seen: dict[str, int] = {}
    for n, value in enumerate(data["images"]):
        where = f"images[{n}]"
        try:
            image = _entry(_KarpathyImage, value, json_path, where)
            key = f"{image.filepath}/{image.filename}"
            if key in seen:
                raise DataError(
                    json_path, f"{where}: image {image.filename} is also images[{seen[key]}]"
                )
            seen[key] = n
            split = "train" if image.split == "restval" else image.split
            if split not in sides:
                raise DataError(
                    json_path, f"{where}: split {image.split!r} is not train/val/test/restval"
                )
            caps = []
            for sentence in image.sentences:
                tokens = [t for t in sentence.tokens or [] if t.strip()]
                tokens = tokens or tokenize(sentence.raw or "")
                if not tokens:
                    raise DataError(json_path, f"{where} ({image.filename}): empty caption")
                caps.append(tuple(t.lower() for t in tokens))
            if not caps:
                raise DataError(json_path, f"{where} ({image.filename}): no captions")
            path = image_root / image.filepath / image.filename
            if not path.is_file():
                raise DataError(json_path, f"{where}: image {path} does not exist")
            image_id = image.cocoid if image.cocoid is not None else image.imgid
            image_id = str(image_id if image_id is not None else Path(image.filename).stem)
            sides[split].append(CaptionItem(path, tuple(caps), image_id))
        except DataError as problem:
            handle(problem, on_error, skipped)
    return ImageCaptionSplit(sides["train"], sides["val"], sides["test"], skipped)


# --------------------------------------------------------------------------------------------
# COCO captions annotations
# --------------------------------------------------------------------------------------------


def _read_coco_file(
    json_path: Path, image_dir: Path, on_error: OnError, skipped: list[Problem]
) -> list[CaptionItem]:
    data = _load_lists(
        json_path, ("images", "annotations"),
        "COCO captions JSON with 'images' and 'annotations' lists",
    )  # fmt: skip
    captions: dict[int, list[tuple[str, ...]]] = defaultdict(list)
    for n, value in enumerate(data["annotations"]):
        try:
            ann = _entry(_CocoAnnotation, value, json_path, f"annotations[{n}]")
            try:
                captions[ann.image_id].append(_tokens(ann.caption, json_path, None))
            except DataError as problem:
                raise DataError(json_path, f"annotations[{n}]: {problem.problem}") from None
        except DataError as problem:
            handle(problem, on_error, skipped)
    items = []
    ids: set[int] = set()
    for n, value in enumerate(data["images"]):
        try:
            image = _entry(_CocoImage, value, json_path, f"images[{n}]")
            if image.id in ids:
                raise DataError(json_path, f"duplicate image id {image.id}")
            ids.add(image.id)
            path = image_dir / image.file_name
            if not path.is_file():
                raise DataError(json_path, f"image {path} (id {image.id}) does not exist")
            if not captions.get(image.id):
                raise DataError(json_path, f"image id {image.id} has no captions")
            items.append(CaptionItem(path, tuple(captions[image.id]), str(image.id)))
        except DataError as problem:
            handle(problem, on_error, skipped)
    return items


def read_coco_captions(
    train_json: str | Path,
    train_images: str | Path,
    val_json: str | Path,
    val_images: str | Path,
    test_fraction: float = 0.5,
    seed: int = 0,
    on_error: OnError = "raise",
) -> ImageCaptionSplit:
    """``captions_train2014.json`` + ``captions_val2014.json`` with their image folders. COCO's
    test captions are not public, so val2014 is split by seed into val and test (for the
    standard Karpathy split use :func:`read_karpathy_json` with ``dataset_coco.json``)."""
    skipped: list[Problem] = []
    train = _read_coco_file(Path(train_json), Path(train_images), on_error, skipped)
    val = _read_coco_file(Path(val_json), Path(val_images), on_error, skipped)
    rng = random.Random(seed)
    order = sorted(val, key=lambda item: item.image_id)
    rng.shuffle(order)
    cut = round(len(order) * test_fraction)
    return ImageCaptionSplit(train, order[cut:], order[:cut], skipped)


# --------------------------------------------------------------------------------------------
# A folder of photos + a CSV of captions -> Karpathy JSON
# --------------------------------------------------------------------------------------------


def csv_to_karpathy(
    image_dir: str | Path,
    captions_file: str | Path,
    out_json: str | Path,
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    seed: int = 0,
) -> dict[str, int]:
    """Write a Karpathy split JSON for your own photos.

    ``captions_file`` is CSV (``.csv``) or TSV (any other suffix) with a header row naming an
    ``image`` column (file name inside ``image_dir``) and a ``caption`` column; an image may
    have several rows. Images are split by seed. Returns the number of images per split.
    """
    image_dir, captions_file = Path(image_dir), Path(captions_file)
    if not captions_file.is_file():
        raise DataError(captions_file, "file not found")
    delimiter = "," if captions_file.suffix.lower() == ".csv" else "\t"
    captions: dict[str, list[list[str]]] = defaultdict(list)
    with captions_file.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f, delimiter=delimiter)
        if reader.fieldnames is None or not {"image", "caption"} <= set(reader.fieldnames):
            raise DataError(
                captions_file,
                f"the header must name 'image' and 'caption' columns, got {reader.fieldnames}",
                1,
            )
        for row in reader:
            line = reader.line_num
            name = (row.get("image") or "").strip()
            if not name:
                raise DataError(captions_file, "empty image name", line)
            if not (image_dir / name).is_file():
                raise DataError(captions_file, f"image {image_dir / name} does not exist", line)
            captions[name].append(list(_tokens(row.get("caption") or "", captions_file, line)))
    if not captions:
        raise DataError(captions_file, "no captions in it")
    names = sorted(captions)
    random.Random(seed).shuffle(names)
    n_test = round(len(names) * test_fraction)
    n_val = round(len(names) * val_fraction)
    split_of = {n: "test" for n in names[:n_test]} | {
        n: "val" for n in names[n_test : n_test + n_val]
    }
    images = [
        {"filename": n, "imgid": i, "split": split_of.get(n, "train"),
         "sentences": [{"tokens": t, "raw": " ".join(t)} for t in captions[n]]}
        for i, n in enumerate(sorted(captions))
    ]  # fmt: skip
    Path(out_json).write_text(json.dumps({"dataset": "custom", "images": images}))
    counts = {s: sum(1 for im in images if im["split"] == s) for s in SPLITS}
    return counts
