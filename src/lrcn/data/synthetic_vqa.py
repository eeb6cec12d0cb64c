"""A built-in visual question answering data set: coloured shapes, written in the VQA v2 layout.

Each image holds 1 to 4 non-overlapping shapes (circle, square, triangle) in red, green, blue
or yellow on a light textured background, and gets 3 to 5 questions of five kinds
(:data:`VQA_KINDS`)::

    colour     what color is the circle?               (asked only when there is one circle)
    shape      what shape is the red object?           (only when there is one red object)
    count      how many squares are there?             0 to 4, as digits
    position   is the triangle on the left or the right?  /  what color is the shape on the left?
    existence  is there a blue square?                 yes / no

Questions are worded a few ways each, as people word them, and every question has ten human
answers: mostly the true answer, with about one in ten different (a number word for a digit,
"yes." with punctuation, a synonym or shade such as "rectangle" or "dark blue", a misspelling,
now and then a wrong answer), so the soft targets and the official answer normalisation matter.

Balance (why the question alone cannot give the answer): answers are dealt per kind in
shuffled rounds, as a card dealer would (colours 1/4 each, shapes 1/3, yes/no 1/2, left/right
1/2). A scene takes the first answer still owed that it can truthfully serve, so every answer
of a kind is asked equally often, up to about one round. Counts go further: each scene is
*built* from a dealt (shape, count) pair, count 0 to 4 uniform, so "how many" sees 0 and 4 as
often as 2. Colours and shapes are drawn independently of each other and of the place, so no
question text tells its answer either: a majority answer per question type scores near
chance (see the tests).
"""

from __future__ import annotations

import itertools
import json
import math
import random
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Generic, NamedTuple, TypeVar

import numpy as np

from lrcn.data.synthetic import _COLOURS as _RGB
from lrcn.data.synthetic import _draw_shape

__all__ = [
    "COLOURS",
    "QA",
    "SHAPES",
    "VQA_KINDS",
    "Scene",
    "SceneObject",
    "question_kind",
    "scenes",
    "write_shapes_vqa",
]

VQA_KINDS = ("colour", "shape", "count", "position", "existence")
SHAPES = ("circle", "square", "triangle")
COLOURS = ("red", "green", "blue", "yellow")
_SIDES = ("left", "right")

# The real question types whose words our questions start with, from the VQA release's
# QuestionTypes/mscoco_question_types.txt; a question's type is its longest matching prefix.
_QUESTION_TYPES = ("how many", "is the", "is there a", "what", "what color is the",
                   "what is the", "what is the color of the", "which", "do you")  # fmt: skip

_TEMPLATES = {
    "colour": ("what color is the {s}?", "what is the color of the {s}?",
               "what color is the {s} in the picture?"),
    "shape": ("what shape is the {c} object?", "what shape is the {c} one?",
              "what is the shape of the {c} object?"),
    "count": ("how many {s}s are there?", "how many {s}s are in the picture?",
              "how many {s}s can you see?"),
    "side": ("is the {s} on the left or the right?", "is the {s} on the left or right side?",
             "which side is the {s} on?"),
    "side_colour": ("what color is the shape on the {side}?",
                    "what color is the object on the {side}?",
                    "what is the color of the shape on the {side}?"),
    "existence": ("is there a {c} {s}?", "is there a {c} {s} in the picture?",
                  "do you see a {c} {s}?"),
}  # fmt: skip

# How people answer differently from the canonical answer: the same meaning written another
# way (the official normalisation removes some of these, e.g. "yes." and "the left", but not
# the gt side's number words) or a near miss (a shade, a related shape, a misspelling).
_VARIANTS = {
    "yes": ("yes.", "yeah", "yep"), "no": ("no.", "nope", "no!"),
    "0": ("zero", "none", "0."), "1": ("one", "1."), "2": ("two", "2."), "3": ("three", "3."),
    "4": ("four", "4."),
    "red": ("dark red", "orange", "pink"), "green": ("dark green", "light green", "lime"),
    "blue": ("dark blue", "light blue", "navy"), "yellow": ("gold", "orange", "yelow"),
    "circle": ("round", "oval", "a circle"), "square": ("rectangle", "box", "a square"),
    "triangle": ("triangular", "pyramid", "a triangle"),
    "left": ("on the left", "left side", "the left"),
    "right": ("on the right", "right side", "the right"),
}  # fmt: skip
# How many of the ten answers differ, per question: mean 1.0 (10 %), at most 3, so the true
# answer is always the plain majority (the multiple_choice_answer).
_DIFFERING = (0, 0, 0, 0, 1, 1, 1, 2, 2, 3)
_SUPERSAMPLE = 4  # shapes are drawn 4x larger and box-filtered: smooth edges
_INFO = {
    "description": "lrcn built-in shapes VQA (VQA v2 layout)",
    "url": "https://visualqa.org",
    "version": "2.0",
    "year": 2017,
    "contributor": "lrcn",
    "date_created": "2017-04-26 17:07:13",
}
_LICENSE = {
    "url": "http://creativecommons.org/licenses/by/4.0/",
    "name": "Creative Commons Attribution 4.0 International License",
}

