"""Next-frame prediction as a task: ``context`` frames in, the next ``horizon`` frames out.

Data (``data.format``):

* ``moving_mnist``: ``.npy`` files in the released ``mnist_test_seq.npy`` layout (uint8
  ``(T, N, H, W)``), the first ``context + horizon`` frames of each sequence (the field's
  protocol: 10 in, 10 out). ``data.train`` trains (``val_fraction`` of its sequences, chosen
  with ``split_seed``, are held out to choose ``best/`` on); ``data.test`` is scored.
* ``videos``: your own videos under ``data.root`` (:mod:`lrcn.data.formats.video_windows`),
  made ``size x size``, grayscale or RGB, split by video, cut into windows.

``best/`` is the epoch with the lowest validation MSE (the model forecasting alone, as at test
time). ``evaluate`` reports MSE, MAE (per frame, summed over pixels), SSIM and PSNR per horizon
step beside copying the last context frame and linear extrapolation, and draws strips, an
animated GIF and the metrics against the horizon step. ``predict`` continues a video.
"""

from __future__ import annotations

import csv
import json
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, cast

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import Tensor, nn
from torch.utils.data import Dataset

from lrcn.backbones import Preprocess
from lrcn.checkpoint import Bundle
from lrcn.config import ConfigError, StrictConfig, TrainConfig
from lrcn.data.formats.moving_mnist import read_moving_mnist, sequences
from lrcn.data.formats.video_windows import (
    VideoFrames,
    find_videos,
    frame_counts,
    read_small_frames,
    read_videos,
    split_by_video,
    window_starts,
)
from lrcn.data.items import DataError, Problem
from lrcn.data.video_io import VideoError, probe_video, write_video
from lrcn.export.graphs import ExportPlan, Graph
from lrcn.metrics.next_frame import (
    HIGHER_IS_BETTER,
    METRICS,
    ScoreAccumulator,
    copy_last_frame,
    frame_scores,
    linear_extrapolation,
)
from lrcn.models.next_frame import (
    ForecasterConfig,
    FramePredictor,
    NextFrameExtras,
    NextFrameOutput,
    PredictorConfig,
    unroll,
)
from lrcn.tasks._common import resolve_device
from lrcn.tasks._frame_pictures import (
    frames_to_rgb,
    plot_horizon_metrics,
    save_gif,
    save_strip,
)
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

__all__ = ["FrameData", "FrameWindows", "NextFrameConfig", "NextFrameDataConfig", "NextFrameTask"]

STRIPS = 4  # sequences drawn as strips and in the GIF by evaluate
EVAL_BATCH = 32
PREDICTORS = ("model", "copy last frame", "linear extrapolation")


class NextFrameDataConfig(StrictConfig):
    """Where the frames come from and how they are cut."""

    format: Literal["moving_mnist", "videos"]
    train: Path | None = None  # moving_mnist: training .npy
    test: Path | None = None  # moving_mnist: test .npy (e.g. the released mnist_test_seq.npy)
    root: Path | None = None  # videos: folder of videos or frame folders (searched)
    context: int = Field(10, ge=2)  # frames in (>= 2 for the linear baseline)
    horizon: int = Field(10, ge=1)  # frames out
    val_fraction: float = Field(0.1, gt=0, lt=1)  # of the training sequences / videos
    test_fraction: float = Field(0.2, gt=0, lt=1)  # videos: of the videos
    split_seed: int = 0
    size: int = Field(64, ge=4, multiple_of=2)  # videos: frames are size x size
    channels: Literal[1, 3] = 1  # videos: 1 = grayscale, 3 = RGB
    frame_step: int = Field(1, ge=1)  # videos: keep every frame_step-th frame
    window_stride: int | None = Field(None, ge=1)  # videos: default context + horizon
    on_error: Literal["raise", "skip"] = "raise"

    @model_validator(mode="after")
    def _paths_of_the_format(self) -> NextFrameDataConfig:
        if self.format == "moving_mnist" and (self.train is None or self.test is None):
            raise ValueError("format moving_mnist needs both 'train' and 'test' (.npy files)")
        if self.format == "videos" and self.root is None:
            raise ValueError("format videos needs 'root', the folder of your videos")
        return self

    @property
    def length(self) -> int:
        return self.context + self.horizon


