"""Your own videos for next-frame prediction: finding them, making frames small and square,
grayscale by BT.601, splitting by video, cutting windows."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from lrcn.data.formats.video_windows import (
    find_videos,
    read_small_frames,
    split_by_video,
    to_small_frames,
    window_starts,
)
from lrcn.data.items import DataError
from lrcn.data.video_io import write_video


def _frame_folder(folder, frames):
    folder.mkdir(parents=True)
    for i, frame in enumerate(frames):
        Image.fromarray(frame).save(folder / f"{i:03d}.png")
    return folder


def test_finds_video_files_and_frame_folders_in_subfolders(tmp_path):
    write_video(tmp_path / "walk" / "a.mp4", np.zeros((4, 16, 16, 3), np.uint8))
    _frame_folder(tmp_path / "run" / "b", np.zeros((3, 8, 8, 3), np.uint8))
    (tmp_path / "notes.txt").write_text("not a video")
    found = find_videos(tmp_path)
    assert found == [tmp_path / "run" / "b", tmp_path / "walk" / "a.mp4"]


def test_a_folder_without_videos_is_an_error(tmp_path):
    (tmp_path / "x.txt").write_text("")
    with pytest.raises(DataError, match="no videos"):
        find_videos(tmp_path)
    with pytest.raises(DataError, match="not found"):
        find_videos(tmp_path / "missing")


def test_small_frames_are_square_and_grayscale_by_bt601():
    frames = np.zeros((2, 20, 40, 3), np.uint8)  # wide: the center 20x20 is kept
    frames[:, :, 10:30] = (200, 100, 50)
    gray = to_small_frames(frames, 10, 1)
    assert gray.shape == (2, 1, 10, 10) and gray.dtype == np.uint8
    expected = round(0.299 * 200 + 0.587 * 100 + 0.114 * 50)
    assert int(gray[0, 0, 5, 5]) == expected
    assert np.all(gray == expected)  # the dark sides were cropped away
    rgb = to_small_frames(frames, 10, 3)
    assert rgb.shape == (2, 3, 10, 10)
    assert tuple(rgb[0, :, 5, 5]) == (200, 100, 50)


def test_read_small_frames_takes_every_kth_and_the_asked_part(tmp_path):
    frames = np.stack([np.full((8, 8, 3), 10 * i, np.uint8) for i in range(12)])
    folder = _frame_folder(tmp_path / "v", frames)
    every_2nd = read_small_frames(folder, 8, 1, frame_step=2)
    assert [int(f[0, 0, 0]) for f in every_2nd] == [0, 20, 40, 60, 80, 100]
    part = read_small_frames(folder, 8, 1, indices=[3, 5, 7])
    assert [int(f[0, 0, 0]) for f in part] == [30, 50, 70]


def test_split_is_by_video_disjoint_and_seeded(tmp_path):
    paths = [tmp_path / f"v{i}.mp4" for i in range(10)]
    split = split_by_video(paths, 0.1, 0.2, seed=3, root=tmp_path)
    assert [len(split[s]) for s in ("train", "val", "test")] == [7, 1, 2]
    assert sorted(split["train"] + split["val"] + split["test"]) == sorted(paths)
    assert split == split_by_video(list(reversed(paths)), 0.1, 0.2, seed=3, root=tmp_path)
    assert split != split_by_video(paths, 0.1, 0.2, seed=4, root=tmp_path)
    with pytest.raises(DataError, match="at least 3 videos"):
        split_by_video(paths[:2], 0.1, 0.2, 0, tmp_path)


def test_windows_fit_inside_the_video():
    assert window_starts(25, 10, 5) == [0, 5, 10, 15]
    assert window_starts(9, 10, 5) == []
