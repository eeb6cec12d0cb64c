"""What every sentence-out task shares: decoded texts, references, the two baselines a captioner
must beat, and the tables the CLI prints. Image and video captioning use the same ones, so their
numbers are comparable."""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import Tensor

from lrcn.data.captions import Captioned
from lrcn.data.items import DataError, Problem
from lrcn.data.vocab import Vocabulary
from lrcn.decoding import BeamResult, Hypothesis, Step, beam_search
from lrcn.models.captioning import CaptioningExtras
from lrcn.tasks.base import C, Echo, Log, Prepared, Progress, Task, TaskOption
from lrcn.training.distributed import gather_shards, shard

__all__ = [
    "METRIC_NAMES",
    "SentenceTask",
    "baselines",
    "prepare_vocabulary",
    "references_of",
    "render_caption_predictions",
    "render_caption_scores",
    "texts_of",
]

METRIC_NAMES = {"bleu1": "BLEU-1", "bleu2": "BLEU-2", "bleu3": "BLEU-3", "bleu4": "BLEU-4",
                "meteor": "METEOR", "rouge_l": "ROUGE-L", "cider": "CIDEr-D"}  # fmt: skip


def decode_batches(
    step: Step,
    start: Callable[[list[Tensor]], dict[str, Tensor]],
    source: Callable[[int], Tensor],
    count: int,
    vocab: Vocabulary,
    device: torch.device,
    beam_size: int,
    max_len: int,
    alpha: float = 0.0,
    n_best: int = 1,
    batch_size: int = 32,
    progress: Progress | None = None,
) -> BeamResult:
    """Decode inputs ``source(0..count-1)`` in batches, all beams of a batch in one tensor;
    ``start(inputs)`` gives the decoder's state for a batch's inputs (on ``device``), stacking
    or padding them as the model needs."""
    hypotheses = []
    with torch.inference_mode():
        for first in range(0, count, batch_size):
            last = min(count, first + batch_size)
            batch = [source(i).to(device) for i in range(first, last)]
            result = beam_search(
                step, start(batch), len(batch), vocab.start_id, vocab.end_id, beam_size,
                max_len, alpha, n_best,
            )  # fmt: skip
            hypotheses += result.hypotheses
            if progress is not None:
                progress("captioning", last, count)
    return BeamResult(hypotheses)


def sharded(
    source: Callable[[int], Tensor], count: int
) -> tuple[Callable[[int], Tensor], int, Callable[[BeamResult], BeamResult]]:
    """This process's shard of a validation ``source`` of ``count`` inputs (all of them in a
    single process), its size, and how to gather every rank's decoded shard back into one
    result in the unsharded order, the same on every rank (training/distributed.py)."""
    mine = shard(range(count))

    def gather(result: BeamResult) -> BeamResult:
        return BeamResult(gather_shards(result.hypotheses, count))

    return (lambda i: source(mine[i])), len(mine), gather


def validation_scores(
    result: BeamResult, vocab: Vocabulary, references: dict[str, list[str]]
) -> dict[str, float]:
    """BLEU-4 and CIDEr-D of the validation captions: what each epoch logs and best/ picks."""
    from lrcn.metrics.captioning import caption_metrics

    texts = {str(i): t for i, t in enumerate(texts_of(result, vocab))}
    scores = caption_metrics(references, texts, full=False)
    return {"val_bleu4": scores["bleu4"], "val_cider": scores["cider"]}


