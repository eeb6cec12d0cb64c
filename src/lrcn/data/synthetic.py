"""Built-in data sets, generated deterministically and written in the real on-disk formats.

``write_order_ucf101``: a small action data set in the UCF-101 layout on which temporal order
matters. Every video shows one object, then at a random moment switches to another:

    CircleThenSquare   SquareThenCircle   TriangleThenCross   CrossThenTriangle

A single frame shows one object, which tells the pair (circle/square or triangle/cross) but
not the order, so a model that averages per-frame scores is capped near 50 % (chance 25 %);
a model that remembers what came first can reach 100 %. Each group gNN is one "actor and
setting" (a background colour and texture shared by its clips), as in UCF-101, and the three
splits hold out disjoint groups. Objects drift and jitter; some videos are shorter than a
16-frame clip, to exercise the short-video policy.
"""

from __future__ import annotations

import math
import random
from pathlib import Path

import numpy as np

from lrcn.data.video_io import write_video

ORDER_CLASSES = ("CircleThenSquare", "CrossThenTriangle", "SquareThenCircle", "TriangleThenCross")
_SHAPES = {
    "Circle": (220, 60, 60),
    "Square": (60, 90, 230),
    "Triangle": (40, 180, 70),
    "Cross": (235, 200, 40),
}

__all__ = ["ORDER_CLASSES", "write_order_ucf101", "write_shapes_flickr8k"]


def _draw_shape(draw, shape: str, cx: float, cy: float, r: float, color) -> None:  # type: ignore[no-untyped-def]
    if shape == "Circle":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=color)
    elif shape == "Square":
        draw.rectangle([cx - r, cy - r, cx + r, cy + r], fill=color)
    elif shape == "Triangle":
        draw.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=color)
    else:  # Cross
        w = r / 2.5
        draw.rectangle([cx - r, cy - w, cx + r, cy + w], fill=color)
        draw.rectangle([cx - w, cy - r, cx + w, cy + r], fill=color)


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A group's setting: a base colour with a smooth texture, ``uint8 (size, size, 3)``."""
    base = rng.integers(40, 200, size=3)
    yy, xx = np.mgrid[0:size, 0:size] / size
    fx, fy, phase = rng.uniform(1, 4), rng.uniform(1, 4), rng.uniform(0, 2 * math.pi)
    wave = 25 * np.sin(2 * math.pi * (fx * xx + fy * yy) + phase)
    return np.clip(base[None, None, :] + wave[..., None], 0, 255).astype(np.uint8)


def _video(
    first: str, second: str, background: np.ndarray, frames: int, rng: random.Random
) -> np.ndarray:
    from PIL import Image, ImageDraw

    size = background.shape[0]
    switch = rng.randint(int(0.35 * frames), max(int(0.35 * frames), int(0.65 * frames)))
    r = size * rng.uniform(0.15, 0.22)
    x, y = rng.uniform(r, size - r), rng.uniform(r, size - r)
    vx, vy = rng.uniform(-1, 1) * size / 60, rng.uniform(-1, 1) * size / 60
    noise = np.random.default_rng(rng.randrange(2**32))
    out = np.empty((frames, size, size, 3), dtype=np.uint8)
    for t in range(frames):
        shape = first if t < switch else second
        x = min(max(x + vx + rng.gauss(0, size / 100), r), size - r)
        y = min(max(y + vy + rng.gauss(0, size / 100), r), size - r)
        image = Image.fromarray(background.copy())
        _draw_shape(ImageDraw.Draw(image), shape, x, y, r, _SHAPES[shape])
        frame = np.asarray(image).astype(np.int16) + noise.integers(-12, 13, (size, size, 3))
        out[t] = np.clip(frame, 0, 255).astype(np.uint8)
    return out


