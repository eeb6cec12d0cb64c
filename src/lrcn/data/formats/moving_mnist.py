"""Moving MNIST as released: ``mnist_test_seq.npy`` (Srivastava et al. 2015, "Unsupervised
Learning of Video Representations using LSTMs").

The release is one ``.npy`` file holding a uint8 array of shape (T=20, N=10000, 64, 64):
**time first**, then sequences. Models (and the field's protocol: 10 frames in, 10 frames out)
want one sequence at a time, (N, T, H, W); :func:`sequences` gives that view without copying,
so the 800 MB file is memory-mapped and never read whole.

The reader never unpickles: a ``.npy`` holding Python objects could run code on load, so it is
refused like any other malformed file. Every problem is a one-line :class:`DataError` naming
the file, what was found (shape, dtype) and what was expected.

:func:`write_moving_mnist` writes (N, T, H, W) sequences back in the released time-major layout,
so generated data (:mod:`lrcn.data.synthetic_moving_mnist`) and the real file read the same.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lrcn.data.items import DataError

__all__ = ["EXPECTED", "read_moving_mnist", "sequences", "write_moving_mnist"]

EXPECTED = "uint8 (T, N, H, W), e.g. (20, 10000, 64, 64) as mnist_test_seq.npy"


def read_moving_mnist(path: str | Path) -> np.ndarray:
    """The array of a Moving MNIST ``.npy`` file, memory-mapped and as stored: uint8
    (T, N, H, W), time-major. Use :func:`sequences` for (N, T, H, W)."""
    path = Path(path)
    if not path.is_file():
        problem = "file not found" if not path.exists() else "not a file"
        raise DataError(path, problem, expected=EXPECTED)
    try:
        # mmap_mode refuses object arrays before reading them; allow_pickle=False refuses a
        # pickle (or any non-.npy bytes, which np.load would otherwise try to unpickle).
        loaded = np.load(path, allow_pickle=False, mmap_mode="r")
    except (OSError, ValueError, EOFError) as error:
        problem = str(error).splitlines()[0] if str(error) else type(error).__name__
        if "pickle" in problem:  # numpy's advice to load unsafely is not ours to give
            problem = "not a .npy header, or an array of Python objects, which is never loaded"
        raise DataError(path, f"not a readable .npy array ({problem})", expected=EXPECTED) from None
    if not isinstance(loaded, np.ndarray):  # an .npz archive: np.load returns an NpzFile
        close = getattr(loaded, "close", None)
        if close is not None:
            close()
        raise DataError(path, f"got {type(loaded).__name__}, not one array", expected=EXPECTED)
    array: np.ndarray = loaded  # uint8 (T, N, H, W) once checked
    found = f"shape {tuple(array.shape)}, dtype {array.dtype}"
    if array.dtype != np.uint8:
        raise DataError(path, f"dtype {array.dtype} ({found})", expected=EXPECTED)
    if array.ndim != 4:
        raise DataError(path, f"{array.ndim} dimensions ({found})", expected=EXPECTED)
    frames, count, height, width = array.shape
    if height != width:
        raise DataError(
            path, f"frames are {height}x{width}, not square ({found})", expected=EXPECTED
        )
    if frames < 2:
        raise DataError(path, f"{frames} frame(s) per sequence ({found})", expected=EXPECTED)
    if count < 1:
        raise DataError(path, f"no sequences ({found})", expected=EXPECTED)
    return array


def sequences(array: np.ndarray) -> np.ndarray:
    """(T, N, H, W) -> (N, T, H, W): one sequence per row; a view (transpose), no copy."""
    return array.transpose(1, 0, 2, 3)


def write_moving_mnist(path: str | Path, sequences_ntHW: np.ndarray) -> Path:
    """Write uint8 sequences (N, T, H, W) as the released time-major (T, N, H, W) ``.npy``;
    parent folders are created. Returns the path written."""
    if sequences_ntHW.dtype != np.uint8:
        raise ValueError(f"sequences must be uint8, got {sequences_ntHW.dtype}")
    if sequences_ntHW.ndim != 4:
        raise ValueError(
            f"sequences must be (N, T, H, W), got {sequences_ntHW.ndim} dimensions "
            f"{tuple(sequences_ntHW.shape)}"
        )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    time_major = np.ascontiguousarray(sequences_ntHW.transpose(1, 0, 2, 3))  # (T, N, H, W)
    with path.open("wb") as file:  # a file object: np.save would append .npy to other names
        np.save(file, time_major, allow_pickle=False)
    return path