T = TypeVar("T")


class SceneObject(NamedTuple):
    """One drawn shape; it lies inside the box ``[x - r, x + r] x [y - r, y + r]`` (pixels)."""

    shape: str
    colour: str
    x: float
    y: float
    r: float


class QA(NamedTuple):
    """One question with its true answer and its ten (answer, answer_confidence) pairs."""

    question: str
    answer: str
    kind: str
    question_type: str
    answer_type: str
    human_answers: tuple[tuple[str, str], ...]


class Scene(NamedTuple):
    """Everything one image and its questions are made from; the writer only renders this."""

    image_id: int
    split: str  # "train2014" | "val2014"
    objects: tuple[SceneObject, ...]
    questions: tuple[QA, ...]
    texture_seed: int


class _Deck(Generic[T]):
    """Answers still owed for one question kind, dealt in shuffled rounds: each scene takes
    the first owed answer it can serve truthfully, which keeps every answer equally common."""

    def __init__(self, items: Sequence[T], rng: random.Random) -> None:
        self._items, self._rng = list(items), rng
        self._owed: list[T] = []

    def _deal(self) -> None:
        round_ = self._items.copy()
        self._rng.shuffle(round_)
        self._owed += round_

    def take(self, can_serve: Callable[[T], bool], *, deal_more: bool = False) -> T | None:
        """The first owed answer ``can_serve`` accepts (removed from the deck), else None;
        ``deal_more`` deals another round first when no owed answer will do (a fresh round
        holds every answer), for a question that must be asked."""
        if len(self._owed) < len(self._items):
            self._deal()
        for attempt in range(2 if deal_more else 1):
            if attempt:
                self._deal()
            for i, item in enumerate(self._owed):
                if can_serve(item):
                    return self._owed.pop(i)
        return None


def question_kind(question: str) -> str:
    """The kind (one of :data:`VQA_KINDS`) of a question this data set asks, from its text
    alone: what per-kind scores group by."""
    q = question.lower()
    if q.startswith("how many"):
        return "count"
    if "left" in q or "right" in q or "which side" in q:
        return "position"
    if q.startswith(("is there", "do you see")):
        return "existence"
    if "shape" in q:
        return "shape"
    if "color" in q:
        return "colour"
    raise ValueError(f"not a question of this data set: {question!r}; kinds are {VQA_KINDS}")


def _question_type(question: str) -> str:
    """The longest real VQA question type that starts the question, word by word."""
    words = question.rstrip("?").split()
    matches = [t for t in _QUESTION_TYPES if words[: len(t.split())] == t.split()]
    return max(matches, key=len)


def _side(obj: SceneObject, size: int) -> str | None:
    """'left' or 'right' when at least 3/4 of the shape's width is on that half, else None."""
    if obj.x < size / 2 - obj.r / 2:
        return "left"
    if obj.x > size / 2 + obj.r / 2:
        return "right"
    return None


def _place(items: list[tuple[str, str]], size: int, rng: random.Random) -> tuple[SceneObject, ...]:
    """Place (shape, colour) items uniformly, boxes apart by a gap, all inside the frame."""
    gap = max(1.0, 0.03 * size)
    while True:  # 4 boxes of at most 0.26 x size each fit easily: a retry is rare
        placed: list[SceneObject] = []
        for shape, colour in items:
            r = size * rng.uniform(0.09, 0.13)
            for _ in range(50):
                x, y = rng.uniform(r + 1, size - r - 1), rng.uniform(r + 1, size - r - 1)
                if all(
                    abs(x - o.x) > r + o.r + gap or abs(y - o.y) > r + o.r + gap for o in placed
                ):
                    placed.append(SceneObject(shape, colour, x, y, r))
                    break
            else:
                break
        if len(placed) == len(items):
            return tuple(placed)


