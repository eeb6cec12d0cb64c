"""Activity recognition end to end: train, evaluate and predict, one function per CLI command.

``train`` reads the split, caches backbone features when the backbone is frozen, trains the
model with the shared loop, and writes a run folder::

    config.yaml            the resolved config
    metrics.jsonl/.csv     one row per epoch
    curves.png             loss and accuracy per epoch
    best/ last/            checkpoint bundles (last/ also holds train_state.pt for --resume)
    report.json            split sizes, leaked groups, skipped videos, final metrics

``evaluate`` scores every test clip (16 frames, stride 8 by default) and averages clip scores
per video; ``predict`` does the same for any video files.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lrcn.backbones import BACKBONE_KEYS, backbone_from_config
from lrcn.checkpoint import load_bundle, save_bundle
from lrcn.config import (
    ActivityConfig,
    TaskConfig,
    VideoDataConfig,
    apply_overrides,
    validate_config,
)
from lrcn.data.clips import EvalVideos, TrainClips, collate_eval, collate_train
from lrcn.data.features import FeatureCache
from lrcn.data.formats.folders import read_folders
from lrcn.data.formats.hmdb51 import read_hmdb51
from lrcn.data.formats.ucf101 import read_ucf101
from lrcn.data.items import DataError, Problem, VideoItem, VideoSplit
from lrcn.data.video_io import VideoError, probe_video
from lrcn.models import create_model
from lrcn.models.activity import VideoClassifier
from lrcn.plots import save_figure
from lrcn.tasks._common import (
    expect_task,
    feature_cache,
    make_optimizer,
    make_scheduler,
    resolve_device,
)
from lrcn.training.loop import LoopSettings, fit
from lrcn.training.run import RunRecorder, open_run

Log = Callable[[str], None]
Progress = Callable[[str, int, int], None]

__all__ = ["build_model", "evaluate", "predict", "read_split", "train"]

_MODEL_ONLY_KEYS = ("name", *BACKBONE_KEYS)


def as_activity(config: TaskConfig) -> ActivityConfig:
    """``config`` as an activity config, or a clear error naming its task."""
    return expect_task(config, ActivityConfig, "activity")


def build_model(
    config: dict[str, Any], num_classes: int, pretrained: bool = True
) -> VideoClassifier:
    """The model a config describes; ``pretrained=False`` skips loading backbone weights
    (a bundle's own weights replace them)."""
    m = config["model"]
    backbone = backbone_from_config(m, pretrained)
    kwargs = {k: v for k, v in m.items() if k not in _MODEL_ONLY_KEYS}
    model = create_model(m["name"], backbone=backbone, num_classes=num_classes, **kwargs)
    assert isinstance(model, VideoClassifier)
    return model


def read_split(data: VideoDataConfig) -> VideoSplit:
    """The configured data set's classes and train/test videos."""
    if data.format == "ucf101":
        return read_ucf101(data.root, data.split, data.split_dir, data.on_error)
    if data.format == "hmdb51":
        return read_hmdb51(data.root, data.split, data.split_dir, data.on_error)
    return read_folders(
        data.root,
        data.split_file,
        data.test_fraction,
        data.split_seed,
        data.group_pattern,
        data.on_error,
    )


# --------------------------------------------------------------------------------------------
# Inputs: frames or cached features
# --------------------------------------------------------------------------------------------


def _frame_counts(
    items: Sequence[VideoItem], cache: FeatureCache | None, on_error: str, skipped: list[Problem]
) -> tuple[list[VideoItem], list[int]]:
    """Frame count of every usable video (from the cache, else from the container)."""
    kept, counts = [], []
    for item in items:
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


def _inputs(
    config: ActivityConfig,
    model: VideoClassifier,
    items: Sequence[VideoItem],
    device: torch.device,
    skipped: list[Problem],
    log: Log,
    extract: bool = True,
) -> tuple[list[VideoItem], list[int], FeatureCache | None]:
    """Decide frames or features; with a frozen backbone make sure features are cached."""
    cache = None
    if model.freeze_backbone:
        cache = feature_cache(config, model.backbone, model.feature_kind)
        missing = cache.missing([item.path for item in items])
        if missing and extract:
            log(
                f"extracting {model.backbone.name} features of {len(missing)} videos "
                f"into {cache.folder}"
            )
            skipped += cache.extract(
                missing, model.backbone, model.feature_kind, device, on_error=config.data.on_error
            )
        elif missing:
            cache = None  # evaluate without extracting: decode frames instead
    kept, counts = _frame_counts(items, cache, config.data.on_error, skipped)
    return kept, counts, cache


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
    )


