"""Video description as a task: a sequence of frames in, a sentence out.

Each video is sampled at ``data.frames`` frames spread evenly over its length (only those are
decoded: a long video is never held whole in memory). The frozen backbone's pooled features of
those frames (and, for ``model.inputs`` with flow, of the optical flow there) are cached once,
and a decoder (mean-pool, S2VT, temporal attention) is trained on them with teacher forcing.
``best/`` is the epoch with the best CIDEr-D on the validation split (greedy captions).
``evaluate`` captions a split with beam search and scores it with pycocoevalcap against all
references, beside the two baselines image captioning reports too: the most frequent training
sentence, and the sentence of the nearest training video (mean frame feature). ``predict``
describes any video file.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, cast

import numpy as np
import torch
from pydantic import Field
from torch import Tensor, nn

from lrcn.backbones import Preprocess
from lrcn.checkpoint import Bundle
from lrcn.config import ConfigError, DecodeConfig, StrictConfig, TrainConfig
from lrcn.data.captions import CaptionPairs, pad_captions
from lrcn.data.features import FeatureCache
from lrcn.data.flow import flow_at
from lrcn.data.formats.tuples import VideoTuples, read_tuples
from lrcn.data.formats.video_captions import (
    VideoCaptionItem,
    VideoCaptionSplit,
    read_msrvtt,
    read_msvd,
)
from lrcn.data.items import DataError, Problem, require_root
from lrcn.data.sampling import strided_indices, uniform_indices
from lrcn.data.video_io import VideoError, probe_video, read_frames
from lrcn.data.vocab import Vocabulary
from lrcn.decoding import BeamResult, beam_search
from lrcn.errors import LrcnError
from lrcn.export.graphs import ExportPlan, Graph, example_frame_features, example_step
from lrcn.models.captioning import caption_loss, real_tokens
from lrcn.models.tuple_captioning import (
    TupleCaptioner,
    TupleEncoderDecoderConfig,
    TupleModelConfig,
    TupleOneHotConfig,
    TupleProbabilitiesConfig,
)
from lrcn.models.video_captioning import (
    MeanPoolConfig,
    S2VTConfig,
    TemporalAttentionConfig,
    VideoCaptioner,
    VideoCaptioningExtras,
)
from lrcn.tasks._common import fill_feature_cache, resolve_device
from lrcn.tasks._sentences import (
    SentenceTask,
    decode_batches,
    prediction,
    prepare_vocabulary,
    references_of,
    score_captions,
    sharded,
    validation_scores,
)
from lrcn.tasks.base import (
    Log,
    Prepared,
    Progress,
    TaskConfig,
    TaskOption,
    TrainingSetup,
    register_task,
)

Source = Callable[[int], Tensor]  # item index -> frame features (T, D) or a tuple (1, W)
Captioner = VideoCaptioner | TupleCaptioner

__all__ = ["VideoCaptionDataConfig", "VideoCaptioningConfig", "VideoCaptioningTask"]


class VideoDataConfig(StrictConfig):
    """Videos with reference sentences, as MSR-VTT or MSVD lay them out."""

    format: Literal["msrvtt", "msvd"]
    root: Path  # msrvtt: the folder of the *_videodatainfo.json files; msvd: YouTubeClips/'s
    split_file: Path | None = None  # msvd: train/val/test clip lists (lrcn datasets writes it)
    frames: int = Field(32, ge=1, le=200)  # sampled evenly over each video (S2VT used 80)
    stride: int | None = Field(None, ge=1)  # instead: every stride-th frame, at most `frames`
    on_error: Literal["raise", "skip"] = "raise"

    def indices(self, num_frames: int) -> list[int]:
        """The frames sampled from a video of ``num_frames``."""
        if self.stride is None:
            return uniform_indices(num_frames, self.frames)
        return strided_indices(num_frames, self.frames, self.stride)

    def sampling(self) -> str:
        """The sampling in words: part of the feature cache's key."""
        if self.stride is None:
            return f"{self.frames} uniform"
        return f"every {self.stride}, at most {self.frames}"


class VideoCaptionDataConfig(VideoDataConfig):
    """Videos with reference sentences, and what a captioner learns from them."""

    min_count: int = Field(2, ge=1)  # words seen fewer times become <unk>
    max_len: int = Field(20, ge=1)  # sentence tokens kept for training (longer ones are cut)
    tuples: Path | None = None  # tuple models: an lrcn-tuples/1 file (a video_tuples run's)


