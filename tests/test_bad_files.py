"""A corpus of bad input files, made on the fly, each with the outcome it must keep.

Every row makes its file(s) in a fresh folder and states one outcome for the library call that
reads them:

- ``error(Cls, *fragments)``: the call raises ``Cls`` (a :class:`~lrcn.errors.LrcnError`) and
  its text holds every fragment (the file, often its line, and what was wrong);
- ``skipped(*fragments)``: under ``on_error="skip"`` the reader lists the entry in ``skipped``
  (and an optional check on the result holds);
- ``accepted(check)``: the file loads and the check on the result holds.

Pickled payloads touch ``<folder>/MARKER`` when unpickled; after every row the marker must not
exist (``test_the_payloads_are_live`` shows that an unsafe load would create it). A few rows go
through the CLI to show the one line on stderr and the exit code.
"""

from __future__ import annotations

import json
import pickle
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
import torch
import yaml
from PIL import Image
from typer.testing import CliRunner

from lrcn.checkpoint import BundleError, load_bundle, load_train_state, save_bundle
from lrcn.cli import app
from lrcn.config import ConfigError, read_config_file
from lrcn.data.features import FeatureCache
from lrcn.data.formats.captions import read_coco_captions, read_flickr8k, read_karpathy_json
from lrcn.data.formats.ucf101 import read_ucf101
from lrcn.data.items import DataError
from lrcn.data.video_io import VideoError, probe_video, read_frames, read_image, write_video
from lrcn.errors import LrcnError
from lrcn.fusion import fuse

# torch.load warns about the protocol of a plain pickle before refusing it.
pytestmark = pytest.mark.filterwarnings("ignore:Detected pickle protocol:UserWarning")

MARKER = "MARKER"
Call = Callable[[str], Any]  # on_error ("raise" or "skip") -> what the reader returns
Make = Callable[[Path], Call]  # a fresh folder -> the call reading the files made there


@dataclass(frozen=True)
class Outcome:
    kind: str  # "error", "skipped" or "accepted"
    error: type[LrcnError] | None = None
    fragments: tuple[str, ...] = ()
    check: Callable[[Any], bool] | None = None


def error(cls: type[LrcnError], *fragments: str) -> Outcome:
    return Outcome("error", cls, fragments)


def skipped(*fragments: str, check: Callable[[Any], bool] | None = None) -> Outcome:
    return Outcome("skipped", None, fragments, check)


def accepted(check: Callable[[Any], bool]) -> Outcome:
    return Outcome("accepted", check=check)


