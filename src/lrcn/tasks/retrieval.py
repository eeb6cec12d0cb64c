"""Text-to-image retrieval as a task: sentences find images, images find sentences.

A joint embedding (:mod:`lrcn.models.retrieval`, VSE++) is trained on any caption data set lrcn
reads (Flickr8k, Karpathy JSON for Flickr30k/COCO, COCO captions, your own photos), from the
images' cached frozen-backbone features, with the hinge loss on the hardest negatives of each
batch. ``best/`` is the epoch with the best validation R-sum (the six recalls added, as VSE++
picks its model). ``evaluate`` scores a split in both directions (text -> image: each sentence
finds its image among all of the split's images; image -> text: an image finds any of its
sentences), R@1/5/10 and median rank, beside random ranking's expected values; ``--folds 5``
is COCO's 1k protocol (the mean over five folds of 1000 test images). ``predict`` ranks the
given images for a sentence; ``lrcn index`` / ``lrcn search`` do it over a whole folder.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal, cast

import torch
from pydantic import Field
from torch import Tensor, nn
from torch.utils.data import Dataset

from lrcn.checkpoint import Bundle
from lrcn.config import ConfigError, TrainConfig
from lrcn.data.captions import CaptionDataConfig, pad_captions, read_caption_split
from lrcn.data.formats.captions import CaptionItem, CaptionSplit
from lrcn.data.items import DataError, Problem
from lrcn.data.video_io import VideoError, read_image
from lrcn.data.vocab import Vocabulary
from lrcn.export.graphs import ExportPlan, Graph, example_pixels, example_sentences
from lrcn.metrics.retrieval import folded_scores, ranks, retrieval_scores
from lrcn.models.captioning import ImageCaptioner, VocabularyData
from lrcn.models.retrieval import (
    RetrievalExtras,
    RetrievalModel,
    RetrievalModelConfig,
    contrastive_loss,
)
from lrcn.tasks._common import cached_image_features, resolve_device, typed_words, word_ids
from lrcn.tasks.base import (
    Echo,
    Log,
    Prepared,
    Progress,
    Task,
    TaskConfig,
    TaskOption,
    TrainingSetup,
    register_task,
)
from lrcn.training.distributed import gather_batch

__all__ = [
    "RetrievalConfig",
    "RetrievalTask",
    "chance_recall",
    "check_folds",
    "embed_images",
    "embed_texts",
    "encode_query",
    "generative_scores",
    "retrieval_summary",
]


class RetrievalConfig(TaskConfig):
    """A whole retrieval experiment: caption data, a joint embedding, training."""

    task: Literal["retrieval"]
    data: CaptionDataConfig
    model: RetrievalModelConfig
    train: TrainConfig = Field(default_factory=TrainConfig)


# --------------------------------------------------------------------------------------------
# Sentences and images into the joint space
# --------------------------------------------------------------------------------------------


def _pad(captions: Sequence[Sequence[int]]) -> tuple[Tensor, Tensor]:
    """``(ids (B, L) with <pad> = 0, lengths (B,))``."""
    return pad_captions(captions), torch.tensor([len(c) for c in captions])


def embed_texts(
    model: RetrievalModel, captions: Sequence[Sequence[int]], device: torch.device, batch: int = 512
) -> Tensor:
    """Word-id sentences -> unit vectors ``(T, E)`` on the CPU."""
    model.eval()
    rows = []
    with torch.inference_mode():
        for first in range(0, len(captions), batch):
            ids, lengths = _pad(captions[first : first + batch])
            rows.append(model.encode_texts(ids.to(device), lengths.to(device)).cpu())
    return torch.cat(rows) if rows else torch.zeros(0, 0)


def embed_images(
    model: RetrievalModel, features: Tensor, device: torch.device, batch: int = 1024
) -> Tensor:
    """Pooled backbone features ``(I, D)`` -> unit vectors ``(I, E)`` on the CPU."""
    model.eval()
    with torch.inference_mode():
        parts = [
            model.encode_images(features[first : first + batch].to(device)).cpu()
            for first in range(0, len(features), batch)
        ]
    return torch.cat(parts) if parts else torch.zeros(0, 0)


def encode_query(
    text: str, vocab: Vocabulary, max_len: int, where: str
) -> tuple[list[int], list[str]]:
    """A typed sentence's word ids and the words the vocabulary lacks (reported, not dropped:
    they read as ``<unk>``); a sentence with no known word is refused (:func:`typed_words`)."""
    tokens, unknown = typed_words(text, vocab, where)
    return word_ids(tokens, vocab, max_len), unknown


def chance_recall(images: int, texts_per_image: float, k: int) -> tuple[float, float]:
    """Random ranking's expected R@k in percent: (text -> image, image -> text). One of
    ``images`` images is right for a sentence; any of an image's ``m`` sentences among
    ``images * m`` is right for an image (hypergeometric: no right one in the top k)."""
    total = round(images * texts_per_image)
    m = round(texts_per_image)
    t2i = min(k, images) / images
    miss = 1.0
    for j in range(min(k, total)):
        miss *= max(total - m - j, 0) / (total - j)
    return 100 * t2i, 100 * (1 - miss)


# --------------------------------------------------------------------------------------------
# Training pairs
# --------------------------------------------------------------------------------------------


class _Pairs(Dataset[tuple[Tensor, list[int], int]]):
    """Every (image features (D,), sentence ids, image index) of a split: each sentence is a
    training pair, so an epoch sees every reference once."""

    def __init__(
        self,
        items: Sequence[CaptionItem],
        image: Callable[[Path], Tensor],
        vocab: Vocabulary,
        max_len: int,
    ) -> None:
        self.items, self.image = items, image
        self.pairs = [
            (n, word_ids(caption, vocab, max_len))
            for n, item in enumerate(items)
            for caption in item.captions
        ]

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, i: int) -> tuple[Tensor, list[int], int]:
        n, ids = self.pairs[i]
        return self.image(self.items[n].image), ids, n


def _collate(batch: list[tuple[Tensor, list[int], int]]) -> dict[str, Any]:
    ids, lengths = _pad([c for _, c, _ in batch])
    return {
        "inputs": torch.stack([x for x, _, _ in batch]),  # (B, D)
        "captions": ids,  # (B, L)
        "lengths": lengths,  # (B,)
        "labels": torch.tensor([n for _, _, n in batch]),  # (B,) image ids: same image, no negative
        "skipped": [],
    }


def _split_scores(
    model: RetrievalModel,
    items: Sequence[CaptionItem],
    image: Callable[[Path], Tensor],
    vocab: Vocabulary,
    max_len: int,
    device: torch.device,
) -> tuple[Tensor, Tensor]:
    """``(scores (I, T), text_image (T,))``: cosine of every image and sentence of ``items``."""
    features = torch.stack([image(item.image) for item in items])  # (I, D)
    captions = [word_ids(c, vocab, max_len) for item in items for c in item.captions]
    text_image = torch.tensor([n for n, item in enumerate(items) for _ in item.captions])
    images = embed_images(model, features, device)  # (I, E)
    texts = embed_texts(model, captions, device)  # (T, E)
    return images @ texts.T, text_image


def _chance_median(candidates: int, right: int) -> float:
    """Random ranking's median rank of the first of ``right`` right ones among
    ``candidates``: the smallest r with P(first hit <= r) >= 1/2."""
    miss = 1.0  # P(no right one in the top r)
    for r in range(1, candidates + 1):
        miss *= max(candidates - right - (r - 1), 0) / (candidates - (r - 1))
        if 1 - miss >= 0.5:
            return float(r)
    return float(candidates)


def check_folds(images: int, folds: int, split: str) -> None:
    """Refuse ``--folds`` that do not split ``images`` into equal folds of two or more."""
    if folds == 1 and images < 2:
        raise ConfigError(
            f"{split} split", f"{images} image(s) with a readable file", expected="at least 2"
        )
    if images < 2 * folds or images % folds:
        raise ConfigError(
            "--folds", f"{images} {split} images cannot be split into {folds} equal folds",
            expected="a number of folds that divides the image count",
        )  # fmt: skip


def retrieval_summary(scores: Tensor, text_image: Tensor, folds: int, split: str) -> dict[str, Any]:
    """R@K and median rank both ways (the mean over ``folds`` equal folds of images), and
    random ranking's expected values at the same size, as evaluate reports them."""
    images = scores.shape[0]
    check_folds(images, folds, split)
    result = folded_scores(scores, text_image, folds) if folds > 1 else retrieval_scores(
        scores, text_image
    )  # fmt: skip
    per_fold = images // folds
    per_image = len(text_image) / images
    chance: dict[str, dict[str, float]] = {"text_to_image": {}, "image_to_text": {}}
    for k in (1, 5, 10):
        t2i, i2t = chance_recall(per_fold, per_image, k)
        chance["text_to_image"][f"R@{k}"] = t2i
        chance["image_to_text"][f"R@{k}"] = i2t
    chance["text_to_image"]["median_rank"] = _chance_median(per_fold, 1)
    chance["image_to_text"]["median_rank"] = _chance_median(
        round(per_fold * per_image), round(per_image)
    )
    return {"folds": folds, **result.as_dict(), "random_ranking": chance}


