"""Video-caption data sets: MSR-VTT (2016, 2017) and MSVD readers, the MSVD split writer, and
the built-in motion data set (deterministic, sentences that need the motion)."""

import json
import re
import shutil

import numpy as np
import pytest

from lrcn.data.formats.video_captions import (
    read_msrvtt,
    read_msvd,
    write_msvd_split,
)
from lrcn.data.items import DataError
from lrcn.data.synthetic_motion import (
    COLOUR_WORDS,
    DIRECTION_WORDS,
    MOTION_DIRECTIONS,
    SHAPE_WORDS,
    write_motion_msrvtt,
)
from lrcn.data.video_io import read_frames, write_video

TRAIN_VAL = "train_val_videodatainfo.json"
TEST = "test_videodatainfo.json"


@pytest.fixture(scope="module")
def motion(tmp_path_factory):
    # 48 videos: 33 train, 5 validate, 10 test; 12 per direction
    return write_motion_msrvtt(
        tmp_path_factory.mktemp("motion"), num_videos=48, frames=6, size=32, seed=3
    )


@pytest.fixture
def motion_copy(motion, tmp_path):
    shutil.copytree(motion, tmp_path / "m")
    return tmp_path / "m"


def _ids(data):
    return [item.video_id for item in data.train + data.val + data.test]


def _words_of(caption, table):
    return {value for value, words in table.items() if words & set(caption)}


def _direction(item):
    (direction,) = {d for c in item.captions for d in _words_of(c, DIRECTION_WORDS)}
    return direction


# --------------------------------------------------------------------------------------------
# MSR-VTT
# --------------------------------------------------------------------------------------------


def test_msrvtt_reads_the_demo_data_set(motion):
    data = read_msrvtt(motion)
    assert (len(data.train), len(data.val), len(data.test)) == (33, 5, 10)
    assert data.skipped == []
    assert _ids(data) == [f"video{k}" for k in range(48)]  # the order of videos[]
    assert data.split("val") is data.val and data.test[0].path.parent.name == "TestVideo"
    with pytest.raises(ValueError, match="split must be one of"):
        data.split("validate")
    for item in data.train + data.val + data.test:
        assert item.path.is_file() and 3 <= len(item.captions) <= 5
        for caption in item.captions:
            assert caption == tuple(w.lower() for w in caption) and caption
            # every sentence names one colour, one shape and one direction, the same in all
            assert len(_words_of(caption, COLOUR_WORDS)) == 1
            assert len(_words_of(caption, SHAPE_WORDS)) == 1
            assert len(_words_of(caption, DIRECTION_WORDS)) == 1
        for table in (COLOUR_WORDS, SHAPE_WORDS, DIRECTION_WORDS):
            assert len({v for c in item.captions for v in _words_of(c, table)}) == 1
    directions = [_direction(item) for item in data.train]
    counts = [directions.count(d) for d in MOTION_DIRECTIONS]
    assert sum(counts) == 33 and min(counts) >= 6  # dealt in balanced rounds


def test_msrvtt_2017_single_file(motion_copy):
    before = read_msrvtt(motion_copy)
    train_val = json.loads((motion_copy / TRAIN_VAL).read_text())
    test = json.loads((motion_copy / TEST).read_text())
    merged = {"videos": train_val["videos"] + test["videos"],
              "sentences": test["sentences"] + train_val["sentences"]}  # fmt: skip
    (motion_copy / "videodatainfo_2017.json").write_text("{ not JSON")
    assert _ids(read_msrvtt(motion_copy)) == _ids(before)  # the 2016 files win when present
    (motion_copy / "videodatainfo_2017.json").write_text(json.dumps(merged))
    (motion_copy / TRAIN_VAL).unlink()
    (motion_copy / TEST).unlink()
    after = read_msrvtt(motion_copy)
    assert after == before
    # videos found in any of the accepted folders, with any accepted suffix
    (motion_copy / "TestVideo").rename(motion_copy / "videos")
    moved = motion_copy / "videos" / "video47.mp4"
    moved.rename(moved.with_suffix(".mkv"))
    again = read_msrvtt(motion_copy)
    assert again.test[-1].path == moved.with_suffix(".mkv")
    assert [i.captions for i in again.test] == [i.captions for i in before.test]


