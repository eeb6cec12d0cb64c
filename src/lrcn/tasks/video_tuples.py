"""Visual tuples as a task: a video in, one word per slot out (and the distributions).

The first stage of the LRCN paper's tuple-to-sentence video description. Each video's slot
labels come from its reference sentences (:func:`lrcn.data.formats.tuples.slot_labels`: the
slot word they name most often, or ``<none>``); the slots and their words are given in the
config (``data.slots``, with ``data.aliases`` for synonyms) or mined from the training sentences
(``data.slots: mined``, :func:`~lrcn.data.formats.tuples.mine_slots`). The classifier
(:mod:`lrcn.models.video_tuples`) reads the same cached frame features as the video captioners.
``best/`` is the epoch with the best mean slot accuracy on the validation split. ``evaluate``
scores a split and writes ``tuples.json``, the distributions of every video of every split in
the ``lrcn-tuples/1`` format, which a tuple captioner reads as ``data.tuples``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np
import torch
from pydantic import Field
from torch import Tensor, nn
from torch.utils.data import Dataset

from lrcn.checkpoint import Bundle
from lrcn.config import ConfigError, TrainConfig
from lrcn.data.formats.tuples import TupleSlots, mine_slots, slot_labels, write_tuples
from lrcn.data.formats.video_captions import VideoCaptionItem, VideoCaptionSplit
from lrcn.data.items import Problem
from lrcn.data.video_io import VideoError
from lrcn.export.graphs import ExportPlan, Graph, example_frame_features
from lrcn.models.video_tuples import TupleHeads, TupleHeadsConfig, VideoTupleExtras
from lrcn.tasks._common import resolve_device
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
from lrcn.tasks.video_captioning import (
    VideoDataConfig,
    cache_report,
    frame_sources,
    pad_frames,
    read_video_caption_split,
    video_features,
)
from lrcn.training.distributed import gather_shards, shard

Source = Callable[[int], Tensor]

__all__ = ["VideoTupleDataConfig", "VideoTuplesConfig", "VideoTuplesTask"]


class VideoTupleDataConfig(VideoDataConfig):
    """Videos with sentences, and the tuple slots to read off the sentences."""

    slots: dict[str, list[str]] | Literal["mined"] = "mined"  # slot -> its words, or mined
    aliases: dict[str, str] = Field(default_factory=dict)  # synonym -> slot word ("disc": ...)
    max_slots: int = Field(4, ge=1)  # mined: at most this many slots
    words_per_slot: int = Field(12, ge=2)  # mined: at most this many words per slot
    min_count: int = Field(5, ge=1)  # mined: words seen fewer times are not slot words


class VideoTuplesConfig(TaskConfig):
    """A tuple classifier's experiment."""

    task: Literal["video_tuples"]
    data: VideoTupleDataConfig
    model: TupleHeadsConfig
    train: TrainConfig = Field(default_factory=TrainConfig)


def _slots(data: VideoTupleDataConfig, split: VideoCaptionSplit) -> TupleSlots:
    """The given slots, or those mined from the training sentences."""
    try:
        if data.slots == "mined":  # synonyms merged first, so each slot word is a label
            sentences = (
                [data.aliases.get(w, w) for w in c] for item in split.train for c in item.captions
            )
            return mine_slots(sentences, data.max_slots, data.words_per_slot, data.min_count)
        return TupleSlots.given(data.slots)
    except ValueError as err:
        raise ConfigError("data.slots", str(err)) from None


def _labels(items: Sequence[VideoCaptionItem], slots: TupleSlots, data: Any) -> Tensor:
    """Each video's slot labels ``(N, S)``, indices within each slot."""
    try:
        rows = [slot_labels(item.captions, slots, data.aliases) for item in items]
    except ValueError as err:
        raise ConfigError("data.aliases", str(err)) from None
    return torch.tensor(rows, dtype=torch.long).view(len(items), len(slots.slots))


class _Videos(Dataset[tuple[Tensor, Tensor]]):
    def __init__(self, source: Source, labels: Tensor) -> None:
        self.source, self.labels = source, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        return self.source(i), self.labels[i]  # (T, D), (S,)


def _collate(batch: list[tuple[Tensor, Tensor]]) -> dict[str, Any]:
    features, lengths = pad_frames([f for f, _ in batch])  # (B, T, D), (B,)
    labels = torch.stack([y for _, y in batch])  # (B, S)
    return {"inputs": features, "lengths": lengths, "labels": labels, "skipped": []}


