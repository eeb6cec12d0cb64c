"""Activity recognition as a task: videos in, one label out.

Training reads the split (train, validation carved from the training list by source group,
test), caches the frozen backbone's features of every video, trains on random clips and
validates every epoch on all clips of the validation videos (``best/``: the best validation
video top-1). ``evaluate`` scores every clip of a split (16 frames, stride 8 by default) and
averages clip scores per video; ``predict`` does the same for any video files.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from lrcn.checkpoint import Bundle
from lrcn.config import ConfigError, TrainConfig
from lrcn.data.clips import EvalVideos, TrainClips, collate_eval, collate_train, frames_kept
from lrcn.data.features import FeatureCache
from lrcn.data.items import Problem, VideoItem, VideoSplit
from lrcn.data.streaming import stream_clip_batches
from lrcn.data.video_io import VideoError, probe_video, read_every
from lrcn.data.video_split import VideoDataConfig, read_video_split
from lrcn.export.graphs import ExportPlan, Graph, example_pixels
from lrcn.models.activity import (
    ActivityExtras,
    ActivityModelConfig,
    ActivityOutput,
    VideoClassifier,
)
from lrcn.plots import save_figure
from lrcn.tasks._common import fill_feature_cache, resolve_device
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
from lrcn.training.distributed import all_concat, shard

__all__ = ["ActivityConfig", "ActivityTask", "score_clip_batches", "score_videos", "verdict"]


class ActivityConfig(TaskConfig):
    """A whole activity-recognition experiment."""

    task: Literal["activity"]
    data: VideoDataConfig
    model: ActivityModelConfig
    train: TrainConfig = Field(default_factory=TrainConfig)


# --------------------------------------------------------------------------------------------
# Inputs: frames or cached features
# --------------------------------------------------------------------------------------------


def _frame_counts(
    items: Sequence[VideoItem], cache: FeatureCache | None, on_error: str, skipped: list[Problem]
) -> tuple[list[VideoItem], list[int]]:
    """Frame count of every usable video (from the cache, else from the container). A video
    the cache has no entry for was skipped by the extraction, which reported it."""
    kept, counts = [], []
    for item in items:
        if cache is not None and not cache.has(item.path):
            continue
        try:
            count = (
                len(cache.load(item.path))
                if cache is not None
                else probe_video(item.path).num_frames
            )
        except VideoError as err:
            if on_error == "raise":
                raise
            skipped.append(Problem(str(item.path), str(err)))
            continue
        kept.append(item)
        counts.append(count)
    return kept, counts


def _fill_cache(
    config: ActivityConfig,
    model: VideoClassifier,
    items: Sequence[VideoItem],
    device: torch.device,
    skipped: list[Problem],
    log: Log,
    progress: Progress | None,
) -> FeatureCache | None:
    """The frozen backbone's features of every video of ``items``, computed once and cached;
    None for a backbone that trains (frames are decoded instead). Under ``data.frame_every``
    k > 1 only every k-th frame is decoded to RGB and run through the backbone, into a cache
    of its own ("every k" is part of its key)."""
    if not model.freeze_backbone:
        return None
    paths = [item.path for item in items]
    every = config.data.frame_every
    if every == 1:
        return fill_feature_cache(config, model, paths, device, skipped, log, progress)
    return fill_feature_cache(
        config, model, paths, device, skipped, log, progress,
        load_frames=lambda path: read_every(path, every), sampling=f"every {every}",
    )  # fmt: skip


def _cached(cache: FeatureCache | None) -> Callable[[VideoItem], np.ndarray] | None:
    """The clip datasets' feature source: a video's cached features, or None (decode)."""
    if cache is None:
        return None
    return lambda item: cache.load(item.path)


def _eval_set(
    config: ActivityConfig,
    model: VideoClassifier,
    items: list[VideoItem],
    counts: list[int],
    cache: FeatureCache | None,
) -> EvalVideos:
    d = config.data
    return EvalVideos(
        items,
        counts,
        model.backbone.preprocess,
        d.clip_len,
        d.stride,
        d.frame_step,
        d.short_video,
        features=_cached(cache),
        on_error=d.on_error,
        frame_every=d.frame_every,
    )


# --------------------------------------------------------------------------------------------
# Scoring videos
# --------------------------------------------------------------------------------------------


def score_videos(
    model: nn.Module,
    dataset: EvalVideos,
    device: torch.device,
    features: bool,
    clips_per_batch: int = 16,
    num_workers: int = 0,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Clip and video scores for every video of ``dataset``; ``model`` is a
    :class:`VideoClassifier` or anything with its ``forward_head``."""
    from torch.utils.data import DataLoader

    loader = DataLoader(dataset, batch_size=1, collate_fn=collate_eval, num_workers=num_workers)
    model.eval()
    clip_probs, clip_labels, video_probs, video_labels, indices, skipped = [], [], [], [], [], []
    with torch.inference_mode():
        for step, batch in enumerate(loader, start=1):
            skipped += batch["skipped"]
            for clips, label, index in zip(
                batch["videos"], batch["labels"], batch["indices"], strict=True
            ):
                probs = []
                for chunk in clips.split(clips_per_batch):  # (n, T, ...)
                    chunk = chunk.to(device)
                    out = model.forward_head(chunk) if features else model(chunk)  # type: ignore[operator]
                    probs.append(out.probs.float().cpu())
                p = torch.cat(probs)  # (N_clips, K)
                clip_probs.append(p)
                clip_labels += [label] * len(p)
                video_probs.append(p.mean(dim=0))  # average over clips
                video_labels.append(label)
                indices.append(index)
            if progress is not None:
                progress("evaluating", step, len(loader))
    return {
        "clip_probs": torch.cat(clip_probs) if clip_probs else torch.empty(0),
        "clip_labels": torch.tensor(clip_labels, dtype=torch.long),
        "video_probs": torch.stack(video_probs) if video_probs else torch.empty(0),
        "video_labels": torch.tensor(video_labels, dtype=torch.long),
        "indices": indices,
        "skipped": skipped,
    }


