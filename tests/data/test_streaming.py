"""Streamed clips and every-k-th-frame reading: the same frames and clips as the readers that
hold a whole video, and the same errors."""

import numpy as np
import pytest
import torch

from lrcn.backbones import Preprocess
from lrcn.data.clips import EvalVideos, TrainClips, frames_kept
from lrcn.data.items import VideoItem
from lrcn.data.streaming import stream_clip_batches
from lrcn.data.video_io import (
    VideoError,
    iter_frames,
    probe_video,
    read_every,
    read_frames,
    write_video,
)

SIZE = 32
PREPROCESS = Preprocess(resize=24, crop=24, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))


def _frames(count: int) -> np.ndarray:
    """Noisy frames, different from each other, so that a wrong frame cannot pass."""
    rng = np.random.default_rng(count)
    return rng.integers(0, 256, (count, SIZE, SIZE, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    """A 37-frame mpeg4 AVI: 37 is no multiple of any stride below, so the last clip is extra."""
    path = tmp_path_factory.mktemp("stream") / "v.avi"
    write_video(path, _frames(37), gop_size=12)
    return path


def _eval_clips(path, count, clip_len, stride, step, policy, every) -> torch.Tensor:
    """What evaluate (EvalVideos, the whole-video path) gives: ``(N, T, 3, crop, crop)``."""
    dataset = EvalVideos(
        [VideoItem(path, 0, "")], [count], PREPROCESS, clip_len, stride, step, policy,
        frame_every=every,
    )  # fmt: skip
    clips, _, _ = dataset[0]
    return clips


@pytest.mark.parametrize(
    ("clip_len", "stride", "step", "policy", "every"),
    [
        (4, 4, 1, "loop", 1),
        (16, 8, 1, "loop", 1),  # the paper's clips: starts 0, 8, 16 and 21 (the end)
        (5, 3, 2, "loop", 1),  # frame_step: a clip spans 9 frames
        (4, 6, 1, "loop", 2),  # stride > clip: frames no clip needs; every 2nd frame
        (16, 8, 1, "loop", 3),  # 13 kept frames, shorter than a clip: looped
        (50, 8, 1, "repeat_last", 1),  # shorter than a clip: last frame held
    ],
)
def test_streamed_clips_are_the_eval_clips(video, clip_len, stride, step, policy, every):
    count = frames_kept(probe_video(video).num_frames, every)
    expected = _eval_clips(video, 37, clip_len, stride, step, policy, every)
    batches = list(
        stream_clip_batches(
            video, count, PREPROCESS, clip_len, stride, step, policy, every, clips_per_batch=2
        )
    )
    assert [len(b) for b in batches[:-1]] == [2] * (len(batches) - 1)  # the last may be short
    torch.testing.assert_close(torch.cat(batches), expected, rtol=0, atol=0)


def test_streaming_stops_decoding_after_the_last_clip(video, monkeypatch):
    """Frames past the planned count belong to no clip: they are not read."""
    import lrcn.data.streaming

    read: list[int] = []

    def counting(path, every=1):
        for i, frame in enumerate(iter_frames(path, every)):
            read.append(i)
            yield frame

    monkeypatch.setattr(lrcn.data.streaming, "iter_frames", counting)
    (batch,) = stream_clip_batches(video, 20, PREPROCESS, clip_len=4, stride=4)
    assert len(batch) == 5 and read == list(range(20))


def test_a_video_a_frame_short_of_its_header_is_planned_on_its_real_frames(video, tmp_path):
    """Codecs with delay and cut files decode a frame or two short of the declared count:
    the clips are then those of the real count (EvalVideos on the declared count fails)."""
    data = video.read_bytes()
    short = tmp_path / "short.avi"
    for cut in np.arange(0.99, 0.80, -0.01):  # cut the file until the last frame is lost
        short.write_bytes(data[: int(len(data) * cut)])
        real = len(read_frames(short))
        if real < 37:
            break
    assert probe_video(short).num_frames == 37 and 34 <= real < 37
    with pytest.raises(VideoError, match=r"short\.avi: frame 36 asked for"):
        _eval_clips(short, 37, 8, 4, 1, "loop", 1)
    expected = _eval_clips(short, real, 8, 4, 1, "loop", 1)
    (streamed,) = stream_clip_batches(short, 37, PREPROCESS, clip_len=8, stride=4)
    torch.testing.assert_close(streamed, expected, rtol=0, atol=0)


def test_a_truncated_video_is_an_error_naming_it(video, tmp_path):
    data = video.read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(VideoError, match=r"cut\.avi: truncated: \d+ frames decoded of the 37"):
        list(stream_clip_batches(cut, 37, PREPROCESS, clip_len=4, stride=4))


@pytest.mark.parametrize("every", [1, 2, 3, 5])
def test_every_kth_frame_of_a_file_is_a_slice_of_the_whole(video, every):
    whole = read_frames(video)
    kept = read_every(video, every)
    assert kept.shape == (frames_kept(37, every), SIZE, SIZE, 3)
    np.testing.assert_array_equal(kept, whole[::every])


def test_every_kth_frame_of_a_frame_folder(tmp_path):
    from PIL import Image

    frames = _frames(7)
    for t, frame in enumerate(frames):
        Image.fromarray(frame).save(tmp_path / f"frame_{t:03d}.png")
    np.testing.assert_array_equal(read_every(tmp_path, 3), frames[[0, 3, 6]])


def test_every_must_be_at_least_one(video):
    with pytest.raises(ValueError, match="every must be >= 1, got 0"):
        iter_frames(video, 0)
    with pytest.raises(ValueError, match="frame_every must be >= 1, got 0"):
        TrainClips([VideoItem(video, 0, "")], [37], PREPROCESS, 4, frame_every=0)


def test_training_clips_decode_only_every_kth_frame(video, monkeypatch):
    """With frame_every 3 a 37-frame file has 13 frames 0, 3, ..., 36 for clips to pick."""
    import lrcn.data.clips

    asked: list[list[int]] = []

    def recording(path, indices):
        asked.append(list(indices))
        return read_frames(path, indices)

    monkeypatch.setattr(lrcn.data.clips, "read_frames", recording)
    dataset = TrainClips(
        [VideoItem(video, 0, "")], [37], PREPROCESS, clip_len=4, clips_per_video=20,
        augment=False, frame_every=3,
    )  # fmt: skip
    clips = [dataset[i] for i in range(len(dataset))]
    assert all(clip.shape == (4, 3, 24, 24) for clip, _ in clips)
    assert all(indices == list(range(indices[0], indices[0] + 10, 3)) for indices in asked)
    starts = {indices[0] for indices in asked}
    assert starts <= set(range(0, 28, 3)) and len(starts) > 3  # 10 possible starts
