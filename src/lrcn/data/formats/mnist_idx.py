"""MNIST's own files: the IDX format of Yann LeCun's ``train-images-idx3-ubyte`` and
``t10k-images-idx3-ubyte``, as distributed (gzip-compressed, ``.gz``) or uncompressed.

An IDX images file is a 16-byte big-endian header, then the pixels:

* magic ``0x00000803``: two zero bytes, type code ``0x08`` (unsigned byte), 3 dimensions;
* the number of images N, then rows and columns, each an unsigned 32-bit integer;
* N x rows x cols bytes, one image after another, row by row, 0 (background) to 255 (ink).

A gzip-compressed file is recognised by its first two bytes (``1f 8b``), not by its name.
:func:`read_idx_images` returns the images as stored, any rows x cols; the Moving MNIST
generator (:mod:`lrcn.data.synthetic_moving_mnist`) then refuses anything but MNIST's 28x28
rather than resizing it. Nothing is unpickled and nothing is downloaded; every problem is a
one-line :class:`DataError` naming the file, what was found and what was expected.
"""

from __future__ import annotations

import gzip
import zlib
from io import BufferedIOBase
from pathlib import Path

import numpy as np

from lrcn.data.items import DataError

__all__ = ["EXPECTED", "IMAGES_MAGIC", "LABELS_MAGIC", "idx_images_shape", "read_idx_images"]

IMAGES_MAGIC = 0x00000803  # unsigned bytes, 3 dimensions (N, rows, cols)
LABELS_MAGIC = 0x00000801  # unsigned bytes, 1 dimension (N,)
EXPECTED = (
    "MNIST images in IDX format (magic 0x00000803: unsigned bytes, 3 dimensions), "
    "optionally gzip-compressed, e.g. train-images-idx3-ubyte.gz"
)
_GZIP_MAGIC = b"\x1f\x8b"
_HEADER = 16  # bytes: magic, N, rows, cols
_TYPES = {0x08: "unsigned bytes", 0x09: "signed bytes", 0x0B: "int16", 0x0C: "int32"}
_TYPES |= {0x0D: "float32", 0x0E: "float64"}


def _open(path: Path) -> BufferedIOBase:
    """The file's bytes, decompressed when it starts with gzip's magic bytes."""
    if not path.is_file():
        problem = "file not found" if not path.exists() else "not a file"
        raise DataError(path, problem, expected=EXPECTED)
    with path.open("rb") as probe:
        compressed = probe.read(2) == _GZIP_MAGIC
    return gzip.open(path, "rb") if compressed else path.open("rb")


def _read(path: Path, file: BufferedIOBase, size: int = -1) -> bytes:
    """Up to ``size`` bytes (all when -1), a broken gzip stream as a DataError."""
    try:
        return file.read(size)
    except (OSError, EOFError, zlib.error) as error:  # gzip.BadGzipFile is an OSError
        problem = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise DataError(path, f"not a readable gzip file ({problem})", expected=EXPECTED) from None


def _header(path: Path, head: bytes) -> tuple[int, int, int]:
    """(N, rows, cols) of a 16-byte IDX images header, or a DataError saying what it is."""
    if len(head) < 4:
        raise DataError(path, f"{len(head)} bytes, too short for an IDX header", expected=EXPECTED)
    magic = int.from_bytes(head[:4], "big")
    if magic != IMAGES_MAGIC:
        if magic == LABELS_MAGIC:
            problem = "an IDX labels file (magic 0x00000801), not images"
        elif head[:2] != b"\0\0" or head[2] not in _TYPES:
            problem = f"not an IDX file (starts with 0x{magic:08X})"
        else:
            problem = (
                f"IDX magic 0x{magic:08X}: {_TYPES[head[2]]}, {head[3]} dimension(s), "
                "not 3-dimensional unsigned-byte images"
            )
        raise DataError(path, problem, expected=EXPECTED)
    if len(head) < _HEADER:
        raise DataError(
            path, f"header truncated ({len(head)} of {_HEADER} bytes)", expected=EXPECTED
        )
    count, rows, cols = (int.from_bytes(head[k : k + 4], "big") for k in (4, 8, 12))
    if count < 1:
        raise DataError(path, "no images (N = 0)", expected=EXPECTED)
    if rows < 1 or cols < 1:
        raise DataError(path, f"images of {rows}x{cols} pixels", expected=EXPECTED)
    return count, rows, cols


def idx_images_shape(path: str | Path) -> tuple[int, int, int]:
    """(N, rows, cols) from an IDX images file's header, without reading the pixels."""
    path = Path(path)
    with _open(path) as file:
        return _header(path, _read(path, file, _HEADER))


def read_idx_images(path: str | Path) -> np.ndarray:
    """The images of an IDX images file (``.gz`` or not): uint8 (N, rows, cols), e.g.
    (60000, 28, 28) for ``train-images-idx3-ubyte.gz``."""
    path = Path(path)
    with _open(path) as file:
        data = _read(path, file)
    count, rows, cols = _header(path, data[:_HEADER])
    needed = count * rows * cols
    found = len(data) - _HEADER
    if found < needed:
        raise DataError(
            path,
            f"truncated: the header promises {count} images of {rows}x{cols} "
            f"({needed} bytes), the file holds {found}",
            expected=EXPECTED,
        )
    if found > needed:
        raise DataError(
            path,
            f"{found - needed} bytes after {count} images of {rows}x{cols}",
            expected=EXPECTED,
        )
    images = np.frombuffer(data, dtype=np.uint8, offset=_HEADER)  # (N * rows * cols,)
    return images.reshape(count, rows, cols).copy()  # (N, rows, cols), writable