def score_captions(
    items: Sequence[Captioned],
    names: Sequence[str],
    result: BeamResult,
    vocab: Vocabulary,
    pooled: Tensor,
    train_items: Sequence[Captioned],
    train_pooled: Tensor,
    out: Path,
    column: str,
) -> dict[str, dict[str, float]]:
    """Every metric of the model's captions and of the two baselines' (see
    :func:`baselines`), against all references; each input's caption, its log-probability,
    the nearest neighbour's and the references go to ``out/captions.csv`` (``column`` names
    the inputs, ``names`` lists them)."""
    from lrcn.metrics.captioning import caption_metrics_of

    texts = texts_of(result, vocab)
    references = references_of(items)
    found = baselines(train_items, pooled, train_pooled)
    model = {str(i): t for i, t in enumerate(texts)}
    scores = caption_metrics_of(references, {"model": model, **found})
    out.mkdir(parents=True, exist_ok=True)
    with (out / "captions.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([column, "caption", "log_prob", "nearest_neighbour_caption", "references"])
        for i, name in enumerate(names):
            writer.writerow([
                name, texts[i], f"{result.hypotheses[i][0].log_prob:.3f}",
                found["nearest_neighbour"][str(i)], " | ".join(references[str(i)]),
            ])  # fmt: skip
    return scores


def prediction(source: str, hypotheses: Sequence[Hypothesis], vocab: Vocabulary) -> dict[str, Any]:
    """What predict reports for one input: its best caption and the n best with their
    log-probabilities."""
    return {
        "input": source,
        "caption": " ".join(vocab.decode(hypotheses[0].tokens)),
        "n_best": [
            {"caption": " ".join(vocab.decode(h.tokens)), "log_prob": round(h.log_prob, 4)}
            for h in hypotheses
        ],
    }


def texts_of(result: BeamResult, vocab: Vocabulary) -> list[str]:
    """The best hypothesis of each input, as words."""
    return [" ".join(vocab.decode(tokens)) for tokens in result.best()]


def references_of(items: Sequence[Captioned]) -> dict[str, list[str]]:
    """Reference sentences by item position, as pycocoevalcap takes them."""
    return {str(i): [" ".join(c) for c in item.captions] for i, item in enumerate(items)}


def baselines(
    train_items: Sequence[Captioned], pooled: Tensor, train_pooled: Tensor
) -> dict[str, dict[str, str]]:
    """What a captioner gets without learning to describe: the most frequent training sentence
    for every input, and the first sentence of the nearest training input (cosine of
    normalised pooled features ``(N, D)`` against ``(M, D)``)."""
    counts = Counter(" ".join(c) for item in train_items for c in item.captions)
    frequent = counts.most_common(1)[0][0]
    neighbours = (pooled @ train_pooled.T).argmax(dim=1).tolist()  # (N,)
    return {
        "most_frequent_caption": {str(i): frequent for i in range(len(pooled))},
        "nearest_neighbour": {
            str(i): " ".join(train_items[j].captions[0]) for i, j in enumerate(neighbours)
        },
    }


def render_caption_scores(summary: dict[str, Any], echo: Echo, noun: str) -> None:
    """The model beside the baselines, one row each, every metric a column."""
    from rich.console import Console
    from rich.table import Table

    epoch = "?" if summary.get("epoch") is None else summary["epoch"] + 1
    table = Table(
        title=f"{summary['split']} split, {summary[noun]} {noun}, beam "
        f"{summary['beam_size']} (checkpoint from epoch {epoch})"
    )
    table.add_column("captions from")
    for label in METRIC_NAMES.values():
        table.add_column(label, justify="right")
    for row in ("model", "nearest_neighbour", "most_frequent_caption"):
        table.add_row(row.replace("_", " "), *(f"{summary[row][n]:.3f}" for n in METRIC_NAMES))
    Console().print(table)
    for name, path in summary["outputs"].items():
        echo(f"{name}: {path}")


def render_caption_predictions(results: list[dict[str, Any]], echo: Echo) -> None:
    """Each input's caption, its other n-best sentences, and its attention plot if drawn."""
    for c in results:
        echo(f"{c['input']}: {c['caption']}")
        for h in c["n_best"][1:]:
            echo(f"    {h['log_prob']:.2f}  {h['caption']}")
        if "attention" in c:
            echo(f"    attention: {c['attention']}")


def prepare_vocabulary(split: Any, root: Any, min_count: int, noun: str, log: Log) -> Prepared:
    """The vocabulary of ``split.train``'s sentences (words seen ``min_count`` times), as the
    bundle's extras; a split without training or validation inputs is refused."""
    if not split.train or not split.val:
        raise DataError(
            root, f"{len(split.train)} training and {len(split.val)} validation {noun}",
            expected="both > 0",
        )  # fmt: skip
    vocab = Vocabulary.build((c for item in split.train for c in item.captions), min_count)
    log(f"vocabulary: {len(vocab)} words (min count {min_count}) from {len(split.train)} {noun}")
    skipped: list[Problem] = split.skipped
    return Prepared(CaptioningExtras.of(vocab), split, [p.problem for p in skipped])


class SentenceTask(Task[C]):
    """What image and video captioning declare alike: best/ by validation CIDEr-D, beam options,
    and the tables. ``noun`` names the inputs ("images", "videos")."""

    noun = "inputs"
    primary_metric = "val_cider"
    logged_metrics = ("val_bleu4", "val_cider")
    evaluate_options: ClassVar[tuple[TaskOption, ...]] = (
        TaskOption("beam", int, "beam size (default: the config's decode.beam_size)", min=1),
    )
    predict_options: ClassVar[tuple[TaskOption, ...]] = (
        TaskOption("beam", int, "beam size (default: the config's decode.beam_size)", min=1),
        TaskOption("n_best", int, "captions shown per input (default 1)", min=1),
    )

    def render_evaluation(self, summary: dict[str, Any], echo: Echo) -> None:
        render_caption_scores(summary, echo, self.noun)

    def render_predictions(self, results: list[dict[str, Any]], echo: Echo) -> None:
        render_caption_predictions(results, echo)