def score_clip_batches(
    model: nn.Module, batches: Iterable[Tensor], device: torch.device
) -> tuple[Tensor, int]:
    """The average of the clip probabilities ``(K,)`` over one video's clips, given in
    ``batches`` ``(n, T, 3, crop, crop)``, and the number of clips: :func:`score_videos` for a
    streamed video, holding one batch of clips at a time instead of all of them."""
    model.eval()
    total: Tensor | None = None  # (K,) float64, so a sum over thousands of clips stays accurate
    count = 0
    with torch.inference_mode():
        for batch in batches:
            probs = model(batch.to(device)).probs.float().cpu()  # (n, K)
            part = probs.sum(dim=0, dtype=torch.float64)
            total = part if total is None else total + part
            count += len(probs)
    if total is None:
        raise ValueError("score_clip_batches: no clips")  # test_clips always plans one
    return (total / count).float(), count


# Clips per forward in predict: 2 x 16 frames. A CNN's activations grow with the batch (16 clips
# of 160-pixel frames held 2.8 GB in Lite0), and on a CPU eager Lite0 is fastest near 8-32
# frames a batch (PERF-NOTES).
PREDICT_CLIPS_PER_BATCH = 2

TENSORS_OF_SCORES = ("clip_probs", "clip_labels", "video_probs", "video_labels")