class _Touch:
    """Unpickling this calls ``Path.touch(marker)``: proof that a loader ran code from a file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (Path.touch, (self.marker,))


def _payload(tmp: Path) -> _Touch:
    return _Touch(tmp / MARKER)


def _object_array(tmp: Path) -> np.ndarray:
    array = np.empty(2, dtype=object)
    array[0] = array[1] = _payload(tmp)
    return array


def _write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


# --------------------------------------------------------------------------------------------
# Videos
# --------------------------------------------------------------------------------------------


def _noise(frames: int, height: int = 32, width: int = 32) -> np.ndarray:
    """Noise compresses badly, so the frames, not the AVI header, make most of the file."""
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (frames, height, width, 3), dtype=np.uint8)


def _video(tmp: Path, name: str = "v.avi", frames: int = 24, **kwargs: Any) -> Path:
    height, width = kwargs.pop("size", (32, 32))
    path = tmp / name
    write_video(path, _noise(frames, height, width), **kwargs)
    return path


def _truncated(tmp: Path) -> Path:
    """A 24-frame AVI cut to 40% of its bytes (about the first 7 frames decode)."""
    path = _video(tmp)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * 0.4)])
    return path


def _frames_of(make_path: Callable[[Path], Path], indices: list[int] | None = None) -> Make:
    return lambda t: lambda on_error: read_frames(make_path(t), indices)


def _probe_of(make_path: Callable[[Path], Path]) -> Make:
    return lambda t: lambda on_error: probe_video(make_path(t))


def _shape(shape: tuple[int, ...]) -> Callable[[Any], bool]:
    return lambda frames: frames.shape == shape and frames.dtype == np.uint8


_H264 = "libx264" if "libx264" in av.codecs_available else "h264"
_needs_h264 = pytest.mark.skipif(
    not {"libx264", "h264"} & set(av.codecs_available), reason="no h264 encoder in this PyAV"
)

VIDEOS: dict[str, tuple[Make, Outcome]] = {
    "video: zero bytes": (
        _frames_of(lambda t: _write(t / "z.avi", b"")),
        error(VideoError, "z.avi: not a readable video"),
    ),
    "video: zero bytes (probe)": (
        _probe_of(lambda t: _write(t / "z.avi", b"")),
        error(VideoError, "z.avi: not a readable video"),
    ),
    "video: a text file named .avi": (
        _frames_of(lambda t: _write(t / "notes.avi", "not a video, just text\n" * 20)),
        error(VideoError, "notes.avi: not a readable video"),
    ),
    "video: a text file named .avi (probe)": (
        _probe_of(lambda t: _write(t / "notes.avi", "not a video, just text\n" * 20)),
        error(VideoError, "notes.avi: not a readable video"),
    ),
    "video: missing": (
        _frames_of(lambda t: t / "gone.avi"),
        error(VideoError, "gone.avi: file not found"),
    ),
    "video: an empty frame folder": (
        _frames_of(lambda t: (t / "frames").mkdir() or t / "frames"),
        error(VideoError, "frames: no frame images"),
    ),
    # With no indices, the frames decoded are compared with the count the container declares.
    "video: truncated to 40%, all frames": (
        _frames_of(_truncated),
        error(VideoError, "v.avi", "truncated"),
    ),
    "video: truncated to 40%, a frame past the cut": (
        _frames_of(_truncated, [0, 20]),
        error(VideoError, "v.avi: frame 20 asked for", "truncated"),
    ),
    # The container still records 24 frames: probing reads no frame data (documented).
    "video: truncated to 40% (probe)": (
        _probe_of(_truncated),
        accepted(lambda info: info.num_frames >= 1 and (info.height, info.width) == (32, 32)),
    ),
    "video: 3 frames": (
        _frames_of(lambda t: _video(t, frames=3)),
        accepted(_shape((3, 32, 32, 3))),
    ),
    "video: 3 frames (probe)": (
        _probe_of(lambda t: _video(t, frames=3)),
        accepted(lambda info: info.num_frames == 3),
    ),
    # write_video says H and W must be even for yuv420p, but PyAV's mpeg4 encodes 33x35 and it
    # decodes back at its own size.
    "video: odd size 33x35": (
        _frames_of(lambda t: _video(t, frames=4, size=(35, 33))),
        accepted(_shape((4, 35, 33, 3))),
    ),
    "video: h264 .mp4": pytest.param(
        _frames_of(lambda t: _video(t, "v.mp4", frames=8, codec=_H264)),
        accepted(_shape((8, 32, 32, 3))),
        marks=_needs_h264,
    ),
    "video: a unicode path": (
        _frames_of(lambda t: _video(t / "dossier é", "vidéo_日本.avi", frames=4)),
        accepted(_shape((4, 32, 32, 3))),
    ),
}


# --------------------------------------------------------------------------------------------
# UCF-101 split files
# --------------------------------------------------------------------------------------------

CLASSIND = "1 Alpha\n2 Beta\n"
TRAIN = "Alpha/v_Alpha_g08_c01.avi 1\nBeta/v_Beta_g08_c01.avi 2\n"
TEST = "Alpha/v_Alpha_g01_c01.avi\nBeta/v_Beta_g01_c01.avi\n"


def _ucf(
    classind: str | bytes | None = CLASSIND,
    train: str | bytes = TRAIN,
    test: str | bytes = TEST,
    root: str = "UCF-101",
    explicit_lists: bool = False,
) -> Make:
    """A two-class UCF-101 layout; the videos are empty files (the reader checks existence)."""

    def make(tmp: Path) -> Call:
        for name in ("Alpha", "Beta"):
            for group in ("g01", "g08"):
                _write(tmp / "UCF-101" / name / f"v_{name}_{group}_c01.avi", b"")
        lists = tmp / "ucfTrainTestlist"
        if classind is not None:
            _write(lists / "classInd.txt", classind)
        _write(lists / "trainlist01.txt", train)
        _write(lists / "testlist01.txt", test)
        split_dir = lists if explicit_lists else None
        return lambda on_error: read_ucf101(tmp / root, 1, split_dir, on_error)

    return make


def _data_section(kind: str, root: str) -> Make:
    """``read_video_split`` / ``read_caption_split`` of a data section whose root is ``root``
    (inside the fresh folder, where ``a-file`` is a file)."""

    def make(tmp: Path) -> Call:
        _write(tmp / "a-file", "")
        if kind == "video":
            from lrcn.data.video_split import VideoDataConfig, read_video_split

            config = VideoDataConfig(format="ucf101", root=tmp / root)
            return lambda on_error: read_video_split(config)
        from lrcn.data.captions import CaptionDataConfig, read_caption_split

        captions = CaptionDataConfig(format="flickr8k", root=tmp / root)
        return lambda on_error: read_caption_split(captions)

    return make


def _ucf_sizes(train: int, test: int) -> Callable[[Any], bool]:
    return lambda split: (
        split.classes == ["Alpha", "Beta"] and (len(split.train), len(split.test)) == (train, test)
    )


def _once(split: Any) -> bool:
    names = [item.path.name for item in split.train]
    return names.count("v_Alpha_g08_c01.avi") == 1 and len(names) == 2


UCF: dict[str, tuple[Make, Outcome]] = {
    "ucf101: well formed (control)": (_ucf(), accepted(_ucf_sizes(2, 2))),
    "ucf101: CRLF and a BOM": (
        _ucf(
            classind=b"\xef\xbb\xbf1 Alpha\r\n2 Beta\r\n",
            train=b"\xef\xbb\xbf" + TRAIN.replace("\n", "\r\n").encode(),
        ),
        accepted(_ucf_sizes(2, 2)),
    ),
    "ucf101: blank lines": (
        _ucf(classind="\n1 Alpha\n\n  \n2 Beta\n\n", train="\n" + TRAIN.replace("\n", "\n\n")),
        accepted(_ucf_sizes(2, 2)),
    ),
    "ucf101: classInd.txt missing": (
        _ucf(classind=None),
        error(DataError, "classInd.txt: split file not found"),
    ),
    "ucf101: classInd.txt with a bad line": (
        _ucf(classind="1 Alpha\nBeta\n"),
        error(DataError, "classInd.txt:2: expected '<index> <ClassName>', got 'Beta'"),
    ),
    "ucf101: classInd.txt out of order": (
        _ucf(classind="2 Alpha\n1 Beta\n"),
        error(DataError, "classInd.txt:1: expected class index 1, got 2"),
    ),
    "ucf101: classInd.txt empty": (
        _ucf(classind="\n\n"),
        error(DataError, "classInd.txt: no classes listed"),
    ),
    "ucf101: a class twice in classInd.txt": (
        _ucf(classind="1 Alpha\n2 Beta\n3 Alpha\n"),
        error(DataError, "classInd.txt", "twice"),
    ),
    # '¹'.isdigit() is True, but int('¹') raises ValueError: still a DataError on that line.
    "ucf101: classInd.txt with a superscript digit": (
        _ucf(classind="\u00b9 Alpha\n2 Beta\n"),
        error(DataError, "classInd.txt:1"),
    ),
    "ucf101: trainlist not UTF-8": (
        _ucf(train=TRAIN.encode() + b"Beta/v_Beta_g01_c01.avi \xff\xfe2\n"),
        error(DataError, "trainlist01.txt:3: not UTF-8 text"),
    ),
    "ucf101: classInd.txt not UTF-8": (
        _ucf(classind=b"1 Alpha\n2 B\xe9ta\n"),
        error(DataError, "classInd.txt:2: not UTF-8 text"),
    ),
    "ucf101: a label that does not match its class": (
        _ucf(train="Alpha/v_Alpha_g08_c01.avi 2\nBeta/v_Beta_g08_c01.avi 2\n"),
        error(DataError, "trainlist01.txt:1: label '2' does not match class 'Alpha'"),
    ),
    "ucf101: a label that does not match its class (skip)": (
        _ucf(train="Alpha/v_Alpha_g08_c01.avi 2\nBeta/v_Beta_g08_c01.avi 2\n"),
        skipped("trainlist01.txt:1: label '2' does not match", check=lambda s: len(s.train) == 1),
    ),
    # Likewise for a label.
    "ucf101: a superscript-digit label": (
        _ucf(train="Alpha/v_Alpha_g08_c01.avi \u00b9\n"),
        error(DataError, "trainlist01.txt:1"),
    ),
    "ucf101: a class not in classInd.txt": (
        _ucf(train=TRAIN + "Gamma/v_Gamma_g08_c01.avi 1\n"),
        error(DataError, "trainlist01.txt:3: class 'Gamma' is not in classInd.txt"),
    ),
    "ucf101: a class not in classInd.txt (skip)": (
        _ucf(test=TEST + "Gamma/v_Gamma_g01_c01.avi\n"),
        skipped("testlist01.txt:3: class 'Gamma' is not in classInd.txt"),
    ),
    "ucf101: a listed video that does not exist": (
        _ucf(train=TRAIN + "Alpha/v_Alpha_g09_c01.avi 1\n"),
        error(DataError, "trainlist01.txt:3: listed video", "v_Alpha_g09_c01.avi does not exist"),
    ),
    "ucf101: a listed video that does not exist (skip)": (
        _ucf(train=TRAIN + "Alpha/v_Alpha_g09_c01.avi 1\n"),
        skipped("v_Alpha_g09_c01.avi does not exist", check=lambda s: len(s.train) == 2),
    ),
    "ucf101: a train line without its label": (
        _ucf(train="Alpha/v_Alpha_g08_c01.avi\n"),
        error(DataError, "trainlist01.txt:1: expected '<Class>/<video>.avi <label>'"),
    ),
    "ucf101: a test line with a label": (
        _ucf(test="Alpha/v_Alpha_g01_c01.avi 1\n"),
        error(DataError, "testlist01.txt:1: expected '<Class>/<video>.avi', got"),
    ),
    "ucf101: a line with three columns (skip)": (
        _ucf(train=TRAIN + "Alpha/v_Alpha_g01_c01.avi 1 extra\n"),
        skipped("trainlist01.txt:3: expected '<Class>/<video>.avi <label>'"),
    ),
    "ucf101: a path without its class folder": (
        _ucf(train="v_Alpha_g08_c01.avi 1\n"),
        error(DataError, "trainlist01.txt:1: expected"),
    ),
    # A video listed twice would count twice in training and in the test metric.
    "ucf101: a duplicated line in the train list": (
        _ucf(train=TRAIN + "Alpha/v_Alpha_g08_c01.avi 1\n"),
        error(DataError, "trainlist01.txt", "duplicate"),
    ),
    "ucf101: a duplicated line in the train list (skip)": (
        _ucf(train=TRAIN + "Alpha/v_Alpha_g08_c01.avi 1\n"),
        skipped("trainlist01.txt", "duplicate", check=_once),
    ),
    "ucf101: a duplicated line in the test list": (
        _ucf(test=TEST + "Beta/v_Beta_g01_c01.avi\n"),
        error(DataError, "testlist01.txt", "duplicate"),
    ),
    # read_ucf101 itself reports a missing root by what it then misses; the data section's
    # reader (below) names the root first.
    "ucf101: the data root does not exist, nor lists beside it": (
        lambda t: lambda on_error: read_ucf101(t / "a" / "UCF-101", 1, None, on_error),
        error(DataError, "UCF-101: data root not found"),
    ),
    "ucf101: the data root does not exist (lists given)": (
        _ucf(root="nope", explicit_lists=True),
        error(DataError, "nope: data root not found"),
    ),
    # The data section's readers check the root before any format reader looks inside.
    "data section: the video root does not exist": (
        _data_section("video", "nope/UCF-101"),
        error(DataError, "nope/UCF-101: data.root: data root not found"),
    ),
    "data section: the video root is a file": (
        _data_section("video", "a-file"),
        error(DataError, "a-file: data.root: is a file, not a folder"),
    ),
    "data section: the caption root does not exist": (
        _data_section("captions", "nope"),
        error(DataError, "nope: data.root: data root not found"),
    ),
}


# --------------------------------------------------------------------------------------------
# Images
# --------------------------------------------------------------------------------------------


def _image_call(make_path: Callable[[Path], Path]) -> Make:
    def make(tmp: Path) -> Call:
        path = make_path(tmp)

        def call(on_error: str) -> tuple[np.ndarray, list[str]]:
            notes: list[str] = []
            return read_image(path, notes), notes

        return call

    return make


def _jpeg(tmp: Path, name: str = "a.jpg") -> Path:
    rng = np.random.default_rng(1)
    path = tmp / name
    Image.fromarray(rng.integers(0, 256, (48, 48, 3), dtype=np.uint8)).save(path, quality=90)
    return path


def _half_jpeg(tmp: Path) -> Path:
    path = _jpeg(tmp, "half.jpg")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _saved(name: str, image: Image.Image) -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        image.save(tmp / name)
        return tmp / name

    return make


RAMP16 = np.linspace(0, 65535, 32 * 32).round().astype(np.uint16).reshape(32, 32)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def _bomb(tmp: Path) -> Path:
    """A 60-byte PNG whose header declares 20000 x 20000 pixels (Pillow refuses over ~179 M)."""
    header = struct.pack(">IIBBBBB", 20000, 20000, 8, 0, 0, 0, 0)  # 8-bit grayscale
    data = b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header)
    data += _png_chunk(b"IDAT", zlib.compress(b"")) + _png_chunk(b"IEND", b"")
    return _write(tmp / "bomb.png", data)


def _noted(shape: tuple[int, ...], note: str) -> Callable[[Any], bool]:
    def check(result: tuple[np.ndarray, list[str]]) -> bool:
        image, notes = result
        return image.shape == shape and image.dtype == np.uint8 and any(note in n for n in notes)

    return check


def _scaled_16_bit(result: tuple[np.ndarray, list[str]]) -> bool:
    image, _ = result
    return image.shape == (32, 32, 3) and abs(float(image.mean()) - RAMP16.mean() / 257) <= 1


IMAGES: dict[str, tuple[Make, Outcome]] = {
    "image: zero bytes": (
        _image_call(lambda t: _write(t / "z.jpg", b"")),
        error(VideoError, "z.jpg: unreadable image (cannot identify image file"),
    ),
    "image: a text file named .png": (
        _image_call(lambda t: _write(t / "notes.png", "not an image\n")),
        error(VideoError, "notes.png: unreadable image"),
    ),
    "image: missing": (
        _image_call(lambda t: t / "gone.jpg"),
        error(VideoError, "gone.jpg: unreadable image"),
    ),
    # Pillow opens the header, then fails on decoding ("image file is truncated").
    "image: a JPEG cut in half": (
        _image_call(_half_jpeg),
        error(VideoError, "half.jpg: unreadable image (image file is truncated"),
    ),
    "image: CMYK JPEG": (
        _image_call(_saved("cmyk.jpg", Image.new("CMYK", (16, 12), (10, 20, 30, 40)))),
        accepted(_noted((12, 16, 3), "cmyk.jpg: converted CMYK to RGB")),
    ),
    "image: palette PNG": (
        _image_call(_saved("p.png", Image.new("RGB", (16, 12), (200, 10, 10)).convert("P"))),
        accepted(_noted((12, 16, 3), "converted P to RGB")),
    ),
    "image: RGBA PNG": (
        _image_call(_saved("rgba.png", Image.new("RGBA", (16, 12), (1, 2, 3, 4)))),
        accepted(_noted((12, 16, 3), "converted RGBA to RGB")),
    ),
    # 16-bit values are scaled to 8 bits (value / 257), not clipped to white.
    "image: 16-bit grayscale PNG": (
        _image_call(_saved("g16.png", Image.fromarray(RAMP16))),
        accepted(_scaled_16_bit),
    ),
    "image: a header declaring 20000x20000": (
        _image_call(_bomb),
        error(VideoError, "bomb.png: refused"),
    ),
}


# --------------------------------------------------------------------------------------------
# Caption files
# --------------------------------------------------------------------------------------------

TOKENS = "a.jpg#0\tA dog runs.\na.jpg#1\tA brown dog.\nb.jpg#0\tA cat.\nc.jpg#0\tA bird.\n"


def _flickr(
    tokens: str | bytes = TOKENS,
    train: str | None = "a.jpg\n",
    dev: str = "b.jpg\n",
    test: str = "c.jpg\n",
    images: tuple[str, ...] = ("a.jpg", "b.jpg", "c.jpg"),
    text_folder: bool = True,
) -> Make:
    """A Flickr8k layout of three images (empty files: the reader checks that they exist)."""

    def make(tmp: Path) -> Call:
        (tmp / "Flicker8k_Dataset").mkdir()
        for name in images:
            _write(tmp / "Flicker8k_Dataset" / name, b"")
        if text_folder:
            text = tmp / "Flickr8k_text"
            _write(text / "Flickr8k.token.txt", tokens)
            for side, content in (("train", train), ("dev", dev), ("test", test)):
                if content is not None:
                    _write(text / f"Flickr_8k.{side}Images.txt", content)
        return lambda on_error: read_flickr8k(tmp, on_error)

    return make


def _image(name: str = "a.jpg", split: str = "train", **changes: Any) -> dict[str, Any]:
    entry = {"filename": name, "split": split, "sentences": [{"tokens": ["a", "dog"]}]}
    entry.update(changes)
    return entry


KARPATHY = {
    "images": [
        _image(),
        _image("b.jpg", "restval", sentences=[{"raw": "A cat sits."}]),
        _image("c.jpg", "test"),
    ]
}


def _karpathy(data: Any) -> Make:
    """``dataset.json`` (a value as JSON, or raw text/bytes) beside images a.jpg, b.jpg, c.jpg."""

    def make(tmp: Path) -> Call:
        for name in ("a.jpg", "b.jpg", "c.jpg"):
            _write(tmp / "images" / name, b"")
        raw = data if isinstance(data, str | bytes) else json.dumps(data)
        path = _write(tmp / "dataset.json", raw)
        return lambda on_error: read_karpathy_json(path, tmp / "images", on_error)

    return make


def _karpathy_images(*images: dict[str, Any]) -> Make:
    return _karpathy({"images": list(images)})


COCO_TRAIN = {
    "images": [{"id": 1, "file_name": "a.jpg"}],
    "annotations": [{"image_id": 1, "caption": "A dog runs."}],
}
COCO_VAL = {
    "images": [{"id": 2, "file_name": "b.jpg"}, {"id": 3, "file_name": "c.jpg"}],
    "annotations": [{"image_id": 2, "caption": "A cat."}, {"image_id": 3, "caption": "A bird."}],
}


def _coco(train: Any = None, val: Any = None) -> Make:
    def make(tmp: Path) -> Call:
        _write(tmp / "train" / "a.jpg", b"")
        _write(tmp / "val" / "b.jpg", b"")
        _write(tmp / "val" / "c.jpg", b"")
        for name, data, default in (("t.json", train, COCO_TRAIN), ("v.json", val, COCO_VAL)):
            data = default if data is None else data
            _write(tmp / name, data if isinstance(data, str | bytes) else json.dumps(data))
        return lambda on_error: read_coco_captions(
            tmp / "t.json", tmp / "train", tmp / "v.json", tmp / "val", on_error=on_error
        )

    return make


def _coco_train(images: list[Any] | None = None, annotations: list[Any] | None = None) -> Make:
    return _coco(
        train={
            "images": COCO_TRAIN["images"] if images is None else images,
            "annotations": COCO_TRAIN["annotations"] if annotations is None else annotations,
        }
    )


def _caption_sizes(train: int, val: int, test: int) -> Callable[[Any], bool]:
    return lambda split: (len(split.train), len(split.val), len(split.test)) == (train, val, test)


CAPTIONS: dict[str, tuple[Make, Outcome]] = {
    # Flickr8k
    "flickr8k: well formed (control)": (
        _flickr(),
        accepted(lambda s: _caption_sizes(1, 1, 1)(s) and len(s.train[0].captions) == 2),
    ),
    "flickr8k: no Flickr8k_text folder": (
        _flickr(text_folder=False),
        error(DataError, "expected Flicker8k_Dataset/ and Flickr8k_text/ inside it"),
    ),
    "flickr8k: a token line without a tab": (
        _flickr(tokens=TOKENS.replace("a.jpg#1\t", "a.jpg#1 ")),
        error(DataError, "Flickr8k.token.txt:2: expected '<image>.jpg#<k><TAB><caption>'"),
    ),
    "flickr8k: a token line without a tab (skip)": (
        _flickr(tokens=TOKENS.replace("a.jpg#1\t", "a.jpg#1 ")),
        skipped(
            "Flickr8k.token.txt:2: expected '<image>.jpg#<k><TAB><caption>'",
            check=lambda s: len(s.train[0].captions) == 1,
        ),
    ),
    "flickr8k: a token line without #k": (
        _flickr(tokens=TOKENS.replace("c.jpg#0\t", "c.jpg\t")),
        error(DataError, "Flickr8k.token.txt:4: expected '<image>.jpg#<k><TAB><caption>'"),
    ),
    "flickr8k: a caption id twice": (
        _flickr(tokens=TOKENS + "a.jpg#0\tAnother dog.\n"),
        error(DataError, "Flickr8k.token.txt:5: duplicate caption id a.jpg#0 (first on line 1)"),
    ),
    "flickr8k: an empty caption": (
        _flickr(tokens=TOKENS.replace("A brown dog.", " ... ")),
        error(DataError, "Flickr8k.token.txt:2: empty caption"),
    ),
    "flickr8k: token file not UTF-8": (
        _flickr(tokens=TOKENS.encode().replace(b"A cat.", b"A caf\xe9.")),
        error(DataError, "Flickr8k.token.txt:3: not UTF-8 text"),
    ),
    "flickr8k: train list missing": (
        _flickr(train=None),
        error(DataError, "Flickr_8k.trainImages.txt: split file not found"),
    ),
    "flickr8k: an image in two lists": (
        _flickr(test="c.jpg\na.jpg\n"),
        error(DataError, "Flickr_8k.testImages.txt:2: image a.jpg is already listed in "),
    ),
    "flickr8k: an image with no captions": (
        _flickr(train="a.jpg\nz.jpg\n"),
        error(DataError, "Flickr_8k.trainImages.txt:2: image z.jpg has no captions"),
    ),
    "flickr8k: an image with no captions (skip)": (
        _flickr(train="a.jpg\nz.jpg\n"),
        skipped("image z.jpg has no captions", check=_caption_sizes(1, 1, 1)),
    ),
    "flickr8k: a listed image that does not exist": (
        _flickr(images=("a.jpg", "b.jpg")),
        error(DataError, "Flickr_8k.testImages.txt:1: listed image", "c.jpg does not exist"),
    ),
    # Karpathy JSON
    "karpathy: well formed (control)": (
        _karpathy(KARPATHY),
        accepted(_caption_sizes(2, 0, 1)),  # restval joins train
    ),
    "karpathy: missing": (
        lambda t: lambda on_error: read_karpathy_json(t / "none.json", t, on_error),
        error(DataError, "none.json: file not found"),
    ),
    "karpathy: not JSON": (
        _karpathy('{"images": [\n  {"filename": "a.jpg",\n}'),
        error(DataError, "dataset.json:3: not valid JSON"),
    ),
    # Bytes that are not UTF-8 are bad input like invalid JSON (read_text() raises
    # UnicodeDecodeError).
    "karpathy: not UTF-8": (
        _karpathy(b'{"images": [{"filename": "caf\xe9.jpg"}]}'),
        error(DataError, "dataset.json"),
    ),
    "karpathy: a list, not an object": (
        _karpathy([KARPATHY]),
        error(DataError, "dataset.json: expected an object with an 'images' list"),
    ),
    "karpathy: images not a list": (
        _karpathy({"images": {"a.jpg": {}}}),
        error(DataError, "dataset.json: expected an object with an 'images' list"),
    ),
    "karpathy: an image without sentences": (
        _karpathy_images(_image(), {"filename": "b.jpg", "split": "val"}),
        error(
            DataError,
            "images[1].sentences: missing (an entry needs 'filename', 'split', 'sentences')",
        ),
    ),
    "karpathy: an image that is a string (skip)": (
        _karpathy_images(_image(), "b.jpg"),
        skipped("images[1]: expected an object with 'filename'", check=_caption_sizes(1, 0, 0)),
    ),
    "karpathy: an image twice": (
        _karpathy_images(_image(), _image("a.jpg", "test")),
        error(DataError, "images[1]: image a.jpg is also images[0]"),
    ),
    "karpathy: an unknown split": (
        _karpathy_images(_image(split="holdout")),
        error(DataError, "images[0]: split 'holdout' is not train/val/test/restval"),
    ),
    "karpathy: an empty caption": (
        _karpathy_images(_image(sentences=[{"tokens": [], "raw": " . "}])),
        error(DataError, "images[0] (a.jpg): empty caption"),
    ),
    "karpathy: no captions": (
        _karpathy_images(_image(sentences=[])),
        error(DataError, "images[0] (a.jpg): no captions"),
    ),
    "karpathy: a missing image file": (
        _karpathy_images(_image("z.jpg")),
        error(DataError, "images[0]: image", "z.jpg does not exist"),
    ),
    "karpathy: a missing image file (skip)": (
        _karpathy_images(_image(), _image("z.jpg")),
        skipped("z.jpg does not exist", check=_caption_sizes(1, 0, 0)),
    ),
    # Values of the wrong JSON type are bad input too, not AttributeError/TypeError.
    "karpathy: sentences that are strings": (
        _karpathy_images(_image(sentences=["A dog runs."])),
        error(DataError, "dataset.json", "images[0]"),
    ),
    "karpathy: sentences not a list": (
        _karpathy_images(_image(sentences=3)),
        error(DataError, "dataset.json", "images[0]"),
    ),
    "karpathy: a filename that is a number": (
        _karpathy_images(_image(name=7)),  # type: ignore[arg-type]
        error(DataError, "dataset.json", "images[0]"),
    ),
    # COCO captions
    "coco: well formed (control)": (_coco(), accepted(_caption_sizes(1, 1, 1))),
    "coco: not JSON": (_coco(train="{'images': []}"), error(DataError, "t.json:1: not valid JSON")),
    "coco: without annotations": (
        _coco(val={"images": []}),
        error(DataError, "v.json: expected COCO captions JSON with 'images' and 'annotations'"),
    ),
    "coco: a list, not an object": (
        _coco(train=[]),
        error(DataError, "t.json: expected COCO captions JSON"),
    ),
    "coco: an empty caption": (
        _coco_train(annotations=[*COCO_TRAIN["annotations"], {"image_id": 1, "caption": "?!"}]),
        error(DataError, "t.json: annotations[1]: empty caption"),
    ),
    "coco: an empty caption (skip)": (
        _coco_train(annotations=[*COCO_TRAIN["annotations"], {"image_id": 1, "caption": ""}]),
        skipped("annotations[1]: empty caption", check=_caption_sizes(1, 1, 1)),
    ),
    "coco: an image id twice": (
        _coco_train(images=[*COCO_TRAIN["images"], {"id": 1, "file_name": "a.jpg"}]),
        error(DataError, "t.json: duplicate image id 1"),
    ),
    "coco: a missing image file": (
        _coco_train(images=[{"id": 1, "file_name": "z.jpg"}]),
        error(DataError, "z.jpg (id 1) does not exist"),
    ),
    "coco: an image with no captions (skip)": (
        _coco_train(images=[*COCO_TRAIN["images"], {"id": 9, "file_name": "a.jpg"}]),
        skipped("t.json: image id 9 has no captions", check=_caption_sizes(1, 1, 1)),
    ),
    # Missing keys and values of the wrong type are bad input, not KeyError/ValueError.
    "coco: an annotation without image_id": (
        _coco_train(annotations=[{"caption": "A dog."}]),
        error(DataError, "t.json", "annotations[0]"),
    ),
    "coco: an image without file_name": (
        _coco_train(images=[{"id": 1}]),
        error(DataError, "t.json"),
    ),
    "coco: an image_id that is not a number": (
        _coco_train(annotations=[{"image_id": "one", "caption": "A dog."}]),
        error(DataError, "t.json", "annotations[0]"),
    ),
    "coco: a caption that is a number": (
        _coco_train(annotations=[{"image_id": 1, "caption": 42}]),
        error(DataError, "t.json", "annotations[0]"),
    ),
}


# --------------------------------------------------------------------------------------------
# Pickled payloads in place of weights, training state, features and scores
# --------------------------------------------------------------------------------------------

BUNDLE_CONFIG = {
    "task": "activity",
    "data": {"format": "ucf101", "root": "data/UCF-101"},
    "model": {"name": "lrcn", "backbone": "simple_cnn", "hidden_size": 8, "dropout": 0.0},
    "train": {"device": "cpu"},
}


def _bundle(run: Path) -> Path:
    """A real (tiny) activity bundle in ``run/best``; returns ``run``."""
    from lrcn.models import build_model
    from lrcn.models.activity import ActivityExtras

    extras = ActivityExtras(classes=["a", "b"])
    model = build_model(BUNDLE_CONFIG["model"], extras)
    save_bundle(run / "best", model, BUNDLE_CONFIG, extras, model.backbone.preprocess)
    return run


def _pickled(tmp: Path) -> bytes:
    return pickle.dumps(_payload(tmp))


def _torch_saved(tmp: Path, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(_payload(tmp), path)
    return path


def _bad_weights(kind: str) -> Make:
    def make(tmp: Path) -> Call:
        run = _bundle(tmp / "run")
        weights = run / "best" / "model.safetensors"
        if kind == "torch":
            _torch_saved(tmp, weights)
        else:
            weights.write_bytes(_pickled(tmp))
        return lambda on_error: load_bundle(run)

    return make


def _bad_train_state(kind: str) -> Make:
    def make(tmp: Path) -> Call:
        path = tmp / "last" / "train_state.pt"
        if kind == "torch":
            _torch_saved(tmp, path)
        else:
            _write(path, _pickled(tmp))
        return lambda on_error: load_train_state(tmp / "last")

    return make


def _bad_features(kind: str) -> Make:
    """A real cache entry (its key matches the source), then its ``.npy`` replaced by a pickle;
    with ``kind`` "no key", a pickle where no entry was ever made."""

    def make(tmp: Path) -> Call:
        from lrcn.backbones import create_backbone

        cache = FeatureCache(tmp / "features", {"backbone": "simple_cnn", "kind": "pooled"})
        source = _write(tmp / "v.avi", b"a video's bytes")
        path = cache.path_for(source)
        if kind == "no key":
            path.parent.mkdir(parents=True)
        else:
            frames = np.zeros((2, 32, 32, 3), dtype=np.uint8)
            backbone = create_backbone("simple_cnn")
            cache.extract(
                [source], backbone, "pooled", torch.device("cpu"), load_frames=lambda s: frames
            )
            assert FeatureCache(cache.folder.parent, cache.identity).load(source).shape[0] == 2
        if kind == "npy":
            np.save(path, _object_array(tmp), allow_pickle=True)
        else:
            path.write_bytes(_pickled(tmp))
        fresh = FeatureCache(cache.folder.parent, cache.identity)  # nothing checked yet
        return lambda on_error: fresh.load(source)

    return make


def _scores(tmp: Path, kind: str) -> Call:
    """Two activity runs whose ``scores.npz`` (what ``lrcn fuse`` reads) is ``kind``."""
    runs = [_bundle(tmp / "rgb"), _bundle(tmp / "flow")]
    good = {
        "videos": np.array(["Alpha/v1.avi", "Beta/v2.avi"]),
        "labels": np.array([0, 1]),
        "probs": np.array([[0.9, 0.1], [0.2, 0.8]], dtype=np.float32),
        "classes": np.array(["a", "b"]),
    }
    for run in runs:
        path = run / "eval-best-test" / "scores.npz"
        path.parent.mkdir()
        if kind == "good":
            np.savez(path, **good)  # type: ignore[arg-type]
        elif kind == "objects":
            np.savez(path, **(good | {"videos": _object_array(tmp)}))  # type: ignore[arg-type]
        elif kind == "pickle":
            path.write_bytes(_pickled(tmp))
        elif kind == "no probs":
            np.savez(path, **{k: v for k, v in good.items() if k != "probs"})  # type: ignore[arg-type]
        elif kind == "text":
            path.write_text("videos,labels\n")
    return lambda on_error: fuse(runs, log=lambda line: None)


def _bad_backbone_weights(name: str, kind: str) -> Make:
    def make(tmp: Path) -> Call:
        from lrcn.backbones import backbone_from_config

        path = tmp / name
        if kind == "torch":
            _torch_saved(tmp, path)
        else:
            _write(path, _pickled(tmp))
        model = {"backbone": "torchvision:resnet18", "backbone_weights": path}
        return lambda on_error: backbone_from_config(model)

    return make


PICKLES: dict[str, tuple[Make, Outcome]] = {
    "pickle: bundle model.safetensors (pickle.dumps)": (
        _bad_weights("pickle"),
        error(BundleError, "model.safetensors: not a readable safetensors file"),
    ),
    "pickle: bundle model.safetensors (torch.save)": (
        _bad_weights("torch"),
        error(BundleError, "model.safetensors: not a readable safetensors file"),
    ),
    "pickle: train_state.pt (torch.save)": (
        _bad_train_state("torch"),
        error(BundleError, "train_state.pt: cannot be loaded safely"),
    ),
    "pickle: train_state.pt (pickle.dumps)": (
        _bad_train_state("pickle"),
        error(BundleError, "train_state.pt: cannot be loaded safely"),
    ),
    "pickle: feature cache .npy (object array)": (
        _bad_features("npy"),
        error(VideoError, "v.avi: cached features", "unreadable", "delete it"),
    ),
    "pickle: feature cache .npy (pickle.dumps)": (
        _bad_features("pickle"),
        error(VideoError, "v.avi: cached features", "unreadable", "delete it"),
    ),
    "pickle: feature cache .npy with no key": (
        _bad_features("no key"),
        error(VideoError, "v.avi: has no cached features made from its current content"),
    ),
    "scores.npz: well formed (control)": (
        lambda t: _scores(t, "good"),
        accepted(lambda result: result["videos"] == 2 and len(result["fused"]) == 2),
    ),
    # np.load refuses to unpickle; that refusal, a missing array or a file that is not an
    # .npz is a DataError naming the file, not a ValueError/KeyError ("internal error").
    "pickle: scores.npz (object array)": (
        lambda t: _scores(t, "objects"),
        error(DataError, "scores.npz"),
    ),
    "pickle: scores.npz (pickle.dumps)": (
        lambda t: _scores(t, "pickle"),
        error(DataError, "scores.npz"),
    ),
    "scores.npz: without probs": (
        lambda t: _scores(t, "no probs"),
        error(DataError, "scores.npz", "probs"),
    ),
    "scores.npz: a text file": (
        lambda t: _scores(t, "text"),
        error(DataError, "scores.npz"),
    ),
    "pickle: backbone weights .pth (torch.save)": (
        _bad_backbone_weights("w.pth", "torch"),
        error(ConfigError, "w.pth: model.backbone_weights: not a state dict that loads safely"),
    ),
    "pickle: backbone weights .pt (pickle.dumps)": (
        _bad_backbone_weights("w.pt", "pickle"),
        error(ConfigError, "w.pt: model.backbone_weights: not a state dict that loads safely"),
    ),
    "pickle: backbone weights .safetensors (torch.save)": (
        _bad_backbone_weights("w.safetensors", "torch"),
        error(ConfigError, "w.safetensors: model.backbone_weights: not a state dict"),
    ),
}


# --------------------------------------------------------------------------------------------
# YAML configs
# --------------------------------------------------------------------------------------------


def _yaml(text: str | bytes | Callable[[Path], str]) -> Make:
    def make(tmp: Path) -> Call:
        content = text(tmp) if callable(text) else text
        path = _write(tmp / "c.yaml", content)
        return lambda on_error: read_config_file(path)

    return make


DUPLICATE_TOP = """\
task: activity
data:
  format: ucf101
  root: data/UCF-101
