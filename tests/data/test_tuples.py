"""Visual tuple files (lrcn-tuples/1), per-slot labels, and slots mined from sentences."""

import json
import re

import numpy as np
import pytest

from lrcn.data.formats.tuples import (
    NONE_WORD,
    TupleSlots,
    mine_slots,
    read_tuples,
    slot_labels,
    write_tuples,
)
from lrcn.data.formats.video_captions import read_msrvtt
from lrcn.data.items import DataError
from lrcn.data.synthetic_motion import (
    COLOUR_WORDS,
    DIRECTION_WORDS,
    SHAPE_WORDS,
    motion_word_accuracy,
    write_motion_msrvtt,
)

SLOTS = TupleSlots.given(
    {"colour": ["red", "green", "blue"], "direction": ["left", "right", "up", "down"]}
)
GOOD_VIDEO = {"colour": {"red": 0.92, "green": 0.05, "blue": 0.03}, "direction": {"left": 1.0}}


@pytest.fixture(scope="module")
def motion(tmp_path_factory):
    root = write_motion_msrvtt(
        tmp_path_factory.mktemp("motion"), num_videos=72, frames=4, size=16, seed=0
    )
    return read_msrvtt(root)


# --------------------------------------------------------------------------------------------
# TupleSlots
# --------------------------------------------------------------------------------------------


def test_given_appends_none_and_fixes_the_layout():
    assert SLOTS.to_dict() == {
        "colour": ["red", "green", "blue", NONE_WORD],
        "direction": ["left", "right", "up", "down", NONE_WORD],
    }
    assert SLOTS.sizes() == [4, 5] and SLOTS.width == 9
    assert TupleSlots.given({"s": ["x", NONE_WORD, "y"]}).slots == {
        "s": ("x", NONE_WORD, "y")
    }  # kept where it is


