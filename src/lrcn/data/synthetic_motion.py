"""A built-in video-captioning data set where the sentence needs the motion: one coloured shape
sliding left, right, up or down, written in the MSR-VTT 2016 layout.

Every sentence names the colour, the shape and the direction ("a red circle moves to the
left", "the red disc slides leftwards"). Colour and shape are visible in any frame; the
direction is not: the first frame of every video puts the shape uniformly in the same central
band, whatever way it will move, so a captioner that looks at one frame (or averages frames
without order) can name the object but only guess the direction (chance 1 in 4). Reading the
motion across frames gets all three right.

Videos are short and small (16 frames of 48×48 by default) so the task trains in seconds on a
CPU; the background is a per-video soft texture with light per-frame noise, so frame
differences are not trivially the object alone.
"""

from __future__ import annotations

import itertools
import json
import math
import random
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from lrcn.data.synthetic import _draw_shape
from lrcn.data.video_io import write_video

__all__ = [
    "COLOUR_WORDS",
    "DIRECTION_WORDS",
    "MOTION_DIRECTIONS",
    "SHAPE_WORDS",
    "motion_word_accuracy",
    "write_motion_msrvtt",
]

MOTION_DIRECTIONS = ("left", "right", "up", "down")
_COLOURS = {"red": (220, 50, 50), "green": (40, 170, 60), "blue": (50, 80, 230)}
_SHAPES = {"circle": "Circle", "square": "Square", "triangle": "Triangle"}  # -> synthetic's names
_NOUNS = {"circle": ("circle", "disc", "ball"), "square": ("square", "box", "block"),
          "triangle": ("triangle", "triangle", "wedge")}  # fmt: skip
_PHRASES = {
    "left": ("to the left", "left", "leftwards", "towards the left"),
    "right": ("to the right", "right", "rightwards", "towards the right"),
    "up": ("up", "upwards", "upward", "towards the top"),
    "down": ("down", "downwards", "downward", "towards the bottom"),
}
_UNIT = {"left": (-1.0, 0.0), "right": (1.0, 0.0), "up": (0.0, -1.0), "down": (0.0, 1.0)}
_VERBS = ("moves", "slides", "travels", "glides")
_VERBING = ("moving", "sliding", "travelling", "gliding")
_TEMPLATES = (
    "a {c} {n} {v} {d}",
    "the {c} {n} {v} {d}",
    "a {c} {n} {ving} {d}",
    "there is a {c} {n} {ving} {d}",
    "a {n} that is {c} {v} {d}",
    "the {n} is {c} and it {v} {d}",
)

# Words a correct sentence uses, per value: for tests and for scoring generated sentences.
COLOUR_WORDS = {colour: frozenset({colour}) for colour in _COLOURS}
SHAPE_WORDS = {shape: frozenset(nouns) for shape, nouns in _NOUNS.items()}
DIRECTION_WORDS = {
    "left": frozenset({"left", "leftwards"}),
    "right": frozenset({"right", "rightwards"}),
    "up": frozenset({"up", "upwards", "upward", "top"}),
    "down": frozenset({"down", "downwards", "downward", "bottom"}),
}

_ASPECTS = {"colour": COLOUR_WORDS, "shape": SHAPE_WORDS, "direction": DIRECTION_WORDS}

_SUPERSAMPLE = 4  # shapes are drawn 4× larger and box-filtered: sub-pixel, smooth motion
_BAND = (0.3, 0.7)  # first-frame centre, as a fraction of the frame, for every direction