def extract_features(config: ActivityConfig, log: Log = print) -> dict[str, Any]:
    """Fill the feature cache for every train and test video of the configured split."""
    if not config.model.freeze_backbone:
        raise ValueError(
            "model.freeze_backbone is false: a fine-tuned backbone has no fixed features to cache"
        )
    split = read_split(config.data)
    model = build_model(config.model_dump(mode="json"), len(split.classes))
    device = resolve_device(config.train.device)
    skipped: list[Problem] = list(split.skipped)
    _, counts, cache = _inputs(config, model, split.train + split.test, device, skipped, log)
    assert cache is not None
    return {
        "cache": str(cache.folder),
        "videos": len(counts),
        "frames": sum(counts),
        "skipped": [p.problem for p in skipped],
    }


# --------------------------------------------------------------------------------------------
# Scoring videos
# --------------------------------------------------------------------------------------------


def score_videos(
    model: VideoClassifier,
    dataset: EvalVideos,
    device: torch.device,
    features: bool,
    clips_per_batch: int = 16,
    num_workers: int = 0,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Clip and video scores for every video of ``dataset``."""
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
                    out = model.forward_head(chunk) if features else model(chunk)
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


def train(
    config: ActivityConfig | None,
    run_dir: str | Path,
    resume: bool = False,
    log: Log = print,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Train a run, or with ``resume`` continue one from its saved config (``config`` None)."""
    run, task_config = open_run(run_dir, config, resume)
    config = as_activity(task_config)
    config_dict = config.model_dump(mode="json")

    split = read_split(config.data)
    skipped: list[Problem] = list(split.skipped)
    leaks = split.group_leaks()
    if leaks:
        log(
            f"WARNING: {len(leaks)} source groups are in both train and test (e.g. {leaks[:3]}); "
            "clips of one source look alike, so test accuracy will be inflated"
        )
    if not split.train or not split.test:
        raise DataError(
            config.data.root,
            f"the split has {len(split.train)} training and {len(split.test)} test videos; "
            "both must be > 0",
        )

    device = resolve_device(config.train.device)
    torch.manual_seed(config.train.seed)
    model = build_model(config_dict, len(split.classes)).to(device)
    train_items, train_counts, cache = _inputs(config, model, split.train, device, skipped, log)
    test_items, test_counts, test_cache = _inputs(config, model, split.test, device, skipped, log)
    features = cache is not None
    d = config.data
    train_set = TrainClips(
        train_items,
        train_counts,
        model.backbone.preprocess,
        d.clip_len,
        d.frame_step,
        d.short_video,
        config.train.clips_per_video,
        config.train.seed,
        augment=not features,
        features=_cached(cache),
        on_error=d.on_error,
    )
    eval_set = _eval_set(config, model, test_items, test_counts, test_cache)

    optimizer = make_optimizer(config, model)
    scheduler = make_scheduler(config, optimizer)

    def bundle_to(folder: Path, extra: dict[str, Any]) -> None:
        save_bundle(folder, model, config_dict, split.classes, model.backbone.preprocess, extra)

    recorder = RunRecorder(
        run, bundle_to, "video_top1", optimizer, scheduler,
        f"{config.model.name} on {Path(config.data.root).name}", log, config.train.epochs,
    )  # fmt: skip
    start_epoch = recorder.resume(model, device) if resume else 0

    def evaluate_now(m: nn.Module) -> dict[str, float]:
        assert isinstance(m, VideoClassifier)
        scores = score_videos(
            m, eval_set, device, features, num_workers=d.num_workers if not features else 0
        )
        summary = _summary(scores, split.classes)
        return {k: v for k, v in summary.items() if isinstance(v, float)}

    t = config.train
    settings = LoopSettings(
        t.epochs,
        t.batch_size,
        t.seed,
        t.grad_clip,
        t.amp,
        num_workers=0 if features else d.num_workers,
        eval_every=t.eval_every,
    )
    results = fit(
        model=model,
        train_set=train_set,
        collate=collate_train,
        loss_fn=lambda m, b: _loss(m, b, features, device),
        optimizer=optimizer,
        scheduler=scheduler,
        settings=settings,
        device=device,
        evaluate=evaluate_now,
        start_epoch=start_epoch,
        on_epoch_end=[recorder],
        progress=progress,
    )
    for r in results:
        skipped += [Problem("", message) for message in r.skipped]
    report = {
        "run": str(run),
        "classes": split.classes,
        "train_videos": len(train_items),
        "test_videos": len(test_items),
        "leaked_groups": leaks,
        "skipped": sorted({p.problem for p in skipped}),
        "feature_cache": str(cache.folder) if cache is not None else None,
        "best_video_top1": recorder.best,
        "final": recorder.history[-1]["metrics"] if recorder.history else {},
    }
    recorder.write_report(report)
    return report | {"summary": f"best video top-1 {recorder.best:.3f}; run folder {run}"}


# --------------------------------------------------------------------------------------------
# evaluate
# --------------------------------------------------------------------------------------------


def evaluate(
    run_dir: str | Path,
    overrides: list[str] | None = None,
    which: str = "best",
    out_dir: str | Path | None = None,
    log: Log = print,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Score a run's bundle on its test split; write metrics.json, confusion.png and
    predictions.csv into ``out_dir`` (default ``<run>/eval-<which>``)."""
    bundle = load_bundle(run_dir, which=which)
    config = as_activity(
        validate_config(
            apply_overrides(bundle.config, overrides or []), source=f"{bundle.path}/bundle.json"
        )
    )
    device = resolve_device(config.train.device)
    model = bundle.model.to(device)
    assert isinstance(model, VideoClassifier)
    split = read_split(config.data)
    if split.classes != bundle.classes:
        raise DataError(
            config.data.root,
            f"its classes {split.classes[:5]}... differ from the model's {bundle.classes[:5]}...",
        )
    skipped = list(split.skipped)
    items, counts, cache = _inputs(config, model, split.test, device, skipped, log, extract=False)
    scores = score_videos(
        model,
        _eval_set(config, model, items, counts, cache),
        device,
        cache is not None,
        num_workers=config.data.num_workers if cache is None else 0,
        progress=progress,
    )
    summary = _summary(scores, split.classes)
    summary["skipped"] = sorted({p.problem for p in skipped} | set(scores["skipped"]))
    summary["leaked_groups"] = split.group_leaks()
    out = Path(out_dir) if out_dir else Path(run_dir) / f"eval-{which}"
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(summary, indent=1))
    from lrcn.plots import plot_confusion

    title = (
        f"{config.model.name}: video top-1 {summary['video_top1']:.3f} "
        f"on {summary['videos']} videos"
    )
    save_figure(plot_confusion(summary["confusion"], split.classes, title), out / "confusion.png")
    _write_predictions(out / "predictions.csv", scores, items, split.classes)
    root = Path(config.data.root)
    np.savez(
        out / "scores.npz",
        videos=np.array(
            [Path(items[i].path).relative_to(root).as_posix() for i in scores["indices"]]
        ),
        labels=scores["video_labels"].numpy(),
        probs=scores["video_probs"].numpy(),
        classes=np.array(split.classes),
    )
    summary["outputs"] = {
        "scores": str(out / "scores.npz"),
        "metrics": str(out / "metrics.json"),
        "confusion": str(out / "confusion.png"),
        "predictions": str(out / "predictions.csv"),
    }
    return summary


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
# predict
# --------------------------------------------------------------------------------------------


def predict(
    run_dir: str | Path,
    videos: Sequence[str | Path],
    top_k: int = 5,
    which: str = "best",
    device: str = "auto",
) -> list[dict[str, Any]]:
    """Top-k classes per video (all test clips, averaged). A video that cannot be read gets an
    ``error`` entry naming the problem; the others are still predicted."""
    bundle = load_bundle(run_dir, which=which)
    config = as_activity(validate_config(bundle.config))
    dev = resolve_device(device)
    model = bundle.model.to(dev)
    assert isinstance(model, VideoClassifier)
    d = config.data
    results: list[dict[str, Any]] = []
    for video in videos:
        item = VideoItem(Path(video), 0, "")
        try:
            count = probe_video(item.path).num_frames
            dataset = EvalVideos(
                [item],
                [count],
                bundle.preprocess,
                d.clip_len,
                d.stride,
                d.frame_step,
                d.short_video,
            )
            scores = score_videos(model, dataset, dev, features=False)
        except VideoError as err:
            results.append({"video": str(video), "error": str(err)})
            continue
        probs = scores["video_probs"][0]
        top = probs.topk(min(top_k, len(bundle.classes)))
        results.append(
            {
                "video": str(video),
                "clips": int(scores["clip_probs"].shape[0]),
                "top": [
                    {"class": bundle.classes[int(i)], "probability": round(float(v), 4)}
                    for v, i in zip(top.values, top.indices, strict=True)
                ],
            }
        )
    return results


# --------------------------------------------------------------------------------------------
# optical flow and late fusion
# --------------------------------------------------------------------------------------------


def compute_flow(
    config: ActivityConfig, out: str | Path, log: Log = print, progress: Progress | None = None
) -> dict[str, Any]:
    """Write the flow data set of the configured videos under ``out`` (see data/flow.py).

    Returns the mirrored root to put in a flow config's ``data.root``.
    """
    from lrcn.data.flow import write_flow_dataset
    from lrcn.data.formats import hmdb51, ucf101

    d = config.data
    split = read_split(d)
    root = Path(d.root)
    flow_root = Path(out) / root.name
    split_dirs = []
    if d.format == "ucf101":
        split_dirs.append(ucf101.find_split_dir(root, d.split_dir))
    elif d.format == "hmdb51":
        split_dirs.append(hmdb51.find_split_dir(root, d.split_dir))
    items = split.train + split.test
    log(f"computing optical flow of {len(items)} videos into {flow_root}")
    skipped = write_flow_dataset(
        items, root, flow_root, split_dirs, d.on_error,
        progress=(lambda done, total: progress("optical flow", done, total)) if progress else None,
    )  # fmt: skip
    return {
        "flow_root": str(flow_root),
        "videos": len(items),
        "skipped": [p.problem for p in skipped],
    }


def fuse(
    run_dirs: Sequence[str | Path],
    weights: Sequence[float] | None = None,
    which: str = "best",
    log: Log = print,
) -> dict[str, Any]:
    """Late fusion: a weighted average of several runs' video scores (e.g. RGB and flow).

    Videos are matched by their path inside each data set (a flow folder is named like its
    video). Without ``weights``, two runs are fused 1/2-1/2 and 1/3-2/3 (the LRCN paper's RGB
    and flow weights); otherwise the given weights (normalised to sum 1) are used.
    """
    if len(run_dirs) < 2:
        raise ValueError("fusion needs at least two runs")
    loaded = []
    for run in run_dirs:
        path = Path(run) / f"eval-{which}" / "scores.npz"
        if not path.is_file():
            log(f"{run}: no {path.name} yet, evaluating")
            evaluate(run, which=which, log=log)
        with np.load(path) as data:
            loaded.append({k: data[k] for k in data.files})
    classes = loaded[0]["classes"].tolist()
    for run, data in zip(run_dirs, loaded, strict=True):
        if data["classes"].tolist() != classes:
            raise DataError(
                run, "its classes differ from the first run's; fuse runs of one data set"
            )
    common = set.intersection(*(set(d["videos"].tolist()) for d in loaded))
    if not common:
        raise DataError(
            run_dirs[1], "no test video in common with the first run (different splits?)"
        )
    order = sorted(common)
    aligned = []
    for data in loaded:
        position = {v: i for i, v in enumerate(data["videos"].tolist())}
        rows = [position[v] for v in order]
        aligned.append(
            (torch.from_numpy(data["probs"][rows]), torch.from_numpy(data["labels"][rows]))
        )
    labels = aligned[0][1]
    for (_, other), run in zip(aligned[1:], run_dirs[1:], strict=True):
        if not torch.equal(other, labels):
            raise DataError(run, "the same videos carry different labels than in the first run")

    def top1(probs: Tensor) -> float:
        return float((probs.argmax(dim=1) == labels).float().mean())

    if weights is None:
        weightings = [[0.5, 0.5], [1 / 3, 2 / 3]] if len(aligned) == 2 else [[1.0] * len(aligned)]
    else:
        if len(weights) != len(aligned) or min(weights) < 0 or sum(weights) <= 0:
            raise ValueError(
                f"give one non-negative weight per run ({len(aligned)}), got {list(weights)}"
            )
        weightings = [list(weights)]
    fused = []
    for w in weightings:
        total = sum(w)
        probs = sum(wi / total * p for wi, (p, _) in zip(w, aligned, strict=True))
        assert isinstance(probs, Tensor)
        fused.append({"weights": [round(wi / total, 4) for wi in w], "video_top1": top1(probs)})
    return {
        "videos": len(order),
        "runs": [
            {"run": str(r), "video_top1": top1(p)}
            for r, (p, _) in zip(run_dirs, aligned, strict=True)
        ],
        "fused": fused,
    }