@pytest.mark.parametrize(
    ("slots", "message"),
    [
        ({}, "slots: no slots"),
        ({"s": []}, "slots.s: no words"),
        ({"": ["x"]}, "slots.: empty slot name"),
        ({"s": ["x", ""]}, "slots.s[1]: empty word"),
        ({"s": ["x", "y", "x"]}, "slots.s[2]: duplicate word 'x'"),
    ],
)
def test_given_rejects_bad_layouts(slots, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        TupleSlots.given(slots)


def test_vector_distributions_best_words_are_inverses():
    vector = SLOTS.vector(GOOD_VIDEO)
    assert vector.dtype == np.float32 and vector.shape == (9,)
    np.testing.assert_allclose(vector, [0.92, 0.05, 0.03, 0, 1, 0, 0, 0, 0], atol=1e-7)
    back = SLOTS.distributions(vector)
    assert back == {"colour": {"red": 0.92, "green": 0.05, "blue": 0.03, NONE_WORD: 0.0},
                    "direction": {"left": 1.0, "right": 0.0, "up": 0.0, "down": 0.0, NONE_WORD: 0.0}}  # fmt: skip
    np.testing.assert_array_equal(SLOTS.vector(back), vector)
    assert SLOTS.best_words(vector) == {"colour": "red", "direction": "left"}
    assert SLOTS.distributions(vector, top=2) == {
        "colour": {"red": 0.92, "green": 0.05},
        "direction": {"left": 1.0, "right": 0.0},
    }
    assert list(
        SLOTS.distributions(
            SLOTS.vector({"colour": {"blue": 0.6, "red": 0.4}, "direction": {}}), top=2
        )["colour"]
    ) == ["blue", "red"]


def test_best_words_tie_goes_to_the_first_listed():
    vector = SLOTS.vector({"colour": {"green": 0.5, "blue": 0.5}, "direction": {}})
    assert SLOTS.best_words(vector) == {"colour": "green", "direction": "left"}


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: SLOTS.vector({**GOOD_VIDEO, "size": {}}), "unknown slot 'size'"),
        (lambda: SLOTS.vector({"colour": {"red": 1.0}}), "missing slot 'direction'"),
        (
            lambda: SLOTS.vector({**GOOD_VIDEO, "colour": {"pink": 1.0}}),
            "slot 'colour': unknown word 'pink'",
        ),
        (lambda: SLOTS.distributions(np.zeros(8)), r"shape \(9,\), got \(8,\)"),
        (lambda: SLOTS.best_words(np.zeros((1, 9))), r"shape \(9,\), got \(1, 9\)"),
        (lambda: SLOTS.distributions(np.zeros(9), top=0), "top must be >= 1"),
    ],
)
def test_slots_methods_name_bad_arguments(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# --------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------


def test_write_read_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    videos = {}
    for k in (10, 2, 0):
        parts = [rng.dirichlet(np.ones(n)) for n in SLOTS.sizes()]
        videos[f"video{k}"] = np.concatenate(parts).astype(np.float32)
    videos["video5"] = SLOTS.vector({"colour": {"blue": 1.0}, "direction": {NONE_WORD: 1.0}})
    path = write_tuples(tmp_path / "new" / "tuples.json", SLOTS, videos, source="a test")
    assert path == tmp_path / "new" / "tuples.json"
    assert [p.name for p in path.parent.iterdir()] == ["tuples.json"]  # no temporary file left
    document = json.loads(path.read_text())
    assert document["format"] == "lrcn-tuples/1" and document["source"] == "a test"
    assert list(document["videos"]) == ["video0", "video10", "video2", "video5"]  # sorted ids
    assert document["videos"]["video5"] == {
        "colour": {"blue": 1.0},
        "direction": {NONE_WORD: 1.0},
    }  # non-zero only
    back = read_tuples(path)
    assert back.slots == SLOTS and list(back.videos) == sorted(videos)
    for video_id, vector in videos.items():
        assert back.videos[video_id].dtype == np.float32
        np.testing.assert_allclose(back.videos[video_id], vector, atol=6e-7)
    # exactly, up to the 6-decimal rounding: writing what was read gives the same bytes
    again = write_tuples(tmp_path / "again.json", back.slots, back.videos, source="a test")
    assert again.read_bytes() == path.read_bytes()


def test_write_with_no_videos_and_over_an_old_file(tmp_path):
    path = write_tuples(tmp_path / "t.json", SLOTS, {"v": SLOTS.vector(GOOD_VIDEO)})
    write_tuples(path, SLOTS, {})
    assert read_tuples(path).videos == {} and read_tuples(path).slots == SLOTS


def test_write_refuses_what_read_would_refuse(tmp_path):
    bad = SLOTS.vector({"colour": {"red": 0.5}, "direction": {"up": 1.0}})
    with pytest.raises(
        ValueError, match=re.escape("video 'v3': slot 'colour': probabilities sum to 0.5;")
    ):
        write_tuples(tmp_path / "t.json", SLOTS, {"v3": bad})
    with pytest.raises(ValueError, match=r"shape \(9,\)"):
        write_tuples(tmp_path / "t.json", SLOTS, {"v3": np.ones(3)})
    assert not list(tmp_path.iterdir())


def test_read_keeps_the_file_layout(tmp_path):
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"slots": {"s": ["x", "y"]}, "videos": {"v": {"s": {"y": 1}}}}))
    data = read_tuples(path)  # no "format", no NONE_WORD, an int probability: all fine
    assert data.slots.slots == {"s": ("x", "y")}
    np.testing.assert_array_equal(data.videos["v"], [0.0, 1.0])


def _document(**changes):
    video3 = {"colour": {"blue": 1.0}, "direction": {"left": 0.5, "right": 0.5}}
    document = {"format": "lrcn-tuples/1", "source": "", "slots": SLOTS.to_dict(),
                "videos": {"video0": GOOD_VIDEO, "video3": video3}}  # fmt: skip
    for key, value in changes.items():
        if key.startswith("video3_"):
            slot = key.removeprefix("video3_")
            if value is None:
                del video3[slot]
            else:
                video3[slot] = value
        elif value is None:
            del document[key]
        else:
            document[key] = value
    return json.dumps(document)


