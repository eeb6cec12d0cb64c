"""The VQA layout (v2 and v1 names, COCO image names or images.json), its errors, and the
CSV converter read back through read_vqa."""

import json
import re
import shutil

import pytest
from PIL import Image

from lrcn.data.formats.vqa import VqaSplit, csv_to_vqa, read_vqa
from lrcn.data.items import DataError
from lrcn.errors import LrcnError

Q_TRAIN = "v2_OpenEnded_mscoco_train2014_questions.json"
A_TRAIN = "v2_mscoco_train2014_annotations.json"
Q_VAL = "v2_OpenEnded_mscoco_val2014_questions.json"
A_VAL = "v2_mscoco_val2014_annotations.json"
TRAIN_IMAGES = list(range(1, 11))  # 10 images, 3 questions each
VAL_IMAGES = [101, 102, 103]
COLOURS = ["red", "green", "blue"]


def _image(path, colour="red", fmt="JPEG"):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), colour).save(path, format=fmt)


def _files(subset, image_ids):
    """A questions and an annotations file in the VQA v2 format, 3 questions per image."""
    questions, annotations = [], []
    for image_id in image_ids:
        colour = COLOURS[image_id % 3]
        asked = [
            ("What color is the square?", "what color is the", "other", [colour] * 9 + ["pink"]),
            ("Is the square red?", "is the", "yes/no", ["yes" if colour == "red" else "no"] * 10),
            ("How many squares are there?", "how many", "number", ["1"] * 8 + ["one", "2"]),
        ]
        for k, (text, qtype, atype, answers) in enumerate(asked):
            qid = image_id * 1000 + k
            questions.append({"image_id": image_id, "question": text, "question_id": qid})
            annotations.append({
                "question_id": qid, "image_id": image_id, "question_type": qtype,
                "answer_type": atype, "multiple_choice_answer": answers[0],
                "answers": [{"answer": a, "answer_confidence": "yes", "answer_id": i + 1}
                            for i, a in enumerate(answers)],
            })  # fmt: skip
    info = {"description": "test", "version": "2.0"}
    q_file = {"info": info, "task_type": "Open-Ended", "data_type": "mscoco",
              "data_subtype": subset, "questions": questions, "license": {}}  # fmt: skip
    a_file = {"info": info, "data_type": "mscoco", "data_subtype": subset,
              "annotations": annotations, "license": {}}  # fmt: skip
    return q_file, a_file


def _write(path, data):
    path.write_text(json.dumps(data))


def _load(path):
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def layout(tmp_path_factory):
    root = tmp_path_factory.mktemp("vqa")
    for subset, ids, (q_name, a_name) in (
        ("train2014", TRAIN_IMAGES, (Q_TRAIN, A_TRAIN)),
        ("val2014", VAL_IMAGES, (Q_VAL, A_VAL)),
    ):
        q_file, a_file = _files(subset, ids)
        _write(root / q_name, q_file)
        _write(root / a_name, a_file)
        for image_id in ids:
            _image(root / subset / f"COCO_{subset}_{image_id:012d}.jpg", COLOURS[image_id % 3])
    return root


@pytest.fixture
def root(layout, tmp_path):
    shutil.copytree(layout, tmp_path / "vqa")
    return tmp_path / "vqa"


def _images(items):
    return {item.image_id for item in items}


def test_reads_the_v2_layout(layout):
    data = read_vqa(layout, val_fraction=0.2)
    assert len(data.train) + len(data.val) == 30 and len(data.test) == 9
    assert _images(data.test) == set(VAL_IMAGES)  # official val2014 is lrcn's test split
    assert data.split("test") is data.test and not data.skipped
    item = next(i for i in data.test if i.question_id == 101000)
    assert item.image == layout / "val2014" / "COCO_val2014_000000000101.jpg"
    assert item.image_id == 101 and item.image.is_file()
    assert item.question == ("what", "color", "is", "the", "square")
    assert item.question_text == "What color is the square?"
    assert item.answers == ("blue",) * 9 + ("pink",)  # as written, all ten
    assert (item.answer_type, item.question_type) == ("other", "what color is the")
    counted = next(i for i in data.test if i.question_id == 101002)
    assert counted.answers[-2:] == ("one", "2")  # not normalised: that is the metric's job
    assert [i.question_id for i in data.test] == sorted(i.question_id for i in data.test)
    with pytest.raises(ValueError, match="split must be one of"):
        data.split("dev")


