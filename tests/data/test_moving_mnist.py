"""Moving MNIST: the released time-major .npy layout, its errors (never unpickling), and the
built-in bouncing-digit generator (motion, bounces, maximum overlap, disjoint digit subsets)."""

import numpy as np
import pytest

from lrcn.data.formats.moving_mnist import read_moving_mnist, sequences, write_moving_mnist
from lrcn.data.items import DataError
from lrcn.data.synthetic_moving_mnist import (
    DIGIT_SIZE,
    STEP_LENGTH,
    digit_images,
    digit_subset_indices,
    generate_moving_mnist,
    plan_moving_mnist,
    render,
    write_generated,
)


def test_standard_layout_reads_back_time_major(tmp_path):
    rng = np.random.default_rng(0)
    stored = rng.integers(0, 256, size=(20, 3, 64, 64), dtype=np.uint8)  # (T, N, H, W)
    path = tmp_path / "mnist_test_seq.npy"
    np.save(path, stored)
    array = read_moving_mnist(path)
    assert array.shape == (20, 3, 64, 64) and array.dtype == np.uint8
    assert array.tobytes() == stored.tobytes()
    seqs = sequences(array)
    assert seqs.shape == (3, 20, 64, 64)
    np.testing.assert_array_equal(seqs, stored.transpose(1, 0, 2, 3))
    np.testing.assert_array_equal(seqs[1, 5], stored[5, 1])
    assert np.shares_memory(seqs, array)  # a view, not a copy


def test_write_is_time_major_and_refuses_bad_input(tmp_path):
    seqs = np.arange(2 * 4 * 28 * 28, dtype=np.uint64).reshape(2, 4, 28, 28).astype(np.uint8)
    path = write_moving_mnist(tmp_path / "deep" / "folder" / "x.npy", seqs)
    np.testing.assert_array_equal(np.load(path), seqs.transpose(1, 0, 2, 3))
    with pytest.raises(ValueError, match="uint8"):
        write_moving_mnist(tmp_path / "f.npy", seqs.astype(np.float32))
    with pytest.raises(ValueError, match="dimensions"):
        write_moving_mnist(tmp_path / "d.npy", seqs[0])