# Each bad file: its text, and the message after "<path>: ".
BAD_FILES = {
    "missing file": (None, "file not found"),
    "bad json": (
        '{"slots": {',
        "1: not valid JSON (Expecting property name enclosed in double quotes)",
    ),
    "a list": (
        "[]",
        "top level is a list; expected an object with 'slots' and 'videos' objects (lrcn-tuples/1 format)",
    ),
    "no slots": (
        _document(slots=None),
        "missing 'slots'; expected an object with 'slots' and 'videos' objects (lrcn-tuples/1 format)",
    ),
    "no videos": (
        _document(videos=None),
        "missing 'videos'; expected an object with 'slots' and 'videos' objects (lrcn-tuples/1 format)",
    ),
    "format": (
        _document(format="lrcn-tuples/2"),
        "format: 'lrcn-tuples/2' is not supported; expected 'lrcn-tuples/1'",
    ),
    "source": (_document(source=3), "source: got int; expected a string"),
    "slots a list": (
        _document(slots=["red"]),
        "slots: got list; expected an object mapping each slot name to its list of words",
    ),
    "no slot": (_document(slots={}), "slots: no slots; expected at least one slot with its words"),
    "empty slot": (
        _document(slots={"colour": []}),
        "slots.colour: no words; expected at least one",
    ),
    "slot words": (
        _document(slots={"colour": ["red", 1]}),
        "slots.colour: not a list of strings; expected the slot's words in order",
    ),
    "duplicate": (
        _document(slots={"colour": ["red", "red"]}),
        "slots.colour[1]: duplicate word 'red'",
    ),
    "videos a list": (
        _document(videos=[]),
        "videos: got list; expected an object mapping each video id to its tuple",
    ),
    "video a list": (
        _document(videos={"video3": []}),
        "videos.video3: got list; expected an object mapping each slot to {word: probability}",
    ),
    "missing slot": (_document(video3_direction=None), "videos.video3: missing slot 'direction'"),
    "extra slot": (
        _document(video3_size={"big": 1.0}),
        "videos.video3.size: unknown slot; expected one of colour, direction",
    ),
    "slot a word": (
        _document(video3_direction="left"),
        "videos.video3.direction: expected an object, got str",
    ),
    "string probability": (
        _document(video3_direction={"left": "1"}),
        "videos.video3.direction.left: input should be a valid number",
    ),
    "bool probability": (
        _document(video3_direction={"left": True}),
        "videos.video3.direction.left: input should be a valid number",
    ),
    "unknown word": (
        _document(video3_direction={"sideways": 1.0}),
        "videos.video3.direction.sideways: unknown word; expected one of left, right, up, down, <none>",
    ),
    "above one": (
        _document(video3_direction={"left": 1.5}),
        "videos.video3.direction.left: 1.5 is not a probability; expected a finite number in [0, 1]",
    ),
    "negative": (
        _document(video3_direction={"left": 1.2, "up": -0.2}),
        "videos.video3.direction.up: -0.2 is not a probability; expected a finite number in [0, 1]",
    ),
    "nan": (
        _document(video3_direction={"left": float("nan")}),
        "videos.video3.direction.left: nan is not a probability; expected a finite number in [0, 1]",
    ),
    "sum": (
        _document(video3_direction={"left": 0.5, "up": 0.1}),
        "videos.video3.direction: probabilities sum to 0.6; expected a distribution summing to 1",
    ),
    "empty": (
        _document(video3_direction={}),
        "videos.video3.direction: probabilities sum to 0; expected a distribution summing to 1",
    ),
}


@pytest.mark.parametrize("case", BAD_FILES)
def test_bad_files_name_the_file_and_json_path(tmp_path, case):
    text, message = BAD_FILES[case]
    path = tmp_path / "tuples.json"
    if text is not None:
        path.write_text(text)
    with pytest.raises(DataError) as err:
        read_tuples(path)
    assert str(err.value) == f"{path}:{message}" if message[0].isdigit() else f"{path}: {message}"
    assert "\n" not in str(err.value)


def test_sum_within_tolerance_is_accepted(tmp_path):
    path = tmp_path / "t.json"
    path.write_text(_document(video3_direction={"left": 0.5, "up": 0.505}))
    assert read_tuples(path).videos["video3"][SLOTS.sizes()[0] + 2] == pytest.approx(0.505)


# --------------------------------------------------------------------------------------------
# slot_labels
# --------------------------------------------------------------------------------------------

SHAPES = TupleSlots.given({"colour": ["red", "green", "blue"], "shape": ["circle", "square"]})


def test_slot_labels_counts_aliases():
    sentences = [("a", "red", "disc"), ("the", "ball", "is", "green"), ("a", "green", "square")]
    # green in 2 sentences, red in 1; circle via disc and ball in 2, square in 1
    assert slot_labels(sentences, SHAPES, aliases={"disc": "circle", "ball": "circle"}) == [1, 0]
    assert slot_labels(sentences, SHAPES) == [1, 1]  # without aliases only "square" names a shape


def test_slot_labels_one_vote_per_sentence_and_ties_to_the_first_listed():
    sentences = [("blue", "blue", "blue", "square"), ("red", "circle")]
    assert slot_labels(sentences, SHAPES) == [0, 0]  # red and blue 1 each: red is listed first


