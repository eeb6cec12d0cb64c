"""Cross-modal retrieval metrics (image <-> sentence), as VSE++ and Karpathy & Fei-Fei report them.

Why these rules: papers on image-sentence retrieval (Karpathy & Fei-Fei 2015, "Deep
Visual-Semantic Alignments"; Faghri et al. 2018, "VSE++") all report the same numbers, and a
model's scores are only comparable when they are computed the same way:

* **R@K** is in percent (0..100): the share of queries whose correct item is among the top K.
* **text -> image** (sentence retrieval of images): each sentence has exactly one relevant image,
  its own; the rank is that image's position among all images.
* **image -> text** (image annotation): an image has several reference sentences (5 on COCO and
  Flickr30k); it counts as a hit at K when *any* of them is in the top K, so its rank is the best
  rank of its sentences among all sentences.
* **median_rank** / **mean_rank** of those 1-based ranks (lower is better). The median follows
  VSE++'s ``np.floor(np.median(ranks)) + 1`` on 0-based ranks, i.e. the floor of the median of the
  1-based ranks (an even count averages its two middle ranks, then rounds down).
* **rsum** is the sum of the recalls of both directions (R@1 + R@5 + R@10, twice: 0..600).
* **COCO 1k** = the mean of every number over 5 folds of 1000 test images each (each fold
  scored alone, against its own 5000 sentences: ``folded_scores(..., folds=5)``); **COCO 5k** =
  all 5000 images against all 25000 sentences at once (``retrieval_scores``).

One rule differs from the reference code on purpose: ties. VSE++ ranks with ``argsort``, so a
tie's order is an accident of the sort; here ties count against the model (pessimistic): a rank
is 1 + the number of *other* candidates scoring >= the correct one. A constant score matrix thus
gets the worst ranks, not R@1 = 100. For image -> text, the "other" candidates of one of the
image's sentences are all other sentences, including the image's own other sentences: an image
whose 5 sentences all tie at the top gets rank 5, not 1. On tie-free scores (any real model's
floating-point scores, almost surely) the results are those of the reference code.

Everything is vectorised in torch and chunked (``chunk`` columns or sentences at a time), so a
5000 x 25000 matrix is ranked in seconds on a CPU with a few hundred MB of temporary memory and
no ``(I, T, T)`` tensor. Works on any device the scores are on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

__all__ = ["RetrievalScores", "folded_scores", "ranks", "retrieval_scores"]

_CHUNK = 1024


@dataclass(frozen=True)
class RetrievalScores:
    """Retrieval numbers of both directions.

    ``text_to_image`` and ``image_to_text`` hold ``"R@K"`` for each K (percent, 0..100), then
    ``"median_rank"`` and ``"mean_rank"`` (1-based). ``rsum`` is the sum of all the recalls of
    both directions. ``images`` and ``texts`` are the number of images and texts scored (per fold,
    for ``folded_scores``).
    """

    text_to_image: dict[str, float]
    image_to_text: dict[str, float]
    rsum: float
    images: int
    texts: int

    def as_dict(self) -> dict[str, Any]:
        """A plain (JSON-ready) copy: ``{"text_to_image": {...}, "image_to_text": {...},
        "rsum": ..., "images": ..., "texts": ...}``."""
        return {
            "text_to_image": dict(self.text_to_image),
            "image_to_text": dict(self.image_to_text),
            "rsum": self.rsum,
            "images": self.images,
            "texts": self.texts,
        }


def _check_chunk(chunk: int) -> None:
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}")


def _validate(scores: Tensor, text_image: Tensor) -> Tensor:
    """Checks ``scores (I, T)`` and ``text_image (T,)``; returns ``text_image`` as a long tensor
    ``(T,)`` on the scores' device."""
    if scores.dim() != 2:
        raise ValueError(f"scores must be 2-D (images, texts), got shape {tuple(scores.shape)}")
    num_images, num_texts = scores.shape
    if num_images == 0 or num_texts == 0:
        raise ValueError(f"nothing to rank: scores has shape {tuple(scores.shape)}")
    if text_image.dim() != 1 or text_image.shape[0] != num_texts:
        raise ValueError(
            f"text_image must have shape ({num_texts},), one image index per text (column of "
            f"scores), got shape {tuple(text_image.shape)}"
        )
    if text_image.is_floating_point() or text_image.is_complex() or text_image.dtype == torch.bool:
        raise ValueError(f"text_image must hold integer image indices, got {text_image.dtype}")
    text_image = text_image.to(device=scores.device, dtype=torch.long)
    low, high = int(text_image.min()), int(text_image.max())
    if low < 0 or high >= num_images:
        raise ValueError(
            f"text_image out of range: indices must be in [0, {num_images - 1}] "
            f"for {num_images} images, got min {low}, max {high}"
        )
    counts = torch.bincount(text_image, minlength=num_images)  # (I,)
    lonely = torch.nonzero(counts == 0).flatten()
    if lonely.numel():
        raise ValueError(
            f"{lonely.numel()} images have no text, e.g. image {lonely[:3].tolist()}: "
            "every image needs at least one text to be retrieved"
        )
    if scores.is_floating_point() and bool(torch.isnan(scores).any()):
        raise ValueError("scores contain NaN")
    return text_image