train:
  epochs: 1
train:
  epochs: 2
"""

DUPLICATE_NESTED = """\
task: activity
train:
  epochs: 1
  lr: 0.1
  epochs: 2
"""


def _lines_of(raw: dict[str, Any], lines: dict[tuple[str, ...], int]) -> bool:
    return raw == {"task": "activity", "train": {"epochs": 2}} and lines[("train", "epochs")] == 3


YAMLS: dict[str, tuple[Make, Outcome]] = {
    "yaml: CRLF and a BOM": (
        _yaml(b"\xef\xbb\xbftask: activity\r\ntrain:\r\n  epochs: 2\r\n"),
        accepted(lambda result: _lines_of(*result)),
    ),
    "yaml: a python/object/apply tag": (
        _yaml(lambda t: f'task: !!python/object/apply:os.system ["touch {t / MARKER}"]\n'),
        error(ConfigError, "c.yaml: not valid YAML"),
    ),
    "yaml: a python/object/new tag": (
        _yaml(lambda t: f'train: !!python/object/new:pathlib.Path ["{t / MARKER}"]\n'),
        error(ConfigError, "c.yaml: not valid YAML"),
    ),
    "yaml: a python/name tag": (
        _yaml("task: !!python/name:os.system\n"),
        error(ConfigError, "c.yaml: not valid YAML"),
    ),
    "yaml: invalid": (_yaml("task: [activity\n"), error(ConfigError, "c.yaml: not valid YAML")),
    "yaml: a tab indent": (
        _yaml("train:\n\tepochs: 1\n"),
        error(ConfigError, "c.yaml: not valid YAML"),
    ),
    "yaml: a list, not a mapping": (
        _yaml("- task\n- data\n"),
        error(ConfigError, "c.yaml: expected a mapping with task, data, model and train"),
    ),
    "yaml: a scalar": (_yaml("activity\n"), error(ConfigError, "c.yaml: expected a mapping")),
    "yaml: empty": (_yaml(""), error(ConfigError, "c.yaml: expected a mapping")),
    "yaml: not UTF-8": (
        _yaml(b"task: activit\xe9\n"),
        error(ConfigError, "c.yaml: cannot be read as UTF-8 text"),
    ),
    "yaml: missing": (
        lambda t: lambda on_error: read_config_file(t / "none.yaml"),
        error(ConfigError, "none.yaml: config file not found"),
    ),
    "yaml: a folder": (
        lambda t: lambda on_error: read_config_file(t),
        error(ConfigError, "is a folder; expected a YAML config file"),
    ),
    # PyYAML keeps the last of two equal keys silently; a duplicate is an error instead.
    "yaml: a top-level key twice": (
        _yaml(DUPLICATE_TOP),
        error(ConfigError, "c.yaml:7", "duplicate", "train"),
    ),
    "yaml: a nested key twice": (
        _yaml(DUPLICATE_NESTED),
        error(ConfigError, "c.yaml:5", "duplicate", "epochs"),
    ),
    # PyYAML's constructors raise ValueError (not yaml.YAMLError) for a date that does not
    # exist or an explicit !!int that is not one: still a ConfigError naming the file.
    "yaml: a date that does not exist": (
        _yaml("task: activity\ntrain:\n  seed: 2001-02-30\n"),
        error(ConfigError, "c.yaml"),
    ),
    "yaml: an !!int that is not a number": (
        _yaml("train:\n  epochs: !!int ten\n"),
        error(ConfigError, "c.yaml"),
    ),
    # An anchor inside itself makes a recursive mapping (walking it recursed forever); no
    # config can be recursive, so it is refused.
    "yaml: a recursive anchor": (
        _yaml("task: activity\ntrain: &t\n  again: *t\n"),
        error(ConfigError, "c.yaml"),
    ),
}


# --------------------------------------------------------------------------------------------
# The corpus
# --------------------------------------------------------------------------------------------


def _rows() -> list[Any]:
    rows = []
    for table in (VIDEOS, UCF, IMAGES, CAPTIONS, PICKLES, YAMLS):
        for name, row in table.items():
            if hasattr(row, "marks"):  # already a pytest.param, with its marks
                rows.append(pytest.param(*row.values, id=name, marks=row.marks))
            else:
                rows.append(pytest.param(*row, id=name))
    return rows


def _describe(result: Any) -> str:
    if isinstance(result, np.ndarray):
        return f"array {result.dtype} {result.shape}"
    return repr(result)[:500]


@pytest.mark.parametrize(("make", "outcome"), _rows())
def test_bad_file(make: Make, outcome: Outcome, tmp_path: Path) -> None:
    call = make(tmp_path)
    if outcome.kind == "error":
        assert outcome.error is not None
        with pytest.raises(outcome.error) as info:
            call("raise")
        message = str(info.value)
        missing = [f for f in outcome.fragments if f not in message]
        assert not missing, f"{missing} not in {message!r}"
    elif outcome.kind == "skipped":
        result = call("skip")
        problems = [p.problem for p in result.skipped]
        assert any(all(f in p for f in outcome.fragments) for p in problems), (
            outcome.fragments,
            problems,
        )
        assert outcome.check is None or outcome.check(result), _describe(result)
    else:
        result = call("raise")
        assert outcome.check is not None and outcome.check(result), _describe(result)
    assert not (tmp_path / MARKER).exists(), "a loader ran code from a pickled payload"


def test_the_payloads_are_live(tmp_path: Path) -> None:
    """Unsafe loads of the payloads above do run them: the marker checks are not vacuous."""
    marker = tmp_path / MARKER
    loads: list[Callable[[], Any]] = [
        lambda: pickle.loads(_pickled(tmp_path)),
        lambda: torch.load(_torch_saved(tmp_path, tmp_path / "p.pt"), weights_only=False),
        lambda: (
            np.save(tmp_path / "o.npy", _object_array(tmp_path), allow_pickle=True)
            or np.load(tmp_path / "o.npy", allow_pickle=True)
        ),
    ]
    for load in loads:
        marker.unlink(missing_ok=True)
        load()
        assert marker.exists()
    marker.unlink()
    yaml.unsafe_load(f'x: !!python/object/apply:os.system ["touch {marker}"]\n')
    assert marker.exists()


# --------------------------------------------------------------------------------------------
# Through the CLI: one line on stderr, exit code 2 (1 for predict inputs that fail)
# --------------------------------------------------------------------------------------------

runner = CliRunner()


def _cli_yaml(text: str) -> Callable[[Path], list[str]]:
    def args(tmp: Path) -> list[str]:
        _write(tmp / "c.yaml", text.replace("MARKER", str(tmp / MARKER)))
        return ["train", str(tmp / "c.yaml"), "--out", str(tmp / "run")]

    return args


def _cli_fuse(kind: str) -> Callable[[Path], list[str]]:
    def args(tmp: Path) -> list[str]:
        _scores(tmp, kind)
        return ["fuse", str(tmp / "rgb"), str(tmp / "flow")]

    return args


def _cli_predict(make_video: Callable[[Path], Path]) -> Callable[[Path], list[str]]:
    def args(tmp: Path) -> list[str]:
        return ["predict", str(_bundle(tmp / "run")), str(make_video(tmp))]

    return args


def _cli_root_missing(tmp: Path) -> list[str]:
    config = {
        "task": "activity",
        "data": {"format": "ucf101", "root": str(tmp / "nope" / "UCF-101"), "num_workers": 0},
        "model": {"name": "lrcn", "backbone": "simple_cnn", "hidden_size": 8},
        "train": {"epochs": 1, "device": "cpu"},
    }
    _write(tmp / "c.yaml", yaml.safe_dump(config))
    return ["train", str(tmp / "c.yaml"), "--out", str(tmp / "run")]


CLI_CASES: dict[str, tuple[Callable[[Path], list[str]], int, tuple[str, ...]]] = {
    "cli: train, a python tag in the config": (
        _cli_yaml('task: !!python/object/apply:os.system ["touch MARKER"]\n'),
        2,
        ("c.yaml: not valid YAML",),
    ),
    "cli: train, a key twice in the config": (
        _cli_yaml(DUPLICATE_NESTED),
        2,
        ("c.yaml:5", "duplicate"),
    ),
    "cli: train, a date that does not exist": (
        _cli_yaml("task: activity\ntrain:\n  seed: 2001-02-30\n"),
        2,
        ("c.yaml",),
    ),
    "cli: train, the data root does not exist": (
        _cli_root_missing,
        2,
        ("nope", "not found"),
    ),
    "cli: fuse, pickled scores.npz": (
        _cli_fuse("objects"),
        2,
        ("scores.npz",),
    ),
    "cli: predict, a zero-byte video": (
        _cli_predict(lambda t: _write(t / "z.avi", b"")),
        1,
        ("z.avi: not a readable video",),
    ),
    "cli: predict, a text file named .avi": (
        _cli_predict(lambda t: _write(t / "notes.avi", "text\n")),
        1,
        ("notes.avi: not a readable video",),
    ),
}


@pytest.fixture
def _no_traceback_escape_hatch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LRCN_TRACEBACK", raising=False)


@pytest.mark.usefixtures("_no_traceback_escape_hatch")
@pytest.mark.parametrize("case", list(CLI_CASES))
def test_bad_file_through_the_cli(case: str, tmp_path: Path) -> None:
    make_args, code, fragments = CLI_CASES[case]
    result = runner.invoke(app, make_args(tmp_path))
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert result.exit_code == code, (result.exit_code, result.stderr)
    assert "Traceback" not in result.output and "internal error" not in result.stderr
    assert len(errors) == 1, result.stderr
    assert all(f in errors[0] for f in fragments), errors[0]
    assert not (tmp_path / MARKER).exists()