class NextFrameConfig(TaskConfig):
    """A next-frame prediction experiment."""

    task: Literal["next_frame"]
    data: NextFrameDataConfig
    model: Annotated[ForecasterConfig | PredictorConfig, Field(discriminator="name")]
    train: TrainConfig = Field(default_factory=TrainConfig)


class FrameWindows:
    """Windows of ``length`` frames: ``self[i]`` is uint8 ``(length, C, S, S)``, and
    ``name(i)`` says where it comes from (``test.npy#17``, ``walk.mp4@120``)."""

    def __init__(self, fetch: Callable[[int], np.ndarray], names: list[str]) -> None:
        self.fetch, self.names = fetch, names

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, i: int) -> np.ndarray:
        return np.ascontiguousarray(self.fetch(i))

    def name(self, i: int) -> str:
        return self.names[i]


@dataclass
class FrameData:
    """The splits that were read (others are empty), and the frames' shape."""

    channels: int
    size: int
    splits: dict[str, FrameWindows]
    skipped: list[Problem] = field(default_factory=list)
    source: dict[str, Any] = field(default_factory=dict)  # for report.json

    def split(self, name: str) -> FrameWindows:
        return self.splits[name]


def _array_windows(array: np.ndarray, rows: np.ndarray, length: int, file: Path) -> FrameWindows:
    """Sequences ``rows`` of a (N, T, H, W) array, their first ``length`` frames."""
    return FrameWindows(lambda i: array[rows[i], :length, None], [f"{file.name}#{r}" for r in rows])


def _read_moving_mnist(data: NextFrameDataConfig, splits: Sequence[str]) -> FrameData:
    assert data.train is not None and data.test is not None
    files = {"train": data.train, "test": data.test}
    arrays = {name: sequences(read_moving_mnist(path)) for name, path in files.items()}
    size = arrays["train"].shape[-1]
    for name, array in arrays.items():
        frames, side = array.shape[1], array.shape[-1]
        if frames > len(array):
            raise DataError(
                files[name], f"{frames} frames of {len(array)} sequences: is it sequence-first "
                "(N, T, H, W)? Save it time-major: np.save(path, a.transpose(1, 0, 2, 3))",
                expected="time-major (T, N, H, W) as mnist_test_seq.npy (20, 10000, 64, 64)",
            )  # fmt: skip
        if frames < data.length:
            raise DataError(
                files[name], f"{frames} frames per sequence", key="data.context + data.horizon",
                expected=f"at least {data.length} (data.context {data.context} + data.horizon "
                f"{data.horizon})",
            )  # fmt: skip
        if side != size:
            raise DataError(
                files[name], f"{side}x{side} frames, the training file's are {size}x{size}",
                expected="one frame size for train and test",
            )  # fmt: skip
    count = len(arrays["train"])
    if count < 2:
        raise DataError(data.train, "1 sequence; training and validation need one each")
    order = np.random.default_rng(data.split_seed).permutation(count)
    n_val = max(1, round(data.val_fraction * count))
    rows = {
        "train": np.sort(order[n_val:]),
        "val": np.sort(order[:n_val]),
        "test": np.arange(len(arrays["test"])),
    }
    source_of = {"train": "train", "val": "train", "test": "test"}  # val is carved from train
    windows = {
        name: _array_windows(
            arrays[source_of[name]], rows[name], data.length, files[source_of[name]]
        )
        for name in splits
    }
    source = {"train_file": str(data.train), "test_file": str(data.test)}
    return FrameData(1, size, windows, source=source)


def _read_videos(
    data: NextFrameDataConfig, splits: Sequence[str], log: Log, progress: Progress | None
) -> FrameData:
    assert data.root is not None
    skipped: list[Problem] = []
    counts = frame_counts(
        find_videos(data.root), data.frame_step, data.length, data.on_error, skipped
    )
    paths = split_by_video(
        list(counts), data.val_fraction, data.test_fraction, data.split_seed, data.root
    )
    stride = data.window_stride or data.length
    windows: dict[str, FrameWindows] = {}
    for name in splits:

        def tick(done: int, name: str = name) -> None:
            if progress is not None:
                progress(f"reading {name} videos", done, len(paths[name]))

        videos = read_videos(
            {path: counts[path] for path in paths[name]}, data.size, data.channels,
            data.frame_step, data.on_error, skipped, tick,
        )  # fmt: skip
        places = [(v, s) for v in videos for s in window_starts(len(v.frames), data.length, stride)]
        if not places:
            raise DataError(
                data.root, f"no {name} video has {data.length} frames to cut a window from",
                key="data.root", expected="longer videos, or a smaller data.context + horizon",
            )  # fmt: skip
        windows[name] = FrameWindows(
            _slicer(places, data.length),
            [f"{v.path.name}@{s * data.frame_step}" for v, s in places],
        )
        log(f"{name}: {len(videos)} videos, {len(places)} windows")
    source = {"root": str(data.root), "videos": {k: len(v) for k, v in paths.items()}}
    return FrameData(data.channels, data.size, windows, skipped, source)


