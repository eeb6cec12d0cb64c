"""A built-in Moving MNIST: bouncing digits made the way Srivastava et al. (2015) made theirs,
from the handwritten digits that ship with scikit-learn, so no download is needed.

Why not MNIST itself: it is not bundled with anything lrcn installs, and tests and examples
must run offline. scikit-learn's ``load_digits`` (1797 images, 8x8, values 0-16) is; each is
upscaled to MNIST's 28x28 with a bicubic resize and stretched so its strokes reach 255.

The generator follows the original rules (``moving_mnist`` in Srivastava's data handler):

* each of ``digits`` 28x28 digits starts at a uniform random top-left position in
  [0, size - 28] on both axes;
* it moves in a uniform random direction (angle in [0, 2π)) at a fixed speed: 0.1 of the free
  range per frame, :data:`STEP_LENGTH` x (size - 28) pixels, i.e. 3.6 px at 64x64;
* at an edge the velocity component is reflected and the position clamped to the edge;
* positions are rounded to whole pixels (the original truncates; rounding is unbiased), and
  frame 0 shows the start position (the original moves once before its first frame);
* digits are combined with ``np.maximum``, so overlapping strokes never saturate past 255.

Train and test never share a digit image: ``digit_subset="train"`` draws from the sklearn
indices with ``index % 5 != 0``, ``"test"`` from those with ``index % 5 == 0``.

The steps are separate functions (:func:`plan_moving_mnist` draws digits and trajectories,
:func:`render` draws them) so the motion and the combination can be checked on their own.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

import numpy as np

from lrcn.data.formats.moving_mnist import write_moving_mnist

__all__ = [
    "DIGIT_SIZE",
    "DIGIT_SUBSETS",
    "STEP_LENGTH",
    "MovingDigits",
    "digit_images",
    "digit_subset_indices",
    "generate_moving_mnist",
    "plan_moving_mnist",
    "render",
    "write_generated",
]

DIGIT_SIZE = 28  # MNIST's digit images
STEP_LENGTH = 0.1  # per frame, as a fraction of the free range (size - 28): 3.6 px at 64x64
DIGIT_SUBSETS = ("all", "train", "test")


class MovingDigits(NamedTuple):
    """Which digit images move where: what :func:`render` draws."""

    indices: np.ndarray  # int64 (N, D): sklearn digit indices, one per digit of each sequence
    positions: np.ndarray  # float64 (N, T, D, 2): top-left (row, col) in pixels, unrounded


@lru_cache(maxsize=1)
def _digit_images() -> tuple[np.ndarray, np.ndarray]:
    from PIL import Image
    from sklearn.datasets import load_digits  # type: ignore[import-untyped]

    digits = load_digits()
    small = np.asarray(digits.images, dtype=np.float32)  # (M, 8, 8), 0-16
    labels = np.asarray(digits.target, dtype=np.int64)  # (M,)
    images = np.empty((len(small), DIGIT_SIZE, DIGIT_SIZE), dtype=np.uint8)  # (M, 28, 28)
    for k, image in enumerate(small):
        big = Image.fromarray(image).resize(
            (DIGIT_SIZE, DIGIT_SIZE), Image.Resampling.BICUBIC
        )  # mode "F": float, so no rounding before the stretch
        pixels = np.clip(np.asarray(big, dtype=np.float32), 0.0, None)  # bicubic undershoots
        peak = float(pixels.max())
        scale = 255.0 / peak if peak > 0 else 0.0
        images[k] = np.clip(np.rint(pixels * scale), 0, 255).astype(np.uint8)
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


def digit_images() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 1797 handwritten digits at MNIST's size: images uint8 (M, 28, 28), 0-255,
    each stretched so its brightest stroke is 255; labels int64 (M,), 0-9."""
    images, labels = _digit_images()
    return images.copy(), labels.copy()


def digit_subset_indices(digit_subset: str, count: int | None = None) -> np.ndarray:
    """int64 (K,): the sklearn digit indices of ``"train"`` (index % 5 != 0), ``"test"``
    (index % 5 == 0) or ``"all"``, out of ``count`` images (default: all of them)."""
    if digit_subset not in DIGIT_SUBSETS:
        raise ValueError(f"digit_subset must be one of {DIGIT_SUBSETS}, got {digit_subset!r}")
    if count is None:
        count = len(_digit_images()[0])
    indices = np.arange(count, dtype=np.int64)
    if digit_subset == "train":
        return indices[indices % 5 != 0]
    if digit_subset == "test":
        return indices[indices % 5 == 0]
    return indices