def _options(kind: str, objects: Sequence[SceneObject], size: int) -> dict[str, list[str]]:
    """Every question of ``kind`` this scene answers truthfully, grouped by answer."""
    out: dict[str, list[str]] = {}
    shapes, colours = Counter(o.shape for o in objects), Counter(o.colour for o in objects)
    if kind == "colour":
        for o in objects:
            if shapes[o.shape] == 1:
                out.setdefault(o.colour, []).extend(t.format(s=o.shape) for t in _TEMPLATES[kind])
    elif kind == "shape":
        for o in objects:
            if colours[o.colour] == 1:
                out.setdefault(o.shape, []).extend(t.format(c=o.colour) for t in _TEMPLATES[kind])
    elif kind == "position":
        sides = [_side(o, size) for o in objects]
        for o, side in zip(objects, sides, strict=True):
            if shapes[o.shape] == 1 and side is not None:
                out.setdefault(side, []).extend(t.format(s=o.shape) for t in _TEMPLATES["side"])
        if None not in sides:  # no shape in the middle: "the shape on the left" is clear
            for side in _SIDES:
                if sides.count(side) == 1:
                    o = objects[sides.index(side)]
                    texts = [t.format(side=side) for t in _TEMPLATES["side_colour"]]
                    out.setdefault(o.colour, []).extend(texts)
    elif kind == "existence":
        present = {(o.colour, o.shape) for o in objects}
        for c, s in itertools.product(COLOURS, SHAPES):
            texts = [t.format(c=c, s=s) for t in _TEMPLATES[kind]]
            out.setdefault("yes" if (c, s) in present else "no", []).extend(texts)
    return out


def _human_answers(kind: str, answer: str, rng: random.Random) -> tuple[tuple[str, str], ...]:
    """Ten (answer, confidence) pairs: the truth, with 0 to 3 rewordings or mistakes."""
    if kind == "count":
        wrong = [str(n) for n in (int(answer) - 1, int(answer) + 1) if 0 <= n <= 4]
    elif kind == "existence":
        wrong = ["no" if answer == "yes" else "yes"]
    else:
        pool = _SIDES if answer in _SIDES else COLOURS if answer in COLOURS else SHAPES
        wrong = [a for a in pool if a != answer]
    differing = set(rng.sample(range(10), rng.choice(_DIFFERING)))
    out = []
    for k in range(10):
        if k in differing:
            said = rng.choice(_VARIANTS[answer]) if rng.random() < 0.7 else rng.choice(wrong)
            confidence = rng.choices(("yes", "maybe", "no"), (5, 4, 1))[0]
        else:
            said, confidence = answer, rng.choices(("yes", "maybe", "no"), (90, 8, 2))[0]
        out.append((said, confidence))
    return tuple(out)


def _qa(kind: str, question: str, answer: str, rng: random.Random) -> QA:
    answer_type = {"count": "number", "existence": "yes/no"}.get(kind, "other")
    human = _human_answers(kind, answer, rng)
    return QA(question, answer, kind, _question_type(question), answer_type, human)


def scenes(num_images: int = 400, size: int = 64, seed: int = 0) -> list[Scene]:
    """The scenes :func:`write_shapes_vqa` draws and asks about, in image id order: the
    ground truth to check the written files against. Same arguments, same scenes."""
    rng = random.Random(seed)
    counts: _Deck[tuple[str, int]] = _Deck(list(itertools.product(SHAPES, range(5))), rng)
    decks: dict[str, _Deck[str]] = {
        "colour": _Deck(COLOURS, rng),
        "shape": _Deck(SHAPES, rng),
        "position": _Deck([*_SIDES, *COLOURS], rng),
        "existence": _Deck(["yes", "no"], rng),
    }
    image_ids = sorted(rng.sample(range(1, 600_000), num_images))
    val = set(rng.sample(image_ids, round(num_images * 0.2)))
    out = []
    for image_id in image_ids:
        # the scene is built around a dealt count: n of one shape, the rest other shapes
        plan = counts.take(lambda _: True)
        assert plan is not None
        target, n = plan
        total = rng.randint(max(1, n), 4)
        others = [s for s in SHAPES if s != target]
        shapes = [target] * n + [rng.choice(others) for _ in range(total - n)]
        rng.shuffle(shapes)
        objects = _place([(s, rng.choice(COLOURS)) for s in shapes], size, rng)

        # which kinds to ask is decided before looking at the scene, so that e.g. a count is
        # asked as often for 4 as for 0; a kind the scene cannot serve is replaced by another
        # of the unchosen ones (never count), then by existence, which always can
        kinds = rng.sample(VQA_KINDS, len(VQA_KINDS))
        wanted = rng.randint(3, 5)
        spare = [k for k in kinds[wanted:] if k != "count"]
        kinds = kinds[:wanted]
        asked, qas = set[str](), list[QA]()
        while len(qas) < wanted:
            kind = kinds.pop(0) if kinds else spare.pop(0) if spare else "existence"
            if kind == "count":
                question = rng.choice(_TEMPLATES["count"]).format(s=target)
                qas.append(_qa(kind, question, str(n), rng))
                asked.add(question)
                continue
            options = {a: left for a, qs in _options(kind, objects, size).items()
                       if (left := [q for q in qs if q not in asked])}  # fmt: skip
            must = not kinds and not spare
            answer = decks[kind].take(options.__contains__, deal_more=must)
            if answer is not None:
                question = rng.choice(options[answer])
                qas.append(_qa(kind, question, answer, rng))
                asked.add(question)
        split = "val2014" if image_id in val else "train2014"
        out.append(Scene(image_id, split, objects, tuple(qas), rng.randrange(2**32)))
    return out