def _slicer(places: list[tuple[VideoFrames, int]], length: int) -> Callable[[int], np.ndarray]:
    """Window i: ``length`` frames of a video from a start frame."""

    def fetch(i: int) -> np.ndarray:
        video, start = places[i]
        return video.frames[start : start + length]

    return fetch


def read_frame_data(
    data: NextFrameDataConfig,
    splits: Sequence[str] = ("train", "val", "test"),
    log: Log = print,
    progress: Progress | None = None,
) -> FrameData:
    """The windows of ``splits`` that ``data`` describes."""
    if data.format == "moving_mnist":
        return _read_moving_mnist(data, splits)
    return _read_videos(data, splits, log, progress)


class _TrainWindows(Dataset[tuple[Tensor, Tensor]]):
    """Training windows, each with its teacher mask ``(horizon - 1,)``: where the forecaster
    reads the true previous frame. The mask is drawn from ``(seed, epoch, index)`` with the
    epoch's teacher probability, so a resumed run draws the same masks."""

    def __init__(
        self,
        windows: FrameWindows,
        horizon: int,
        teacher_probability: Callable[[int], float],
        seed: int,
    ) -> None:
        self.windows, self.horizon = windows, horizon
        self.teacher_probability, self.seed, self.epoch = teacher_probability, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        rng = random.Random(hash((self.seed, self.epoch, i)))
        p = self.teacher_probability(self.epoch)
        teacher = torch.tensor([rng.random() < p for _ in range(self.horizon - 1)])
        return torch.from_numpy(self.windows[i]), teacher  # (T, C, S, S) uint8, (H-1,) bool


def _collate(batch: list[tuple[Tensor, Tensor]]) -> dict[str, Any]:
    frames = torch.stack([f for f, _ in batch])  # (B, T, C, S, S) uint8
    teacher = torch.stack([t for _, t in batch])  # (B, H-1) bool
    return {"frames": frames, "teacher": teacher, "labels": frames, "skipped": []}