def generative_scores(
    captioner: ImageCaptioner,
    features: Tensor,
    captions: Sequence[Sequence[int]],
    device: torch.device,
    chunk: int = 256,
) -> Tensor:
    """The LRCN paper's retrieval by a captioner: ``scores (I, T)`` = log p(sentence t | image
    i) under the decoder, teacher-forced, for ``features (I, ...)`` (what the captioner's
    ``decoder`` reads) and word ids with ``<start>``/``<end>``. No training: any captioning
    bundle ranks. Costs I x T decoder passes (chunked over sentences)."""
    import torch.nn.functional as F

    decoder = captioner.decoder
    ids = pad_captions(captions)  # (T, L)
    targets = ids[:, 1:].to(device)  # (T, L-1)
    mask = targets != 0
    rows = []
    captioner.eval()
    with torch.inference_mode():
        for i in range(len(features)):
            row = []
            for first in range(0, len(ids), chunk):
                block = ids[first : first + chunk].to(device)  # (b, L)
                x = features[i : i + 1].to(device).expand(len(block), *features.shape[1:])
                logits = decoder(x, block).logits  # (b, L-1, V)
                logp = F.log_softmax(logits.float(), dim=-1)
                t = targets[first : first + chunk]
                picked = logp.gather(2, t.unsqueeze(2)).squeeze(2)  # (b, L-1)
                row.append((picked * mask[first : first + chunk]).sum(1).cpu())
            rows.append(torch.cat(row))
    return torch.stack(rows)  # (I, T)


