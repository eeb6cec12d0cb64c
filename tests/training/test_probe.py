"""The single-frame probe: learns what one frame shows, nothing more, and leaves the RNG alone."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lrcn.training.probe import FrameProbe, even_frame_indices, fit_frame_probe

NUM_CLASSES = 4
VIDEOS_PER_CLASS = 20
FEATURE_SIZE = 64


def _videos(
    *, separable: bool, seed: int = 0, feature_size: int = FEATURE_SIZE
) -> tuple[list[np.ndarray], list[int]]:
    """4 classes × 20 videos of (T, D) features, T in 5..20, unit noise. When ``separable``,
    class c adds 1.0 to dims 4c..4c+3 of every frame; otherwise every class is the same noise."""
    rng = np.random.default_rng(seed)
    features, labels = [], []
    for c in range(NUM_CLASSES):
        for _ in range(VIDEOS_PER_CLASS):
            video = rng.normal(size=(int(rng.integers(5, 21)), feature_size))  # (T, D)
            if separable:
                video[:, 4 * c : 4 * c + 4] += 1.0
            features.append(video.astype(np.float32))
            labels.append(c)
    return features, labels


def _split(
    features: list[np.ndarray], labels: list[int], train_per_class: int
) -> tuple[list[np.ndarray], list[int], list[np.ndarray], list[int]]:
    """The first ``train_per_class`` videos of each class to train, the rest held out."""
    train = [i for i in range(len(labels)) if i % VIDEOS_PER_CLASS < train_per_class]
    test = [i for i in range(len(labels)) if i % VIDEOS_PER_CLASS >= train_per_class]
    return (
        [features[i] for i in train],
        [labels[i] for i in train],
        [features[i] for i in test],
        [labels[i] for i in test],
    )


def _accuracy(probe: FrameProbe, features: list[np.ndarray], labels: list[int]) -> float:
    """Video accuracy; videos differ in length, so each is scored as a batch of one."""
    correct = 0
    for video, label in zip(features, labels, strict=True):
        probs = probe.clip_probs(torch.from_numpy(video).unsqueeze(0))  # (1, K)
        correct += int(probs.argmax(dim=-1).item() == label)
    return correct / len(labels)


def test_even_frame_indices_worked_example() -> None:
    assert even_frame_indices(10, 4).tolist() == [1, 3, 6, 8]
    assert even_frame_indices(3, 4).tolist() == [0, 1, 2]
    assert even_frame_indices(8, 8).tolist() == list(range(8))


def test_learns_a_class_signal_in_a_few_dimensions() -> None:
    train_x, train_y, test_x, test_y = _split(*_videos(separable=True), train_per_class=15)
    probe = fit_frame_probe(train_x, train_y, NUM_CLASSES)
    assert _accuracy(probe, test_x, test_y) > 0.9  # chance is 0.25
    probs = probe.clip_probs(torch.from_numpy(np.stack([v[:5] for v in test_x])))  # (N, K)
    assert probs.shape == (len(test_x), NUM_CLASSES)
    torch.testing.assert_close(probs.sum(dim=-1), torch.ones(len(test_x)))


def test_cannot_learn_what_is_not_there() -> None:
    # half of each class held out: 40 videos, so > 0.5 by luck would be a ~1e-4 event
    train_x, train_y, test_x, test_y = _split(*_videos(separable=False), train_per_class=10)
    probe = fit_frame_probe(train_x, train_y, NUM_CLASSES)
    assert _accuracy(probe, train_x, train_y) > 0.5  # it does fit the training noise ...
    assert _accuracy(probe, test_x, test_y) < 0.5  # ... which does not carry over


def test_grids_are_their_spatial_mean() -> None:
    rng = np.random.default_rng(1)
    grids = [rng.normal(size=(int(rng.integers(5, 21)), 8, 3, 3)).astype(np.float32) for _ in range(12)]  # fmt: skip
    pooled = [g.mean(axis=(2, 3)) for g in grids]  # (T, C)
    labels = [i % 3 for i in range(12)]
    from_grids = fit_frame_probe(grids, labels, 3, epochs=30)
    from_pooled = fit_frame_probe(pooled, labels, 3, epochs=30)
    for name, value in from_grids.state_dict().items():
        # 30 epochs of float32 updates amplify the summation-order difference of the two means
        torch.testing.assert_close(value, from_pooled.state_dict()[name], rtol=1e-3, atol=1e-3)
    clip = torch.from_numpy(grids[0]).unsqueeze(0)  # (1, T, C, h, w)
    torch.testing.assert_close(
        from_grids.clip_probs(clip), from_grids.clip_probs(clip.mean(dim=(-2, -1)))
    )


def test_deterministic_and_leaves_the_global_rng_alone() -> None:
    features, labels = _videos(separable=True)
    torch.manual_seed(123)
    before = torch.get_rng_state()
    first = fit_frame_probe(features, labels, NUM_CLASSES, seed=7, epochs=20)
    assert torch.equal(torch.get_rng_state(), before)
    second = fit_frame_probe(features, labels, NUM_CLASSES, seed=7, epochs=20)
    for name, value in first.state_dict().items():
        assert torch.equal(value, second.state_dict()[name]), name
    # the seed is used: a different one starts (and, after 1 iteration, stays) elsewhere
    one = fit_frame_probe(features, labels, NUM_CLASSES, seed=7, epochs=1)
    other = fit_frame_probe(features, labels, NUM_CLASSES, seed=8, epochs=1)
    assert not torch.equal(one.classifier.weight, other.classifier.weight)


def test_float16_features() -> None:
    features, labels = _videos(separable=True)
    half = [f.astype(np.float16) for f in features]
    train_x, train_y, test_x, test_y = _split(half, labels, train_per_class=15)
    probe = fit_frame_probe(train_x, train_y, NUM_CLASSES)
    assert probe.classifier.weight.dtype == torch.float32
    assert _accuracy(probe, test_x, test_y) > 0.9
    probs = probe.clip_probs(torch.from_numpy(test_x[0]).unsqueeze(0))  # (1, K) from float16 in
    assert probs.dtype == torch.float32


@pytest.mark.parametrize(
    ("features", "labels", "message"),
    [
        ([np.zeros((4, 8), np.float32)], [0, 1], "1 feature arrays but 2 labels"),
        ([np.zeros((4, 8), np.float32)], [5], "label 5 is outside 0..2"),
        ([np.zeros((4, 8, 2), np.float32)], [0], r"\(T, D\) or \(T, C, h, w\)"),
        ([np.zeros((4, 8), np.float32), np.zeros((4, 9), np.float32)], [0, 1], "9 values"),
    ],
)
def test_errors_name_the_bad_value(
    features: list[np.ndarray], labels: list[int], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        fit_frame_probe(features, labels, 3)
