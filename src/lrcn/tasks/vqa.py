"""Visual question answering as a task: an image and a question in, an answer out.

The images' frozen-backbone features (pooled vectors, or grids for attention) are cached once;
the question vocabulary (``data.min_count``) and the answer vocabulary (the ``data.num_answers``
most frequent normalised training answers) go into the bundle. Training targets are the soft
scores ``min(#humans who gave the answer / 3, 1)``; ``best/`` is the epoch with the best VQA
accuracy on the validation split (questions of training images set aside by image).
``evaluate`` scores a split with the official accuracy, overall and per answer type, beside the
question-type prior (the most frequent training answer for the question's first words);
``predict`` answers any question about any image, and draws where each glimpse looked.
"""

from __future__ import annotations

import csv
import json
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np
import torch
from pydantic import Field
from torch import Tensor, nn
from torch.utils.data import Dataset

from lrcn.checkpoint import Bundle
from lrcn.config import ConfigError, StrictConfig, TrainConfig
from lrcn.data.captions import pad_captions
from lrcn.data.formats.vqa import VqaItem, VqaSplit, read_vqa
from lrcn.data.items import DataError, Problem, require_root
from lrcn.data.video_io import VideoError, read_image
from lrcn.data.vocab import Vocabulary
from lrcn.export.graphs import ExportPlan, Graph, example_pixels, example_sentences
from lrcn.metrics.vqa import normalize_answer, soft_scores, vqa_accuracy, vqa_scores
from lrcn.models.vqa import VqaExtras, VqaModel, VqaModelConfig, soft_target_loss
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
from lrcn.training.distributed import gather_shards, shard

Source = Callable[[int], Tensor]  # image index -> pooled (D,) or grid (P, C) features

__all__ = ["VqaConfig", "VqaDataConfig", "VqaTask"]


class VqaDataConfig(StrictConfig):
    """Images, questions and human answers in the VQA layout."""

    format: Literal["vqa"] = "vqa"
    root: Path  # the VQA files and train2014/, val2014/ (lrcn datasets vqa-from-csv writes it)
    val_fraction: float = Field(0.05, gt=0, lt=1)  # training images set aside to pick best/
    num_answers: int = Field(3000, ge=2)  # the most frequent training answers are the classes
    min_count: int = Field(1, ge=1)  # question words seen fewer times become <unk>
    max_question_len: int = Field(20, ge=1)
    on_error: Literal["raise", "skip"] = "raise"


class VqaConfig(TaskConfig):
    """A whole VQA experiment."""

    task: Literal["vqa"]
    data: VqaDataConfig
    model: VqaModelConfig
    train: TrainConfig = Field(default_factory=TrainConfig)


def read_split(config: VqaConfig) -> VqaSplit:
    require_root(Path(config.data.root), "data.root")
    d = config.data
    return read_vqa(d.root, d.val_fraction, config.train.seed, d.on_error)


def answer_vocabulary(items: Sequence[VqaItem], size: int) -> list[str]:
    """The ``size`` most frequent normalised human answers of ``items`` (ties: a-z)."""
    counts = Counter(normalize_answer(a) for item in items for a in item.answers)
    return sorted(counts, key=lambda a: (-counts[a], a))[:size]


Targets = tuple[list[int], list[float]]  # answer indices and their soft scores, sparse


class _Questions(Dataset[tuple[Tensor, list[int], Targets]]):
    """Every (image features, question ids, soft answer targets) of a split. Targets stay
    sparse (a few answers a question) and become dense ``(B, A)`` rows per batch: dense, VQA
    v2's 444k training questions x 3000 answers would hold 5 GB."""

    def __init__(
        self,
        items: Sequence[VqaItem],
        image: Callable[[Path], Tensor],
        vocab: Vocabulary,
        answers: list[str],
        max_len: int,
    ) -> None:
        index = {a: i for i, a in enumerate(answers)}
        self.items, self.image, self.num_answers = items, image, len(answers)
        self.questions = [word_ids(item.question, vocab, max_len) for item in items]
        self.targets: list[Targets] = []
        for item in items:
            known = [(index[a], v) for a, v in soft_scores(item.answers).items() if a in index]
            self.targets.append(([i for i, _ in known], [v for _, v in known]))

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[Tensor, list[int], Targets]:
        return self.image(self.items[i].image), self.questions[i], self.targets[i]

    def collate(self, batch: list[tuple[Tensor, list[int], Targets]]) -> dict[str, Any]:
        labels = torch.zeros(len(batch), self.num_answers)  # (B, A) soft targets
        for row, (_, _, (indices, scores)) in enumerate(batch):
            labels[row, indices] = torch.tensor(scores)
        return {
            "inputs": torch.stack([x for x, _, _ in batch]),
            "questions": pad_captions([q for _, q, _ in batch]),  # (B, L), <pad> = 0
            "lengths": torch.tensor([len(q) for _, q, _ in batch]),
            "labels": labels,
            "skipped": [],
        }


