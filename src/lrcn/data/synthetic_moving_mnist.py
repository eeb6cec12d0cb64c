"""A built-in Moving MNIST: bouncing digits made the way Srivastava et al. (2015) made theirs,
from the handwritten digits that ship with scikit-learn, so no download is needed, or from
MNIST's own images when you have its files (``images=``, ``write_generated(mnist=...)``).

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

With MNIST's images (:func:`lrcn.data.formats.mnist_idx.read_idx_images` of
``train-images-idx3-ubyte.gz``, passed as ``images``) the test digits are the last sixth of
the file, ``max(1, M // 6)`` images, and the train digits all those before them
(:func:`mnist_subset_indices`): 50,000 and 10,000 of MNIST's 60,000 training images, its usual
validation split. The published protocol (Srivastava et al.; OpenSTL) trains on sequences of
MNIST's training digits and tests on the released ``mnist_test_seq.npy``: train on the
generated ``train.npy`` and test on that file; the generated ``test.npy`` is a held-out check.

The steps are separate functions (:func:`plan_moving_mnist` draws digits and trajectories,
:func:`render` draws them) so the motion and the combination can be checked on their own.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

import numpy as np

from lrcn.data.formats.mnist_idx import EXPECTED, read_idx_images
from lrcn.data.formats.moving_mnist import write_moving_mnist
from lrcn.data.items import DataError

__all__ = [
    "DIGIT_SIZE",
    "DIGIT_SUBSETS",
    "STEP_LENGTH",
    "MovingDigits",
    "digit_images",
    "digit_subset_indices",
    "generate_moving_mnist",
    "mnist_subset_indices",
    "plan_moving_mnist",
    "render",
    "write_generated",
]

DIGIT_SIZE = 28  # MNIST's digit images
STEP_LENGTH = 0.1  # per frame, as a fraction of the free range (size - 28): 3.6 px at 64x64
DIGIT_SUBSETS = ("all", "train", "test")


class MovingDigits(NamedTuple):
    """Which digit images move where: what :func:`render` draws."""

    indices: np.ndarray  # int64 (N, D): digit image indices (sklearn's or the images given)
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


def mnist_subset_indices(digit_subset: str, count: int) -> np.ndarray:
    """int64 (K,): which of ``count`` MNIST images ``"train"`` (all but the last
    ``max(1, count // 6)``), ``"test"`` (those last ones) or ``"all"`` draw from."""
    if digit_subset not in DIGIT_SUBSETS:
        raise ValueError(f"digit_subset must be one of {DIGIT_SUBSETS}, got {digit_subset!r}")
    if count < (1 if digit_subset == "all" else 2):
        raise ValueError(f"{count} digit image(s): train and test need at least one each, disjoint")
    indices = np.arange(count, dtype=np.int64)
    held_out = max(1, count // 6)  # 10,000 of MNIST's 60,000 training images
    if digit_subset == "train":
        return indices[: count - held_out]
    if digit_subset == "test":
        return indices[count - held_out :]
    return indices


def _pool(digit_subset: str, images: np.ndarray | None) -> np.ndarray:
    """int64 (K,): the digit indices a subset draws from, of sklearn's digits or ``images``."""
    if images is None:
        return digit_subset_indices(digit_subset)
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8:
        raise ValueError(f"images must be a uint8 array, got {getattr(images, 'dtype', images)}")
    if images.ndim != 3 or images.shape[1:] != (DIGIT_SIZE, DIGIT_SIZE):
        raise ValueError(
            f"images must be (M, {DIGIT_SIZE}, {DIGIT_SIZE}) MNIST digits, "
            f"got shape {tuple(images.shape)}"
        )
    return mnist_subset_indices(digit_subset, len(images))


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
    images: np.ndarray | None = None,
) -> MovingDigits:
    """The digits and trajectories :func:`generate_moving_mnist` draws for these arguments."""
    _check(num_sequences, frames, size, digits)
    pool = _pool(digit_subset, images)  # (K,)
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
    images: np.ndarray | None = None,
) -> np.ndarray:
    """Bouncing-digit sequences, uint8 (N, T, size, size); the same for the same arguments.
    ``digit_subset`` ("all", "train", "test") picks which digit images may appear; ``images``,
    uint8 (M, 28, 28) such as MNIST's, replaces scikit-learn's digits (see
    :func:`mnist_subset_indices` for its train and test parts)."""
    plan = plan_moving_mnist(num_sequences, frames, size, digits, seed, digit_subset, images)
    source = _digit_images()[0] if images is None else images  # (M, 28, 28)
    return render(source[plan.indices], plan.positions, size)  # drawn: (N, D, 28, 28)


def write_generated(
    out_dir: str | Path,
    train: int,
    test: int,
    frames: int = 20,
    size: int = 64,
    digits: int = 2,
    seed: int = 0,
    mnist: str | Path | None = None,
) -> dict[str, Path]:
    """Write ``train.npy`` (train digits, ``seed``) and ``test.npy`` (test digits, ``seed + 1``)
    in the released time-major layout (T, N, size, size); returns {"train": path, "test": path}.
    ``mnist``: an MNIST images file (IDX, optionally .gz, e.g. ``train-images-idx3-ubyte.gz``)
    to draw the digits from instead of scikit-learn's; train and test split it as
    :func:`mnist_subset_indices` says.
    """
    images = None if mnist is None else _read_mnist(Path(mnist))  # (M, 28, 28)
    out = Path(out_dir)
    return {
        "train": write_moving_mnist(
            out / "train.npy",
            generate_moving_mnist(train, frames, size, digits, seed, "train", images),
        ),
        "test": write_moving_mnist(
            out / "test.npy",
            generate_moving_mnist(test, frames, size, digits, seed + 1, "test", images),
        ),
    }


def _read_mnist(path: Path) -> np.ndarray:
    """uint8 (M, 28, 28), M >= 2, from an IDX images file, or a DataError naming it."""
    images = read_idx_images(path)  # (M, rows, cols)
    count, rows, cols = images.shape
    if (rows, cols) != (DIGIT_SIZE, DIGIT_SIZE):
        raise DataError(
            path,
            f"images of {rows}x{cols} pixels; Moving MNIST draws MNIST's "
            f"{DIGIT_SIZE}x{DIGIT_SIZE} digits (not resized)",
            expected=EXPECTED,
        )
    if count < 2:
        raise DataError(
            path, "1 image; train and test need one each, never shared", expected=EXPECTED
        )
    return images