def ranks(scores: Tensor, text_image: Tensor, *, chunk: int = _CHUNK) -> tuple[Tensor, Tensor]:
    """1-based ranks of both directions, ties counted against the model.

    ``scores (I, T)``: similarity of image i and text t (higher = better); ``text_image (T,)``
    integer: the index of each text's image. Returns ``(text_ranks (T,), image_ranks (I,))``,
    long tensors on the scores' device:

    * ``text_ranks[t]`` = 1 + #(images j != text_image[t] with scores[j, t] >= scores[text_image[t],
      t]): the rank of text t's image among all I images in column t.
    * ``image_ranks[i]`` = min over i's texts t of 1 + #(texts u != t with scores[i, u] >=
      scores[i, t]): the best rank, in row i, of any of image i's texts among all T texts. Only the
      ranked text itself is left out, so i's other texts count when they tie (see the module
      docstring).

    ``chunk`` bounds the work of one step, and so the temporary memory, not the result: text
    ranks take ``chunk`` columns at a time (``(I, chunk)`` booleans), image ranks ``chunk`` texts
    (``(chunk, T)`` booleans, rows broadcast, never copied).
    """
    _check_chunk(chunk)
    text_image = _validate(scores, text_image)
    num_images, num_texts = scores.shape
    device = scores.device
    correct = scores[text_image, torch.arange(num_texts, device=device)]  # (T,): own image's

    # Counting ">= correct" includes the correct candidate itself exactly once (no NaN: a score
    # equals itself), so the count *is* 1 + #others >= correct.
    text_ranks = torch.empty(num_texts, dtype=torch.long, device=device)  # (T,)
    for start in range(0, num_texts, chunk):
        stop = min(start + chunk, num_texts)
        block = scores[:, start:stop]  # (I, c) view
        text_ranks[start:stop] = (block >= correct[start:stop]).sum(dim=0, dtype=torch.int32)

    # Image side: image i's texts are laid out in "slots" 0..counts[i]-1 (texts sorted by image);
    # a block of images is compared against a block of slots at once, each row broadcast against
    # its own texts' scores, (c, k, T) booleans with c * k <= chunk, no copy of the rows.
    order = torch.argsort(text_image, stable=True)  # (T,): texts grouped by image
    counts = torch.bincount(text_image, minlength=num_images)  # (I,), all >= 1
    offsets = torch.cumsum(counts, 0) - counts  # (I,): first position of image i in `order`
    widest = int(counts.max())
    slots_per_block = min(widest, chunk)
    images_per_block = max(1, chunk // slots_per_block)
    image_ranks = torch.empty(num_images, dtype=torch.long, device=device)  # (I,)
    for start in range(0, num_images, images_per_block):
        stop = min(start + images_per_block, num_images)
        rows = scores[start:stop, None, :]  # (c, 1, T) view
        last = counts[start:stop, None] - 1  # (c, 1): last slot of each image
        best = torch.full((stop - start,), num_texts, dtype=torch.long, device=device)  # (c,)
        for slot in range(0, int(last.max()) + 1, slots_per_block):
            wanted = torch.arange(slot, slot + slots_per_block, device=device)  # (k,)
            # an image with fewer texts repeats its last one: a duplicate cannot change the min
            position = offsets[start:stop, None] + torch.minimum(wanted[None, :], last)  # (c, k)
            values = correct[order[position]]  # (c, k): each slot's text's score in its row
            count = (rows >= values[:, :, None]).sum(dim=2, dtype=torch.int32)  # (c, k)
            best = torch.minimum(best, count.min(dim=1).values.long())
        image_ranks[start:stop] = best
    return text_ranks, image_ranks


def _summary(rank: Tensor, ks: Sequence[int]) -> dict[str, float]:
    """``R@K`` (percent) for each K, ``median_rank`` (VSE++: floor of the median) and
    ``mean_rank`` of 1-based ``rank (N,)``."""
    count = rank.numel()
    out = {f"R@{k}": 100.0 * int((rank <= k).sum()) / count for k in ks}
    ordered = torch.sort(rank).values  # (N,)
    if count % 2:
        median = int(ordered[count // 2])
    else:
        median = (int(ordered[count // 2 - 1]) + int(ordered[count // 2])) // 2
    out["median_rank"] = float(median)
    out["mean_rank"] = float(rank.double().mean())
    return out


def _check_ks(ks: Sequence[int]) -> None:
    bad = [k for k in ks if k < 1]
    if bad:
        raise ValueError(f"every K of R@K must be >= 1, got {list(ks)}")


def retrieval_scores(
    scores: Tensor, text_image: Tensor, ks: Sequence[int] = (1, 5, 10), *, chunk: int = _CHUNK
) -> RetrievalScores:
    """R@K for each of ``ks``, median and mean rank of both directions, over all images and texts
    at once (COCO 5k, Flickr30k 1k). ``scores (I, T)``, ``text_image (T,)`` as in ``ranks``."""
    _check_ks(ks)
    text_ranks, image_ranks = ranks(scores, text_image, chunk=chunk)  # (T,), (I,)
    t2i = _summary(text_ranks, ks)
    i2t = _summary(image_ranks, ks)
    rsum = sum(t2i[f"R@{k}"] for k in ks) + sum(i2t[f"R@{k}"] for k in ks)
    return RetrievalScores(
        text_to_image=t2i,
        image_to_text=i2t,
        rsum=rsum,
        images=int(scores.shape[0]),
        texts=int(scores.shape[1]),
    )


def folded_scores(
    scores: Tensor,
    text_image: Tensor,
    folds: int,
    *,
    ks: Sequence[int] = (1, 5, 10),
    chunk: int = _CHUNK,
) -> RetrievalScores:
    """The COCO 1k protocol: the mean of ``retrieval_scores`` over ``folds`` image blocks.

    The images are split into ``folds`` consecutive equal blocks (with 5000 images and 5 folds:
    0..999, 1000..1999, ...); each block is scored alone, on its sub-matrix ``scores[block][:,
    its texts]`` (texts in any order), and every number (recalls, median and mean ranks, rsum) is
    averaged over the folds. ``images`` is the images per fold; ``texts`` the texts per fold
    (T / folds, rounded, should folds differ in size). ``scores (I, T)``, ``text_image (T,)``.
    """
    if folds < 1:
        raise ValueError(f"folds must be >= 1, got {folds}")
    _check_ks(ks)
    _check_chunk(chunk)
    text_image = _validate(scores, text_image)
    num_images, num_texts = scores.shape
    if num_images % folds:
        raise ValueError(
            f"{num_images} images cannot be split into {folds} equal folds "
            f"(the image count must be divisible by folds)"
        )
    size = num_images // folds
    results = []
    for fold in range(folds):
        start = fold * size
        mine = (text_image >= start) & (text_image < start + size)  # (T,)
        block = scores[start : start + size][:, mine]  # (size, T_fold)
        results.append(retrieval_scores(block, text_image[mine] - start, ks, chunk=chunk))

    def mean(values: list[float]) -> float:
        return sum(values) / folds

    keys = list(results[0].text_to_image)
    return RetrievalScores(
        text_to_image={key: mean([r.text_to_image[key] for r in results]) for key in keys},
        image_to_text={key: mean([r.image_to_text[key] for r in results]) for key in keys},
        rsum=mean([r.rsum for r in results]),
        images=size,
        texts=round(num_texts / folds),
    )