def render_retrieval(ranked: dict[str, Any], echo: Echo) -> None:
    """What :func:`retrieval_summary` returned, as a small table beside random ranking."""
    folds = f", the mean of {ranked['folds']} folds" if ranked["folds"] > 1 else ""
    echo(f"retrieval over {ranked['images']} images and {ranked['texts']} sentences{folds}; "
         f"R-sum {ranked['rsum']:.1f}")  # fmt: skip
    echo("                R@1    R@5   R@10  median rank")
    chance = ranked["random_ranking"]
    for key, name in (("text_to_image", "text->image"), ("image_to_text", "image->text")):
        for values, label in ((ranked[key], "model"), (chance[key], "random ranking")):
            echo(f"  {name:11s} {values['R@1']:6.1f} {values['R@5']:6.1f} {values['R@10']:6.1f} "
                 f"{values['median_rank']:8.1f}   {label}")  # fmt: skip


# --------------------------------------------------------------------------------------------
# The task
# --------------------------------------------------------------------------------------------


class RetrievalTask(Task[RetrievalConfig]):
    """Sentences in, images out (and the other way)."""

    name = "retrieval"
    config_class = RetrievalConfig
    input_kind = "image"
    independent_inputs = False  # predict ranks the given images against each other
    primary_metric = "val_rsum"
    logged_metrics = ("val_rsum", "val_t2i_r1", "val_i2t_r1")
    evaluate_options = (
        TaskOption("folds", int, "score the split in N equal folds of images and "
                   "average (5 on COCO's 5000 test images = the 1k protocol)", min=1),
    )  # fmt: skip
    predict_options = (
        TaskOption("text", str, "the sentence to rank the given images by"),
        TaskOption("top", int, "images shown (default: all given)", min=1),
    )

    def prepare(self, config: RetrievalConfig, log: Log) -> Prepared:
        split = read_caption_split(config.data)
        if not split.train or not split.val:
            raise DataError(
                config.data.root, f"{len(split.train)} training and {len(split.val)} "
                "validation images", expected="both > 0",
            )  # fmt: skip
        vocab = Vocabulary.build(
            (c for item in split.train for c in item.captions), config.data.min_count
        )
        log(f"vocabulary: {len(vocab)} words (min count {config.data.min_count})")
        extras = RetrievalExtras(vocab=VocabularyData(**vocab.to_dict()))
        return Prepared(extras, split, [p.problem for p in split.skipped])

    def training(
        self,
        config: RetrievalConfig,
        model: nn.Module,
        prepared: Prepared,
        device: torch.device,
        log: Log,
        progress: Progress | None,
    ) -> TrainingSetup:
        assert isinstance(model, RetrievalModel) and isinstance(prepared.extras, RetrievalExtras)
        split: CaptionSplit[CaptionItem] = prepared.data
        vocab, max_len = prepared.extras.vocabulary(), config.data.max_len
        skipped: list[Problem] = []
        train, image = cached_image_features(
            config, model, split.train, device, skipped, log, progress
        )
        val, _ = cached_image_features(config, model, split.val, device, skipped, log, progress)
        margin, hardest = model.head.margin, model.head.hardest

        def loss(m: nn.Module, batch: dict[str, Any]) -> tuple[Tensor, int]:
            assert isinstance(m, RetrievalModel)
            images = m.encode_images(batch["inputs"].to(device))  # (B, E)
            texts = m.encode_texts(batch["captions"].to(device), batch["lengths"].to(device))
            # Under DDP the negatives are the whole global batch's, as in one process.
            cost = contrastive_loss(
                gather_batch(images), gather_batch(texts), margin, hardest,
                image_ids=gather_batch(batch["labels"].to(device)),
            )  # fmt: skip
            return cost, len(images)

        def validate(m: nn.Module) -> dict[str, float]:
            assert isinstance(m, RetrievalModel)
            scores, text_image = _split_scores(m, val, image, vocab, max_len, device)
            ranked = retrieval_scores(scores, text_image)
            return {
                "val_rsum": ranked.rsum,
                "val_t2i_r1": ranked.text_to_image["R@1"],
                "val_i2t_r1": ranked.image_to_text["R@1"],
            }

        return TrainingSetup(
            train_set=_Pairs(train, image, vocab, max_len),
            collate=_collate,
            loss=loss,
            validate=validate,
            num_workers=0,
            report={
                "vocabulary": len(vocab),
                "train_images": len(train),
                "val_images": len(val),
                "test_images": len(split.test),
            },
            skipped=[p.problem for p in skipped],
        )

    def cache_features(
        self,
        config: RetrievalConfig,
        model: nn.Module,
        prepared: Prepared,
        device: torch.device,
        log: Log,
        progress: Progress | None,
    ) -> dict[str, Any]:
        assert isinstance(model, RetrievalModel)
        split: CaptionSplit[CaptionItem] = prepared.data
        skipped: list[Problem] = list(split.skipped)
        items = split.train + split.val + split.test
        kept, _ = cached_image_features(config, model, items, device, skipped, log, progress)
        return {
            "inputs": len(kept),
            "frames": len(kept),
            "skipped": sorted({p.problem for p in skipped}),
        }

    def evaluate(
        self,
        bundle: Bundle,
        config: RetrievalConfig,
        split: str,
        options: dict[str, Any],
        out: Path,
        log: Log,
        progress: Progress | None,
    ) -> dict[str, Any]:
        """R@1/5/10 and median rank both ways on ``split`` (in ``folds`` when asked), beside
        random ranking; each sentence's rank and best image to ``rankings.csv``."""
        vocab = bundle.extras_as(RetrievalExtras).vocabulary()
        device = resolve_device(config.train.device)
        model = bundle.model.to(device)
        assert isinstance(model, RetrievalModel)
        data = read_caption_split(config.data)
        skipped: list[Problem] = list(data.skipped)
        items, image = cached_image_features(
            config, model, data.split(split), device, skipped, log, progress
        )
        folds = int(options.get("folds") or 1)
        scores, text_image = _split_scores(model, items, image, vocab, config.data.max_len, device)
        ranked = retrieval_summary(scores, text_image, folds, split)
        out.mkdir(parents=True, exist_ok=True)
        _write_rankings(out / "rankings.csv", items, scores, text_image)
        summary = {
            "split": split,
            "epoch": bundle.epoch,
            **ranked,
            "skipped": sorted({p.problem for p in skipped}),
            "outputs": {
                "metrics": str(out / "metrics.json"),
                "rankings": str(out / "rankings.csv"),
            },
        }
        (out / "metrics.json").write_text(json.dumps(summary, indent=1))
        return summary

    def predict(
        self,
        bundle: Bundle,
        config: RetrievalConfig,
        inputs: Sequence[Path],
        options: dict[str, Any],
    ) -> list[dict[str, Any]]:
        """The given images ranked for ``options["text"]``, best first, with cosine scores."""
        text = options.get("text")
        if not text:
            raise ConfigError("--text", "no sentence given", expected='--text "a dog on grass"')
        vocab = bundle.extras_as(RetrievalExtras).vocabulary()
        ids, unknown = encode_query(text, vocab, config.data.max_len, "--text")
        device = resolve_device("auto")
        model = cast(RetrievalModel, bundle.model.to(device).eval())  # or its export
        query = embed_texts(model, [ids], device)[0]  # (E,)
        results: list[dict[str, Any]] = []
        found: list[tuple[Path, Tensor]] = []
        for path in inputs:
            try:
                pixels = read_image(Path(path))
            except VideoError as err:
                results.append({"input": str(path), "error": str(err)})
                continue
            x = bundle.preprocess.frames_to_tensor(pixels[None]).to(device)  # (1, 3, S, S)
            with torch.inference_mode():
                found.append((Path(path), model.encode_images(model.features(x)).cpu()[0]))
        ranked = sorted(found, key=lambda pair: -float(pair[1] @ query))
        top = options.get("top") or len(ranked)
        for rank, (path, vector) in enumerate(ranked[:top], start=1):
            results.append({
                "input": str(path), "text": text, "rank": rank,
                "score": round(float(vector @ query), 4), "unknown_words": unknown,
            })  # fmt: skip
        return results

    def export_plan(self, bundle: Bundle, config: RetrievalConfig, batch: int) -> ExportPlan:
        """The image side (backbone, then the joint embedding) and the sentence side."""
        model = bundle.model
        vocab_size = len(bundle.extras_as(RetrievalExtras).vocab.words)
        images = example_pixels(bundle.preprocess, batch)  # (B, 3, S, S)
        ids, lengths = example_sentences(vocab_size, batch, config.data.max_len)  # (B, L), (B,)
        with torch.no_grad():
            feats = model.features(images)  # type: ignore[operator]
        return ExportPlan([
            Graph("features", (images,)), Graph("encode_images", (feats,)),
            Graph("encode_texts", (ids, lengths), {"ids": {1: "words"}}),
        ])  # fmt: skip

    def render_evaluation(self, summary: dict[str, Any], echo: Echo) -> None:
        epoch = "?" if summary["epoch"] is None else summary["epoch"] + 1
        echo(f"{summary['split']} split (checkpoint from epoch {epoch})")
        render_retrieval(summary, echo)
        if summary["skipped"]:
            echo(f"skipped {len(summary['skipped'])}:\n  " + "\n  ".join(summary["skipped"]))
        for name, path in summary["outputs"].items():
            echo(f"{name}: {path}")

    def render_predictions(self, results: list[dict[str, Any]], echo: Echo) -> None:
        shown_unknown = False
        for r in results:
            if "error" in r:
                continue
            if r["unknown_words"] and not shown_unknown:
                echo(f"words never seen in training (read as <unk>): {r['unknown_words']}")
                shown_unknown = True
            echo(f"{r['rank']:3d}. {r['score']:.3f}  {r['input']}")


def _write_rankings(
    path: Path, items: Sequence[CaptionItem], scores: Tensor, text_image: Tensor
) -> None:
    """Per sentence: its image, the rank the model gave it (among all of the split's images,
    as the metrics rank it), and the model's first image."""
    sentences = [" ".join(c) for item in items for c in item.captions]
    text_ranks, _ = ranks(scores, text_image)  # (T,)
    first_images = scores.argmax(0)  # (T,)
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["sentence", "image", "rank", "first_image"])
        for t, sentence in enumerate(sentences):
            writer.writerow([
                sentence, items[int(text_image[t])].image, int(text_ranks[t]),
                items[int(first_images[t])].image,
            ])  # fmt: skip


register_task(RetrievalTask())
