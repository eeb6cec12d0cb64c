"""Image <-> sentence retrieval metrics: a hand-worked example, torchmetrics parity, pessimistic
ties, the COCO 1k folds, bad inputs and chunking."""

from __future__ import annotations

import math
import statistics

import pytest
import torch
from torch import Tensor

from lrcn.metrics.retrieval import RetrievalScores, folded_scores, ranks, retrieval_scores

# 3 images, 6 texts, 2 per image: texts 0, 1 -> image 0; 2, 3 -> image 1; 4, 5 -> image 2.
SCORES = torch.tensor(
    [  # t0    t1    t2   t3   t4   t5
        [0.9, 0.2, 0.5, 0.1, 0.3, 0.4],  # image 0
        [0.3, 0.8, 0.7, 0.2, 0.6, 0.1],  # image 1
        [0.35, 0.45, 0.4, 0.6, 0.3, 0.3],  # image 2
    ]
)
TEXT_IMAGE = torch.tensor([0, 0, 1, 1, 2, 2])


def reference_ranks(scores: Tensor, text_image: Tensor) -> tuple[list[int], list[int]]:
    """The rule of ``ranks`` as plain Python loops: 1 + #other candidates scoring >= the correct."""
    s = scores.tolist()
    owner = text_image.tolist()
    num_images, num_texts = len(s), len(s[0])
    text_ranks = []
    for t in range(num_texts):
        correct = s[owner[t]][t]
        text_ranks.append(
            1 + sum(1 for j in range(num_images) if j != owner[t] and s[j][t] >= correct)
        )
    image_ranks = []
    for i in range(num_images):
        best = None
        for t in range(num_texts):
            if owner[t] != i:
                continue
            rank = 1 + sum(1 for u in range(num_texts) if u != t and s[i][u] >= s[i][t])
            best = rank if best is None else min(best, rank)
        image_ranks.append(best)
    return text_ranks, image_ranks


def reference_median(values: list[int]) -> float:
    """VSE++'s ``np.floor(np.median(ranks0)) + 1`` on 0-based ranks = floor(median of 1-based)."""
    return float(math.floor(statistics.median(values)))


def test_hand_worked_example():
    text_ranks, image_ranks = ranks(SCORES, TEXT_IMAGE)
    # text -> image, column t against the other images' scores:
    #   t0: 0.9 beats 0.3, 0.35 -> 1          t1: 0.2 < 0.8, 0.45 -> 3
    #   t2: 0.7 beats 0.5, 0.4 -> 1           t3: 0.2 < 0.6 (image 2) -> 2
    #   t4: 0.3 ties image 0's 0.3, < 0.6 -> 3 (the tie counts against)
    #   t5: 0.3 < image 0's 0.4 -> 2
    assert text_ranks.tolist() == [1, 3, 1, 2, 3, 2]
    # image -> text, row i against all other texts, best of its own:
    #   image 0: t0 0.9 is the top -> 1 (t1 0.2 would be 5)
    #   image 1: t2 0.7 < t1's 0.8 -> 2 (t3 0.2 would be 5)
    #   image 2: t4 0.3 and t5 0.3 tie with each other and sit below 0.35, 0.45, 0.4, 0.6 -> 6 both
    assert image_ranks.tolist() == [1, 2, 6]

    result = retrieval_scores(SCORES, TEXT_IMAGE)
    assert result.text_to_image == pytest.approx(
        # ranks [1, 3, 1, 2, 3, 2]: 2/6 at 1; all within 5 and 10; sorted 1 1 2 2 3 3 -> median 2
        {"R@1": 100 * 2 / 6, "R@5": 100.0, "R@10": 100.0, "median_rank": 2.0, "mean_rank": 12 / 6}
    )
    assert result.image_to_text == pytest.approx(
        # ranks [1, 2, 6]: 1/3 at 1; 2/3 within 5; all within 10; median 2, mean 9/3
        {"R@1": 100 / 3, "R@5": 200 / 3, "R@10": 100.0, "median_rank": 2.0, "mean_rank": 3.0}
    )
    assert result.rsum == pytest.approx(100 / 3 + 100 + 100 + 100 / 3 + 200 / 3 + 100)
    assert (result.images, result.texts) == (3, 6)
    assert list(result.text_to_image) == ["R@1", "R@5", "R@10", "median_rank", "mean_rank"]
    assert result.as_dict() == {
        "text_to_image": result.text_to_image,
        "image_to_text": result.image_to_text,
        "rsum": result.rsum,
        "images": 3,
        "texts": 6,
    }