class VideoCaptioningConfig(TaskConfig):
    """A whole video-description experiment."""

    task: Literal["video_captioning"]
    data: VideoCaptionDataConfig
    model: Annotated[
        MeanPoolConfig | S2VTConfig | TemporalAttentionConfig | TupleEncoderDecoderConfig
        | TupleOneHotConfig | TupleProbabilitiesConfig,
        Field(discriminator="name"),
    ]  # fmt: skip
    train: TrainConfig = Field(default_factory=TrainConfig)
    decode: DecodeConfig = Field(default_factory=DecodeConfig)


def read_video_caption_split(data: VideoDataConfig) -> VideoCaptionSplit:
    """The configured videos and sentences, per split."""
    require_root(Path(data.root), "data.root")
    if data.format == "msrvtt":
        return read_msrvtt(data.root, data.on_error)
    return read_msvd(data.root, data.split_file, data.on_error)


Sampler = Callable[[int], list[int]]  # a video's frame count -> the frames to read


def sampled_frames(count: int | Sampler) -> Callable[[Path], np.ndarray]:
    """A video's sampled frames, ``uint8 (T, H, W, 3)``: ``count`` evenly spread ones, or those
    a sampler picks (:meth:`VideoDataConfig.indices`); only those are decoded."""
    pick = _sampler(count)

    def load(path: Path) -> np.ndarray:
        return read_frames(path, pick(probe_video(path).num_frames))

    return load


def sampled_flow(count: int | Sampler) -> Callable[[Path], np.ndarray]:
    """The optical flow at a video's sampled frames, as images ``uint8 (T, H, W, 3)`` (x, y,
    magnitude; :func:`lrcn.data.flow.flow_at`)."""
    pick = _sampler(count)

    def load(path: Path) -> np.ndarray:
        frames = probe_video(path).num_frames
        return flow_at(path, pick(frames), frames)

    return load


def _sampler(count: int | Sampler) -> Sampler:
    if isinstance(count, int):
        return lambda num_frames: uniform_indices(num_frames, count)
    return count


STREAMS = {"rgb": sampled_frames, "flow": sampled_flow}


# --------------------------------------------------------------------------------------------
# Inputs: cached frame features
# --------------------------------------------------------------------------------------------


def _sources(
    config: VideoCaptioningConfig,
    model: Captioner,
    extras: VideoCaptioningExtras,
    items: Sequence[VideoCaptionItem],
    device: torch.device,
    skipped: list[Problem],
    log: Log,
    progress: Progress | None = None,
) -> tuple[list[VideoCaptionItem], Source]:
    """Usable items and a function giving each one's model input: frame features ``(T, D)``,
    or for a tuple model its visual tuple ``(1, W)``."""
    if isinstance(model, TupleCaptioner):
        assert extras.tuple_slots is not None  # a tuple model is built from them
        return _tuple_sources(
            _tuples_path(config), extras.tuple_slots, items, skipped, config.data.on_error
        )
    return frame_sources(config, model, items, device, skipped, log, progress)


def frame_caches(
    config: Any,
    model: nn.Module,
    items: Sequence[VideoCaptionItem],
    device: torch.device,
    skipped: list[Problem],
    log: Log,
    progress: Progress | None = None,
) -> list[FeatureCache]:
    """One feature cache per input stream of ``model.inputs`` (rgb, flow), holding every item
    that decodes. ``config`` has ``data`` (a :class:`VideoDataConfig`) and
    ``train.feature_cache``."""
    data: VideoDataConfig = config.data
    return [
        fill_feature_cache(
            config, model, [item.path for item in items], device, skipped, log, progress,
            STREAMS[stream](data.indices), f"videos ({stream})",
            sampling=data.sampling() + ("" if stream == "rgb" else f", {stream}"),
        )
        for stream in str(model.inputs).split("+")
    ]  # fmt: skip


def frame_sources(
    config: Any,
    model: nn.Module,
    items: Sequence[VideoCaptionItem],
    device: torch.device,
    skipped: list[Problem],
    log: Log,
    progress: Progress | None = None,
) -> tuple[list[VideoCaptionItem], Source]:
    """Usable items and a function giving each one's frame features ``(T, D)``, the streams'
    (:func:`frame_caches`) concatenated per frame."""
    caches = frame_caches(config, model, items, device, skipped, log, progress)
    kept = [item for item in items if all(cache.has(item.path) for cache in caches)]

    def features(i: int) -> Tensor:
        streams = [np.asarray(cache.load(kept[i].path), dtype=np.float32) for cache in caches]
        return torch.from_numpy(np.concatenate(streams, axis=1))  # (T, D * streams)

    return kept, features


