"""Caption data sets in the real layouts: Flickr8k, Karpathy JSON, COCO, and the CSV converter."""

import json
import shutil

import pytest

from lrcn.data.formats.captions import (
    csv_to_karpathy,
    read_coco_captions,
    read_flickr8k,
    read_karpathy_json,
)
from lrcn.data.items import DataError
from lrcn.data.synthetic import write_shapes_flickr8k


@pytest.fixture(scope="module")
def flickr(tmp_path_factory):
    return write_shapes_flickr8k(tmp_path_factory.mktemp("flickr"), num_images=40, size=32, seed=4)


@pytest.fixture
def flickr_copy(flickr, tmp_path):
    shutil.copytree(flickr, tmp_path / "f")
    return tmp_path / "f"


def test_flickr8k_layout(flickr):
    data = read_flickr8k(flickr)
    assert (len(data.train), len(data.val), len(data.test)) == (28, 6, 6)
    item = data.train[0]
    assert item.image.is_file() and len(item.captions) == 5
    assert all(c == tuple(w.lower() for w in c) and "." not in c for c in item.captions)
    colours = {"red", "green", "blue", "yellow"}
    assert all(colours & set(c) for c in item.captions)  # every caption names a colour


def _edit(path, old, new):
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def test_flickr8k_bad_lines_are_named(flickr_copy):
    tokens = flickr_copy / "Flickr8k_text" / "Flickr8k.token.txt"
    first = tokens.read_text().splitlines()[0]
    _edit(tokens, first, first.split("\t")[0] + "\t  .  ")
    with pytest.raises(DataError, match=r"Flickr8k.token.txt:1: empty caption"):
        read_flickr8k(flickr_copy)
    _edit(tokens, first.split("\t")[0] + "\t  .  ", first.replace("\t", " "))
    with pytest.raises(
        DataError, match=r"Flickr8k.token.txt:1: expected '<image>.jpg#<k><TAB><caption>'"
    ):
        read_flickr8k(flickr_copy)
    skipped = read_flickr8k(flickr_copy, on_error="skip").skipped
    assert len(skipped) == 1


def test_flickr8k_missing_image(flickr_copy):
    name = (flickr_copy / "Flickr8k_text" / "Flickr_8k.testImages.txt").read_text().split()[0]
    (flickr_copy / "Flicker8k_Dataset" / name).unlink()
    with pytest.raises(
        DataError, match=rf"Flickr_8k.testImages.txt:1: listed image .*{name} does not exist"
    ):
        read_flickr8k(flickr_copy)


def _as_karpathy(data):
    images = []
    for split, items in (("train", data.train), ("val", data.val), ("test", data.test)):
        for i, item in enumerate(items):
            images.append({"filename": item.image.name, "split": "restval" if split == "train" and i % 2 else split,
                           "sentences": [{"tokens": list(c)} for c in item.captions], "imgid": len(images)})  # fmt: skip
    return {"dataset": "flickr8k", "images": images}


def test_karpathy_json_round_trip(flickr, tmp_path):
    data = read_flickr8k(flickr)
    path = tmp_path / "dataset_flickr8k.json"
    path.write_text(json.dumps(_as_karpathy(data)))
    again = read_karpathy_json(path, flickr / "Flicker8k_Dataset")
    assert len(again.train) == len(data.train)  # restval joins train
    assert [i.captions for i in again.test] == [i.captions for i in data.test]
    broken = _as_karpathy(data)
    broken["images"][3]["sentences"][0]["tokens"] = []
    path.write_text(json.dumps(broken))
    with pytest.raises(DataError, match=r"images\[3\] \(.*\): empty caption"):
        read_karpathy_json(path, flickr / "Flicker8k_Dataset")
    path.write_text('{"images": [')
    with pytest.raises(DataError, match=r"dataset_flickr8k.json:1: not valid JSON"):
        read_karpathy_json(path, flickr)


def test_coco_captions(flickr, tmp_path):
    data = read_flickr8k(flickr)
    folder = flickr / "Flicker8k_Dataset"

    def coco(items):
        return {"images": [{"id": i, "file_name": it.image.name} for i, it in enumerate(items)],
                "annotations": [{"image_id": i, "id": 10 * i + k, "caption": " ".join(c).upper() + "."}
                                for i, it in enumerate(items) for k, c in enumerate(it.captions)]}  # fmt: skip

    (tmp_path / "train.json").write_text(json.dumps(coco(data.train)))
    (tmp_path / "val.json").write_text(json.dumps(coco(data.val + data.test)))
    split = read_coco_captions(tmp_path / "train.json", folder, tmp_path / "val.json", folder)
    assert len(split.train) == 28 and len(split.val) + len(split.test) == 12
    assert split.train[0].captions == data.train[0].captions  # tokenised, lower-cased