def _check(num_sequences: int, frames: int, size: int, digits: int) -> None:
    if num_sequences < 1:
        raise ValueError(f"num_sequences must be >= 1, got {num_sequences}")
    if frames < 2:
        raise ValueError(f"frames must be >= 2, got {frames}")
    if size < DIGIT_SIZE:
        raise ValueError(f"size must be >= {DIGIT_SIZE} (the digit size), got {size}")
    if digits < 1:
        raise ValueError(f"digits must be >= 1, got {digits}")


def _trajectories(
    rng: np.random.Generator, num_sequences: int, frames: int, size: int, digits: int
) -> np.ndarray:
    """float64 (N, T, D, 2): bouncing top-left positions (row, col) in [0, size - 28]."""
    free = float(size - DIGIT_SIZE)
    position = rng.uniform(0.0, 1.0, size=(num_sequences, digits, 2)) * free  # (N, D, 2)
    theta = rng.uniform(0.0, 2.0 * np.pi, size=(num_sequences, digits))  # (N, D)
    speed = STEP_LENGTH * free  # px per frame
    velocity = speed * np.stack([np.sin(theta), np.cos(theta)], axis=-1)  # (N, D, 2)
    out = np.empty((num_sequences, frames, digits, 2), dtype=np.float64)  # (N, T, D, 2)
    for t in range(frames):
        out[:, t] = position
        position = position + velocity
        low = position <= 0.0
        high = position >= free
        position = np.clip(position, 0.0, free)
        velocity = np.where(low, np.abs(velocity), velocity)
        velocity = np.where(high, -np.abs(velocity), velocity)
    return out


def plan_moving_mnist(
    num_sequences: int,
    frames: int = 20,
    size: int = 64,
    digits: int = 2,
    seed: int = 0,
    digit_subset: str = "all",
) -> MovingDigits:
    """The digits and trajectories :func:`generate_moving_mnist` draws for these arguments."""
    _check(num_sequences, frames, size, digits)
    pool = digit_subset_indices(digit_subset)  # (K,)
    rng = np.random.default_rng(seed)
    indices = rng.choice(pool, size=(num_sequences, digits)).astype(np.int64)  # (N, D)
    positions = _trajectories(rng, num_sequences, frames, size, digits)  # (N, T, D, 2)
    return MovingDigits(indices, positions)


def render(images: np.ndarray, positions: np.ndarray, size: int) -> np.ndarray:
    """Draw digits along trajectories: images uint8 (N, D, h, w), positions (N, T, D, 2) top-left
    (row, col) in pixels (rounded here), inside a size x size canvas. Overlaps take the maximum.
    Returns uint8 (N, T, size, size)."""
    count, digits, height, width = images.shape
    frames = positions.shape[1]
    if positions.shape != (count, frames, digits, 2):
        raise ValueError(
            f"positions must be (N, T, D, 2) = ({count}, T, {digits}, 2), got {positions.shape}"
        )
    at = np.rint(positions).astype(np.int64)  # (N, T, D, 2)
    if (
        at.min(initial=0) < 0
        or (at[..., 0] + height).max() > size
        or (at[..., 1] + width).max() > size
    ):
        raise ValueError(f"positions put a {height}x{width} digit outside the {size}x{size} canvas")
    canvas = np.zeros((count, frames, size, size), dtype=np.uint8)  # (N, T, size, size)
    for n in range(count):
        for t in range(frames):
            frame = canvas[n, t]  # (size, size), a view
            for d in range(digits):
                row, col = at[n, t, d]
                window = frame[row : row + height, col : col + width]  # (h, w), a view
                np.maximum(window, images[n, d], out=window)
    return canvas


def generate_moving_mnist(
    num_sequences: int,
    frames: int = 20,
    size: int = 64,
    digits: int = 2,
    seed: int = 0,
    digit_subset: str = "all",
) -> np.ndarray:
    """Bouncing-digit sequences, uint8 (N, T, size, size); the same for the same arguments.
    ``digit_subset`` ("all", "train", "test") picks which digit images may appear."""
    plan = plan_moving_mnist(num_sequences, frames, size, digits, seed, digit_subset)
    images = _digit_images()[0][plan.indices]  # (N, D, 28, 28)
    return render(images, plan.positions, size)


def write_generated(
    out_dir: str | Path,
    train: int,
    test: int,
    frames: int = 20,
    size: int = 64,
    digits: int = 2,
    seed: int = 0,
) -> dict[str, Path]:
    """Write ``train.npy`` (train digits, ``seed``) and ``test.npy`` (test digits, ``seed + 1``)
    in the released time-major layout (T, N, size, size); returns {"train": path, "test": path}.
    """
    out = Path(out_dir)
    return {
        "train": write_moving_mnist(
            out / "train.npy", generate_moving_mnist(train, frames, size, digits, seed, "train")
        ),
        "test": write_moving_mnist(
            out / "test.npy", generate_moving_mnist(test, frames, size, digits, seed + 1, "test")
        ),
    }