def _answer(model: VqaModel, data: _Questions, device: torch.device, batch: int = 128) -> Tensor:
    """Each question's best answer ``(N,)`` (argmax per batch: the (N, A) probabilities of a
    whole split would not fit in memory on VQA v2)."""
    model.eval()
    rows = []
    with torch.inference_mode():
        for first in range(0, len(data), batch):
            b = data.collate([data[i] for i in range(first, min(len(data), first + batch))])
            out = model(b["inputs"].to(device), b["questions"].to(device), b["lengths"].to(device))
            rows.append(out.logits.argmax(1).cpu())
    return torch.cat(rows) if rows else torch.zeros(0, dtype=torch.long)


def _accuracy(predicted: Sequence[str], items: Sequence[VqaItem]) -> float:
    """Overall VQA accuracy of one answer per item; 0 for no items."""
    if not items:
        return 0.0
    humans, types = [i.answers for i in items], [i.answer_type for i in items]
    return vqa_scores(predicted, humans, types).overall


def _type_prior(train: Sequence[VqaItem]) -> Callable[[VqaItem], str]:
    """The most frequent training answer per question type (the question's first words), or
    overall: the language prior every VQA paper reports."""
    by_type: dict[str, Counter[str]] = defaultdict(Counter)
    overall: Counter[str] = Counter()
    for item in train:
        answers = [normalize_answer(a) for a in item.answers]
        by_type[question_type(item)].update(answers)
        overall.update(answers)
    best = {t: c.most_common(1)[0][0] for t, c in by_type.items()}
    fallback = overall.most_common(1)[0][0] if overall else ""
    return lambda item: best.get(question_type(item), fallback)


def question_type(item: VqaItem) -> str:
    """The annotation's ``question_type`` (VQA's 65 question prefixes), or, where the file has
    none (your own data), the question's first two words ("what color", "is there")."""
    return item.question_type or " ".join(item.question[:2])