def test_val_is_carved_from_train_by_image_and_deterministic(layout):
    data = read_vqa(layout, val_fraction=0.3, seed=3)
    assert len(_images(data.val)) == 3 and len(data.val) == 9  # all 3 questions of each image
    assert not _images(data.train) & _images(data.val)
    assert _images(data.train) | _images(data.val) == set(TRAIN_IMAGES)
    assert not (_images(data.train) | _images(data.val)) & _images(data.test)
    again = read_vqa(layout, val_fraction=0.3, seed=3)
    assert again.val == data.val and again.train == data.train
    seeds = {frozenset(_images(read_vqa(layout, val_fraction=0.3, seed=s).val)) for s in range(6)}
    assert len(seeds) > 1  # the seed picks the images
    assert read_vqa(layout, val_fraction=0).val == []
    assert len(_images(read_vqa(layout, val_fraction=0.01).val)) == 1  # at least one image
    with pytest.raises(LrcnError, match=r"val_fraction: 1.0 is out of range"):
        read_vqa(layout, val_fraction=1.0)


def test_v1_names_and_v2_wins(root):
    for v2 in (Q_TRAIN, A_TRAIN, Q_VAL, A_VAL):
        (root / v2).rename(root / v2.removeprefix("v2_"))
    v1 = read_vqa(root, val_fraction=0)
    assert (len(v1.train), len(v1.test)) == (30, 9)
    q_file, a_file = _files("train2014", [1])  # a v2 release beside it, of one image
    _write(root / Q_TRAIN, q_file)
    _write(root / A_TRAIN, a_file)
    (root / "OpenEnded_mscoco_val2014_questions.json").rename(root / Q_VAL)
    (root / "mscoco_val2014_annotations.json").rename(root / A_VAL)
    assert len(read_vqa(root, val_fraction=0).train) == 3
    (root / Q_VAL).unlink()  # v2 present but incomplete: an error, not a silent mix with v1
    with pytest.raises(DataError, match=re.escape(f"{Q_VAL}: file not found; expected the four")):
        read_vqa(root)


def test_images_json_gives_the_paths(root):
    paths = {}
    for image_id in TRAIN_IMAGES + VAL_IMAGES:
        name = f"photos/{image_id}.png"
        _image(root / name, fmt="PNG")
        paths[str(image_id)] = name
    shutil.rmtree(root / "train2014")
    shutil.rmtree(root / "val2014")
    _write(root / "images.json", paths)
    data = read_vqa(root)
    assert {i.image for i in data.test} == {root / f"photos/{n}.png" for n in VAL_IMAGES}
    del paths["102"]
    _write(root / "images.json", paths)
    with pytest.raises(
        DataError,
        match=re.escape(f"images.json: no path for image_id 102 (questions[3] of {Q_VAL})"),
    ):
        read_vqa(root)


def _set(path, edit):
    data = _load(path)
    edit(data)
    _write(path, data)


def _pop(key, n):
    return lambda d: d[key].pop(n)


def _assign(key, n, field, value):
    return lambda d: d[key][n].__setitem__(field, value)


def _missing_image(root):
    (root / "train2014" / "COCO_train2014_000000000002.jpg").unlink()


def _same_id(d):
    d["questions"][4]["question_id"] = d["questions"][3]["question_id"]


def _extra_annotation(d):
    d["annotations"].append({**d["annotations"][0], "question_id": 999999})


def _annotated_twice(d):
    d["annotations"].append(d["annotations"][1])


