"""Optical flow images: the LRCN encoding, measured motion, and the mirrored data set."""

import numpy as np

from lrcn.data.flow import encode_flow, flow_images, write_flow_dataset
from lrcn.data.formats.ucf101 import read_ucf101
from lrcn.data.video_io import read_frames


def test_encoding_centres_scales_and_clips():
    flow = np.array([[[1.0, -2.0], [20.0, 0.0]]])  # (1, 2, 2): two pixels
    encoded = encode_flow(flow)
    assert encoded.dtype == np.uint8
    np.testing.assert_array_equal(encoded[0, 0], [144, 96, round(5**0.5 * 16 + 128)])
    np.testing.assert_array_equal(encoded[0, 1], [255, 128, 255])  # 20 px: clipped


def test_flow_of_a_rightward_shift_reads_positive_x():
    rng = np.random.default_rng(0)
    texture = (rng.random((80, 80)) * 255).astype(np.uint8)
    import cv2

    texture = cv2.GaussianBlur(texture, (0, 0), 2)
    shifted = np.roll(texture, 2, axis=1)  # 2 pixels to the right
    frames = np.stack([np.repeat(t[..., None], 3, axis=2) for t in (texture, shifted)])
    (image,) = flow_images(frames)
    center = image[20:60, 20:60].reshape(-1, 3).mean(axis=0)
    assert abs(center[0] - (128 + 2 * 16)) < 4  # x: +2 px
    assert abs(center[1] - 128) < 4  # y: none
    assert abs(center[2] - (128 + 2 * 16)) < 4  # magnitude 2


def test_flow_data_set_mirrors_the_videos_and_reads_with_the_same_reader(order_ucf101, tmp_path):
    data = read_ucf101(order_ucf101)
    items = data.train[:3] + data.test[:2]
    lists = order_ucf101.parent / "ucfTrainTestlist"
    flow_root = tmp_path / "UCF-101"
    assert write_flow_dataset(items, order_ucf101, flow_root, [lists]) == []
    for item in items:
        folder = flow_root / item.path.relative_to(order_ucf101)
        frames = len(read_frames(item.path))
        assert folder.is_dir() and len(list(folder.glob("flow_*.jpg"))) == frames - 1
        assert read_frames(folder, [0]).shape[-1] == 3
    assert (tmp_path / "ucfTrainTestlist" / "classInd.txt").is_file()
    before = {p: p.stat().st_mtime_ns for p in flow_root.rglob("*.jpg")}
    write_flow_dataset(items, order_ucf101, flow_root)  # complete folders are not redone
    assert before == {p: p.stat().st_mtime_ns for p in flow_root.rglob("*.jpg")}


def test_flow_at_sampled_frames_equals_the_flow_of_those_pairs(tmp_path):
    """Flow at frame i is the flow from i to i+1 (from the one before, at the last frame), and
    matches what the whole-video flow gives for that pair."""
    from lrcn.data.flow import flow_at, flow_images
    from lrcn.data.video_io import read_frames, write_video

    rng = np.random.default_rng(0)
    path = tmp_path / "v.avi"
    write_video(path, rng.integers(0, 255, (10, 32, 32, 3), dtype=np.uint8))
    every = flow_images(read_frames(path))  # (9, 32, 32, 3): pair t -> t+1
    sampled = flow_at(path, [0, 4, 9], 10)
    assert sampled.shape == (3, 32, 32, 3)
    np.testing.assert_array_equal(sampled, every[[0, 4, 8]])