def cache_report(
    config: Any,
    model: nn.Module,
    items: Sequence[VideoCaptionItem],
    skipped: list[Problem],
    device: torch.device,
    log: Log,
    progress: Progress | None,
) -> dict[str, Any]:
    """Fill the caches of every stream for ``items``; what ``lrcn extract-features`` prints."""
    caches = frame_caches(config, model, items, device, skipped, log, progress)
    kept = [item.path for item in items if all(cache.has(item.path) for cache in caches)]
    return {
        "cache": ", ".join(str(cache.folder) for cache in caches),
        "inputs": len(kept),
        "frames": sum(len(caches[0].load(path)) for path in kept),
        "skipped": sorted({p.problem for p in skipped}),
    }


def _tuples_path(config: VideoCaptioningConfig) -> Path:
    """``data.tuples``, which a tuple model cannot do without."""
    if config.data.tuples is None:
        raise ConfigError(
            "data.tuples", f"{config.model.name} reads visual tuples, and none are given",
            expected="the path of an lrcn-tuples/1 file (lrcn evaluate of a video_tuples run "
            "writes one)",
        )  # fmt: skip
    return config.data.tuples


def _tuple_sources(
    path: Path,
    slots: dict[str, list[str]],
    items: Sequence[VideoCaptionItem],
    skipped: list[Problem],
    on_error: str,
) -> tuple[list[VideoCaptionItem], Source]:
    """The items that have a tuple in ``path`` and each one's tuple ``(1, W)``; the file's
    slots must be the model's (``slots``, from the bundle), else its vectors mean other words."""
    tuples = _read_model_tuples(path, slots)
    kept = []
    for item in items:
        if item.video_id in tuples.videos:
            kept.append(item)
            continue
        problem = DataError(
            path, f"videos: no tuple for video {item.video_id!r} ({item.path})",
            expected="a tuple for every video of the data set (lrcn evaluate of a video_tuples "
            "run writes one for all three splits)",
        )  # fmt: skip
        if on_error == "raise":
            raise problem
        skipped.append(Problem(str(item.path), str(problem)))

    def vector(i: int) -> Tensor:
        return torch.from_numpy(tuples.videos[kept[i].video_id]).unsqueeze(0)  # (1, W)

    return kept, vector


def _read_model_tuples(path: Path, slots: dict[str, list[str]]) -> VideoTuples:
    """The tuple file, checked to have the layout the model reads."""
    tuples = read_tuples(path)
    if tuples.slots.to_dict() != slots:
        layout = ", ".join(f"{name} ({len(words)} words)" for name, words in slots.items())
        raise DataError(
            path, "slots: not the slots and words the model was trained with",
            expected=f"the training tuple file's slots: {layout}",
        )  # fmt: skip
    return tuples


def describe(
    model: Captioner,
    source: Source,
    count: int,
    vocab: Vocabulary,
    device: torch.device,
    decode: DecodeConfig,
    beam_size: int,
    n_best: int = 1,
    batch_size: int = 32,
    progress: Progress | None = None,
) -> BeamResult:
    """Decode ``count`` videos in batches (all beams of a batch in one tensor)."""

    def start(inputs: list[Tensor]) -> dict[str, Tensor]:
        return model.init_state(*pad_frames(inputs))

    model.eval()
    return decode_batches(
        model.step, start, source, count, vocab, device, beam_size, decode.max_len,
        decode.length_penalty, n_best, batch_size, progress,
    )  # fmt: skip


def _pooled(source: Source, count: int) -> Tensor:
    """Each video's mean frame feature, normalised: the nearest-neighbour baseline's space."""
    rows = [source(i).mean(dim=0) for i in range(count)]  # (D,) each
    return torch.nn.functional.normalize(torch.stack(rows), dim=1)  # (N, D)


def pad_frames(inputs: Sequence[Tensor]) -> tuple[Tensor, Tensor]:
    """Videos' frame features ``(T_i, D)`` as one batch ``(B, T, D)``, zero-padded to the
    longest, and each one's frame count ``lengths (B,)`` (the decoders leave padding out)."""
    lengths = torch.tensor([len(x) for x in inputs], dtype=torch.long, device=inputs[0].device)
    batch = inputs[0].new_zeros(len(inputs), int(lengths.max()), inputs[0].shape[1])
    for row, x in enumerate(inputs):
        batch[row, : len(x)] = x
    return batch, lengths