def write_order_ucf101(
    root: str | Path,
    num_groups: int = 25,
    clips_per_group: int = 1,
    frames: int = 32,
    size: int = 112,
    short_every: int = 10,
    seed: int = 0,
) -> Path:
    """Write the order data set under ``root`` in the UCF-101 layout; return ``root/UCF-101``.

    Args:
        root: output folder; gets ``UCF-101/<Class>/v_<Class>_gNN_cMM.avi`` and
            ``ucfTrainTestlist/`` (classInd.txt, trainlist01-03.txt, testlist01-03.txt).
        num_groups: groups (settings) per class; splits 1-3 each test about 28 % of them.
        clips_per_group: videos per group and class.
        frames: frames per video (25 fps).
        size: frame height and width (even).
        short_every: every n-th video has only 12 frames (shorter than a 16-frame clip);
            0 for none.
        seed: everything is drawn from it; the same seed writes the same videos.
    """
    if num_groups < 4:
        raise ValueError(f"num_groups must be >= 4 to leave groups on both sides, got {num_groups}")
    root = Path(root)
    videos_root = root / "UCF-101"
    lists = root / "ucfTrainTestlist"
    lists.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    np_rng = np.random.default_rng(seed)
    backgrounds = [_background(np_rng, size) for _ in range(num_groups)]
    entries: list[tuple[int, int, str]] = []  # (label, group, relative path)
    count = 0
    for label, name in enumerate(ORDER_CLASSES):
        first, second = name.split("Then")
        for group in range(1, num_groups + 1):
            for clip in range(1, clips_per_group + 1):
                count += 1
                length = 12 if short_every and count % short_every == 0 else frames
                relative = f"{name}/v_{name}_g{group:02d}_c{clip:02d}.avi"
                video = _video(first, second, backgrounds[group - 1], length, rng)
                write_video(videos_root / relative, video)
                entries.append((label, group, relative))

    (lists / "classInd.txt").write_text(
        "".join(f"{i + 1} {name}\r\n" for i, name in enumerate(ORDER_CLASSES))  # CRLF, as UCF
    )
    held_out = max(1, round(num_groups * 7 / 25))
    for split in (1, 2, 3):
        test_groups = {((split - 1) * held_out + k) % num_groups + 1 for k in range(held_out)}
        train_lines = [f"{rel} {lab + 1}\r\n" for lab, g, rel in entries if g not in test_groups]
        test_lines = [f"{rel}\r\n" for _, g, rel in entries if g in test_groups]
        (lists / f"trainlist0{split}.txt").write_text("".join(train_lines))
        (lists / f"testlist0{split}.txt").write_text("".join(test_lines))
    return videos_root


# --------------------------------------------------------------------------------------------
# Captioning: shapes in the Flickr8k layout
# --------------------------------------------------------------------------------------------

_COLOURS = {
    "red": (220, 50, 50),
    "green": (40, 170, 60),
    "blue": (50, 80, 230),
    "yellow": (235, 205, 40),
}
_NOUNS = {"Circle": ("circle", "disc", "round shape"), "Square": ("square", "box", "square shape"),
          "Triangle": ("triangle", "triangle", "three sided shape")}  # fmt: skip
_PLACES = {"left": (0.27, 0.5), "right": (0.73, 0.5), "top": (0.5, 0.27), "bottom": (0.5, 0.73)}


def _one_object_captions(colour: str, shape: str, place: str, rng: random.Random) -> list[str]:
    noun = _NOUNS[shape]
    return [
        f"a {colour} {noun[0]} on the {place}",
        f"there is a {colour} {noun[1]} at the {place} of the picture",
        f"a {noun[2]} that is {colour} sits on the {place} side",
        f"the {place} of the image shows a {colour} {noun[0]}",
        f"one {colour} {rng.choice(noun)} near the {place}",
    ]