class _Payload:
    """Unpickling this creates the marker file: proof that the reader unpickled."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize(
    ("case", "found"),
    [
        ("float32", "dtype float32"),
        ("3 dims", "3 dimensions"),
        ("not square", "not square"),
        ("one frame", "1 frame"),
        ("no sequences", "no sequences"),
        ("pickled objects", "not a readable .npy"),
        ("text file", "not a readable .npy"),
        ("empty file", "not a readable .npy"),
        ("missing", "file not found"),
    ],
)
def test_bad_files_give_one_line_data_error_naming_the_file(tmp_path, case, found):
    path = tmp_path / "bad.npy"
    marker = tmp_path / "unpickled"
    if case == "float32":
        np.save(path, np.zeros((20, 2, 64, 64), dtype=np.float32))
    elif case == "3 dims":
        np.save(path, np.zeros((20, 64, 64), dtype=np.uint8))
    elif case == "not square":
        np.save(path, np.zeros((20, 2, 64, 32), dtype=np.uint8))
    elif case == "one frame":
        np.save(path, np.zeros((1, 2, 64, 64), dtype=np.uint8))
    elif case == "no sequences":
        np.save(path, np.zeros((20, 0, 64, 64), dtype=np.uint8))
    elif case == "pickled objects":
        np.save(path, np.array([_Payload(marker), 1], dtype=object), allow_pickle=True)
        assert not marker.exists()
    elif case == "text file":
        path.write_text("these are not the frames you are looking for\n")
    elif case == "empty file":
        path.write_bytes(b"")
    with pytest.raises(DataError) as caught:
        read_moving_mnist(path)
    message = str(caught.value)
    assert str(path) in message and found in message
    assert "\n" not in message
    assert "expected uint8 (T, N, H, W)" in message
    assert not marker.exists()  # the payload was never unpickled


def test_digit_images_are_mnist_sized_and_stretched():
    images, labels = digit_images()
    assert images.shape == (1797, DIGIT_SIZE, DIGIT_SIZE) and images.dtype == np.uint8
    assert labels.shape == (1797,) and labels.dtype == np.int64
    assert set(labels.tolist()) == set(range(10))
    assert (images.reshape(len(images), -1).max(axis=1) == 255).all()
    # a smooth (bicubic) resize, not 8x8 blocks: many grey levels per image
    assert min(len(np.unique(image)) for image in images) > 20
    # sklearn's digits fill their box top to bottom, but the side columns are background
    assert images[:, :, [0, -1]].mean() < 5 < 100 < images[:, 10:18, 10:18].mean()


def test_generator_shape_dtype_and_determinism():
    a = generate_moving_mnist(4, frames=10, size=48, digits=2, seed=3)
    assert a.shape == (4, 10, 48, 48) and a.dtype == np.uint8
    assert a.max() == 255 and (a.reshape(40, -1) > 0).any(axis=1).all()  # every frame has ink
    np.testing.assert_array_equal(a, generate_moving_mnist(4, frames=10, size=48, digits=2, seed=3))
    assert not np.array_equal(a, generate_moving_mnist(4, frames=10, size=48, digits=2, seed=4))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_sequences": 0}, "num_sequences"),
        ({"frames": 1}, "frames"),
        ({"size": 27}, "size"),
        ({"digits": 0}, "digits"),
        ({"digit_subset": "val"}, "digit_subset"),
    ],
)
def test_generator_refuses_bad_arguments(kwargs, message):
    args = {"num_sequences": 1, **kwargs}
    with pytest.raises(ValueError, match=message):
        generate_moving_mnist(**args)


def _boxes(frames):
    """(T, 4) row0, row1, col0, col1 of the nonzero pixels of each (size, size) frame."""
    out = []
    for frame in frames:
        rows = np.flatnonzero(frame.any(axis=1))
        cols = np.flatnonzero(frame.any(axis=0))
        out.append((rows[0], rows[-1], cols[0], cols[-1]))
    return np.array(out)


def test_one_digit_stays_inside_moves_at_the_speed_and_bounces():
    size, frames, n = 64, 20, 40
    speed = STEP_LENGTH * (size - DIGIT_SIZE)
    assert speed == pytest.approx(3.6)
    plan = plan_moving_mnist(n, frames=frames, size=size, digits=1, seed=7)
    video = generate_moving_mnist(n, frames=frames, size=size, digits=1, seed=7)
    free = size - DIGIT_SIZE
    assert plan.positions.min() >= 0 and plan.positions.max() <= free
    steps = np.linalg.norm(np.diff(plan.positions, axis=1), axis=-1)  # (N, T-1, 1)
    assert steps.max() <= speed + 1e-9
    bounces = {0.0: 0, float(free): 0}
    for k in range(n):
        box = _boxes(video[k])  # (T, 4)
        assert (box[:, 1] - box[:, 0] < DIGIT_SIZE).all()
        assert (box[:, 3] - box[:, 2] < DIGIT_SIZE).all()
        top_left = box[:, [0, 2]]  # (T, 2)
        rounded = np.rint(plan.positions[k, :, 0]).astype(int)  # (T, 2)
        # the ink is drawn where the trajectory says: a fixed offset inside the digit image
        assert (top_left - rounded == (top_left - rounded)[0]).all()
        assert np.abs(np.diff(top_left, axis=0)).max() <= speed + 1
        for t in range(2, frames - 1):
            for axis in (0, 1):
                at = plan.positions[k, t, 0, axis]
                before = plan.positions[k, t - 1, 0, axis] - plan.positions[k, t - 2, 0, axis]
                if at not in (0.0, free) or plan.positions[k, t - 1, 0, axis] in (0.0, free):
                    continue
                if abs(before) <= 1.5:
                    continue
                # at a wall: the ink moved towards it, now moves away from it at the same speed
                after = plan.positions[k, t + 1, 0, axis] - at
                assert after == pytest.approx(-before)
                towards = top_left[t, axis] - top_left[t - 2, axis]
                away = top_left[t + 1, axis] - top_left[t, axis]
                assert towards != 0 and away != 0 and np.sign(towards) == -np.sign(away)
                assert np.sign(away) == (1 if at == 0.0 else -1)
                bounces[at] += 1
    assert min(bounces.values()) >= 3  # both walls were checked


def test_overlapping_digits_combine_by_maximum():
    images, _ = digit_images()
    pair = images[[0, 1]][None]  # (1, 2, 28, 28): a 0 and a 1
    positions = np.zeros((1, 3, 2, 2))  # (N, T, D, 2)
    positions[0, :, 1] = [[0, 0], [3, 2], [10, 10]]  # fully, partly, then less overlapping
    both = render(pair, positions, 40)
    first = render(pair[:, :1], positions[:, :, :1], 40)
    second = render(pair[:, 1:], positions[:, :, 1:], 40)
    np.testing.assert_array_equal(both, np.maximum(first, second))
    total = first.astype(int) + second.astype(int)
    assert total.max() > 255  # strokes do overlap: a sum would saturate, the maximum does not
    assert not np.array_equal(both, np.clip(total, 0, 255).astype(np.uint8))
    # and the generator itself uses render
    plan = plan_moving_mnist(3, frames=6, size=40, digits=3, seed=1)
    np.testing.assert_array_equal(
        generate_moving_mnist(3, frames=6, size=40, digits=3, seed=1),
        render(images[plan.indices], plan.positions, 40),
    )


def test_train_and_test_digits_are_disjoint():
    train, test = digit_subset_indices("train"), digit_subset_indices("test")
    assert set(train.tolist()).isdisjoint(test.tolist())
    assert sorted([*train.tolist(), *test.tolist()]) == digit_subset_indices("all").tolist()
    assert (test % 5 == 0).all() and len(test) == 360
    images, _ = digit_images()
    for subset, allowed in (("train", train), ("test", test)):
        plan = plan_moving_mnist(50, frames=2, size=28, digits=1, seed=0, digit_subset=subset)
        assert np.isin(plan.indices, allowed).all()
        video = generate_moving_mnist(50, frames=2, size=28, digits=1, seed=0, digit_subset=subset)
        # size 28: the frame is the digit image itself
        np.testing.assert_array_equal(video[:, 0], images[plan.indices[:, 0]])


def test_write_generated_reads_back(tmp_path):
    paths = write_generated(tmp_path / "mm", train=3, test=2, frames=6, size=32, digits=2, seed=5)
    assert set(paths) == {"train", "test"}
    train = read_moving_mnist(paths["train"])
    test = read_moving_mnist(paths["test"])
    assert train.shape == (6, 3, 32, 32) and test.shape == (6, 2, 32, 32)
    np.testing.assert_array_equal(
        sequences(train), generate_moving_mnist(3, 6, 32, 2, seed=5, digit_subset="train")
    )
    np.testing.assert_array_equal(
        sequences(test), generate_moving_mnist(2, 6, 32, 2, seed=6, digit_subset="test")
    )