# (file edited, edit, message prefix after the root, question ids dropped under skip)
ITEM_ERRORS = {
    "question without annotation": (
        A_TRAIN, _pop("annotations", 2),
        f"{Q_TRAIN}: questions[2]: question_id 1002 has no annotation in {A_TRAIN}", {1002},
    ),
    "annotation of unknown question": (
        A_TRAIN, _extra_annotation,
        f"{A_TRAIN}: annotations[30].question_id: 999999 is not a question in {Q_TRAIN}", set(),
    ),
    "image missing": (
        None, _missing_image,
        f"{Q_TRAIN}: questions[3].image_id: image ", {2000, 2001, 2002},
    ),
    "empty question": (
        Q_VAL, _assign("questions", 1, "question", " ? "),
        f"{Q_VAL}: questions[1].question: empty question ' ? '; expected words", {101001},
    ),
    "no answers": (
        A_TRAIN, _assign("annotations", 3, "answers", []),
        f"{A_TRAIN}: annotations[3].answers: no answers; expected at least one human answer", {2000},
    ),
    "blank answers only": (
        A_TRAIN, _assign("annotations", 3, "answers", [{"answer": " "}]),
        f"{A_TRAIN}: annotations[3].answers: no answers", {2000},
    ),
    "duplicate question id": (
        Q_TRAIN, _same_id,
        f"{Q_TRAIN}: questions[4].question_id: 2000 is listed again (first as questions[3])",
        {2001},
    ),
    "duplicate annotation": (
        A_TRAIN, _annotated_twice,
        f"{A_TRAIN}: annotations[30].question_id: 1001 is annotated again (first in annotations[1])",
        set(),
    ),
    "image ids disagree": (
        A_TRAIN, _assign("annotations", 0, "image_id", 7),
        f"{A_TRAIN}: annotations[0].image_id: 7, but questions[0] of {Q_TRAIN} has image_id 1", {1000},
    ),
    "answer not a string": (
        A_TRAIN, lambda d: d["annotations"][5]["answers"][2].__setitem__("answer", 5),
        f"{A_TRAIN}: annotations[5].answers[2].answer: input should be a valid string", {2002},
    ),
    "question id not an integer": (
        Q_TRAIN, _assign("questions", 0, "question_id", "x"),
        f"{Q_TRAIN}: questions[0].question_id: input should be a valid integer", {1000},
    ),
    "annotation field missing": (
        A_VAL, lambda d: d["annotations"][0].pop("question_id"),
        f"{A_VAL}: annotations[0].question_id: missing", {101000},
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", list(ITEM_ERRORS))
def test_item_errors_name_file_and_json_path(root, case):
    name, edit, message, dropped = ITEM_ERRORS[case]
    if name is None:
        edit(root)
    else:
        _set(root / name, edit)
    with pytest.raises(DataError) as err:
        read_vqa(root)
    assert str(err.value).startswith(f"{root}/{message}")
    assert "\n" not in str(err.value)
    data = read_vqa(root, on_error="skip", val_fraction=0)
    assert data.skipped and data.skipped[0].problem == str(err.value)
    kept = {i.question_id for i in data.train + data.test}
    assert not kept & dropped
    assert len(kept) >= 39 - len(dropped) - 2  # only the bad entry's questions are left out


def test_skip_reports_a_missing_image_once(root):
    _missing_image(root)
    data = read_vqa(root, on_error="skip", val_fraction=0)
    assert len(data.skipped) == 1 and "(3 question(s) about image_id 2)" in data.skipped[0].problem
    assert len(data.train) == 27


FILE_ERRORS = {
    "missing file": (lambda r: (r / A_VAL).unlink(), f"{A_VAL}: file not found; expected the four VQA v2 files"),
    "invalid JSON": (lambda r: (r / Q_TRAIN).write_text("{"), f"{Q_TRAIN}:1: not valid JSON"),
    "top level a list": (lambda r: _write(r / Q_TRAIN, []), f"{Q_TRAIN}: expected an object with a 'questions' list"),
    "no annotations list": (lambda r: _write(r / A_TRAIN, {"questions": []}), f"{A_TRAIN}: expected an object with an 'annotations' list"),
    "swapped subsets": (lambda r: (r / A_TRAIN).write_text((r / A_VAL).read_text()), f"{A_TRAIN}: data_subtype: 'val2014'; expected 'train2014'"),
    "images.json a list": (lambda r: _write(r / "images.json", []), "images.json: got list; expected an object"),
    "images.json bad key": (lambda r: _write(r / "images.json", {"a": "x.png"}), "images.json: key 'a' is not an image id"),
    "no VQA files": (lambda r: [p.unlink() for p in r.glob("*.json")], ": VQA questions and annotations not found; expected v2_OpenEnded"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(FILE_ERRORS))
def test_file_errors_stop_even_under_skip(root, case):
    edit, message = FILE_ERRORS[case]
    edit(root)
    for on_error in ("raise", "skip"):
        with pytest.raises(DataError) as err:
            read_vqa(root, on_error=on_error)
        assert str(err.value).startswith(f"{root}{'' if message[0] == ':' else '/'}{message}")


def test_missing_root(tmp_path):
    with pytest.raises(DataError, match="data root not found"):
        read_vqa(tmp_path / "nowhere")


# --------------------------------------------------------------------------------------------
# csv_to_vqa
# --------------------------------------------------------------------------------------------


@pytest.fixture
def photos(tmp_path):
    folder = tmp_path / "photos"
    for k, colour in enumerate(["red", "green", "blue", "red", "green"]):
        _image(folder / f"p{k}.png", colour, fmt="PNG")
    _image(folder / "sub" / "deep.png", "blue", fmt="PNG")
    return folder


def _rows(photos):
    rows = [("image", "question", "answer")]
    for name, colour in [("p0.png", "red"), ("p1.png", "green"), ("p2.png", "blue"),
                         ("p3.png", "red"), ("p4.png", "green"), ("sub/deep.png", "blue")]:  # fmt: skip
        rows += [(name, "What color is it?", colour)] * 2 + [(name, "what color is it", "pink")]
        rows += [(name, "Is it red?", "yes" if colour == "red" else "no")]
        rows += [(name, "How many shapes?", "1"), (name, "How many shapes?", "2")]
    return rows


def _write_table(path, rows, delimiter=","):
    path.write_text("\n".join(delimiter.join(r) for r in rows) + "\n")


def test_csv_round_trip(photos, tmp_path):
    table = tmp_path / "qa.csv"
    _write_table(table, _rows(photos))
    counts = csv_to_vqa(photos, table, test_fraction=0.3, seed=1)
    assert counts == {"train_images": 4, "test_images": 2, "train_questions": 12,
                      "test_questions": 6, "answers": 36}  # fmt: skip
    for name in (Q_TRAIN, A_TRAIN, Q_VAL, A_VAL, "images.json"):
        assert (photos / name).is_file()
    data = read_vqa(photos, val_fraction=0.25)
    assert isinstance(data, VqaSplit) and not data.skipped
    assert (len(data.train), len(data.val), len(data.test)) == (9, 3, 6)
    everything = data.train + data.val + data.test
    assert len({i.question_id for i in everything}) == 18
    assert not _images(data.train) & _images(data.test)
    assert photos / "sub" / "deep.png" in {i.image for i in everything}
    by_text = {(i.image.name, i.question_text): i for i in everything}
    colour = by_text[("p1.png", "What color is it?")]
    assert colour.answers == ("green", "green", "pink")  # same words: one question
    assert colour.answer_type == "other" and colour.question_type == ""
    assert by_text[("p0.png", "Is it red?")].answer_type == "yes/no"
    assert by_text[("p0.png", "How many shapes?")].answer_type == "number"
    written = _load(photos / A_TRAIN)["annotations"][0]
    assert written["multiple_choice_answer"] in ("red", "green", "blue")
    assert set(written) >= {"question_id", "image_id", "question_type", "answer_type",
                            "multiple_choice_answer", "answers"}  # fmt: skip
    assert set(written["answers"][0]) == {"answer", "answer_confidence", "answer_id"}
    before = {n: (photos / n).read_text() for n in (Q_TRAIN, A_TRAIN, Q_VAL, "images.json")}
    csv_to_vqa(photos, table, test_fraction=0.3, seed=1)
    assert before == {n: (photos / n).read_text() for n in before}  # deterministic


def test_tsv_into_another_folder(photos, tmp_path):
    table = tmp_path / "qa.tsv"
    _write_table(table, _rows(photos), "\t")
    out = tmp_path / "written"
    counts = csv_to_vqa(photos, table, out=out)
    assert (counts["train_images"], counts["test_images"]) == (5, 1)
    data = read_vqa(out, val_fraction=0)
    folders = (photos.resolve(), photos.resolve() / "sub")
    assert all(i.image.resolve().parent in folders for i in data.train + data.test)
    assert len(data.train) + len(data.test) == 18


CSV_ERRORS = {
    "missing column": ([("image", "question")], "qa.csv:1: the header must name 'image', 'question' and 'answer' columns"),
    "empty question": ([("image", "question", "answer"), ("p0.png", "?", "yes")], "qa.csv:2: empty question '?'; expected words"),
    "empty answer": ([("image", "question", "answer"), ("p0.png", "Is it?", "yes"), ("p0.png", "Is it?", " ")], "qa.csv:3: empty answer to 'Is it?'"),
    "empty image": ([("image", "question", "answer"), (" ", "Is it?", "yes")], "qa.csv:2: empty image name"),
    "image missing": ([("image", "question", "answer"), ("p0.png", "Is it?", "yes"), ("nope.png", "Is it?", "no")], "qa.csv:3: image "),
    "no rows": ([("image", "question", "answer")], "qa.csv: no questions in it"),
    "tabs in a .csv": ([("image\tquestion\tanswer",), ("p0.png\tIs it?\tyes",)], "qa.csv:1: the header must name 'image', 'question' and 'answer' columns, got ['image\\tquestion\\tanswer'] (it looks tab-separated"),
    "unquoted comma": ([("image", "question", "answer"), ("p0.png", "is it red", " green or blue?", "green")], "qa.csv:2: 4 fields, the last ['green'] beyond the header's"),
    "one image": ([("image", "question", "answer"), ("p0.png", "Is it?", "yes")], "qa.csv: 1 image(s); expected at least 2"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(CSV_ERRORS))
def test_csv_errors_name_the_line(photos, tmp_path, case):
    rows, message = CSV_ERRORS[case]
    table = tmp_path / "qa.csv"
    _write_table(table, rows)
    with pytest.raises(DataError) as err:
        csv_to_vqa(photos, table)
    assert str(err.value).startswith(f"{table.parent}/{message}")
    assert not (photos / Q_TRAIN).exists()  # nothing written on error


def test_csv_bad_fraction_and_missing_file(photos, tmp_path):
    with pytest.raises(LrcnError, match=r"test_fraction: 1 is out of range"):
        csv_to_vqa(photos, tmp_path / "qa.csv", test_fraction=1)
    with pytest.raises(DataError, match=r"qa.csv: file not found"):
        csv_to_vqa(photos, tmp_path / "qa.csv")