def _sentences(colour: str, shape: str, direction: str, rng: random.Random) -> list[str]:
    """3-5 differently worded sentences, each naming colour, shape and direction."""
    templates = rng.sample(_TEMPLATES, rng.randint(3, 5))
    return [
        t.format(c=colour, n=rng.choice(_NOUNS[shape]), v=rng.choice(_VERBS),
                 ving=rng.choice(_VERBING), d=rng.choice(_PHRASES[direction]))
        for t in templates
    ]  # fmt: skip


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A desaturated base colour with a soft wave and fine grain, ``float (size, size, 3)``:
    grey-ish, so the saturated shapes stand out in colour but not in a trivially flat field."""
    base = rng.uniform(110, 190) + rng.uniform(-12, 12, size=3)
    yy, xx = np.mgrid[0:size, 0:size] / size
    fx, fy, phase = rng.uniform(0.5, 2.5), rng.uniform(0.5, 2.5), rng.uniform(0, 2 * math.pi)
    wave = rng.uniform(8, 16) * np.sin(2 * math.pi * (fx * xx + fy * yy) + phase)
    grain = rng.normal(0, 4, (size, size, 1))
    return base[None, None, :] + wave[..., None] + grain  # (size, size, 3)


def _video(
    colour: str, shape: str, direction: str, frames: int, size: int, rng: np.random.Generator
) -> np.ndarray:
    """``uint8 (frames, size, size, 3)`` of one shape moving in a straight line. Near the end
    up to half of it may be out of the frame: the start is drawn from the same band for every
    direction, which is what keeps one frame from telling the way."""
    from PIL import Image, ImageDraw

    background = _background(rng, size)
    r = size * rng.uniform(0.10, 0.14)
    x0, y0 = rng.uniform(*_BAND, size=2) * size
    # over the whole clip; at most to the edge (0.7 + 0.3), so at least half the shape shows
    travel = size * rng.uniform(0.22, 0.30)
    ux, uy = _UNIT[direction]
    big = size * _SUPERSAMPLE
    out = np.empty((frames, size, size, 3), dtype=np.uint8)
    rgb = np.array(_COLOURS[colour], dtype=np.float64)
    for t in range(frames):
        step = travel * t / max(frames - 1, 1)
        x, y = x0 + ux * step, y0 + uy * step
        mask = Image.new("L", (big, big), 0)
        s = _SUPERSAMPLE
        _draw_shape(ImageDraw.Draw(mask), _SHAPES[shape], x * s, y * s, r * s, 255)
        alpha = np.asarray(mask.resize((size, size), Image.Resampling.BOX), np.float64) / 255
        alpha = alpha[..., None]  # (size, size, 1)
        frame = background * (1 - alpha) + rgb * alpha + rng.normal(0, 3, (size, size, 3))
        out[t] = np.clip(np.rint(frame), 0, 255).astype(np.uint8)
    return out


def write_motion_msrvtt(
    root: str | Path, num_videos: int = 120, frames: int = 16, size: int = 48, seed: int = 0
) -> Path:
    """Write the motion data set under ``root`` in the MSR-VTT 2016 layout; return ``root``.

    Files: ``TrainValVideo/video<k>.mp4`` (train and validate), ``TestVideo/video<k>.mp4``,
    ``train_val_videodatainfo.json`` and ``test_videodatainfo.json``, as
    :func:`lrcn.data.formats.video_captions.read_msrvtt` reads them. Videos are numbered in
    split order, train first, as in MSR-VTT: about 70 % train, 10 % validate, 20 % test.
    The 36 (colour, shape, direction) combinations are dealt in shuffled rounds, so every
    direction is about equally common in every split.

    Args:
        root: output folder.
        num_videos: videos in all (>= 3: one per split at least).
        frames: frames per video (25 fps), >= 2.
        size: frame height and width in pixels; even (yuv420p), >= 16.
        seed: everything is drawn from it; the same seed writes the same JSON bytes and the
            same decoded frames.
    """
    if num_videos < 3:
        raise ValueError(f"num_videos must be >= 3 (one per split), got {num_videos}")
    if frames < 2:
        raise ValueError(f"frames must be >= 2 for motion to be visible, got {frames}")
    if size < 16 or size % 2:
        raise ValueError(f"size must be even and >= 16 (the codec needs even sizes), got {size}")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    pixels = np.random.default_rng(seed)
    n_test = max(1, round(num_videos * 0.2))
    n_val = max(1, round(num_videos * 0.1))
    n_train = num_videos - n_test - n_val
    splits = ["train"] * n_train + ["validate"] * n_val + ["test"] * n_test

    combos = list(itertools.product(_COLOURS, _NOUNS, MOTION_DIRECTIONS))
    dealt: list[tuple[str, str, str]] = []
    while len(dealt) < num_videos:
        round_ = combos.copy()
        rng.shuffle(round_)
        dealt += round_
    # file -> (videos[], sentences[]) entries
    files: dict[str, tuple[list[dict[str, object]], list[dict[str, object]]]] = {
        "train_val": ([], []),
        "test": ([], []),
    }
    for k, ((colour, shape, direction), split) in enumerate(zip(dealt, splits, strict=False)):
        video_id = f"video{k}"
        folder, group = ("TestVideo", "test") if split == "test" else ("TrainValVideo", "train_val")
        video = _video(colour, shape, direction, frames, size, pixels)
        write_video(root / folder / f"{video_id}.mp4", video, fps=25, codec="mpeg4")
        videos, sentences = files[group]
        videos.append({"category": 0, "url": "", "video_id": video_id, "start time": 0.0,
                       "end time": frames / 25, "split": split, "id": k})  # fmt: skip
        for caption in _sentences(colour, shape, direction, rng):
            sentences.append({"caption": caption, "video_id": video_id, "sen_id": 0})
    sen_id = 0
    for group, (videos, sentences) in files.items():
        for sentence in sentences:  # numbered across both files, as in the release
            sentence["sen_id"] = sen_id
            sen_id += 1
        info = {"description": "lrcn built-in motion captions (MSR-VTT 2016 layout)",
                "seed": seed, "frames": frames, "size": size}  # fmt: skip
        name = "test_videodatainfo.json" if group == "test" else "train_val_videodatainfo.json"
        document = {"info": info, "videos": videos, "sentences": sentences}
        (root / name).write_text(json.dumps(document) + "\n")
    return root


def _named(words: set[str], table: dict[str, frozenset[str]]) -> str | None:
    """The one value of ``table`` whose words appear in ``words``; None for none or several."""
    found = [value for value, names in table.items() if words & names]
    return found[0] if len(found) == 1 else None


def motion_word_accuracy(
    generated: Sequence[str], references: Sequence[Sequence[str]]
) -> dict[str, float]:
    """Share of ``generated`` sentences that name the right colour, shape and direction, and
    all three at once, each video's truth read off its ``references`` (which name each one
    exactly once on this data set). A sentence that names none, or two different ones, is
    wrong. This is what tells an appearance-only captioner (colour and shape right, direction
    at chance, 0.25) from one that sees motion.

    Args:
        generated: one sentence per video, words separated by spaces.
        references: per video, its reference sentences.
    """
    if len(generated) != len(references):
        raise ValueError(f"{len(generated)} sentences for {len(references)} videos")
    if not generated:
        raise ValueError("no sentences to score")
    right = dict.fromkeys([*_ASPECTS, "all"], 0)
    for sentence, refs in zip(generated, references, strict=True):
        said = set(sentence.split())
        truth_words = {w for ref in refs for w in ref.split()}
        correct = []
        for aspect, table in _ASPECTS.items():
            truth = _named(truth_words, table)
            if truth is None:
                raise ValueError(f"the references {list(refs)!r} do not name one {aspect}")
            correct.append(_named(said, table) == truth)
            right[aspect] += correct[-1]
        right["all"] += all(correct)
    return {aspect: count / len(generated) for aspect, count in right.items()}
