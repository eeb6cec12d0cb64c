"""The built-in shapes VQA data set: the VQA v2 layout and fields, answers that match what is
drawn, determinism, and answers balanced so that the question alone does not give them."""

import json
import re
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lrcn.data.synthetic import _COLOURS as RGB
from lrcn.data.synthetic_vqa import (
    COLOURS,
    SHAPES,
    VQA_KINDS,
    question_kind,
    scenes,
    write_shapes_vqa,
)

N, SIZE, SEED = 400, 64, 0
SUBTYPES = ("train2014", "val2014")
QUESTION_KEYS = {"info", "task_type", "data_type", "license", "data_subtype", "questions"}
ANNOTATION_KEYS = {"info", "license", "data_type", "data_subtype", "annotations"}
ANN_FIELDS = {"question_id", "image_id", "question_type", "answer_type",
              "multiple_choice_answer", "answers"}  # fmt: skip


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """The default-sized data set."""
    root = write_shapes_vqa(tmp_path_factory.mktemp("vqa"), num_images=N, size=SIZE, seed=SEED)
    return root


def _load(root: Path, subtype: str) -> tuple[dict, dict]:
    questions = json.loads((root / f"v2_OpenEnded_mscoco_{subtype}_questions.json").read_text())
    annotations = json.loads((root / f"v2_mscoco_{subtype}_annotations.json").read_text())
    return questions, annotations


def _qa_pairs(root: Path, subtype: str) -> list[tuple[str, dict]]:
    questions, annotations = _load(root, subtype)
    text = {q["question_id"]: q["question"] for q in questions["questions"]}
    return [(text[a["question_id"]], a) for a in annotations["annotations"]]


def _vqa_accuracy(answer: str, annotation: dict) -> float:
    """The usual soft VQA score: right if at least 3 of the 10 people said it."""
    return min(1.0, sum(a["answer"] == answer for a in annotation["answers"]) / 3)


def _side(obj) -> str | None:
    # the data set's definition: at least 3/4 of the shape's width on that half
    if obj.x < SIZE / 2 - obj.r / 2:
        return "left"
    if obj.x > SIZE / 2 + obj.r / 2:
        return "right"
    return None


def _truth(question: str, objects) -> str:
    """Re-derive the answer from the scene's objects, reading the question as a person would."""
    shape_n = Counter(o.shape for o in objects)
    colour_n = Counter(o.colour for o in objects)
    if m := re.fullmatch(r"how many (\w+)s (are there|are in the picture|can you see)\?", question):
        return str(shape_n[m[1]])
    if m := re.fullmatch(
        r"what (color is|is the color of) the (shape|object) on the (\w+)\?", question
    ):
        sides = [_side(o) for o in objects]
        assert None not in sides and sides.count(m[3]) == 1, (question, objects)
        return objects[sides.index(m[3])].colour
    if m := re.fullmatch(
        r"is the (\w+) on the left or (the right|right side)\?|which side is the (\w+) on\?",
        question,
    ):
        shape = m[1] or m[3]
        assert shape_n[shape] == 1, (question, objects)
        (obj,) = [o for o in objects if o.shape == shape]
        assert _side(obj) is not None, (question, obj)
        return _side(obj)
    if m := re.fullmatch(r"(is there|do you see) a (\w+) (\w+)( in the picture)?\?", question):
        return "yes" if any((o.colour, o.shape) == (m[2], m[3]) for o in objects) else "no"
    if m := re.fullmatch(r"what (shape is|is the shape of) the (\w+) (object|one)\?", question):
        assert colour_n[m[2]] == 1, (question, objects)
        return next(o.shape for o in objects if o.colour == m[2])
    if m := re.fullmatch(
        r"what (color is|is the color of) the (\w+)( in the picture)?\?", question
    ):
        assert shape_n[m[2]] == 1, (question, objects)
        return next(o.colour for o in objects if o.shape == m[2])
    raise AssertionError(f"unexpected question {question!r}")


# --------------------------------------------------------------------------------------------
# Layout and fields
# --------------------------------------------------------------------------------------------