def test_msrvtt_missing_root_or_annotations(tmp_path):
    with pytest.raises(DataError, match=r"nowhere: data root not found"):
        read_msrvtt(tmp_path / "nowhere")
    with pytest.raises(
        DataError,
        match=r"MSR-VTT annotations not found; expected train_val_videodatainfo.json "
        r"\(and test_videodatainfo.json\) or videodatainfo_2017.json inside it",
    ):
        read_msrvtt(tmp_path)
    (tmp_path / TRAIN_VAL).write_text('{"videos": []}')
    with pytest.raises(
        DataError, match=rf"{TRAIN_VAL}: expected an object with 'videos' and 'sentences' lists"
    ):
        read_msrvtt(tmp_path)


def _sentences_of(doc, video_id):
    return [s for s in doc["sentences"] if s["video_id"] == video_id]


def _drop_sentences(doc, video_id):
    doc["sentences"] = [s for s in doc["sentences"] if s["video_id"] != video_id]


# name -> (edit of the train/val JSON or the folder, error pattern, videos left out under skip)
MSRVTT_ERRORS = {
    "wrong type": (lambda d, root: d["videos"][3].update(category="drama"),
                   r"videos\[3\]\.category: input should be a valid integer", {"video3"}),
    "missing key": (lambda d, root: d["videos"][2].pop("split"),
                    r"videos\[2\]\.split: missing", {"video2"}),
    "not an object": (lambda d, root: d["videos"].__setitem__(6, "video6"),
                      r"videos\[6\]: expected an object with 'video_id', 'split', got str", {"video6"}),
    "unknown split": (lambda d, root: d["videos"][1].update(split="dev"),
                      r"videos\[1\] \(video1\): split 'dev' is unknown; expected one of train, validate, test", {"video1"}),
    "listed twice": (lambda d, root: d["videos"].append(dict(d["videos"][0], split="validate")),
                     r"videos\[38\]: video video0 is listed again \(first as videos\[0\]\)", set()),
    "unknown video": (lambda d, root: d["sentences"][0].update(video_id="video999"),
                      r"sentences\[0\]: video_id 'video999' is not in 'videos' of train_val_videodatainfo.json or test_videodatainfo.json", set()),
    "empty caption": (lambda d, root: d["sentences"][0].update(caption=" ... "),
                      r"sentences\[0\] \(video0\): empty caption ' \.\.\. '; expected words", set()),
    "sentence type": (lambda d, root: d["sentences"][2].update(caption=None),
                      r"sentences\[2\]\.caption: input should be a valid string", set()),
    "missing video": (lambda d, root: (root / "TrainValVideo" / "video4.mp4").unlink(),
                      r"videos\[4\] \(video4\): video not found; expected video4 with suffix .mp4/.avi/.mkv/.webm in .* or its TrainValVideo/, TestVideo/, videos/ folder", {"video4"}),
    "no sentences": (lambda d, root: _drop_sentences(d, "video5"),
                     r"videos\[5\] \(video5\): no sentences; expected at least one", {"video5"}),
}  # fmt: skip


@pytest.mark.parametrize("case", list(MSRVTT_ERRORS))
def test_msrvtt_errors_name_file_and_entry(motion_copy, case):
    edit, pattern, left_out = MSRVTT_ERRORS[case]
    path = motion_copy / TRAIN_VAL
    doc = json.loads(path.read_text())
    first_sentences = len(_sentences_of(doc, "video0"))
    edit(doc, motion_copy)
    path.write_text(json.dumps(doc))
    with pytest.raises(DataError, match=rf"{TRAIN_VAL}: {pattern}"):
        read_msrvtt(motion_copy)
    data = read_msrvtt(motion_copy, on_error="skip")
    first, *more = data.skipped
    assert first.path == str(path) and re.search(pattern, first.problem)
    if case == "not an object":  # no video_id to recognise its sentences by: each is reported
        assert more and all("video_id 'video6' is not in 'videos'" in p.problem for p in more)
    else:
        assert more == []
    expected = [f"video{k}" for k in range(48) if f"video{k}" not in left_out]
    assert _ids(data) == expected  # each video once, the bad ones left out
    video0 = next(i for i in data.train if i.video_id == "video0")
    lost = case in ("unknown video", "empty caption", "sentence type")  # only that sentence goes
    assert len(video0.captions) == first_sentences - lost