def test_even_count_median_rounds_down_like_vsepp():
    # text ranks [1, 2] (t1 ties image 0 at 1.0): median 1.5 -> 1, as VSE++ floors it
    scores = torch.tensor([[1.0, 1.0], [0.0, 1.0]])
    result = retrieval_scores(scores, torch.tensor([0, 1]))
    assert ranks(scores, torch.tensor([0, 1]))[0].tolist() == [1, 2]
    assert result.text_to_image["median_rank"] == 1.0
    assert result.text_to_image["mean_rank"] == 1.5


def random_problem(images: int = 50, per_image: int = 5) -> tuple[Tensor, Tensor]:
    """Tie-free random scores ``(images, images * per_image)``, texts in a shuffled order."""
    text_image = torch.arange(images).repeat_interleave(per_image)
    text_image = text_image[torch.randperm(text_image.numel())]
    return torch.randn(images, text_image.numel(), dtype=torch.float64), text_image


@pytest.mark.parametrize("k", [1, 5, 10])
def test_recalls_equal_torchmetrics_hit_rate(k):
    from torchmetrics.retrieval import RetrievalHitRate

    scores, text_image = random_problem()
    num_images, num_texts = scores.shape
    assert torch.unique(scores).numel() == scores.numel()  # tie-free: argsort order is the rank
    result = retrieval_scores(scores, text_image, ks=(k,))

    # text -> image: query = text t, candidates = the images of column t, one relevant
    is_own = text_image[None, :] == torch.arange(num_images)[:, None]  # (I, T)
    hit_rate = RetrievalHitRate(top_k=k)
    hit_rate.update(
        scores.T.reshape(-1),
        is_own.T.reshape(-1),
        torch.arange(num_texts).repeat_interleave(num_images),
    )
    assert result.text_to_image[f"R@{k}"] == pytest.approx(100 * float(hit_rate.compute()))

    # image -> text: query = image i, candidates = all texts of row i, its 5 relevant
    hit_rate = RetrievalHitRate(top_k=k)
    hit_rate.update(
        scores.reshape(-1),
        is_own.reshape(-1),
        torch.arange(num_images).repeat_interleave(num_texts),
    )
    assert result.image_to_text[f"R@{k}"] == pytest.approx(100 * float(hit_rate.compute()))
    assert 0 < result.text_to_image[f"R@{k}"] < 100  # random scores: the check is not vacuous


def test_ranks_and_median_equal_python_loops():
    scores, text_image = random_problem()
    text_ranks, image_ranks = ranks(scores, text_image)
    expected_text, expected_image = reference_ranks(scores, text_image)
    assert text_ranks.tolist() == expected_text
    assert image_ranks.tolist() == expected_image
    result = retrieval_scores(scores, text_image)
    assert result.text_to_image["median_rank"] == reference_median(expected_text)
    assert result.image_to_text["median_rank"] == reference_median(expected_image)
    assert result.text_to_image["mean_rank"] == pytest.approx(statistics.mean(expected_text))
    assert result.image_to_text["mean_rank"] == pytest.approx(statistics.mean(expected_image))


def test_ranks_with_ties_equal_python_loops():
    # scores from {0, 0.5, 1}: ties everywhere, including among an image's own texts
    text_image = torch.arange(8).repeat_interleave(3)[torch.randperm(24)]
    scores = torch.randint(0, 3, (8, 24)).float() / 2
    expected_text, expected_image = reference_ranks(scores, text_image)
    text_ranks, image_ranks = ranks(scores, text_image)
    assert text_ranks.tolist() == expected_text
    assert image_ranks.tolist() == expected_image