def _render(scene: Scene, size: int) -> np.ndarray:
    """``uint8 (size, size, 3)``: a light, softly textured background, smooth shapes on it."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(scene.texture_seed)
    base = rng.uniform(185, 235) + rng.uniform(-10, 10, size=3)
    yy, xx = np.mgrid[0:size, 0:size] / size
    fx, fy, phase = rng.uniform(0.5, 2.5), rng.uniform(0.5, 2.5), rng.uniform(0, 2 * math.pi)
    wave = rng.uniform(5, 12) * np.sin(2 * math.pi * (fx * xx + fy * yy) + phase)
    image = base[None, None, :] + wave[..., None] + rng.normal(0, 3, (size, size, 1))
    s, big = _SUPERSAMPLE, size * _SUPERSAMPLE
    for o in scene.objects:
        mask = Image.new("L", (big, big), 0)
        _draw_shape(ImageDraw.Draw(mask), o.shape.capitalize(), o.x * s, o.y * s, o.r * s, 255)
        alpha = np.asarray(mask.resize((size, size), Image.Resampling.BOX), np.float64) / 255
        alpha = alpha[..., None]  # (size, size, 1)
        image = image * (1 - alpha) + np.array(_RGB[o.colour], np.float64) * alpha
    image += rng.normal(0, 2, (size, size, 3))
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def write_shapes_vqa(
    root: str | Path, num_images: int = 400, size: int = 64, seed: int = 0
) -> Path:
    """Write the shapes VQA data set under ``root`` in the VQA v2 layout; return ``root``.

    Files: ``train2014/COCO_train2014_<id:012d>.jpg`` and ``val2014/COCO_val2014_...jpg``
    (about 80 % / 20 % of the images), ``v2_OpenEnded_mscoco_{train,val}2014_questions.json``
    and ``v2_mscoco_{train,val}2014_annotations.json`` with the official fields; question ids
    are ``image_id * 1000 + k``. :func:`scenes` gives the ground truth behind them.

    Args:
        root: output folder.
        num_images: images in all, >= 10 (so that both splits hold a few).
        size: image height and width in pixels, >= 32 (smaller shapes blur into blobs).
        seed: everything is drawn from it; the same seed writes the same bytes.
    """
    from PIL import Image

    if num_images < 10:
        raise ValueError(f"num_images must be >= 10 (both splits need images), got {num_images}")
    if size < 32:
        raise ValueError(f"size must be >= 32 for the shapes to be told apart, got {size}")
    root = Path(root)
    documents: dict[str, tuple[list[dict[str, object]], list[dict[str, object]]]] = {
        "train2014": ([], []),
        "val2014": ([], []),
    }
    for scene in scenes(num_images, size, seed):
        folder = root / scene.split
        folder.mkdir(parents=True, exist_ok=True)
        name = f"COCO_{scene.split}_{scene.image_id:012d}.jpg"
        Image.fromarray(_render(scene, size)).save(folder / name, quality=92)
        questions, annotations = documents[scene.split]
        for k, qa in enumerate(scene.questions):
            question_id = scene.image_id * 1000 + k
            questions.append(
                {"image_id": scene.image_id, "question": qa.question, "question_id": question_id}
            )
            answers = [a for a, _ in qa.human_answers]
            annotations.append({
                "question_type": qa.question_type,
                "multiple_choice_answer": Counter(answers).most_common(1)[0][0],
                "answers": [{"answer": a, "answer_confidence": c, "answer_id": i + 1}
                            for i, (a, c) in enumerate(qa.human_answers)],
                "image_id": scene.image_id,
                "answer_type": qa.answer_type,
                "question_id": question_id,
            })  # fmt: skip
    info = {**_INFO, "seed": seed, "size": size}
    for subtype, (questions, annotations) in documents.items():
        (root / subtype).mkdir(parents=True, exist_ok=True)  # even if no image fell here
        head = {"info": info, "license": _LICENSE, "data_subtype": subtype}
        question_file = {**head, "task_type": "Open-Ended", "data_type": "mscoco",
                         "questions": questions}  # fmt: skip
        annotation_file = {**head, "data_type": "mscoco", "annotations": annotations}
        (root / f"v2_OpenEnded_mscoco_{subtype}_questions.json").write_text(
            json.dumps(question_file) + "\n"
        )
        (root / f"v2_mscoco_{subtype}_annotations.json").write_text(
            json.dumps(annotation_file) + "\n"
        )
    return root