def test_msrvtt_video_listed_in_both_files(motion_copy):
    test = json.loads((motion_copy / TEST).read_text())
    test["videos"].append({"video_id": "video0", "split": "test"})
    (motion_copy / TEST).write_text(json.dumps(test))
    with pytest.raises(
        DataError,
        match=rf"{TEST}: videos\[10\]: video video0 is listed again \(first as videos\[0\] of {TRAIN_VAL}\)",
    ):
        read_msrvtt(motion_copy)
    data = read_msrvtt(motion_copy, on_error="skip")
    assert _ids(data).count("video0") == 1 and data.train[0].video_id == "video0"


# --------------------------------------------------------------------------------------------
# MSVD
# --------------------------------------------------------------------------------------------

CLIPS = ["-4wsuPCjDBc_5_15", "0lh_UWF9ZP4_27_31", "Ab_c-D_1_9", "zz9_0_4", "kid_2_8", "q_q_3_7"]


@pytest.fixture
def msvd(tmp_path):
    """A tiny MSVD: six clips, two English sentences each, header comments, and sentences of a
    clip that is neither on disk nor in the split (the corpus may describe more clips)."""
    root = tmp_path / "msvd"
    frames = np.zeros((2, 16, 16, 3), np.uint8)
    for clip in CLIPS:
        write_video(root / "YouTubeClips" / f"{clip}.avi", frames)
    lines = ["# Microsoft Research Video Description Corpus", "# cleaned English sentences", ""]
    for k, clip in enumerate(CLIPS):
        lines += [f"{clip} A man is playing a guitar number {k}.", f"{clip} Someone plays music."]
    lines.append("gone_1_2 a clip that is not in the split")
    (root / "AllVideoDescriptions.txt").write_text("\n".join(lines) + "\n")
    return root


def test_msvd_reads_with_the_written_split(msvd):
    with pytest.raises(
        DataError,
        match=r"msvd_split.json: MSVD split file not found; write one with "
        r"lrcn.data.formats.video_captions.write_msvd_split\(.*\) .*\{\"train\": \[clip names\]",
    ):
        read_msvd(msvd)
    path = write_msvd_split(msvd)
    assert path == msvd / "msvd_split.json"
    split = json.loads(path.read_text())
    assert split == {"train": sorted(CLIPS)[:4], "val": [], "test": sorted(CLIPS)[4:]}
    data = read_msvd(msvd)
    assert data.skipped == [] and [i.video_id for i in data.train] == sorted(CLIPS)[:4]
    item = data.train[0]
    assert item.path == msvd / "YouTubeClips" / f"{item.video_id}.avi"
    k = CLIPS.index(item.video_id)
    assert item.captions == (
        ("a", "man", "is", "playing", "a", "guitar", "number", str(k)),
        ("someone", "plays", "music"),
    )
    # an explicit split file elsewhere, in its own order
    other = msvd.parent / "mine.json"
    other.write_text(json.dumps({"train": CLIPS[:2][::-1], "val": [CLIPS[2]], "test": []}))
    data = read_msvd(msvd, split_file=other)
    assert [i.video_id for i in data.train] == CLIPS[:2][::-1] and len(data.val) == 1


def test_msvd_missing_parts(msvd, tmp_path):
    with pytest.raises(DataError, match=r"nowhere: data root not found"):
        read_msvd(tmp_path / "nowhere")
    write_msvd_split(msvd)
    (msvd / "AllVideoDescriptions.txt").rename(msvd / "elsewhere.txt")
    with pytest.raises(
        DataError,
        match=r"AllVideoDescriptions.txt: MSVD sentence file not found; expected lines '<clip> <sentence>'",
    ):
        read_msvd(msvd)
    shutil.rmtree(msvd / "YouTubeClips")
    with pytest.raises(DataError, match=r"msvd: no YouTubeClips/ folder; expected the MSVD clips"):
        read_msvd(msvd)
    (msvd / "YouTubeClips").mkdir()
    with pytest.raises(DataError, match=r"YouTubeClips: no clips found; expected video files"):
        write_msvd_split(msvd)