class VqaTask(Task[VqaConfig]):
    """An image and a question in, an answer out."""

    name = "vqa"
    config_class = VqaConfig
    input_kind = "image"
    primary_metric = "val_vqa_accuracy"
    logged_metrics = ("val_vqa_accuracy",)
    predict_options = (
        TaskOption("question", str, "the question to answer about every image (vqa)"),
        TaskOption("top", int, "answers shown per question", min=1),
        TaskOption("attention", Path, "folder for attention PNGs (attention models)", output="dir"),
    )

    def prepare(self, config: VqaConfig, log: Log) -> Prepared:
        split = read_split(config)
        if not split.train or not split.val:
            raise ConfigError("data.root", f"{len(split.train)} training and {len(split.val)} "
                              "validation questions", expected="both > 0")  # fmt: skip
        vocab = Vocabulary.build((item.question for item in split.train), config.data.min_count)
        answers = answer_vocabulary(split.train, config.data.num_answers)
        log(f"questions: {len(vocab)} words; answers: the {len(answers)} most frequent")
        extras = VqaExtras.of(vocab, answers)
        return Prepared(extras, split, [p.problem for p in split.skipped])

    def training(
        self,
        config: VqaConfig,
        model: nn.Module,
        prepared: Prepared,
        device: torch.device,
        log: Log,
        progress: Progress | None,
    ) -> TrainingSetup:
        assert isinstance(model, VqaModel) and isinstance(prepared.extras, VqaExtras)
        split: VqaSplit = prepared.data
        vocab, answers = prepared.extras.vocabulary(), prepared.extras.answers
        skipped: list[Problem] = []
        train, image = cached_image_features(
            config, model, split.train, device, skipped, log, progress
        )
        val, _ = cached_image_features(config, model, split.val, device, skipped, log, progress)
        max_len = config.data.max_question_len
        train_set = _Questions(train, image, vocab, answers, max_len)
        val_set = _Questions(shard(val), image, vocab, answers, max_len)  # under torchrun

        def loss(m: nn.Module, batch: dict[str, Any]) -> tuple[Tensor, int]:
            out = m(batch["inputs"].to(device), batch["questions"].to(device),
                    batch["lengths"].to(device))  # fmt: skip
            return soft_target_loss(out.logits, batch["labels"].to(device)), len(out.logits)

        def validate(m: nn.Module) -> dict[str, float]:
            assert isinstance(m, VqaModel)
            best = gather_shards(_answer(m, val_set, device).tolist(), len(val))
            return {"val_vqa_accuracy": _accuracy([answers[i] for i in best], val)}

        return TrainingSetup(
            train_set=train_set,
            collate=train_set.collate,
            loss=loss,
            validate=validate,
            sharded_validation=True,
            num_workers=0,
            report={
                "question_words": len(vocab),
                "answers": len(answers),
                "train_questions": len(train),
                "val_questions": len(val),
                "test_questions": len(split.test),
            },
            skipped=[p.problem for p in skipped],
        )

    def cache_features(
        self,
        config: VqaConfig,
        model: nn.Module,
        prepared: Prepared,
        device: torch.device,
        log: Log,
        progress: Progress | None,
    ) -> dict[str, Any]:
        assert isinstance(model, VqaModel)
        split: VqaSplit = prepared.data
        skipped: list[Problem] = list(split.skipped)
        items = split.train + split.val + split.test
        kept, _ = cached_image_features(config, model, items, device, skipped, log, progress)
        images = {item.image for item in kept}
        return {
            "cache": "(see the log)",
            "inputs": len(images),
            "frames": len(images),
            "skipped": sorted({p.problem for p in skipped}),
        }

    def evaluate(
        self,
        bundle: Bundle,
        config: VqaConfig,
        split: str,
        options: dict[str, Any],
        out: Path,
        log: Log,
        progress: Progress | None,
    ) -> dict[str, Any]:
        """The official VQA accuracy on ``split``, overall and per answer type, beside the
        question-type prior; every question's answer to ``answers.csv``."""
        extras = bundle.extras_as(VqaExtras)
        vocab, answers = extras.vocabulary(), extras.answers
        device = resolve_device(config.train.device)
        model = bundle.model.to(device)
        assert isinstance(model, VqaModel)
        data = read_split(config)
        skipped: list[Problem] = list(data.skipped)
        items, image = cached_image_features(
            config, model, data.split(split), device, skipped, log, progress
        )
        if not items:
            raise DataError(
                config.data.root, f"no {split} questions with a readable image",
                expected="the val2014 files (lrcn's test split) with their images",
            )  # fmt: skip
        questions = _Questions(items, image, vocab, answers, config.data.max_question_len)
        predicted = [answers[i] for i in _answer(model, questions, device).tolist()]
        types = [item.answer_type for item in items]
        humans = [item.answers for item in items]
        scores = vqa_scores(predicted, humans, types)
        prior = _type_prior(data.train)
        prior_scores = vqa_scores([prior(item) for item in items], humans, types)
        out.mkdir(parents=True, exist_ok=True)
        with (out / "answers.csv").open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["question_id", "image", "question", "answer", "accuracy", "humans"])
            for item, answer in zip(items, predicted, strict=True):
                writer.writerow([
                    item.question_id, item.image, item.question_text, answer,
                    f"{vqa_accuracy(answer, item.answers):.3f}", " | ".join(item.answers),
                ])  # fmt: skip
        summary = {
            "split": split,
            "epoch": bundle.epoch,
            "questions": len(items),
            "vqa_accuracy": scores.overall,
            "per_answer_type": scores.per_type,
            "question_type_prior": {
                "vqa_accuracy": prior_scores.overall,
                "per_answer_type": prior_scores.per_type,
            },
            "skipped": sorted({p.problem for p in skipped}),
            "outputs": {"metrics": str(out / "metrics.json"), "answers": str(out / "answers.csv")},
        }
        (out / "metrics.json").write_text(json.dumps(summary, indent=1))
        return summary

    def predict(
        self, bundle: Bundle, config: VqaConfig, inputs: Sequence[Path], options: dict[str, Any]
    ) -> list[dict[str, Any]]:
        """Answer ``options["question"]`` about each image; the top answers with their
        probabilities, and with ``attention`` (attention models) a PNG of each glimpse."""
        question_text = options.get("question")
        if question_text is None:
            raise ConfigError("--question", "no question given", expected='--question "what '
                              'colour is the car?"')  # fmt: skip
        extras = bundle.extras_as(VqaExtras)
        vocab, answers = extras.vocabulary(), extras.answers
        tokens, unknown = typed_words(question_text, vocab, "--question")
        device = resolve_device("auto")
        model = cast(VqaModel, bundle.model.to(device).eval())  # or its export
        attention_dir = options.get("attention")
        if attention_dir is not None and model.feature_kind != "grid":
            raise ConfigError("--attention", f"needs an attention model; {config.model.name} "
                              "has none", expected="a show_ask_attend_answer run")  # fmt: skip
        ids = word_ids(tokens, vocab, config.data.max_question_len)
        question = torch.tensor([ids], device=device)
        lengths = torch.tensor([len(ids)], device=device)
        top = min(options.get("top") or 5, len(answers))
        results: list[dict[str, Any]] = []
        for path in inputs:
            try:
                pixels = read_image(Path(path))
            except VideoError as err:
                results.append({"input": str(path), "error": str(err)})
                continue
            x = bundle.preprocess.frames_to_tensor(pixels[None]).to(device)  # (1, 3, S, S)
            with torch.inference_mode():
                out = model(model.features(x), question, lengths)
            probs = torch.sigmoid(out.logits[0]).cpu()
            best = probs.topk(top)
            entry: dict[str, Any] = {
                "input": str(path),
                "question": question_text,
                "answers": [
                    {"answer": answers[int(i)], "score": round(float(v), 4)}
                    for v, i in zip(best.values, best.indices, strict=True)
                ],
                "unknown_words": unknown,
            }
            if attention_dir is not None and out.attention is not None:
                heading = f"{question_text} -> {entry['answers'][0]['answer']}"
                entry["attention"] = str(_draw_glimpses(
                    pixels, out.attention[0].cpu(), bundle, Path(attention_dir), Path(path),
                    heading,
                ))  # fmt: skip
            results.append(entry)
        return results

    def export_plan(self, bundle: Bundle, config: VqaConfig, batch: int) -> ExportPlan:
        """The image encoder, and the question encoder with the answer head on its
        features."""
        model = bundle.model
        vocab_size = len(bundle.extras_as(VqaExtras).vocab.words)
        images = example_pixels(bundle.preprocess, batch)  # (B, 3, S, S)
        question, lengths = example_sentences(vocab_size, batch, config.data.max_question_len)
        with torch.no_grad():
            feats = model.features(images)  # type: ignore[operator]
        return ExportPlan(
            [
                Graph("features", (images,)),
                Graph("forward", (feats, question, lengths), {"question": {1: "words"}}),
            ],
            {"feature_kind": str(getattr(model, "feature_kind", "pooled"))},
        )

    def render_evaluation(self, summary: dict[str, Any], echo: Echo) -> None:
        epoch = "?" if summary["epoch"] is None else summary["epoch"] + 1
        prior = summary["question_type_prior"]
        echo(f"{summary['split']} split, {summary['questions']} questions (checkpoint from "
             f"epoch {epoch}): VQA accuracy {summary['vqa_accuracy']:.3f}; question-type prior "
             f"{prior['vqa_accuracy']:.3f}")  # fmt: skip
        for kind, value in summary["per_answer_type"].items():
            echo(f"  {kind:8s} {value:.3f}   (prior {prior['per_answer_type'].get(kind, 0):.3f})")
        if summary["skipped"]:
            echo(f"skipped {len(summary['skipped'])}:\n  " + "\n  ".join(summary["skipped"]))
        for name, path in summary["outputs"].items():
            echo(f"{name}: {path}")

    def render_predictions(self, results: list[dict[str, Any]], echo: Echo) -> None:
        for r in results:
            echo(f"{r['input']}: {r['question']}")
            if r["unknown_words"]:
                echo(f"    words never seen in training (read as <unk>): {r['unknown_words']}")
            for a in r["answers"]:
                echo(f"    {a['score']:.3f}  {a['answer']}")
            if "attention" in r:
                echo(f"    attention: {r['attention']}")


def _draw_glimpses(
    pixels: np.ndarray, alpha: Tensor, bundle: Bundle, out_dir: Path, image: Path, heading: str
) -> Path:
    """Each glimpse's attention ``alpha (G, P)`` laid over the crop the model saw."""
    from lrcn.plots import plot_attention, save_figure

    shown = bundle.preprocess.shown_crop(pixels)  # (S, S, 3) uint8
    side = round(alpha.shape[1] ** 0.5)
    maps = [a.view(side, -1).numpy() for a in alpha]
    names = [f"glimpse {g + 1}" for g in range(len(maps))]
    figure = plot_attention(shown, maps, names, columns=len(maps) + 1, per="glimpse",
                            heading=heading)  # fmt: skip
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{image.stem}-attention.png"
    save_figure(figure, path)
    return path


register_task(VqaTask())