def teacher_schedule(model: ForecasterConfig, epochs: int) -> Callable[[int], float]:
    """The probability that the forecaster reads the true previous frame in ``epoch``."""
    if model.feed == "teacher":
        return lambda epoch: 1.0
    if model.feed == "autoregressive":
        return lambda epoch: 0.0
    decay = model.sampling_epochs or max(1, epochs // 2)
    return lambda epoch: max(0.0, 1.0 - epoch / decay)


def frame_loss(kind: str, output: NextFrameOutput, frames: Tensor, context: int) -> Tensor:
    """The training loss of the predicted frames against the true ``frames (B, T, C, H, W)``
    in [0, 1]: the horizon's, and the context's too for a model that predicts them."""
    logits, target = output.logits, frames[:, context:]
    if output.context_logits is not None:
        logits = torch.cat([output.context_logits, logits], 1)
        target = frames[:, context - output.context_logits.shape[1] :]
    if kind == "bce":
        return F.binary_cross_entropy_with_logits(logits, target)
    predicted = torch.sigmoid(logits)
    return F.l1_loss(predicted, target) if kind == "l1" else F.mse_loss(predicted, target)


def as_float(frames: Tensor, device: torch.device) -> Tensor:
    """uint8 frames -> float in [0, 1] on ``device`` (converted there: 4x less to copy)."""
    return frames.to(device, non_blocking=True).float().div_(255)


def forecast_batches(
    model: FramePredictor,
    windows: FrameWindows,
    context: int,
    horizon: int,
    device: torch.device,
    progress: Progress | None = None,
) -> Iterator[tuple[range, Tensor, Tensor]]:
    """``(rows, windows (B, T, C, S, S), predictions (B, horizon, C, S, S))``, in [0, 1],
    the model forecasting alone."""
    model.eval()
    with torch.inference_mode():
        for start in range(0, len(windows), EVAL_BATCH):
            rows = range(start, min(len(windows), start + EVAL_BATCH))
            frames = as_float(torch.stack([torch.from_numpy(windows[i]) for i in rows]), device)
            yield rows, frames, model(frames[:, :context], horizon).frames
            if progress is not None:
                progress("forecasting", rows.stop, len(windows))


def _extras(config: NextFrameConfig, data: FrameData) -> NextFrameExtras:
    if data.size % config.model.patch_size:
        raise ConfigError(
            "model.patch_size", f"{config.model.patch_size} does not divide the {data.size}-"
            "pixel frame side", expected=f"a divisor of {data.size}",
        )  # fmt: skip
    return NextFrameExtras(
        channels=data.channels, size=data.size,
        context=config.data.context, horizon=config.data.horizon,
    )  # fmt: skip


VIDEO_OUT = (".mp4", ".avi", ".mkv", ".mov")


def _output_paths(options: dict[str, Any], inputs: list[Path]) -> list[dict[str, Path]]:
    """Per input, where ``--out`` and ``--strip`` write: the paths given for one input; for
    several, ``<stem>-<input stem><suffix>`` beside them (``<stem>-<n>-<input stem>`` when two
    inputs share a name). Suffixes are checked before anything runs."""
    checks = {"out": (VIDEO_OUT, "a video file"), "strip": ((".png",), "a PNG file")}
    given: dict[str, Path] = {}
    for key, (suffixes, what) in checks.items():
        if options.get(key) is None:
            continue
        path = Path(options[key])
        if path.suffix.lower() not in suffixes or path.is_dir():
            raise ConfigError(
                f"--{key}", f"{str(path)!r} is not {what}", expected=", ".join(suffixes)
            )
        given[key] = path
    stems = [p.stem for p in inputs]
    clash = len(set(stems)) < len(stems)

    def name(path: Path, n: int, stem: str) -> Path:
        if len(inputs) == 1:
            return path
        tag = f"{n + 1}-{stem}" if clash else stem
        return path.with_name(f"{path.stem}-{tag}{path.suffix}")

    return [{k: name(p, n, stem) for k, p in given.items()} for n, stem in enumerate(stems)]


class NextFrameTask(Task[NextFrameConfig]):
    """Frames in, the next frames out: the ConvLSTM encoder-forecaster."""

    name = "next_frame"
    config_class = NextFrameConfig
    primary_metric = "val_mse"
    primary_goal = "min"
    logged_metrics = ("val_mse", "val_ssim")
    predict_options = (
        TaskOption("horizon", int, "frames to predict (default: as trained)", min=1),
        TaskOption(
            "start",
            int,
            "number (from 0) of the first context frame; the frames the video has after the "
            "context are drawn and scored as the truth (default: the video's last frames, "
            "continuing past its end)",
            min=0,
        ),
        TaskOption(
            "out",
            Path,
            "video to write (.mp4 .avi .mkv .mov): the context, then the prediction; with "
            "several inputs, OUT-<input name>.mp4 each",
            output=".mp4",
        ),
        TaskOption(
            "strip",
            Path,
            "PNG of the context, the truth (when the video has it) and the prediction as rows; "
            "with several inputs, STRIP-<input name>.png each",
            output=".png",
        ),
    )

    def run_title(self, config: NextFrameConfig) -> str:
        data = config.data
        where = data.root if data.root is not None else data.train
        return f"{config.model.name} on {Path(str(where)).name}"

    def preprocess(self, model: nn.Module) -> Preprocess:
        """Frames are resized (short side), center-cropped and kept in [0, 1]."""
        assert isinstance(model, FramePredictor)
        return Preprocess(model.frame_size, model.frame_size, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))

    def prepare(self, config: NextFrameConfig, log: Log) -> Prepared:
        data = read_frame_data(config.data, log=log)
        extras = _extras(config, data)
        sizes = {name: len(windows) for name, windows in data.splits.items()}
        log(f"windows of {config.data.length} frames {data.size}x{data.size}x{data.channels}: "
            + ", ".join(f"{n} {c}" for n, c in sizes.items()))  # fmt: skip
        return Prepared(extras, data, [p.problem for p in data.skipped])

    def training(
        self,
        config: NextFrameConfig,
        model: nn.Module,
        prepared: Prepared,
        device: torch.device,
        log: Log,
        progress: Progress | None,
    ) -> TrainingSetup:
        assert isinstance(model, FramePredictor)
        data: FrameData = prepared.data
        context, horizon = config.data.context, config.data.horizon
        kind = config.model.loss

        def loss(m: nn.Module, batch: dict[str, Any]) -> tuple[Tensor, int]:
            frames = as_float(batch["frames"], device)  # (B, T, C, S, S)
            future = frames[:, context:]
            output = m(frames[:, :context], horizon, future, batch["teacher"].to(device))
            return frame_loss(kind, output, frames, context), len(frames)

        def validate(m: nn.Module) -> dict[str, float]:
            assert isinstance(m, FramePredictor)
            scores = ScoreAccumulator()
            for _, frames, predicted in forecast_batches(
                m, data.split("val"), context, horizon, device
            ):
                scores.add(predicted, frames[:, context:])
            mean = scores.result().mean
            return {f"val_{name}": value for name, value in mean.items()}

        train = data.split("train")
        sample = [train[i] for i in range(0, len(train), max(1, len(train) // 256))]
        model.start_at_mean(float(np.mean([s.mean() for s in sample])) / 255)
        schedule = teacher_schedule(config.model, config.train.epochs)
        return TrainingSetup(
            train_set=_TrainWindows(train, horizon, schedule, config.train.seed),
            collate=_collate,
            loss=loss,
            validate=validate,
            num_workers=0,
            report={
                **data.source,
                "frames": {"size": data.size, "channels": data.channels},
                "windows": {name: len(w) for name, w in data.splits.items()},
                "context": context,
                "horizon": horizon,
            },
        )

    def evaluate(
        self,
        bundle: Bundle,
        config: NextFrameConfig,
        split: str,
        options: dict[str, Any],
        out: Path,
        log: Log,
        progress: Progress | None,
    ) -> dict[str, Any]:
        """The model and both baselines on ``split``, per horizon step; strips, a GIF, a plot."""
        extras = bundle.extras_as(NextFrameExtras)
        data = read_frame_data(config.data, (split,), log, progress)
        if (data.size, data.channels) != (extras.size, extras.channels):
            raise ConfigError(
                "data", f"frames are {data.size}x{data.size}x{data.channels}; the model was "
                f"trained on {extras.size}x{extras.size}x{extras.channels}",
            )  # fmt: skip
        device = resolve_device(config.train.device)
        model = bundle.model.to(device)
        assert isinstance(model, FramePredictor)
        context, horizon = config.data.context, config.data.horizon  # --set may change them
        windows = data.split(split)
        scores = {name: ScoreAccumulator() for name in PREDICTORS}
        shown: list[tuple[str, Tensor, Tensor]] = []  # (name, window, prediction) to draw
        for rows, frames, predicted in forecast_batches(
            model, windows, context, horizon, device, progress
        ):
            past, future = frames[:, :context], frames[:, context:]
            scores["model"].add(predicted, future)
            scores["copy last frame"].add(copy_last_frame(past, horizon), future)
            scores["linear extrapolation"].add(linear_extrapolation(past, horizon), future)
            for j, i in enumerate(rows[: max(0, STRIPS - len(shown))]):
                shown.append((windows.name(i), frames[j].cpu(), predicted[j].cpu()))
        results: dict[str, Any] = {name: s.result().as_dict() for name, s in scores.items()}
        out.mkdir(parents=True, exist_ok=True)
        outputs = self._pictures(out, shown, results, context, bundle)
        model_mean = results["model"]["mean"]
        not_beaten = {
            metric: [
                b for b in PREDICTORS[1:]
                if not _better(metric, model_mean[metric], results[b]["mean"][metric])
            ]
            for metric in METRICS
        }  # fmt: skip
        summary = {
            "split": split,
            "epoch": bundle.epoch,
            "sequences": len(windows),
            "context": context,
            "horizon": horizon,
            "scores": results,
            "beats_baselines": {metric: not lost for metric, lost in not_beaten.items()},
            "not_beaten": {k: v for k, v in not_beaten.items() if v},
            "skipped": sorted({p.problem for p in data.skipped}),
            "outputs": {
                "metrics": str(out / "metrics.json"),
                "per_step": str(out / "per_step.csv"),
                **outputs,
            },
        }
        _write_per_step(out / "per_step.csv", results)
        (out / "metrics.json").write_text(json.dumps(summary, indent=1))
        return summary

    def _pictures(
        self,
        out: Path,
        shown: list[tuple[str, Tensor, Tensor]],
        results: dict[str, Any],
        context: int,
        bundle: Bundle,
    ) -> dict[str, str]:
        epoch = "?" if bundle.epoch is None else bundle.epoch + 1
        strips = []
        for k, (name, window, predicted) in enumerate(shown, start=1):
            numbers = list(range(1, len(window) + 1))
            rows = [
                ("context", window[:context], numbers[:context]),
                ("truth", window[context:], numbers[context:]),
                ("prediction", predicted, numbers[context:]),
            ]
            title = f"{name} (frames of the window from 1)"
            strips.append(save_strip(out / "strips" / f"strip-{k}.png", rows, title))
        truth = [window for _, window, _ in shown]
        forecast = [torch.cat([window[:context], p]) for _, window, p in shown]
        gif = save_gif(out / "predictions.gif", [truth, forecast], marked_from=context)
        plot = plot_horizon_metrics(
            out / "horizon.png", results, f"{bundle.path.parent.name} (epoch {epoch})"
        )
        return {"strips": str(out / "strips"), "gif": str(gif), "plot": str(plot)}

    def predict(
        self,
        bundle: Bundle,
        config: NextFrameConfig,
        inputs: Sequence[Path],
        options: dict[str, Any],
    ) -> list[dict[str, Any]]:
        """Continue each video: its last ``context`` frames (or those from ``--start``) in,
        ``--horizon`` frames out."""
        extras = bundle.extras_as(NextFrameExtras)
        device = resolve_device("auto")
        model = cast(FramePredictor, bundle.model.to(device).eval())  # or its export
        horizon = options.get("horizon") or extras.horizon
        step = config.data.frame_step if config.data.format == "videos" else 1
        named = _output_paths(options, [Path(p) for p in inputs])
        results: list[dict[str, Any]] = []
        for path, outputs in zip(map(Path, inputs), named, strict=True):
            try:
                results.append(
                    self._continue(model, extras, path, horizon, options, outputs, step, device)
                )
            except (VideoError, DataError) as err:
                results.append({"input": str(path), "error": str(err)})
        return results

    def _continue(
        self,
        model: FramePredictor,
        extras: NextFrameExtras,
        path: Path,
        horizon: int,
        options: dict[str, Any],
        outputs: dict[str, Path],
        step: int,
        device: torch.device,
    ) -> dict[str, Any]:
        info = probe_video(path)
        total = info.num_frames
        start = options.get("start")
        if start is None:  # the last context frames: continue past the end
            indices = list(range(0, total, step))[-extras.context :]
        else:
            indices = list(range(start, total, step))[: extras.context + horizon]
        if len(indices) < extras.context:
            where = "" if start is None else f" from frame {start}"
            raise DataError(
                path, f"{len(indices)} frames{where} (every {step}) for the context",
                expected=f"{extras.context} (every {step}: frames {step * (extras.context - 1) + 1}"
                " or more)",
            )  # fmt: skip
        frames = read_small_frames(path, extras.size, extras.channels, indices=indices)
        clip = as_float(torch.from_numpy(np.ascontiguousarray(frames))[None], device)
        past, truth = clip[:, : extras.context], clip[:, extras.context :]
        with torch.inference_mode():  # begin and step only: what an export has too
            states, _ = model.begin(past)
            predicted, _ = unroll(model.step, states, past[:, -1], horizon)  # (1, H, C, S, S)
        last = indices[extras.context - 1]
        ahead = [last + step * (k + 1) for k in range(horizon)]  # the predicted frames' numbers
        result: dict[str, Any] = {
            "input": str(path),
            "context_frames": indices[: extras.context],
            "predicted_frames": [ahead[0], ahead[-1]],
            "horizon": horizon,
        }
        known = truth.shape[1]
        if known:  # the video goes on: score the frames it has
            scores = {
                "model": predicted[:, :known],
                "copy last frame": copy_last_frame(past, known),
            }
            result["true_frames"] = known
            result["mse"] = {  # per frame, summed over its pixels and channels
                name: frame_scores(p, truth).mean["mse"] for name, p in scores.items()
            }
        if options.get("out") is not None:
            target = outputs["out"]
            fps = (info.fps or 10.0) / step  # a frame folder has no rate
            _write_clip(target, torch.cat([past, predicted], 1)[0], fps)
            result["out"] = str(target)
        if options.get("strip") is not None:
            target = outputs["strip"]
            rows = [("context", past[0], indices[: extras.context])]
            if known:
                rows.append(("truth", truth[0], indices[extras.context :]))
            rows.append(("prediction", predicted[0], ahead))
            save_strip(target, rows, f"{path.name}: frame numbers from 0")
            result["strip"] = str(target)
        return result

    def export_plan(self, bundle: Bundle, config: NextFrameConfig, batch: int) -> ExportPlan:
        """Reading the context (the states, and the one-stack model's context predictions)
        and one step of the forecast, with the ConvLSTM states as inputs and outputs: predict
        unrolls any horizon with it."""
        extras = bundle.extras_as(NextFrameExtras)
        model = bundle.model
        shape = (batch, extras.context, extras.channels, extras.size, extras.size)
        context = torch.rand(shape)  # (B, Tc, C, S, S) in [0, 1], as predict scales frames
        with torch.no_grad():
            states, _ = model.begin(context)  # type: ignore[operator]
        return ExportPlan([Graph("begin", (context,)), Graph("step", (context[:, -1], states))])

    def render_evaluation(self, summary: dict[str, Any], echo: Echo) -> None:
        epoch = "?" if summary["epoch"] is None else summary["epoch"] + 1
        echo(
            f"{summary['split']} split, {summary['sequences']} sequences, {summary['context']} "
            f"frames in, {summary['horizon']} out (checkpoint from epoch {epoch}); per frame, "
            "mean over the horizon:"
        )
        echo(f"  {'':22} {'MSE':>8} {'MAE':>8} {'SSIM':>7} {'PSNR':>6}")
        for name, result in summary["scores"].items():
            m = result["mean"]
            echo(f"  {name:22} {m['mse']:8.2f} {m['mae']:8.2f} {m['ssim']:7.4f} {m['psnr']:6.2f}")
        for metric, baselines in summary["not_beaten"].items():
            echo(f"on {metric.upper()} the model is NOT better than: {', '.join(baselines)}")
        if summary["skipped"]:
            echo(f"skipped {len(summary['skipped'])}:\n  " + "\n  ".join(summary["skipped"]))
        for name, path in summary["outputs"].items():
            echo(f"{name}: {path}")

    def render_predictions(self, results: list[dict[str, Any]], echo: Echo) -> None:
        for r in results:
            context, (first, last) = r["context_frames"], r["predicted_frames"]
            line = (
                f"{r['input']}: frames {first}-{last} predicted from frames {context[0]}-"
                f"{context[-1]}"
            )
            if len(context) > 1 and context[1] - context[0] > 1:
                line += f" (every {context[1] - context[0]})"
            if "mse" in r:
                mse = r["mse"]
                line += (
                    f"; MSE per frame over the {r['true_frames']} frames the video has "
                    f"{mse['model']:.2f} (copy last frame {mse['copy last frame']:.2f})"
                )
            echo(line)
            for key in ("out", "strip"):
                if key in r:
                    echo(f"    {key}: {r[key]}")


def _better(metric: str, model: float, baseline: float) -> bool:
    return model > baseline if metric in HIGHER_IS_BETTER else model < baseline


def _write_per_step(path: Path, results: dict[str, Any]) -> None:
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["predictor", "step", *METRICS])
        for name, result in results.items():
            for k in range(len(result["per_step"]["mse"])):
                row = [f"{result['per_step'][m][k]:.6g}" for m in METRICS]
                writer.writerow([name, k + 1, *row])


def _write_clip(path: Path, frames: Tensor, fps: float) -> None:
    """``(T, C, S, S)`` in [0, 1] as a video at ``fps``, scaled up 2x when small so players
    show it."""
    array = frames_to_rgb(frames, scale=2 if frames.shape[-1] < 128 else 1)  # (T, s, s, 3)
    write_video(path, array, fps=max(1, round(fps)))


register_task(NextFrameTask())