def test_slot_labels_none_when_no_sentence_fills_a_slot():
    assert slot_labels([("a", "blue", "thing"), ()], SHAPES) == [2, 2]  # shape -> NONE_WORD
    assert slot_labels([], SHAPES) == [3, 2]
    with pytest.raises(ValueError, match="slot 'shape': no sentence names any of its words"):
        slot_labels([("blue",)], TupleSlots({"colour": ("red", "blue"), "shape": ("circle",)}))
    with pytest.raises(ValueError, match="alias 'disc' -> 'circel': no slot has the word 'circel'"):
        slot_labels([("blue",)], SHAPES, aliases={"disc": "circel"})


def test_slot_labels_match_the_motion_truth(motion):
    """Labels from every video's references, written as a sentence, score 1.0 on the data
    set's own check of colour, shape and direction."""
    tables = {"colour": COLOUR_WORDS, "shape": SHAPE_WORDS, "direction": DIRECTION_WORDS}
    slots = TupleSlots.given({name: list(table) for name, table in tables.items()})
    aliases = {
        w: value
        for table in tables.values()
        for value, words in table.items()
        for w in words
        if w != value
    }
    items = motion.train + motion.val + motion.test
    sentences = []
    for item in items:
        labels = slot_labels(item.captions, slots, aliases)
        assert NONE_WORD not in [
            slots.slots[name][i] for name, i in zip(slots.slots, labels, strict=True)
        ]
        sentences.append(
            " ".join(slots.slots[name][i] for name, i in zip(slots.slots, labels, strict=True))
        )
    references = [[" ".join(c) for c in item.captions] for item in items]
    assert motion_word_accuracy(sentences, references) == {
        "colour": 1.0,
        "shape": 1.0,
        "direction": 1.0,
        "all": 1.0,
    }


# --------------------------------------------------------------------------------------------
# mine_slots
# --------------------------------------------------------------------------------------------


def test_mine_slots_finds_colour_shape_and_direction(motion):
    sentences = [c for item in motion.train for c in item.captions]
    mined = mine_slots(sentences)
    assert list(mined.slots) == [f"slot{k}" for k in range(1, len(mined.slots) + 1)]
    words = {name: set(ws) - {NONE_WORD} for name, ws in mined.slots.items()}
    assert all(ws[-1] == NONE_WORD for ws in mined.slots.values())
    colours = set().union(*COLOUR_WORDS.values())
    shapes = set().union(*SHAPE_WORDS.values())
    assert colours == {"red", "green", "blue"}
    assert colours in words.values()
    assert any({"left", "right"} <= ws and not ws & colours for ws in words.values())
    assert not any(ws & colours and ws & shapes for ws in words.values())
    assert mine_slots(sentences) == mined  # deterministic


def test_mine_slots_on_a_small_worked_example():
    sentences = (
        [("red", "ball", "rolls")] * 5
        + [("blue", "cube", "rolls")] * 5
        + [("the", "red", "box")] * 5
    )
    mined = mine_slots(sentences, min_count=5)
    # order: red, rolls (10 each), then ball, blue, box, cube (5 each, alphabetical); "the" is
    # a stop word. red opens slot 1; rolls co-occurs with red: slot 2; ball co-occurs with
    # both: slot 3; blue never meets red: slot 1; box meets red, never rolls: slot 2; cube
    # meets blue and rolls, never ball: slot 3
    assert mined.to_dict() == {
        "slot1": ["red", "blue", NONE_WORD],
        "slot2": ["rolls", "box", NONE_WORD],
        "slot3": ["ball", "cube", NONE_WORD],
    }


def test_mine_slots_limits_and_errors():
    sentences = [("red", "ball")] * 5 + [("blue", "cube")] * 5 + [("green", "disc")] * 5
    # alphabetical (all seen 5 times): ball opens the slot, blue joins, cube meets blue and
    # there is no room for a second slot, disc joins, green meets disc, red meets ball
    assert mine_slots(sentences, max_slots=1).to_dict() == {
        "slot1": ["ball", "blue", "disc", NONE_WORD]
    }
    assert mine_slots(sentences, max_slots=1, words_per_slot=2).to_dict() == {
        "slot1": ["ball", "blue", NONE_WORD]
    }
    with pytest.raises(ValueError, match="no slot of 2 or more"):
        mine_slots([("red", "ball")] * 5)  # red and ball co-occur: two slots of one word
    with pytest.raises(ValueError, match="no slot of 2 or more"):
        mine_slots(sentences, min_count=6)
    with pytest.raises(ValueError, match="max_slots >= 1"):
        mine_slots(sentences, max_slots=0)