def test_csv_converter_for_your_own_photos(flickr, tmp_path):
    folder = flickr / "Flicker8k_Dataset"
    names = sorted(p.name for p in folder.iterdir())[:10]
    rows = (
        ["image,caption"]
        + [f"{n},A photo number {i}." for i, n in enumerate(names)]
        + [f"{names[0]},Another caption"]
    )
    (tmp_path / "caps.csv").write_text("\n".join(rows) + "\n")
    counts = csv_to_karpathy(
        folder, tmp_path / "caps.csv", tmp_path / "mine.json", val_fraction=0.2, test_fraction=0.2
    )
    assert counts == {"train": 6, "val": 2, "test": 2}
    split = read_karpathy_json(tmp_path / "mine.json", folder)
    assert sum(len(i.captions) for i in split.train + split.val + split.test) == 11
    (tmp_path / "bad.csv").write_text("image,caption\nnope.jpg,a cat\n")
    with pytest.raises(DataError, match=r"bad.csv:2: image .*nope.jpg does not exist"):
        csv_to_karpathy(folder, tmp_path / "bad.csv", tmp_path / "x.json")
    (tmp_path / "empty.csv").write_text(f"image,caption\n{names[0]},   \n")
    with pytest.raises(DataError, match=r"empty.csv:2: empty caption"):
        csv_to_karpathy(folder, tmp_path / "empty.csv", tmp_path / "x.json")


def test_flickr8k_non_utf8_token_file(flickr_copy):
    tokens = flickr_copy / "Flickr8k_text" / "Flickr8k.token.txt"
    lines = tokens.read_bytes().split(b"\n")
    lines[2] = lines[2] + b" caf\xe9"  # Latin-1, not UTF-8
    tokens.write_bytes(b"\n".join(lines))
    with pytest.raises(DataError, match=r"Flickr8k.token.txt:3: not UTF-8 text"):
        read_flickr8k(flickr_copy)


def test_flickr8k_duplicate_ids_and_an_image_in_two_splits(flickr_copy):
    text = flickr_copy / "Flickr8k_text"
    tokens = text / "Flickr8k.token.txt"
    first = tokens.read_text().splitlines()[0]
    tokens.write_text(tokens.read_text() + first + "\n")
    with pytest.raises(
        DataError, match=r"Flickr8k.token.txt:201: duplicate caption id .*#0 \(first on line 1\)"
    ):
        read_flickr8k(flickr_copy)
    tokens.write_text("\n".join(tokens.read_text().splitlines()[:-1]) + "\n")
    train_first = (text / "Flickr_8k.trainImages.txt").read_text().split()[0]
    with (text / "Flickr_8k.testImages.txt").open("a") as f:
        f.write(train_first + "\n")
    with pytest.raises(
        DataError,
        match=rf"Flickr_8k.testImages.txt:7: image {train_first} is already listed in Flickr_8k.trainImages.txt:1",
    ):
        read_flickr8k(flickr_copy)


def test_karpathy_duplicate_image_and_coco_duplicate_id(flickr, tmp_path):
    data = read_flickr8k(flickr)
    karpathy = _as_karpathy(data)
    karpathy["images"].append(dict(karpathy["images"][0]))
    path = tmp_path / "k.json"
    path.write_text(json.dumps(karpathy))
    with pytest.raises(DataError, match=r"images\[40\]: image .* is also images\[0\]"):
        read_karpathy_json(path, flickr / "Flicker8k_Dataset")
    coco = {"images": [{"id": 1, "file_name": data.train[0].image.name}, {"id": 1, "file_name": data.train[1].image.name}],
            "annotations": [{"image_id": 1, "caption": "a shape"}]}  # fmt: skip
    (tmp_path / "c.json").write_text(json.dumps(coco))
    folder = flickr / "Flicker8k_Dataset"
    with pytest.raises(DataError, match="duplicate image id 1"):
        read_coco_captions(tmp_path / "c.json", folder, tmp_path / "c.json", folder)


@pytest.mark.parametrize("mode", ["L", "CMYK", "RGBA", "P"])
def test_non_rgb_images_are_converted(tmp_path, mode):
    from PIL import Image

    from lrcn.data.video_io import read_image

    path = tmp_path / f"im.{'jpg' if mode in ('L', 'CMYK') else 'png'}"
    Image.new("RGB", (8, 6), (200, 30, 40)).convert(mode).save(path)
    notes: list[str] = []
    pixels = read_image(path, notes)
    assert pixels.shape == (6, 8, 3) and pixels.dtype.name == "uint8"
    assert notes == [f"{path}: converted {mode} to RGB"]