def _split(train, val=(), test=()):
    return json.dumps({"train": list(train), "val": list(val), "test": list(test)})


def _append(path, text):
    path.write_text(path.read_text() + text)


# name -> (edit of the folder, error pattern, clips read under skip)
MSVD_ERRORS = {
    "malformed line": (lambda r: _append(r / "AllVideoDescriptions.txt", "nonsense line\n"),
                       r"AllVideoDescriptions.txt:17: expected '<youtube id>_<start>_<end> <sentence>', got 'nonsense line'", CLIPS),
    "empty caption": (lambda r: _append(r / "AllVideoDescriptions.txt", f"{CLIPS[1]}  ?!\n"),
                      rf"AllVideoDescriptions.txt:17: clip {CLIPS[1]}: empty caption '\?!'", CLIPS),
    "listed twice": (lambda r: (r / "msvd_split.json").write_text(_split(CLIPS[:3], test=[CLIPS[3], CLIPS[0]])),
                     rf"msvd_split.json: test\[1\]: clip {CLIPS[0]} is listed again \(first as train\[0\]\)", CLIPS[:4]),
    "missing video": (lambda r: (r / "YouTubeClips" / f"{CLIPS[2]}.avi").unlink(),
                      rf"msvd_split.json: train\[2\]: clip {CLIPS[2]} not found; expected .*YouTubeClips/{CLIPS[2]}.avi \(or .mp4/.avi/.mkv/.webm\)",
                      [c for c in CLIPS if c != CLIPS[2]]),
    "no sentences": (lambda r: (r / "AllVideoDescriptions.txt").write_text(
                         "".join(f"{c} a thing\n" for c in CLIPS if c != CLIPS[4])),
                     rf"msvd_split.json: test\[0\]: clip {CLIPS[4]} has no sentences in AllVideoDescriptions.txt",
                     [c for c in CLIPS if c != CLIPS[4]]),
}  # fmt: skip


@pytest.mark.parametrize("case", list(MSVD_ERRORS))
def test_msvd_errors_name_file_and_entry(msvd, case):
    (msvd / "msvd_split.json").write_text(_split(CLIPS[:4], test=CLIPS[4:]))
    edit, pattern, read = MSVD_ERRORS[case]
    edit(msvd)
    with pytest.raises(DataError, match=pattern):
        read_msvd(msvd)
    data = read_msvd(msvd, on_error="skip")
    assert len(data.skipped) == 1 and re.search(pattern, data.skipped[0].problem)
    assert [i.video_id for i in data.train + data.val + data.test] == list(read)
    if case == "empty caption":  # only the bad sentence is left out
        assert len(data.train[1].captions) == 2


@pytest.mark.parametrize(
    ("content", "pattern"),
    [
        ('{"train": [1], "val": [], "test": []}', r"msvd_split.json: train\[0\]: input should be a valid string"),
        ('{"train": [], "test": []}', r"msvd_split.json: val: missing; expected an object \{\"train\""),
        ('{"train": [], "val": [], "test": [], "dev": []}', r"msvd_split.json: dev: unknown key"),
        ('["a", "b"]', r"msvd_split.json: got list; expected an object"),
        ('{"train": [', r"msvd_split.json:1: not valid JSON"),
    ],
)  # fmt: skip
def test_msvd_bad_split_file(msvd, content, pattern):
    (msvd / "msvd_split.json").write_text(content)
    with pytest.raises(DataError, match=pattern):
        read_msvd(msvd)


@pytest.mark.parametrize(("clips", "sizes"), [(1970, (1200, 100, 670)), (197, (120, 10, 67))])
def test_write_msvd_split_sizes(tmp_path, clips, sizes):
    folder = tmp_path / "YouTubeClips"
    folder.mkdir()
    names = [f"v{k:05d}_{k % 7}_{k % 7 + 5}" for k in range(clips)]
    for name in reversed(names):
        (folder / f"{name}.avi").touch()  # listing only: the files are never opened
    (folder / "notes.txt").touch()
    out = write_msvd_split(tmp_path, tmp_path / "split.json")
    split = json.loads(out.read_text())
    assert tuple(len(split[s]) for s in ("train", "val", "test")) == sizes
    assert split["train"] + split["val"] + split["test"] == sorted(names)