def _two_object_captions(
    a: tuple[str, str, str], b: tuple[str, str, str], rng: random.Random
) -> list[str]:
    (ca, sa, pa), (cb, sb, pb) = a, b
    na, nb = _NOUNS[sa], _NOUNS[sb]
    return [
        f"a {ca} {na[0]} on the {pa} and a {cb} {nb[0]} on the {pb}",
        f"there is a {ca} {na[1]} at the {pa} and a {cb} {nb[1]} at the {pb}",
        f"a {cb} {nb[0]} on the {pb} with a {ca} {na[0]} on the {pa}",
        f"two shapes a {ca} {na[0]} and a {cb} {nb[0]}",
        f"the picture shows a {ca} {rng.choice(na)} {pa} and a {cb} {rng.choice(nb)} {pb}",
    ]


def _shapes_image(objects: list[tuple[str, str, str]], size: int, rng: random.Random) -> np.ndarray:
    from PIL import Image, ImageDraw

    shade = rng.randint(150, 235)
    image = Image.new("RGB", (size, size), (shade, shade, shade - rng.randint(0, 30)))
    draw = ImageDraw.Draw(image)
    for colour, shape, place in objects:
        fx, fy = _PLACES[place]
        cx = size * fx + rng.uniform(-0.05, 0.05) * size
        cy = size * fy + rng.uniform(-0.05, 0.05) * size
        _draw_shape(
            draw,
            shape if shape != "Triangle" else "Triangle",
            cx,
            cy,
            size * rng.uniform(0.12, 0.17),
            _COLOURS[colour],
        )
    pixels = np.asarray(image).astype(np.int16)
    noise = np.random.default_rng(rng.randrange(2**32)).integers(-8, 9, pixels.shape)
    return np.clip(pixels + noise, 0, 255).astype(np.uint8)


def write_shapes_flickr8k(
    root: str | Path,
    num_images: int = 600,
    size: int = 96,
    seed: int = 0,
    test_fraction: float = 0.15,
) -> Path:
    """Write a captioning data set in the Flickr8k layout under ``root``; return ``root``.

    Each image holds one or two coloured shapes at the left/right/top/bottom; its five
    reference captions are worded differently but all name what is there (colour, shape,
    place), so a captioner must look at the image to get them right. Files:
    ``Flicker8k_Dataset/<id>.jpg`` and ``Flickr8k_text/`` with ``Flickr8k.token.txt`` and
    ``Flickr_8k.{train,dev,test}Images.txt`` (dev and test each ``test_fraction``).
    """
    from PIL import Image

    root = Path(root)
    images, text = root / "Flicker8k_Dataset", root / "Flickr8k_text"
    images.mkdir(parents=True, exist_ok=True)
    text.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    token_lines, names = [], []
    for n in range(num_images):
        first = (rng.choice(list(_COLOURS)), rng.choice(list(_NOUNS)), rng.choice(list(_PLACES)))
        if rng.random() < 0.4:
            opposite = {"left": "right", "right": "left", "top": "bottom", "bottom": "top"}[
                first[2]
            ]
            second = (
                rng.choice([c for c in _COLOURS if c != first[0]]),
                rng.choice(list(_NOUNS)),
                opposite,
            )
            objects, captions = [first, second], _two_object_captions(first, second, rng)
        else:
            objects, captions = [first], _one_object_captions(*first, rng)
        name = f"{1000 + n}_{seed:02d}.jpg"
        Image.fromarray(_shapes_image(objects, size, rng)).save(images / name, quality=92)
        names.append(name)
        token_lines += [
            f"{name}#{k}\t{caption.capitalize()} .\n" for k, caption in enumerate(captions)
        ]
    (text / "Flickr8k.token.txt").write_text("".join(token_lines))
    n_test = max(1, round(num_images * test_fraction))
    splits = {
        "test": names[:n_test],
        "dev": names[n_test : 2 * n_test],
        "train": names[2 * n_test :],
    }
    for side, listed in splits.items():
        (text / f"Flickr_8k.{side}Images.txt").write_text("".join(f"{n}\n" for n in listed))
    return root