def test_layout_and_official_fields(written):
    root = written
    image_ids = {}
    for subtype in SUBTYPES:
        questions, annotations = _load(root, subtype)
        assert set(questions) == QUESTION_KEYS and set(annotations) == ANNOTATION_KEYS
        assert questions["task_type"] == "Open-Ended"
        assert questions["data_type"] == annotations["data_type"] == "mscoco"
        assert questions["data_subtype"] == annotations["data_subtype"] == subtype
        assert {"description", "version", "year"} <= set(questions["info"])
        assert {"url", "name"} == set(questions["license"])
        qs, anns = questions["questions"], annotations["annotations"]
        assert [q["question_id"] for q in qs] == [a["question_id"] for a in anns]
        for q, a in zip(qs, anns, strict=True):
            assert set(q) == {"image_id", "question", "question_id"}
            assert set(a) == ANN_FIELDS
            assert q["image_id"] == a["image_id"] == q["question_id"] // 1000
            assert q["question"].endswith("?") and q["question"] == q["question"].lower()
            assert q["question"].startswith(a["question_type"] + " ")
            assert a["answer_type"] == {"count": "number", "existence": "yes/no"}.get(
                question_kind(q["question"]), "other"
            )
            assert [x["answer_id"] for x in a["answers"]] == list(range(1, 11))
            assert all(set(x) == {"answer", "answer_confidence", "answer_id"} for x in a["answers"])
            assert {x["answer_confidence"] for x in a["answers"]} <= {"yes", "maybe", "no"}
            said = Counter(x["answer"] for x in a["answers"])
            assert a["multiple_choice_answer"] == said.most_common(1)[0][0]
        per_image = Counter(q["image_id"] for q in qs)
        assert set(per_image.values()) <= {3, 4, 5}
        assert {q["question_id"] % 1000 for q in qs} <= {0, 1, 2, 3, 4}
        image_ids[subtype] = set(per_image)
        files = {p.name for p in (root / subtype).iterdir()}
        assert files == {f"COCO_{subtype}_{i:012d}.jpg" for i in per_image}
    assert not image_ids["train2014"] & image_ids["val2014"]
    assert len(image_ids["val2014"]) == N // 5 and len(image_ids["train2014"]) == N - N // 5
    some = next((root / "val2014").iterdir())
    with Image.open(some) as image:
        assert (image.format, image.mode, image.size) == ("JPEG", "RGB", (SIZE, SIZE))


def test_question_kind_names_every_kind_and_rejects_others(written):
    root = written
    texts = [q for s in SUBTYPES for q, _ in _qa_pairs(root, s)]
    assert {question_kind(q) for q in texts} == set(VQA_KINDS)
    for scene in scenes(N, SIZE, SEED):
        assert all(question_kind(qa.question) == qa.kind for qa in scene.questions)
    with pytest.raises(ValueError, match="not a question"):
        question_kind("why is the sky blue?")


def test_bad_arguments_are_refused(tmp_path):
    with pytest.raises(ValueError, match="num_images"):
        write_shapes_vqa(tmp_path, num_images=9)
    with pytest.raises(ValueError, match="size"):
        write_shapes_vqa(tmp_path, size=31)


# --------------------------------------------------------------------------------------------
# Answers match the drawings
# --------------------------------------------------------------------------------------------


def test_every_answer_matches_the_scene(written):
    root = written
    written_answers = {
        a["question_id"]: a for s in SUBTYPES for a in _load(root, s)[1]["annotations"]
    }
    records = scenes(N, SIZE, SEED)
    assert len(records) == N
    assert {len(scene.objects) for scene in records} == {1, 2, 3, 4}  # every scene size occurs
    for scene in records:
        for k, qa in enumerate(scene.questions):
            truth = _truth(qa.question, scene.objects)
            annotation = written_answers[scene.image_id * 1000 + k]
            assert qa.answer == annotation["multiple_choice_answer"] == truth, qa
            assert sum(x["answer"] == truth for x in annotation["answers"]) >= 7


def test_shapes_do_not_overlap_and_are_drawn_where_recorded(written):
    root = written
    palette = np.array([RGB[c] for c in COLOURS], dtype=np.float64)  # (4, 3)
    for scene in scenes(N, SIZE, SEED):
        objs = scene.objects
        for i, a in enumerate(objs):
            assert a.r <= a.x <= SIZE - a.r and a.r <= a.y <= SIZE - a.r
            for b in objs[i + 1 :]:
                assert abs(a.x - b.x) > a.r + b.r or abs(a.y - b.y) > a.r + b.r
        path = root / scene.split / f"COCO_{scene.split}_{scene.image_id:012d}.jpg"
        pixels = np.asarray(Image.open(path), dtype=np.float64)
        for o in objs:  # the centre lies inside every shape; its colour is the nearest one
            centre = pixels[round(o.y), round(o.x)]
            assert COLOURS[int(np.argmin(((palette - centre) ** 2).sum(1)))] == o.colour
        free = np.ones((SIZE, SIZE), dtype=bool)
        for o in objs:
            free[max(0, int(o.y - o.r) - 2) : int(o.y + o.r) + 3,
                 max(0, int(o.x - o.r) - 2) : int(o.x + o.r) + 3] = False  # fmt: skip
        assert pixels[free].mean() > 150  # a light background