def test_perfect_scores_rank_first_both_ways():
    # one text per image, identity scores
    result = retrieval_scores(torch.eye(7), torch.arange(7))
    for direction in (result.text_to_image, result.image_to_text):
        assert direction["R@1"] == 100.0
        assert direction["median_rank"] == 1.0
        assert direction["mean_rank"] == 1.0
    assert result.rsum == 600.0

    # five texts per image, each image's own texts above all others (distinct among themselves)
    text_image = torch.arange(6).repeat_interleave(5)[torch.randperm(30)]
    own = (text_image[None, :] == torch.arange(6)[:, None]).float()  # (6, 30)
    scores = own * (1 + torch.rand(30))
    result = retrieval_scores(scores, text_image)
    assert result.text_to_image["R@1"] == result.image_to_text["R@1"] == 100.0
    assert result.text_to_image["median_rank"] == result.image_to_text["median_rank"] == 1.0


def test_ties_count_against_the_model():
    text_image = torch.arange(6).repeat_interleave(5)
    # constant scores: every candidate ties with the correct one -> the worst rank
    result = retrieval_scores(torch.zeros(6, 30), text_image)
    assert result.text_to_image["R@1"] == result.image_to_text["R@1"] == 0.0
    assert result.text_to_image["median_rank"] == 6.0  # all I images tie
    assert result.image_to_text["median_rank"] == 30.0  # all T texts tie
    assert result.rsum < 600

    # an image's own 5 texts tied at the top: each still counts the other 4 -> rank 5
    own = (text_image[None, :] == torch.arange(6)[:, None]).float()
    text_ranks, image_ranks = ranks(own, text_image)
    assert text_ranks.tolist() == [1] * 30
    assert image_ranks.tolist() == [5] * 6


def test_one_fold_equals_all_at_once():
    scores, text_image = random_problem(images=20, per_image=5)
    assert folded_scores(scores, text_image, folds=1) == retrieval_scores(scores, text_image)


def test_five_folds_are_the_mean_of_the_diagonal_blocks():
    scores, text_image = random_problem(images=20, per_image=5)  # texts shuffled across folds
    expected = []
    for fold in range(5):
        mine = (text_image >= 4 * fold) & (text_image < 4 * fold + 4)
        block = scores[4 * fold : 4 * fold + 4][:, mine]
        expected.append(retrieval_scores(block, text_image[mine] - 4 * fold))
    result = folded_scores(scores, text_image, folds=5)
    for key in ["R@1", "R@5", "R@10", "median_rank", "mean_rank"]:
        assert result.text_to_image[key] == pytest.approx(
            statistics.mean(r.text_to_image[key] for r in expected)
        )
        assert result.image_to_text[key] == pytest.approx(
            statistics.mean(r.image_to_text[key] for r in expected)
        )
    assert result.rsum == pytest.approx(statistics.mean(r.rsum for r in expected))
    assert (result.images, result.texts) == (4, 20)
    # a fold is easier than the whole: fewer candidates, so the folds are really scored alone
    assert (
        result.text_to_image["mean_rank"]
        < retrieval_scores(scores, text_image).text_to_image["mean_rank"]
    )


@pytest.mark.parametrize("folds", [3, 7, 40])
def test_folds_must_divide_the_images(folds):
    scores, text_image = random_problem(images=20, per_image=5)
    with pytest.raises(ValueError, match="20 images cannot be split into"):
        folded_scores(scores, text_image, folds=folds)


def test_folded_checks_its_inputs():
    scores, text_image = random_problem(images=20, per_image=5)
    with pytest.raises(ValueError, match="folds must be >= 1"):
        folded_scores(scores, text_image, folds=0)
    with pytest.raises(ValueError, match="text_image out of range"):
        folded_scores(scores, torch.where(text_image == 3, 20, text_image), folds=5)
    with pytest.raises(ValueError, match="have no text"):
        folded_scores(scores, torch.where(text_image == 3, 4, text_image), folds=5)