def _merged(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """Several :func:`score_videos` results (the shards of a distributed validation) as one;
    the metrics do not depend on the videos' order. ``indices`` are each shard's own."""
    if len(parts) == 1:
        return parts[0]
    scored = [part for part in parts if len(part["video_labels"])]
    if not scored:
        return parts[0]
    return {
        **{key: torch.cat([part[key] for part in scored]) for key in TENSORS_OF_SCORES},
        "indices": [i for part in parts for i in part["indices"]],
        "skipped": [s for part in parts for s in part["skipped"]],
    }


def _summary(scores: dict[str, Any], classes: list[str]) -> dict[str, Any]:
    from lrcn.metrics.classification import classification_metrics

    video = classification_metrics(scores["video_probs"], scores["video_labels"], classes)
    clip = classification_metrics(scores["clip_probs"], scores["clip_labels"], classes)
    k = min(5, len(classes))
    return {
        "video_top1": video["top1"],
        f"video_top{k}": video[f"top{k}"],
        "clip_top1": clip["top1"],
        f"clip_top{k}": clip[f"top{k}"],
        "video_mean_class_accuracy": video["mean_class_accuracy"],
        "videos": video["count"],
        "clips": clip["count"],
        "per_class": video["per_class"],
        "confusion": video["confusion"],
    }


# --------------------------------------------------------------------------------------------
# train
# --------------------------------------------------------------------------------------------


def _loss(
    model: nn.Module, batch: dict[str, Any], features: bool, device: torch.device
) -> tuple[Tensor, int]:
    inputs = batch["inputs"].to(device, non_blocking=True)
    labels = batch["labels"].to(device)
    out = model.forward_head(inputs) if features else model(inputs)  # type: ignore[operator]
    steps = out.step_logits.shape[1]
    # Every step is trained to predict the clip's label (the paper's LRCN).
    loss = F.cross_entropy(out.step_logits.flatten(0, 1).float(), labels.repeat_interleave(steps))
    return loss, len(labels)


def _write_predictions(
    path: Path, scores: dict[str, Any], items: list[VideoItem], classes: list[str]
) -> None:
    k = min(5, len(classes))
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(
            ["video", "true_class", "predicted_class", "probability", "correct", f"top{k}"]
        )
        for probs, index in zip(scores["video_probs"], scores["indices"], strict=True):
            item = items[index]
            top = probs.topk(k)
            predicted = classes[int(top.indices[0])]
            writer.writerow(
                [
                    str(item.path),
                    classes[item.label],
                    predicted,
                    f"{float(top.values[0]):.4f}",
                    int(predicted == classes[item.label]),
                    " ".join(
                        f"{classes[int(i)]}:{float(v):.3f}"
                        for v, i in zip(top.values, top.indices, strict=True)
                    ),
                ]
            )


# --------------------------------------------------------------------------------------------
# The task
# --------------------------------------------------------------------------------------------


class ActivityTask(Task[ActivityConfig]):
    """Sequence in, label out: classify videos (UCF-101, HMDB-51, your own folders)."""

    name = "activity"
    config_class = ActivityConfig
    primary_metric = "val_video_top1"
    logged_metrics = ("val_video_top1", "val_clip_top1")
    predict_options = (TaskOption("top", int, "classes shown per video (default 5)", min=1),)

    def prepare(self, config: ActivityConfig, log: Log) -> Prepared:
        split = read_video_split(config.data)
        leaks = split.group_leaks()
        if leaks:
            log(
                f"WARNING: {len(leaks)} source groups are on two sides of the split (e.g. "
                f"{leaks[:3]}); clips of one source look alike, so scores will be inflated"
            )
        return Prepared(
            ActivityExtras(classes=split.classes), split, [p.problem for p in split.skipped]
        )

    def training(
        self,
        config: ActivityConfig,
        model: nn.Module,
        prepared: Prepared,
        device: torch.device,
        log: Log,
        progress: Progress | None,
    ) -> TrainingSetup:
        assert isinstance(model, VideoClassifier)
        split: VideoSplit = prepared.data
        skipped: list[Problem] = []
        # Test features are cached too, so that `lrcn evaluate` later decodes nothing.
        everything = split.train + split.val + split.test
        cache = _fill_cache(config, model, everything, device, skipped, log, progress)
        d = config.data
        train_items, train_counts = _frame_counts(split.train, cache, d.on_error, skipped)
        val_items, val_counts = _frame_counts(split.val, cache, d.on_error, skipped)
        features = cache is not None
        train_set = TrainClips(
            train_items, train_counts, model.backbone.preprocess, d.clip_len, d.frame_step,
            d.short_video, config.train.clips_per_video, config.train.seed,
            augment=not features, features=_cached(cache), on_error=d.on_error,
            frame_every=d.frame_every,
        )  # fmt: skip
        # Under torchrun each process scores its shard of the validation videos.
        val_set = _eval_set(config, model, shard(val_items), shard(val_counts), cache)
        workers = 0 if features else d.num_workers

        def validate(m: nn.Module) -> dict[str, float]:
            assert isinstance(m, VideoClassifier)
            mine = score_videos(m, val_set, device, features, num_workers=workers)
            scores = _merged(all_concat([mine]))
            summary = _summary(scores, prepared.extras.classes)  # type: ignore[attr-defined]
            return {f"val_{k}": v for k, v in summary.items() if isinstance(v, float)}

        return TrainingSetup(
            train_set=train_set,
            collate=collate_train,
            loss=lambda m, b: _loss(m, b, features, device),
            validate=validate,
            sharded_validation=True,
            num_workers=workers,
            report={
                "classes": split.classes,
                "train_videos": len(train_items),
                "val_videos": len(val_items),
                "test_videos": len(split.test),
                "leaked_groups": split.group_leaks(),
                "feature_cache": str(cache.folder) if cache is not None else None,
            },
            skipped=[p.problem for p in skipped],
        )

    def cache_features(
        self,
        config: ActivityConfig,
        model: nn.Module,
        prepared: Prepared,
        device: torch.device,
        log: Log,
        progress: Progress | None,
    ) -> dict[str, Any]:
        assert isinstance(model, VideoClassifier)
        split: VideoSplit = prepared.data
        skipped: list[Problem] = list(split.skipped)
        items = split.train + split.val + split.test
        cache = _fill_cache(config, model, items, device, skipped, log, progress)
        assert cache is not None  # extract_features checked the backbone is frozen
        _, counts = _frame_counts(items, cache, config.data.on_error, skipped)
        return {
            "cache": str(cache.folder),
            "inputs": len(counts),
            "frames": sum(counts),
            "skipped": sorted({p.problem for p in skipped}),
        }

    def evaluate(
        self,
        bundle: Bundle,
        config: ActivityConfig,
        split: str,
        options: dict[str, Any],
        out: Path,
        log: Log,
        progress: Progress | None,
    ) -> dict[str, Any]:
        """Score every clip of the split's videos and average them per video; write
        metrics.json, confusion.png, predictions.csv and scores.npz (for ``lrcn fuse``)."""
        classes = bundle.extras_as(ActivityExtras).classes
        device = resolve_device(config.train.device)
        model = bundle.model.to(device)
        assert isinstance(model, VideoClassifier)
        data = read_video_split(config.data)
        if data.classes != classes:
            raise ConfigError(
                config.data.root,
                f"its classes {data.classes[:5]}... differ from the model's {classes[:5]}...",
                key="data.root",
            )
        skipped = list(data.skipped)
        items = data.split(split)
        cache = _fill_cache(config, model, items, device, skipped, log, progress)
        items, counts = _frame_counts(items, cache, config.data.on_error, skipped)
        scores = score_videos(
            model,
            _eval_set(config, model, items, counts, cache),
            device,
            cache is not None,
            num_workers=config.data.num_workers if cache is None else 0,
            progress=progress,
        )
        summary: dict[str, Any] = {"split": split, "epoch": bundle.epoch}
        summary |= _summary(scores, classes)
        summary["single_frame_baseline"] = self._baseline(
            config, model, data, cache, items, counts, summary, progress
        )
        summary["skipped"] = sorted({p.problem for p in skipped} | set(scores["skipped"]))
        summary["leaked_groups"] = data.group_leaks()
        out.mkdir(parents=True, exist_ok=True)
        from lrcn.plots import plot_confusion

        run_name = bundle.path.resolve().parent.name  # the run folder of its best/ or last/
        title = (
            f"{run_name} ({self.run_title(config)}): video top-1 {summary['video_top1']:.3f} "
            f"on {summary['videos']} {split} videos"
        )
        save_figure(plot_confusion(summary["confusion"], classes, title), out / "confusion.png")
        _write_predictions(out / "predictions.csv", scores, items, classes)
        root = Path(config.data.root)
        np.savez(
            out / "scores.npz",
            videos=np.array(
                [Path(items[i].path).relative_to(root).as_posix() for i in scores["indices"]]
            ),
            labels=scores["video_labels"].numpy(),
            probs=scores["video_probs"].numpy(),
            classes=np.array(classes),
        )
        summary["outputs"] = {
            "metrics": str(out / "metrics.json"),
            "confusion": str(out / "confusion.png"),
            "predictions": str(out / "predictions.csv"),
            "scores": str(out / "scores.npz"),
        }
        (out / "metrics.json").write_text(json.dumps(summary, indent=1))
        return summary

    def _baseline(
        self,
        config: ActivityConfig,
        model: VideoClassifier,
        data: VideoSplit,
        cache: FeatureCache | None,
        items: list[VideoItem],
        counts: list[int],
        summary: dict[str, Any],
        progress: Progress | None,
    ) -> dict[str, Any]:
        """The paper's single-frame baseline, fitted in seconds on the training videos' cached
        features and scored on the same clips as the model: what the frames alone give."""
        if cache is None:
            return {"note": "not computed: a fine-tuned backbone has no cached features"}
        from lrcn.training.probe import fit_frame_probe

        train_items = [item for item in data.train if cache.has(item.path)]
        probe = fit_frame_probe(
            [np.asarray(cache.load(item.path), dtype=np.float32) for item in train_items],
            [item.label for item in train_items],
            len(data.classes),
            seed=config.train.seed,
        )
        scores = score_videos(
            _ProbeClassifier(probe), _eval_set(config, model, items, counts, cache),
            torch.device("cpu"), features=True, progress=progress,
        )  # fmt: skip
        base = _summary(scores, data.classes)
        result = {k: v for k, v in base.items() if k in ("video_top1", "clip_top1")}
        result["verdict"] = verdict(summary["video_top1"], result["video_top1"])
        return result

    def predict(
        self,
        bundle: Bundle,
        config: ActivityConfig,
        inputs: Sequence[Path],
        options: dict[str, Any],
    ) -> list[dict[str, Any]]:
        """Top-k classes per video (all clips, averaged), streamed: a video is decoded once
        and never held whole, so memory stays flat however long it is."""
        classes = bundle.extras_as(ActivityExtras).classes
        device = resolve_device("auto")
        model = cast(VideoClassifier, bundle.model.to(device))  # or its export
        d = config.data
        results: list[dict[str, Any]] = []
        for video in inputs:
            try:
                # Streamed: one pass over the file, memory flat in its length (a long video's
                # clips would not fit in memory at once, as evaluate's EvalVideos holds them).
                count = frames_kept(probe_video(video).num_frames, d.frame_every)
                batches = stream_clip_batches(
                    video, count, bundle.preprocess, d.clip_len, d.stride, d.frame_step,
                    d.short_video, d.frame_every, clips_per_batch=PREDICT_CLIPS_PER_BATCH,
                )  # fmt: skip
                probs, num_clips = score_clip_batches(model, batches, device)
            except VideoError as err:
                results.append({"input": str(video), "error": str(err)})
                continue
            top = probs.topk(min(options.get("top", 5), len(classes)))
            results.append(
                {
                    "input": str(video),
                    "clips": num_clips,
                    "top": [
                        {"class": classes[int(i)], "probability": round(float(v), 4)}
                        for v, i in zip(top.values, top.indices, strict=True)
                    ],
                }
            )
        return results

    def export_plan(self, bundle: Bundle, config: ActivityConfig, batch: int) -> ExportPlan:
        """Clips to scores (what predict runs), and the head alone on per-frame features (for
        features computed elsewhere, as the feature cache does)."""
        clip = config.data.clip_len
        frames = example_pixels(bundle.preprocess, batch * clip)
        frames = frames.view(batch, clip, *frames.shape[1:])  # (B, T, 3, S, S)
        model = bundle.model
        with torch.no_grad():
            features = model.forward_features(frames)  # type: ignore[operator]  # (B, T, D)
        return ExportPlan([Graph("forward", (frames,)), Graph("forward_head", (features,))])

    def render_evaluation(self, summary: dict[str, Any], echo: Echo) -> None:
        k = next(key for key in summary if key.startswith("video_top") and key != "video_top1")
        echo(
            f"{summary['split']} split, {summary['videos']} videos, {summary['clips']} clips "
            f"(checkpoint from epoch {_epoch(summary)})\n"
            f"video top-1 {summary['video_top1']:.3f}   top-{k[9:]} {summary[k]:.3f}   "
            f"mean class accuracy {summary['video_mean_class_accuracy']:.3f}\n"
            f"clip  top-1 {summary['clip_top1']:.3f}"
        )
        base = summary.get("single_frame_baseline", {})
        if "video_top1" in base:
            echo(
                f"single-frame baseline (same features): video top-1 {base['video_top1']:.3f}"
                f"   clip top-1 {base['clip_top1']:.3f}\n{base['verdict']}"
            )
        elif base:
            echo(f"single-frame baseline {base['note']}")
        if summary["skipped"]:
            echo(f"skipped {len(summary['skipped'])} videos:\n  " + "\n  ".join(summary["skipped"]))
        for name, path in summary["outputs"].items():
            echo(f"{name}: {path}")

    def render_predictions(self, results: list[dict[str, Any]], echo: Echo) -> None:
        for r in results:
            echo(f"{r['input']} ({r['clips']} clips)")
            for t in r["top"]:
                echo(f"  {t['probability']:.3f}  {t['class']}")


def verdict(model_top1: float, baseline_top1: float, margin: float = 0.02) -> str:
    """Plain words on whether the model beat the single-frame baseline (by more than
    ``margin`` video top-1, about one video in fifty)."""
    if model_top1 - baseline_top1 > margin:
        return (
            f"the model beats the single-frame baseline by {model_top1 - baseline_top1:.3f} "
            "video top-1"
        )
    return (
        f"the model does NOT beat the single-frame baseline ({model_top1:.3f} vs "
        f"{baseline_top1:.3f}): the order of frames added nothing here. If motion separates "
        "your classes, train on optical flow (lrcn flow) and fuse it with RGB (lrcn fuse)"
    )


class _ProbeClassifier(nn.Module):
    """A fitted frame probe behind the classifier interface ``score_videos`` reads."""

    def __init__(self, probe: nn.Module) -> None:
        super().__init__()
        self.probe = probe

    def forward_head(self, features: Tensor) -> ActivityOutput:
        """``features (N, T, ...)`` -> per-clip probabilities ``(N, K)``."""
        probs = self.probe.clip_probs(features.float())  # type: ignore[operator]
        return ActivityOutput(probs.log().unsqueeze(1), probs)


def _epoch(summary: dict[str, Any]) -> str:
    return "?" if summary.get("epoch") is None else str(summary["epoch"] + 1)


register_task(ActivityTask())