# --------------------------------------------------------------------------------------------
# Determinism and speed
# --------------------------------------------------------------------------------------------


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    a = _files(write_shapes_vqa(tmp_path / "a", num_images=20, size=32, seed=5))
    b = _files(write_shapes_vqa(tmp_path / "b", num_images=20, size=32, seed=5))
    c = _files(write_shapes_vqa(tmp_path / "c", num_images=20, size=32, seed=6))
    assert a == b
    assert len(a) == 20 + 4
    name = "v2_mscoco_train2014_annotations.json"
    assert a[name] != c[name]
    assert set(a) != set(c) or any(a[k] != c[k] for k in a if k.endswith(".jpg"))


# --------------------------------------------------------------------------------------------
# Balance and answer noise
# --------------------------------------------------------------------------------------------


def test_answers_are_balanced_within_each_kind(written):
    root = written
    by_kind: dict[str, Counter] = defaultdict(Counter)
    for subtype in SUBTYPES:
        for question, a in _qa_pairs(root, subtype):
            by_kind[question_kind(question)][a["multiple_choice_answer"]] += 1
    yes = by_kind["existence"]
    assert 0.4 <= yes["yes"] / (yes["yes"] + yes["no"]) <= 0.6
    counts = by_kind["count"]
    assert set(counts) == {"0", "1", "2", "3", "4"}
    assert min(counts.values()) >= 0.15 * sum(counts.values())  # uniform would be 0.2
    colours = by_kind["colour"]
    assert set(colours) == set(COLOURS)
    assert min(colours.values()) >= 0.2 * sum(colours.values())  # uniform would be 0.25
    shapes = by_kind["shape"]
    assert set(shapes) == set(SHAPES)
    assert min(shapes.values()) >= 0.28 * sum(shapes.values())  # uniform would be 1/3
    sides = by_kind["position"]
    assert abs(sides["left"] - sides["right"]) <= 0.2 * (sides["left"] + sides["right"])


def _majority_baseline(root: Path, key) -> float:
    """VQA accuracy on val of the most common train answer for each ``key(question, ann)``."""
    table: dict[str, Counter] = defaultdict(Counter)
    overall: Counter = Counter()
    for question, a in _qa_pairs(root, "train2014"):
        table[key(question, a)][a["multiple_choice_answer"]] += 1
        overall[a["multiple_choice_answer"]] += 1
    fallback = overall.most_common(1)[0][0]
    scores = [
        _vqa_accuracy(table[key(q, a)].most_common(1)[0][0] if key(q, a) in table else fallback, a)
        for q, a in _qa_pairs(root, "val2014")
    ]
    return sum(scores) / len(scores)


def test_question_alone_does_not_give_the_answer(written):
    # measured for seeds 0, 1, 2: per question type 0.355, 0.377, 0.359; per exact question
    # text 0.358, 0.376, 0.347; chance for this mix of kinds is about 0.37; the true
    # multiple_choice_answer scores 1.0
    root = written
    per_type = _majority_baseline(root, lambda q, a: a["question_type"])
    per_text = _majority_baseline(root, lambda q, a: q)
    oracle = [_vqa_accuracy(a["multiple_choice_answer"], a) for _, a in _qa_pairs(root, "val2014")]
    assert per_type < 0.45 and per_text < 0.45
    assert sum(oracle) / len(oracle) == 1.0


def test_human_answers_are_noisy_like_real_ones(written):
    root = written
    annotations = [a for s in SUBTYPES for _, a in _qa_pairs(root, s)]
    said = [x["answer"] for a in annotations for x in a["answers"]]
    differ = sum(
        x["answer"] != a["multiple_choice_answer"] for a in annotations for x in a["answers"]
    ) / len(said)
    assert 0.05 <= differ <= 0.15  # about one answer in ten
    words = set(said)
    assert {"two", "yes.", "nope", "rectangle", "dark blue"} <= words  # rewordings
    assert any(len({x["answer"] for x in a["answers"]}) == 1 for a in annotations)  # unanimous
    confidences = Counter(x["answer_confidence"] for a in annotations for x in a["answers"])
    assert set(confidences) == {"yes", "maybe", "no"} and confidences.most_common(1)[0][0] == "yes"