@pytest.mark.parametrize(
    ("scores", "text_image", "message"),
    [
        (
            torch.zeros(6),
            torch.arange(6),
            r"scores must be 2-D \(images, texts\), got shape \(6,\)",
        ),
        (torch.zeros(2, 3, 4), torch.arange(3), "scores must be 2-D"),
        (torch.zeros(0, 3), torch.zeros(3, dtype=torch.long), "nothing to rank"),
        (
            torch.zeros(3, 6),
            torch.arange(3),
            r"text_image must have shape \(6,\).*got shape \(3,\)",
        ),
        (
            torch.zeros(3, 3),
            torch.zeros(3, 1, dtype=torch.long),
            r"text_image must have shape \(3,\)",
        ),
        (
            torch.zeros(3, 3),
            torch.tensor([0.0, 1.0, 2.0]),
            "text_image must hold integer image indices",
        ),
        (torch.zeros(3, 3), torch.tensor([0, 1, 3]), r"text_image out of range: .*\[0, 2\].*max 3"),
        (torch.zeros(3, 3), torch.tensor([0, -1, 2]), r"text_image out of range: .*min -1"),
        (torch.zeros(3, 3), torch.tensor([0, 0, 2]), r"1 images have no text, e.g. image \[1\]"),
        (
            torch.tensor([[0.0, float("nan")], [0.0, 1.0]]),
            torch.tensor([0, 1]),
            "scores contain NaN",
        ),
    ],
)
def test_bad_inputs_raise_value_error(scores, text_image, message):
    with pytest.raises(ValueError, match=message):
        ranks(scores, text_image)
    with pytest.raises(ValueError, match=message):
        retrieval_scores(scores, text_image)


def test_bad_settings_raise_value_error():
    with pytest.raises(ValueError, match="chunk must be >= 1"):
        ranks(SCORES, TEXT_IMAGE, chunk=0)
    with pytest.raises(ValueError, match="every K of R@K must be >= 1"):
        retrieval_scores(SCORES, TEXT_IMAGE, ks=(0, 5))


@pytest.mark.parametrize("chunk", [1, 3, 7, 100_000])
def test_chunking_does_not_change_the_result(chunk):
    # uneven texts per image (1 to 9), ties, texts shuffled: every chunking path is exercised
    counts = torch.randint(1, 10, (13,))
    text_image = torch.arange(13).repeat_interleave(counts)
    text_image = text_image[torch.randperm(text_image.numel())]
    scores = torch.randint(0, 5, (13, text_image.numel())).float()
    default = ranks(scores, text_image)
    chunked = ranks(scores, text_image, chunk=chunk)
    assert torch.equal(default[0], chunked[0])
    assert torch.equal(default[1], chunked[1])
    expected_text, expected_image = reference_ranks(scores, text_image)
    assert chunked[0].tolist() == expected_text
    assert chunked[1].tolist() == expected_image
    assert retrieval_scores(scores, text_image, chunk=chunk) == retrieval_scores(scores, text_image)
    first_scores, first_text_image = text_image_for_first(12, text_image, scores)
    assert folded_scores(first_scores, first_text_image, 4, chunk=chunk) == folded_scores(
        first_scores, first_text_image, 4
    )


def text_image_for_first(images: int, text_image: Tensor, scores: Tensor) -> tuple[Tensor, Tensor]:
    """``scores`` and ``text_image`` kept to the texts of the first ``images`` images."""
    mine = text_image < images
    return scores[:images][:, mine], text_image[mine]


def test_scores_are_a_frozen_dataclass():
    result = retrieval_scores(SCORES, TEXT_IMAGE)
    assert isinstance(result, RetrievalScores)
    with pytest.raises(AttributeError):
        result.rsum = 0.0  # type: ignore[misc]
