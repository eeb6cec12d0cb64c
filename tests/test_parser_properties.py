"""Property tests for the parsers: whatever text, bytes or JSON is put in a data-set list, an
annotation file or a config, the reader returns a result or raises its typed error (a
:class:`~lrcn.errors.LrcnError`), never anything else. Anything else would reach the CLI as
"internal error".

Strategies mix arbitrary input with fragments of the real formats, so that examples get past
the first check and reach the later ones. Files go into a fresh ``TemporaryDirectory`` per
example (a function-scoped ``tmp_path`` is shared by all examples of one test).
"""

from __future__ import annotations

import contextlib
import json
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lrcn.config import ConfigError, apply_overrides, read_config_file
from lrcn.data.formats.captions import read_coco_captions, read_flickr8k, read_karpathy_json
from lrcn.data.formats.ucf101 import read_ucf101
from lrcn.data.items import DataError

# Derandomized: the same examples every run (no flaky CI), and no .hypothesis/ folder in the
# repository; a failure prints its shrunk example.
FUZZ = settings(
    max_examples=300,
    report_multiple_bugs=False,  # one bug per test is enough; shrinking several takes long
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

ON_ERROR = st.sampled_from(["raise", "skip"])


def _write(path: Path, content: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content if isinstance(content, bytes) else content.encode())


def _lines_from(fragments: list[str], max_pieces: int = 25) -> st.SearchStrategy[str]:
    """Text made of format fragments, separators and arbitrary short text."""
    piece = st.one_of(
        st.sampled_from(fragments),
        st.sampled_from([" ", "\t", "\n", "\r\n", "\ufeff", "\u00b9", "\u0661", "\x00"]),
        st.text(max_size=4),
    )
    return st.lists(piece, max_size=max_pieces).map("".join)


def _file_content(fragments: list[str]) -> st.SearchStrategy[str | bytes]:
    return st.one_of(_lines_from(fragments), st.text(max_size=60), st.binary(max_size=60))


# --------------------------------------------------------------------------------------------
# UCF-101: classInd.txt and the train/test lists
# --------------------------------------------------------------------------------------------

UCF_FRAGMENTS = [
    "1 Alpha\n",
    "2 Beta\n",
    "1",
    "2",
    "3",
    "Alpha",
    "Beta",
    "Gamma",
    "Alpha/v_Alpha_g01_c01.avi",
    "Beta/v_Beta_g08_c01.avi",
    "alpha/v_Alpha_g01_c01.avi",
    "Alpha/../Beta/v_Beta_g08_c01.avi",
    "Alpha/",
    "/",
    "Alpha/v_Alpha_g01_c01.avi 1\n",
    "Beta/v_Beta_g08_c01.avi 2\n",
]


# Strings that look like numbers to someone: str.isdigit() is True for several of them.
NUMERALS = st.sampled_from(
    ["1", "2", "01", "0", "-1", "1.0", "\u00b9", "\u0661", "\u2460", "\uff11"]
)
UCF_LINES = st.lists(
    st.tuples(
        st.one_of(
            NUMERALS, st.sampled_from(["Alpha/v_Alpha_g01_c01.avi", "Beta/v_Beta_g08_c01.avi"])
        ),
        st.sampled_from([" ", "\t", "  "]),
        st.one_of(NUMERALS, st.sampled_from(["Alpha", "Beta", "alpha", "Gamma"])),
        st.sampled_from(["\n", "\r\n"]),
    ).map("".join),
    max_size=4,
).map("".join)


@FUZZ
@given(
    classind=st.one_of(st.just("1 Alpha\n2 Beta\n"), UCF_LINES, _file_content(UCF_FRAGMENTS)),
    train=st.one_of(UCF_LINES, _file_content(UCF_FRAGMENTS)),
    test=_file_content(UCF_FRAGMENTS),
    on_error=ON_ERROR,
)
def test_ucf101_lists(classind: str | bytes, train: str | bytes, test: str | bytes, on_error):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for name in ("Alpha", "Beta"):
            for group in ("g01", "g08"):
                _write(root / "UCF-101" / name / f"v_{name}_{group}_c01.avi", b"")
        lists = root / "ucfTrainTestlist"
        _write(lists / "classInd.txt", classind)
        _write(lists / "trainlist01.txt", train)
        _write(lists / "testlist01.txt", test)
        try:
            split = read_ucf101(root / "UCF-101", 1, None, on_error)
        except DataError:
            return
        assert split.classes and all(0 <= item.label < len(split.classes) for item in split.train)


@FUZZ
@given(classind=st.one_of(UCF_LINES, _file_content(UCF_FRAGMENTS)))
def test_ucf101_class_index_alone(classind: str | bytes):
    """classInd.txt with well-formed lists: only the class index varies."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        _write(root / "UCF-101" / "Alpha" / "v_Alpha_g01_c01.avi", b"")
        lists = root / "ucfTrainTestlist"
        _write(lists / "classInd.txt", classind)
        _write(lists / "trainlist01.txt", "Alpha/v_Alpha_g01_c01.avi 1\n")
        _write(lists / "testlist01.txt", "Alpha/v_Alpha_g01_c01.avi\n")
        with contextlib.suppress(DataError):
            read_ucf101(root / "UCF-101", 1, None, "raise")


# --------------------------------------------------------------------------------------------
# Flickr8k token file and image lists
# --------------------------------------------------------------------------------------------

FLICKR_FRAGMENTS = [
    "a.jpg",
    "b.jpg",
    "z.jpg",
    "#",
    "#0",
    "#1",
    "\t",
    "A dog runs.",
    "...",
    "a.jpg#0\tA dog.\n",
    "b.jpg#0\tA cat.\n",
    "a.jpg\n",
    "b.jpg\n",
]


@FUZZ
@given(
    tokens=_file_content(FLICKR_FRAGMENTS),
    train=_file_content(FLICKR_FRAGMENTS),
    dev=_file_content(FLICKR_FRAGMENTS),
    on_error=ON_ERROR,
)
def test_flickr8k_files(tokens: str | bytes, train: str | bytes, dev: str | bytes, on_error):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        _write(root / "Flicker8k_Dataset" / "a.jpg", b"")
        _write(root / "Flicker8k_Dataset" / "b.jpg", b"")
        text = root / "Flickr8k_text"
        _write(text / "Flickr8k.token.txt", tokens)
        _write(text / "Flickr_8k.trainImages.txt", train)
        _write(text / "Flickr_8k.devImages.txt", dev)
        _write(text / "Flickr_8k.testImages.txt", "")
        try:
            data = read_flickr8k(root, on_error)
        except DataError:
            return
        assert all(item.captions and all(item.captions) for item in data.train + data.val)


# --------------------------------------------------------------------------------------------
# Karpathy split JSON and COCO captions JSON
# --------------------------------------------------------------------------------------------

KEYS = [
    "images",
    "annotations",
    "filename",
    "filepath",
    "file_name",
    "split",
    "sentences",
    "tokens",
    "raw",
    "cocoid",
    "imgid",
    "id",
    "image_id",
    "caption",
]
NAMES = st.sampled_from(["a.jpg", "b.jpg", "z.jpg", "", ".", "..", "sub"])
SPLITS = st.sampled_from(["train", "val", "test", "restval", "dev", ""])

JSON = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.floats(),
        st.text(max_size=8),
        NAMES,
        SPLITS,
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=4)), inner, max_size=4),
    ),
    max_leaves=20,
)


def _maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly the plausible value, sometimes any JSON value."""
    return st.one_of(strategy, strategy, JSON)


KARPATHY_SENTENCE = st.fixed_dictionaries(
    {},
    optional={
        "tokens": _maybe(st.lists(st.text(max_size=6), max_size=4)),
        "raw": _maybe(st.text(max_size=20)),
    },
)
KARPATHY_IMAGE = st.fixed_dictionaries(
    {},
    optional={
        "filename": _maybe(NAMES),
        "filepath": _maybe(st.sampled_from(["", "sub", ".."])),
        "split": _maybe(SPLITS),
        "sentences": _maybe(st.lists(_maybe(KARPATHY_SENTENCE), max_size=3)),
        "cocoid": JSON,
        "imgid": JSON,
    },
)
KARPATHY = st.one_of(
    st.fixed_dictionaries({"images": st.lists(_maybe(KARPATHY_IMAGE), max_size=4)}),
    st.fixed_dictionaries({"images": _maybe(st.lists(_maybe(KARPATHY_IMAGE), max_size=4))}),
    JSON,
)


def _json_file(value: Any) -> str:
    return json.dumps(value)  # NaN and Infinity included: json.loads reads them back


@FUZZ
@given(data=st.one_of(KARPATHY.map(_json_file), st.text(max_size=80)), on_error=ON_ERROR)
def test_karpathy_json(data: str, on_error):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        _write(root / "images" / "a.jpg", b"")
        _write(root / "images" / "sub" / "b.jpg", b"")
        _write(root / "dataset.json", data)
        with contextlib.suppress(DataError):
            read_karpathy_json(root / "dataset.json", root / "images", on_error)


@FUZZ
@given(data=st.binary(max_size=80))
def test_karpathy_json_bytes(data: bytes):
    with tempfile.TemporaryDirectory() as tmp:
        _write(Path(tmp) / "dataset.json", data)
        with contextlib.suppress(DataError):
            read_karpathy_json(Path(tmp) / "dataset.json", tmp, "raise")


COCO_IMAGE = st.fixed_dictionaries(
    {},
    optional={
        "id": _maybe(st.integers(min_value=0, max_value=3)),
        "file_name": _maybe(NAMES),
    },
)
COCO_ANNOTATION = st.fixed_dictionaries(
    {},
    optional={
        "image_id": _maybe(st.integers(min_value=0, max_value=3)),
        "caption": _maybe(st.sampled_from(["A dog.", "", " . ", "cat"])),
        "id": JSON,
    },
)
COCO = st.one_of(
    st.fixed_dictionaries(
        {
            "images": st.lists(_maybe(COCO_IMAGE), max_size=4),
            "annotations": st.lists(_maybe(COCO_ANNOTATION), max_size=4),
        }
    ),
    JSON,
    st.fixed_dictionaries(
        {
            "images": _maybe(st.lists(_maybe(COCO_IMAGE), max_size=4)),
            "annotations": _maybe(st.lists(_maybe(COCO_ANNOTATION), max_size=4)),
        }
    ),
)


@FUZZ
@given(
    train=st.one_of(COCO.map(_json_file), st.text(max_size=60)),
    val=st.one_of(COCO.map(_json_file), st.binary(max_size=40)),
    on_error=ON_ERROR,
)
def test_coco_json(train: str, val: str | bytes, on_error):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        _write(root / "images" / "a.jpg", b"")
        _write(root / "images" / "b.jpg", b"")
        _write(root / "train.json", train)
        _write(root / "val.json", val)
        with contextlib.suppress(DataError):
            read_coco_captions(
                root / "train.json",
                root / "images",
                root / "val.json",
                root / "images",
                on_error=on_error,
            )


# --------------------------------------------------------------------------------------------
# Configs: --set overrides and YAML files
# --------------------------------------------------------------------------------------------

YAML_FRAGMENTS = [
    "task",
    "train",
    "data",
    "model",
    "epochs",
    "lr",
    ":",
    ": ",
    "- ",
    "  ",
    "\n",
    "{",
    "}",
    "[",
    "]",
    ",",
    "'",
    '"',
    "&a ",
    "*a",
    "? ",
    "<<: ",
    "!!python/object/apply:os.system [echo]",
    "!!int ",
    "!!float ",
    "!!binary ",
    "!!timestamp ",
    "!!set ",
    "2001-02-30",
    "2001-12-14t21:59:43.10-05:00",
    "0x1F",
    "1e400",
    ".nan",
    "~",
    "null",
    "yes",
    "#",
    "---\n",
    "...\n",
    "%YAML 1.1\n",
]

KEY = st.lists(
    st.one_of(st.sampled_from(["train", "data", "model", "lr", "epochs", ""]), st.text(max_size=4)),
    min_size=1,
    max_size=3,
).map(".".join)
YAML_WORDS = st.lists(st.sampled_from(YAML_FRAGMENTS), min_size=1, max_size=3).map("".join)
VALUE = st.one_of(
    YAML_WORDS, _lines_from(YAML_FRAGMENTS, max_pieces=3), _lines_from(YAML_FRAGMENTS)
)
OVERRIDE = st.one_of(
    st.tuples(KEY, st.sampled_from(["=", "= ", "==", ""]), VALUE).map("".join),
    st.text(max_size=20),
)


@FUZZ
@given(
    raw=st.dictionaries(st.sampled_from([*KEYS, "train", "data"]), JSON, max_size=4),
    overrides=st.lists(OVERRIDE, max_size=4),
)
def test_apply_overrides(raw: dict[str, Any], overrides: list[str]):
    try:
        result = apply_overrides(raw, overrides)
    except ConfigError:
        return
    assert isinstance(result, dict)


@FUZZ
@given(
    text=st.one_of(
        _lines_from(YAML_FRAGMENTS, max_pieces=6),
        _lines_from(YAML_FRAGMENTS),
        st.text(max_size=80),
        st.binary(max_size=60),
    )
)
def test_read_config_file(text: str | bytes):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "c.yaml"
        _write(path, text)
        try:
            raw, lines = read_config_file(path)
        except ConfigError:
            return
        assert isinstance(raw, dict) and isinstance(lines, dict)
