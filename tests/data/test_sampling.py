"""Clip index math: worked examples, the paper's settings, and the short-video policies."""

import doctest
import random

import pytest

import lrcn.data.sampling as sampling
from lrcn.data.sampling import clip_span, strided_indices, train_clip

# sampling.test_clips is used through the module: pytest would collect a bare test_clips


def test_docstring_examples():
    assert doctest.testmod(sampling).failed == 0


def test_paper_settings_on_a_typical_ucf_video():
    clips = sampling.test_clips(150, clip_len=16, stride=8)  # a 6 s video at 25 fps
    assert clips[0] == list(range(16)) and clips[1][0] == 8
    assert clips[-1][-1] == 149  # the end is always covered
    assert all(len(c) == 16 and c == list(range(c[0], c[0] + 16)) for c in clips)
    assert len(clips) == 18  # starts 0, 8, ..., 128, then 134


def test_train_clips_cover_every_offset_and_stay_inside():
    rng = random.Random(0)
    starts = {train_clip(40, 16, rng=rng)[0] for _ in range(2000)}
    assert starts == set(range(25))


def test_frame_step_spreads_a_clip():
    assert clip_span(4, 3) == 10
    assert sampling.test_clips(10, clip_len=4, stride=5, frame_step=3) == [[0, 3, 6, 9]]


@pytest.mark.parametrize(
    ("policy", "expected"),
    [("loop", [0, 1, 2, 3, 4, 0, 1, 2]), ("repeat_last", [0, 1, 2, 3, 4, 4, 4, 4])],
)
def test_short_videos_are_extended_not_dropped(policy, expected):
    assert train_clip(5, clip_len=8, policy=policy) == expected
    assert sampling.test_clips(5, clip_len=8, policy=policy) == [expected]


def test_bad_arguments():
    with pytest.raises(ValueError, match="at least one frame"):
        sampling.test_clips(0)
    with pytest.raises(ValueError, match="'loop' or 'repeat_last'"):
        train_clip(3, clip_len=8, policy="pad")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("num_frames", "count", "stride", "expected"),
    [
        (10, 4, 3, [0, 3, 6, 9]),
        (100, 4, 3, [0, 3, 6, 9]),  # a long video is cut at count
        (5, 4, 3, [0, 3]),  # a short one gives fewer frames
        (1, 4, 10, [0]),  # never none
        (7, 80, 1, [0, 1, 2, 3, 4, 5, 6]),
    ],
)
def test_strided_indices_take_every_stride_th_frame_up_to_count(
    num_frames, count, stride, expected
):
    assert strided_indices(num_frames, count, stride) == expected


def test_strided_indices_refuse_nonsense():
    with pytest.raises(ValueError, match="stride"):
        strided_indices(10, 4, 0)
