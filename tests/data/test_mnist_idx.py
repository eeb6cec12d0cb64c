"""MNIST's IDX image files (plain and gzip-compressed), their errors, and Moving MNIST generated
from them: the digits drawn are the file's, train and test never share one, and the CLI's
--mnist writes files the Moving MNIST reader takes."""

import gzip
import struct

import numpy as np
import pytest
from typer.testing import CliRunner

from lrcn.cli import app
from lrcn.data.formats.mnist_idx import idx_images_shape, read_idx_images
from lrcn.data.formats.moving_mnist import read_moving_mnist, sequences
from lrcn.data.items import DataError
from lrcn.data.synthetic_moving_mnist import (
    generate_moving_mnist,
    mnist_subset_indices,
    plan_moving_mnist,
    write_generated,
)

runner = CliRunner()


def _digits(count=12):
    """uint8 (count, 28, 28): hand-made digits, each a bar with its own ink value and place."""
    images = np.zeros((count, 28, 28), dtype=np.uint8)
    for k in range(count):
        value = 100 + 10 * k  # every image's ink is its own: which one was drawn is visible
        images[k, 4:24, 10 + k % 8 : 13 + k % 8] = value  # a "1"
        if k % 2:
            images[k, 4:7, 6:22] = value  # a "7"'s top bar
    return images


def _idx(images, magic=0x00000803):
    """The bytes of an IDX file holding ``images`` (N, rows, cols), exactly as MNIST's."""
    count, rows, cols = images.shape
    return struct.pack(">IIII", magic, count, rows, cols) + images.astype(np.uint8).tobytes()


@pytest.fixture
def mnist_files(tmp_path):
    images = _digits()
    plain = tmp_path / "train-images-idx3-ubyte"
    plain.write_bytes(_idx(images))
    packed = tmp_path / "train-images-idx3-ubyte.gz"
    packed.write_bytes(gzip.compress(_idx(images)))
    return images, plain, packed


def test_reads_plain_and_gzip_files_back(mnist_files, tmp_path):
    images, plain, packed = mnist_files
    assert plain.read_bytes()[:4] == b"\x00\x00\x08\x03"  # the format as published
    for path in (plain, packed):
        read = read_idx_images(path)
        assert read.dtype == np.uint8 and read.shape == (12, 28, 28)
        np.testing.assert_array_equal(read, images)
        assert idx_images_shape(path) == (12, 28, 28)
    # gzip is recognised by its magic bytes, not the name
    renamed = tmp_path / "digits.bin"
    renamed.write_bytes(packed.read_bytes())
    np.testing.assert_array_equal(read_idx_images(renamed), images)
    # any image size is read as stored
    odd = tmp_path / "odd"
    odd.write_bytes(_idx(np.arange(2 * 3 * 5, dtype=np.uint8).reshape(2, 3, 5)))
    np.testing.assert_array_equal(
        read_idx_images(odd), np.arange(30, dtype=np.uint8).reshape(2, 3, 5)
    )


@pytest.mark.parametrize(
    ("case", "found"),
    [
        ("labels file", "IDX labels file (magic 0x00000801)"),
        ("not IDX", "not an IDX file"),
        ("int32 images", "int32, 3 dimension(s)"),
        ("truncated", "truncated: the header promises 12 images of 28x28 (9408 bytes)"),
        ("truncated gzip", "not a readable gzip file"),
        ("short header", "header truncated"),
        ("empty", "0 bytes, too short"),
        ("no images", "no images"),
        ("extra bytes", "5 bytes after 12 images"),
        ("missing", "file not found"),
    ],
)
def test_bad_files_give_one_line_data_error_naming_the_file(tmp_path, case, found):
    images = _digits()
    path = tmp_path / "bad-idx3-ubyte"
    if case == "labels file":
        labels = np.arange(12, dtype=np.uint8)
        path.write_bytes(struct.pack(">II", 0x00000801, 12) + labels.tobytes())
    elif case == "not IDX":
        np.save(tmp_path / "bad.npy", images)
        path.write_bytes((tmp_path / "bad.npy").read_bytes())
    elif case == "int32 images":
        path.write_bytes(_idx(images, magic=0x00000C03))
    elif case == "truncated":
        path.write_bytes(_idx(images)[:-100])
    elif case == "truncated gzip":
        path.write_bytes(gzip.compress(_idx(images))[:-30])
    elif case == "short header":
        path.write_bytes(_idx(images)[:10])
    elif case == "empty":
        path.write_bytes(b"")
    elif case == "no images":
        path.write_bytes(_idx(images[:0]))
    elif case == "extra bytes":
        path.write_bytes(_idx(images) + b"\0" * 5)
    with pytest.raises(DataError) as caught:
        read_idx_images(path)
    message = str(caught.value)
    assert str(path) in message and found in message, message
    assert "\n" not in message
    assert "expected MNIST images in IDX format" in message