def _collate(batch: list[tuple[Tensor, list[int]]]) -> dict[str, Any]:
    """Frame features padded with their lengths (videos sampled at a fixed stride differ in
    length), captions padded with ``<pad>``."""
    inputs, lengths = pad_frames([x for x, _ in batch])
    labels = pad_captions([ids for _, ids in batch])
    return {"inputs": inputs, "lengths": lengths, "labels": labels, "skipped": []}


# --------------------------------------------------------------------------------------------
# The task
# --------------------------------------------------------------------------------------------


def _draw_frame_attention(
    model: Captioner,
    feats: Tensor,
    tokens: list[int],
    video: Path,
    sample: Sampler,
    vocab: Vocabulary,
    out_dir: Path,
) -> tuple[list[dict[str, Any]], Path]:
    """Step the decoder along the chosen words to collect each word's attention over the
    frames, and draw it under the sampled RGB frames: ``<video>-attention.png`` in
    ``out_dir``. Returns the words with their weights per frame, and the PNG."""
    from lrcn.plots import plot_frame_attention, save_figure

    words = [t for t in tokens if t != vocab.end_id]
    word = torch.tensor([vocab.start_id], device=feats.device)
    alphas = []
    with torch.inference_mode():
        state = model.init_state(feats, torch.tensor([feats.shape[1]], device=feats.device))
        for t in words:
            _, state = model.step(word, state)
            alphas.append(state["alpha"][0].cpu())  # (T,) this word's weights
            word = torch.tensor([t], device=feats.device)
    weights = torch.stack(alphas)  # (L, T)
    indices = sample(probe_video(video).num_frames)
    figure = plot_frame_attention(
        read_frames(video, indices), weights.numpy(), vocab.decode(words), indices
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{video.stem}-attention.png"
    save_figure(figure, path)
    named = [
        {"word": vocab.words[t], "weights": [round(v, 4) for v in w.tolist()], "frames": indices}
        for t, w in zip(words, weights, strict=True)
    ]
    return named, path


class VideoCaptioningTask(SentenceTask[VideoCaptioningConfig]):
    """A sequence of frames in, a sentence out: mean-pool, S2VT, temporal attention."""

    name = "video_captioning"
    config_class = VideoCaptioningConfig
    noun = "videos"
    predict_options = (
        *SentenceTask.predict_options,
        TaskOption(
            "attention", Path, "folder for attention strips (temporal_attention)", output="dir"
        ),
    )

    def export_plan(self, bundle: Bundle, config: VideoCaptioningConfig, batch: int) -> ExportPlan:
        return _export_plan(bundle, config, batch)

    def prepare(self, config: VideoCaptioningConfig, log: Log) -> Prepared:
        """The vocabulary and, for a tuple model, the slots of ``data.tuples``."""
        d = config.data
        prepared = prepare_vocabulary(
            read_video_caption_split(d), d.root, d.min_count, "videos", log
        )
        slots = None
        if isinstance(config.model, TupleModelConfig):
            slots = read_tuples(_tuples_path(config)).slots.to_dict()
        vocab = prepared.extras.vocab  # type: ignore[attr-defined]
        prepared.extras = VideoCaptioningExtras(vocab=vocab, tuple_slots=slots)
        return prepared

    def preprocess(self, model: nn.Module) -> Preprocess:
        """A tuple model has no CNN; its bundle keeps the preset of the one it was built with."""
        if isinstance(model, TupleCaptioner):
            return model.preprocess
        return super().preprocess(model)

    def training(
        self,
        config: VideoCaptioningConfig,
        model: nn.Module,
        prepared: Prepared,
        device: torch.device,
        log: Log,
        progress: Progress | None,
    ) -> TrainingSetup:
        assert isinstance(model, VideoCaptioner | TupleCaptioner)
        split: VideoCaptionSplit = prepared.data
        extras = prepared.extras
        assert isinstance(extras, VideoCaptioningExtras)
        vocab = extras.vocabulary()
        skipped: list[Problem] = []
        train_items, train_source = _sources(
            config, model, extras, split.train, device, skipped, log, progress
        )
        val_items, val_source = _sources(
            config, model, extras, split.val, device, skipped, log, progress
        )
        if not train_items:
            raise LrcnError(
                config.data.root,
                "has no usable training video",
                expected=("at least one training video that decodes (see the skipped ones above)"),
            )
        if isinstance(model, VideoCaptioner):  # on resume the checkpoint's replace these (same)
            model.standardize.fit(train_source(i) for i in range(len(train_items)))
        dataset = CaptionPairs(train_items, train_source, vocab, config.data.max_len)

        def loss(m: nn.Module, batch: dict[str, Any]) -> tuple[Tensor, int]:
            captions = batch["labels"].to(device)
            out = m(batch["inputs"].to(device), batch["lengths"].to(device), captions)
            return caption_loss(out, captions, vocab.pad_id), real_tokens(captions, vocab.pad_id)

        references = references_of(val_items)

        def validate(m: nn.Module) -> dict[str, float]:
            assert isinstance(m, VideoCaptioner | TupleCaptioner)
            source, count, gather = sharded(val_source, len(val_items))  # under torchrun
            result = describe(m, source, count, vocab, device, config.decode, 1)
            return validation_scores(gather(result), vocab, references)

        return TrainingSetup(
            train_set=dataset,
            collate=_collate,
            loss=loss,
            validate=validate,
            sharded_validation=True,
            num_workers=0,  # cached features: loading is a memory-mapped read
            report={
                "vocabulary": len(vocab),
                "sampling": config.data.sampling(),
                "train_videos": len(train_items),
                "val_videos": len(val_items),
                "test_videos": len(split.test),
            },
            skipped=[p.problem for p in skipped],
        )

    def cache_features(
        self,
        config: VideoCaptioningConfig,
        model: nn.Module,
        prepared: Prepared,
        device: torch.device,
        log: Log,
        progress: Progress | None,
    ) -> dict[str, Any]:
        if not isinstance(model, VideoCaptioner):
            raise ConfigError(
                "model.name", f"{config.model.name} reads data.tuples, not frames: there are no "
                "features to cache", expected="a model that reads frames (mean_pool, s2vt, "
                "temporal_attention), or extract-features of the video_tuples run",
            )  # fmt: skip
        split: VideoCaptionSplit = prepared.data
        items = split.train + split.val + split.test
        return cache_report(config, model, items, list(split.skipped), device, log, progress)

    def evaluate(
        self,
        bundle: Bundle,
        config: VideoCaptioningConfig,
        split: str,
        options: dict[str, Any],
        out: Path,
        log: Log,
        progress: Progress | None,
    ) -> dict[str, Any]:
        """Describe a split with beam search; score it and two baselines with pycocoevalcap."""
        extras = bundle.extras_as(VideoCaptioningExtras)
        vocab = extras.vocabulary()
        device = resolve_device(config.train.device)
        model = bundle.model.to(device)
        assert isinstance(model, VideoCaptioner | TupleCaptioner)
        data = read_video_caption_split(config.data)
        skipped: list[Problem] = list(data.skipped)
        items, source = _sources(
            config, model, extras, data.split(split), device, skipped, log, progress
        )
        train_items, train_source = _sources(
            config, model, extras, data.train, device, skipped, log, progress
        )
        beam = options.get("beam") or config.decode.beam_size
        result = describe(
            model, source, len(items), vocab, device, config.decode, beam, progress=progress
        )
        scores = score_captions(
            items, [str(item.path) for item in items], result, vocab,
            _pooled(source, len(items)), train_items, _pooled(train_source, len(train_items)),
            out, "video",
        )  # fmt: skip
        summary = {
            "split": split,
            "epoch": bundle.epoch,
            "videos": len(items),
            "beam_size": beam,
            **scores,
            "skipped": sorted({p.problem for p in skipped}),
            "outputs": {
                "metrics": str(out / "metrics.json"),
                "captions": str(out / "captions.csv"),
            },
        }
        (out / "metrics.json").write_text(json.dumps(summary, indent=1))
        return summary

    def predict(
        self,
        bundle: Bundle,
        config: VideoCaptioningConfig,
        inputs: Sequence[Path],
        options: dict[str, Any],
    ) -> list[dict[str, Any]]:
        """Describe each video file (its ``data.frames`` evenly spread frames, beam search).
        With ``attention``, a temporal-attention model also saves ``<video>-attention.png``:
        the sampled frames and, per word, its attention over them."""
        extras = bundle.extras_as(VideoCaptioningExtras)
        vocab = extras.vocabulary()
        device = resolve_device("auto")
        model = cast(Captioner, bundle.model.to(device).eval())  # or its export
        attention_dir = options.get("attention")
        if attention_dir is not None and config.model.name != "temporal_attention":
            raise ConfigError(
                "--attention",
                f"needs an attention model; {config.model.name} has no attention over frames",
                expected="a temporal_attention run",
            )
        beam = options.get("beam") or config.decode.beam_size
        n_best = min(options.get("n_best", 1), beam)
        model_input = _input_of(model, bundle.preprocess, config, extras, device)
        results: list[dict[str, Any]] = []
        for path in inputs:
            try:
                feats = model_input(Path(path))  # (1, T, D) or (1, 1, W)
            except (VideoError, DataError) as err:
                results.append({"input": str(path), "error": str(err)})
                continue
            with torch.inference_mode():
                lengths = torch.tensor([feats.shape[1]], device=device)
                found = beam_search(
                    model.step, model.init_state(feats, lengths), 1, vocab.start_id,
                    vocab.end_id, beam, config.decode.max_len, config.decode.length_penalty,
                    n_best,
                )  # fmt: skip
            entry = prediction(str(path), found.hypotheses[0], vocab)
            if attention_dir is not None:
                words, drawn = _draw_frame_attention(
                    model, feats, found.hypotheses[0][0].tokens, Path(path), config.data.indices,
                    vocab, Path(attention_dir),
                )  # fmt: skip
                entry["attention"] = str(drawn)
                entry["attention_words"] = words
            results.append(entry)
        return results


def _export_plan(bundle: Bundle, config: VideoCaptioningConfig, batch: int) -> ExportPlan:
    """The frame encoder (the backbone on each sampled frame; a tuple model has none), the
    decoder's first state from the frames' features, and one decoding step with its state as
    inputs and outputs, which the beam search drives."""
    extras = bundle.extras_as(VideoCaptioningExtras)
    model = bundle.model
    graphs = []
    if extras.tuple_slots is None:
        clips, feats = example_frame_features(model, bundle.preprocess, batch, config.data.frames)
        graphs.append(Graph("features", (clips,)))
    else:
        width = sum(len(words) for words in extras.tuple_slots.values())
        feats = torch.rand(batch, 1, width)  # (B, 1, W) a tuple's scores
    lengths = torch.full((batch,), feats.shape[1])  # (B,)
    with torch.no_grad():
        start = model.init_state(feats, lengths)  # type: ignore[operator]
    graphs += [
        Graph("init_state", (feats, lengths)),
        example_step(model, start, len(extras.vocab.words)),
    ]
    inputs = getattr(model, "inputs", None)
    return ExportPlan(graphs, {} if inputs is None else {"inputs": str(inputs)})


def _input_of(
    model: Captioner,
    preprocess: Preprocess,
    config: VideoCaptioningConfig,
    extras: VideoCaptioningExtras,
    device: torch.device,
) -> Callable[[Path], Tensor]:
    """How predict turns a video file into the model's input: its sampled frames' features
    ``(1, T, D)``, or for a tuple model the tuple ``data.tuples`` gives the video (by file
    name without suffix, the video id of MSR-VTT and MSVD) ``(1, 1, W)``."""
    if extras.tuple_slots is not None:  # a tuple model, built from them
        path = _tuples_path(config)
        tuples = _read_model_tuples(path, extras.tuple_slots)

        def lookup(video: Path) -> Tensor:
            if video.stem not in tuples.videos:
                raise DataError(path, f"videos: no tuple for video {video.stem!r} ({video})",
                                expected="a tuple for every video to describe")  # fmt: skip
            return torch.from_numpy(tuples.videos[video.stem]).view(1, 1, -1).to(device)

        return lookup
    return video_features(model, preprocess, config.data, device)


def video_features(
    model: nn.Module, preprocess: Preprocess, data: VideoDataConfig, device: torch.device
) -> Callable[[Path], Tensor]:
    """How predict reads one video file: its sampled frames (and flow) through ``model``'s
    frozen backbone, ``(1, T, D * streams)``; a :class:`VideoError` for a bad file."""
    loads = [STREAMS[stream](data.indices) for stream in str(model.inputs).split("+")]
    embed: Callable[[Tensor], Tensor] = model.features  # type: ignore[assignment]

    def features(video: Path) -> Tensor:
        images = [load(video) for load in loads]  # (T, H, W, 3) per stream
        with torch.inference_mode():
            return torch.cat([
                embed(preprocess.frames_to_tensor(x).unsqueeze(0).to(device)) for x in images
            ], dim=2)  # fmt: skip  # (1, T, D * streams)

    return features


register_task(VideoCaptioningTask())