def _probabilities(
    model: TupleHeads, source: Source, count: int, device: torch.device, batch: int = 64
) -> Tensor:
    """Every video's slot distributions ``(N, W)``."""
    model.eval()
    rows = []
    with torch.inference_mode():
        for start in range(0, count, batch):
            feats, lengths = pad_frames(
                [source(i).to(device) for i in range(start, min(count, start + batch))]
            )  # (B, T, D), (B,)
            rows.append(model.probabilities(feats, lengths).cpu())
    return torch.cat(rows) if rows else torch.zeros(0, sum(model.slot_sizes))


def _accuracies(probs: Tensor, labels: Tensor, slots: TupleSlots) -> tuple[dict[str, float], float]:
    """Per slot, the share of videos whose most probable word is the label; and their mean."""
    scores = {}
    for s, part in enumerate(probs.split(slots.sizes(), dim=1)):  # (N, W_s) each
        scores[list(slots.slots)[s]] = float((part.argmax(1) == labels[:, s]).float().mean())
    return scores, float(np.mean(list(scores.values())))


class VideoTuplesTask(Task[VideoTuplesConfig]):
    """A video in, a word per tuple slot out: the tuple classifier of LRCN's video model."""

    name = "video_tuples"
    config_class = VideoTuplesConfig
    primary_metric = "val_slot_accuracy"
    logged_metrics = ("val_slot_accuracy",)
    predict_options = (TaskOption("top", int, "words shown per slot", min=1),)

    def prepare(self, config: VideoTuplesConfig, log: Log) -> Prepared:
        split = read_video_caption_split(config.data)
        slots = _slots(config.data, split)
        for name, words in slots.slots.items():
            log(f"slot {name}: {', '.join(words)}")
        skipped: list[Problem] = split.skipped
        return Prepared(
            VideoTupleExtras(slots=slots.to_dict()), split, [p.problem for p in skipped]
        )

    def training(
        self,
        config: VideoTuplesConfig,
        model: nn.Module,
        prepared: Prepared,
        device: torch.device,
        log: Log,
        progress: Progress | None,
    ) -> TrainingSetup:
        assert isinstance(model, TupleHeads) and isinstance(prepared.extras, VideoTupleExtras)
        split: VideoCaptionSplit = prepared.data
        slots = TupleSlots.given(prepared.extras.slots)
        skipped: list[Problem] = []
        train, train_source = frame_sources(
            config, model, split.train, device, skipped, log, progress
        )
        val, val_source = frame_sources(config, model, split.val, device, skipped, log, progress)
        if not train or not val:
            raise ConfigError("data.root", f"{len(train)} training and {len(val)} validation "
                              "videos decode", expected="both > 0")  # fmt: skip
        model.standardize.fit(train_source(i) for i in range(len(train)))
        train_labels, val_labels = (
            _labels(train, slots, config.data),
            _labels(val, slots, config.data),
        )
        sizes = slots.sizes()

        def loss(m: nn.Module, batch: dict[str, Any]) -> tuple[Tensor, int]:
            logits = m(batch["inputs"].to(device), batch["lengths"].to(device))  # (B, W)
            labels = batch["labels"].to(device)  # (B, S)
            parts = logits.split(sizes, dim=1)
            losses = [nn.functional.cross_entropy(p, labels[:, s]) for s, p in enumerate(parts)]
            return torch.stack(losses).mean(), len(labels)

        def validate(m: nn.Module) -> dict[str, float]:
            assert isinstance(m, TupleHeads)
            mine = shard(range(len(val)))  # under torchrun, each process its share
            rows = _probabilities(m, lambda i: val_source(mine[i]), len(mine), device)
            probs = torch.stack(gather_shards(list(rows), len(val))) if len(val) else rows
            scores, mean = _accuracies(probs, val_labels, slots)
            return {"val_slot_accuracy": mean} | {
                f"val_accuracy_{name}": value for name, value in scores.items()
            }

        return TrainingSetup(
            train_set=_Videos(train_source, train_labels),
            collate=_collate,
            loss=loss,
            validate=validate,
            sharded_validation=True,
            num_workers=0,
            report={
                "slots": slots.to_dict(),
                "sampling": config.data.sampling(),
                "train_videos": len(train),
                "val_videos": len(val),
                "test_videos": len(split.test),
            },
            skipped=[p.problem for p in skipped],
        )

    def cache_features(
        self,
        config: VideoTuplesConfig,
        model: nn.Module,
        prepared: Prepared,
        device: torch.device,
        log: Log,
        progress: Progress | None,
    ) -> dict[str, Any]:
        split: VideoCaptionSplit = prepared.data
        items = split.train + split.val + split.test
        return cache_report(config, model, items, list(split.skipped), device, log, progress)

    def evaluate(
        self,
        bundle: Bundle,
        config: VideoTuplesConfig,
        split: str,
        options: dict[str, Any],
        out: Path,
        log: Log,
        progress: Progress | None,
    ) -> dict[str, Any]:
        """Slot accuracies on ``split``; ``tuples.json`` for every video of every split."""
        slots = TupleSlots.given(bundle.extras_as(VideoTupleExtras).slots)
        device = resolve_device(config.train.device)
        model = bundle.model.to(device)
        assert isinstance(model, TupleHeads)
        data = read_video_caption_split(config.data)
        skipped: list[Problem] = list(data.skipped)
        everything = data.train + data.val + data.test
        items, source = frame_sources(config, model, everything, device, skipped, log, progress)
        probs = _probabilities(model, source, len(items), device)  # (N, W)
        wanted = {item.video_id for item in data.split(split)}
        rows = [i for i, item in enumerate(items) if item.video_id in wanted]
        labels = _labels([items[i] for i in rows], slots, config.data)
        scores, mean = _accuracies(probs[rows], labels, slots)
        out.mkdir(parents=True, exist_ok=True)
        tuples = write_tuples(
            out / "tuples.json", slots,
            {item.video_id: probs[i].numpy() for i, item in enumerate(items)},
            source=f"lrcn video_tuples run {bundle.path.parent} ({bundle.path.name}/, epoch "
            f"{'?' if bundle.epoch is None else bundle.epoch + 1})",
        )  # fmt: skip
        summary = {
            "split": split,
            "epoch": bundle.epoch,
            "videos": len(rows),
            "slot_accuracy": mean,
            "slots": scores,
            "tuples_videos": len(items),
            "skipped": sorted({p.problem for p in skipped}),
            "outputs": {"metrics": str(out / "metrics.json"), "tuples": str(tuples)},
        }
        (out / "metrics.json").write_text(json.dumps(summary, indent=1))
        return summary

    def predict(
        self,
        bundle: Bundle,
        config: VideoTuplesConfig,
        inputs: Sequence[Path],
        options: dict[str, Any],
    ) -> list[dict[str, Any]]:
        """Each video's most probable words per slot."""
        slots = TupleSlots.given(bundle.extras_as(VideoTupleExtras).slots)
        device = resolve_device("auto")
        model = cast(TupleHeads, bundle.model.to(device).eval())  # or its export
        features = video_features(model, bundle.preprocess, config.data, device)
        results: list[dict[str, Any]] = []
        for path in inputs:
            try:
                feats = features(Path(path))  # (1, T, D * streams)
            except VideoError as err:
                results.append({"input": str(path), "error": str(err)})
                continue
            with torch.inference_mode():
                probs = model.probabilities(feats, torch.tensor([feats.shape[1]], device=device))
            top = options.get("top") or 3
            results.append({
                "input": str(path),
                "tuple": slots.best_words(probs[0].cpu().numpy()),
                "slots": slots.distributions(probs[0].cpu().numpy(), top=top),
            })  # fmt: skip
        return results

    def export_plan(self, bundle: Bundle, config: VideoTuplesConfig, batch: int) -> ExportPlan:
        """The frame encoder, and the slot heads' probabilities over the frames' features."""
        model = bundle.model
        clips, feats = example_frame_features(model, bundle.preprocess, batch, config.data.frames)
        lengths = torch.full((batch,), config.data.frames)  # (B,)
        return ExportPlan(
            [Graph("features", (clips,)), Graph("probabilities", (feats, lengths))],
            {"inputs": str(model.inputs)},
        )

    def render_evaluation(self, summary: dict[str, Any], echo: Echo) -> None:
        epoch = "?" if summary["epoch"] is None else summary["epoch"] + 1
        echo(
            f"{summary['split']} split, {summary['videos']} videos (checkpoint from epoch "
            f"{epoch}): mean slot accuracy {summary['slot_accuracy']:.3f}"
        )
        for name, value in summary["slots"].items():
            echo(f"  {value:.3f}  {name}")
        if summary["skipped"]:
            echo(f"skipped {len(summary['skipped'])} videos:\n  " + "\n  ".join(summary["skipped"]))
        tuples = summary["outputs"]["tuples"]
        echo(f"tuples of {summary['tuples_videos']} videos (all splits): {tuples}")
        echo(f"metrics: {summary['outputs']['metrics']}")

    def render_predictions(self, results: list[dict[str, Any]], echo: Echo) -> None:
        for r in results:
            echo(f"{r['input']}: " + " / ".join(r["tuple"].values()))
            for name, words in r["slots"].items():
                echo(f"    {name}: " + ", ".join(f"{w} {p:.2f}" for w, p in words.items()))


register_task(VideoTuplesTask())