def test_generated_sequences_draw_the_files_digits_train_and_test_apart(mnist_files):
    images, _, packed = mnist_files
    digits = read_idx_images(packed)
    train, test = mnist_subset_indices("train", 12), mnist_subset_indices("test", 12)
    assert train.tolist() == list(range(10)) and test.tolist() == [10, 11]  # the last sixth
    assert mnist_subset_indices("all", 12).tolist() == list(range(12))
    sixty = mnist_subset_indices("test", 60_000)
    assert len(sixty) == 10_000 and sixty[0] == 50_000  # MNIST: 50k train, 10k held out
    for subset, allowed, seed in (("train", train, 0), ("test", test, 1)):
        plan = plan_moving_mnist(30, 4, 48, 2, seed, subset, images=digits)
        assert np.isin(plan.indices, allowed).all()
        video = generate_moving_mnist(30, 4, 48, 2, seed, subset, images=digits)
        assert video.shape == (30, 4, 48, 48) and video.dtype == np.uint8
        for n in range(30):
            drawn = plan.indices[n]  # (2,)
            # the first frame's ink is the drawn digits' own: their brightest, their values
            assert video[n, 0].max() == images[drawn].max()
            assert set(np.unique(video[n, 0])) <= {0, *images[drawn].ravel().tolist()}
        # size 28: the frame is the digit image itself
        one = generate_moving_mnist(20, 2, 28, 1, seed, subset, images=digits)
        first = plan_moving_mnist(20, 2, 28, 1, seed, subset, images=digits).indices[:, 0]
        np.testing.assert_array_equal(one[:, 0], images[first])
    # the default stays scikit-learn's digits, untouched by the new argument
    np.testing.assert_array_equal(
        generate_moving_mnist(2, 3, 32, 2, 5, "train"),
        generate_moving_mnist(2, 3, 32, 2, 5, "train", images=None),
    )
    with pytest.raises(ValueError, match=r"\(M, 28, 28\)"):
        generate_moving_mnist(1, images=np.zeros((3, 20, 20), dtype=np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        generate_moving_mnist(1, images=digits.astype(np.float32))
    with pytest.raises(ValueError, match="at least one each"):
        generate_moving_mnist(1, digit_subset="test", images=digits[:1])


def test_write_generated_from_mnist_and_its_errors(mnist_files, tmp_path):
    images, plain, _ = mnist_files
    paths = write_generated(tmp_path / "mm", train=3, test=2, frames=5, size=40, mnist=plain)
    np.testing.assert_array_equal(
        sequences(read_moving_mnist(paths["train"])),
        generate_moving_mnist(3, 5, 40, 2, 0, "train", images=images),
    )
    np.testing.assert_array_equal(
        sequences(read_moving_mnist(paths["test"])),
        generate_moving_mnist(2, 5, 40, 2, 1, "test", images=images),
    )
    small = tmp_path / "small-idx3-ubyte"
    small.write_bytes(_idx(np.zeros((4, 20, 20), dtype=np.uint8)))
    one = tmp_path / "one-idx3-ubyte"
    one.write_bytes(_idx(images[:1]))
    for path, found in ((small, "images of 20x20 pixels"), (one, "1 image")):
        with pytest.raises(DataError) as caught:
            write_generated(tmp_path / "no", train=1, test=1, mnist=path)
        assert str(path) in str(caught.value) and found in str(caught.value)
    assert not (tmp_path / "no").exists()  # nothing written before the digits were checked


def test_cli_mnist_option_writes_readable_files(mnist_files, tmp_path):
    images, _, packed = mnist_files
    out = tmp_path / "mm"
    args = ["datasets", "moving-mnist", "--out", str(out), "--train", "3", "--test", "2"]
    result = runner.invoke(app, [*args, "--frames", "6", "--size", "32", "--mnist", str(packed)])
    assert result.exit_code == 0, result.output
    assert read_moving_mnist(out / "train.npy").shape == (6, 3, 32, 32)
    assert read_moving_mnist(out / "test.npy").shape == (6, 2, 32, 32)
    np.testing.assert_array_equal(
        sequences(read_moving_mnist(out / "train.npy")),
        generate_moving_mnist(3, 6, 32, 2, 0, "train", images=images),
    )
    assert "MNIST images" in result.output and packed.name in result.output
    assert "10 train digits" in result.output and "2 test digits" in result.output
    default = runner.invoke(app, [*args, "--frames", "2", "--size", "28"])
    assert default.exit_code == 0, default.output
    assert "scikit-learn" in default.output and "1437 train digits" in default.output
    labels = tmp_path / "train-labels-idx1-ubyte"
    labels.write_bytes(struct.pack(">II", 0x00000801, 3) + bytes(3))
    bad = runner.invoke(app, [*args, "--mnist", str(labels)])
    assert bad.exit_code != 0
    assert "labels file" in bad.output, bad.output