# --------------------------------------------------------------------------------------------
# The built-in motion data set
# --------------------------------------------------------------------------------------------


def test_motion_data_set_is_deterministic(tmp_path):
    a = write_motion_msrvtt(tmp_path / "a", num_videos=6, frames=4, size=16, seed=7)
    b = write_motion_msrvtt(tmp_path / "b", num_videos=6, frames=4, size=16, seed=7)
    c = write_motion_msrvtt(tmp_path / "c", num_videos=6, frames=4, size=16, seed=8)
    for name in (TRAIN_VAL, TEST):
        assert (a / name).read_bytes() == (b / name).read_bytes()
    assert (a / TRAIN_VAL).read_bytes() != (c / TRAIN_VAL).read_bytes()
    videos = sorted(p.relative_to(a) for p in a.rglob("*.mp4"))
    assert len(videos) == 6 and videos == sorted(p.relative_to(b) for p in b.rglob("*.mp4"))
    for video in videos:
        np.testing.assert_array_equal(read_frames(a / video), read_frames(b / video))
    assert not np.array_equal(read_frames(a / videos[0]), read_frames(c / videos[0]))
    with pytest.raises(ValueError, match="size must be even"):
        write_motion_msrvtt(tmp_path / "d", size=33)


def _centre(frame):
    """(x, y) centroid of the coloured shape: its pixels are saturated, the background is not."""
    rgb = frame.astype(np.int16)
    mask = (rgb.max(axis=-1) - rgb.min(axis=-1)) > 60
    assert mask.sum() >= 4, "no shape found"
    ys, xs = np.nonzero(mask)
    return np.array([xs.mean(), ys.mean()])


def _welch_t(a, b):
    return (a.mean() - b.mean()) / np.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))


def test_direction_is_only_in_the_motion(motion):
    data = read_msrvtt(motion)
    first, last = {d: [] for d in MOTION_DIRECTIONS}, {d: [] for d in MOTION_DIRECTIONS}
    for item in data.train + data.val + data.test:
        frames = read_frames(item.path, [0, 5])
        direction = _direction(item)
        first[direction].append(_centre(frames[0]))
        last[direction].append(_centre(frames[1]))
        # the sentence's direction is the way the shape actually moved
        dx, dy = _centre(frames[1]) - _centre(frames[0])
        moved = (
            ("right" if dx > 0 else "left") if abs(dx) > abs(dy) else ("down" if dy > 0 else "up")
        )
        assert moved == direction, item.video_id
    first_ = {d: np.array(v) for d, v in first.items()}  # (12, 2) each
    last_ = {d: np.array(v) for d, v in last.items()}
    for a, b, axis in (("left", "right", 0), ("up", "down", 1)):
        # first frames: the same spread of positions along the axis of motion
        lo_a, hi_a = first_[a][:, axis].min(), first_[a][:, axis].max()
        lo_b, hi_b = first_[b][:, axis].min(), first_[b][:, axis].max()
        overlap = min(hi_a, hi_b) - max(lo_a, lo_b)
        assert overlap > 0.6 * max(hi_a - lo_a, hi_b - lo_b)
        # and the same mean: no more apart than chance makes 12 draws of each (|t| < 3)
        assert abs(_welch_t(first_[a][:, axis], first_[b][:, axis])) < 3
        # last frames: far apart, so the measure would see a difference if there were one
        assert last_[b][:, axis].mean() - last_[a][:, axis].mean() > 10  # px, of 32
        assert abs(_welch_t(last_[a][:, axis], last_[b][:, axis])) > 6
    # nor does the first frame tell horizontal from vertical movers
    horizontal = np.concatenate([first_["left"], first_["right"]])
    vertical = np.concatenate([first_["up"], first_["down"]])
    for axis in (0, 1):
        assert abs(_welch_t(horizontal[:, axis], vertical[:, axis])) < 3
