"""Image captioning as a task: one image in, a sentence out.

Training builds the vocabulary from the training captions, caches backbone features when the
backbone is frozen (pooled vectors, or grids for attention), trains with teacher forcing and
checks the validation split every epoch (greedy captions, BLEU-4 and CIDEr-D; ``best/`` is the
best validation CIDEr-D). ``evaluate`` captions a split with beam search, scores it with
pycocoevalcap against all references and reports two baselines beside the model: the most
frequent training caption for every image, and the caption of the nearest training image in
feature space. ``predict`` captions any images and can draw attention maps.
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

from lrcn.backbones import Preprocess
from lrcn.checkpoint import Bundle
from lrcn.config import ConfigError, DecodeConfig, TrainConfig
from lrcn.data.captions import CaptionDataConfig, CaptionPairs, collate_pairs, read_caption_split
from lrcn.data.formats.captions import CaptionItem, CaptionSplit
from lrcn.data.items import Problem
from lrcn.data.video_io import VideoError, read_image
from lrcn.data.vocab import Vocabulary
from lrcn.decoding import BeamResult, beam_search
from lrcn.export.graphs import ExportPlan, Graph, example_pixels, example_step
from lrcn.models.captioning import (
    CaptioningExtras,
    CaptionModelConfig,
    ImageCaptioner,
    caption_loss,
    real_tokens,
)
from lrcn.tasks._common import cached_image_features, feature_cache, resolve_device
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
    Echo,
    Log,
    Prepared,
    Progress,
    TaskConfig,
    TaskOption,
    TrainingSetup,
    register_task,
)
from lrcn.tasks.retrieval import (
    check_folds,
    generative_scores,
    render_retrieval,
    retrieval_summary,
)

Source = Callable[[int], Tensor]  # item index -> features or a preprocessed image

__all__ = ["CaptioningConfig", "CaptioningTask", "caption_items"]


# Images decoded together by predict: all their beams share each step's batch (a server's
# micro-batch of requests becomes one such batch).
_PREDICT_BATCH = 32


class CaptioningConfig(TaskConfig):
    """A whole image-captioning experiment."""

    task: Literal["captioning"]
    data: CaptionDataConfig
    model: CaptionModelConfig
    train: TrainConfig = Field(default_factory=TrainConfig)
    decode: DecodeConfig = Field(default_factory=DecodeConfig)


def _report_conversions(notes: list[str], log: Log) -> list[str]:
    """Log how many images were not RGB (converted), and return the notes for the report."""
    if notes:
        log(f"note: converted {len(notes)} non-RGB images to RGB, e.g. {notes[0]}")
    return sorted(set(notes))


# --------------------------------------------------------------------------------------------
# Inputs: cached features or images
# --------------------------------------------------------------------------------------------


def _sources(
    config: CaptioningConfig,
    model: ImageCaptioner,
    items: Sequence[CaptionItem],
    device: torch.device,
    skipped: list[Problem],
    log: Log,
    train: bool,
    notes: list[str],
    progress: Progress | None = None,
) -> tuple[list[CaptionItem], Source, bool]:
    """Usable items and a function giving each one's model input; True when it is features.
    Images converted to RGB on the way are recorded in ``notes``."""
    if model.freeze_backbone:
        kept, by_path = cached_image_features(
            config, model, items, device, skipped, log, progress, notes
        )
        return kept, lambda i: by_path(kept[i].image), True  # (P, D) or (D,)
    preprocess = model.backbone.preprocess
    kept = []
    for item in items:
        try:
            read_image(item.image, notes)
            kept.append(item)
        except VideoError as err:
            if config.data.on_error == "raise":
                raise
            skipped.append(Problem(str(item.image), str(err)))

    def image(i: int) -> Tensor:
        # Random crops in training; no flips: they would swap "left" and "right" in captions.
        offset = (float(np.random.random()), float(np.random.random())) if train else None
        return preprocess.frames_to_tensor(read_image(kept[i].image)[None], offset)[0]

    return kept, image, False


# --------------------------------------------------------------------------------------------
# Captioning many images
# --------------------------------------------------------------------------------------------


def caption_items(
    model: ImageCaptioner,
    source: Source,
    count: int,
    features: bool,
    vocab: Vocabulary,
    device: torch.device,
    beam_size: int,
    max_len: int,
    alpha: float = 0.0,
    n_best: int = 1,
    batch_size: int = 32,
    progress: Progress | None = None,
) -> BeamResult:
    """Decode ``count`` inputs in batches (all beams of a batch in one tensor)."""
    model.eval()
    return decode_batches(
        model.step,
        lambda inputs: model.init_state(
            torch.stack(inputs) if features else model.features(torch.stack(inputs))
        ),
        source, count, vocab, device, beam_size, max_len, alpha, n_best, batch_size, progress,
    )  # fmt: skip


# --------------------------------------------------------------------------------------------
# Baselines and attention plots
# --------------------------------------------------------------------------------------------


def _pooled(
    source: Source, count: int, features: bool, model: ImageCaptioner, device: torch.device
) -> Tensor:
    """One normalised feature vector per item, for the nearest-neighbour baseline."""
    rows = []
    with torch.inference_mode():
        for i in range(count):
            x = source(i)
            if not features:
                x = model.backbone(x.unsqueeze(0).to(device))[0].cpu()
            rows.append(x.mean(dim=0) if x.dim() == 2 else x)  # grids: mean over positions
    return torch.nn.functional.normalize(torch.stack(rows), dim=1)


def _generative_retrieval(
    model: ImageCaptioner,
    source: Source,
    items: Sequence[CaptionItem],
    features: bool,
    vocab: Vocabulary,
    device: torch.device,
    folds: int,
    split: str,
) -> dict[str, Any]:
    """R@K both ways with the captioner's log-likelihood of each sentence given each image as
    the score (LRCN paper, Flickr30k retrieval): no training beyond the captioner's."""
    with torch.inference_mode():
        inputs = [source(i) for i in range(len(items))]
        if not features:
            inputs = [model.features(x.unsqueeze(0).to(device))[0].cpu() for x in inputs]
    captions = [vocab.encode(list(c)) for item in items for c in item.captions]
    text_image = torch.tensor([n for n, item in enumerate(items) for _ in item.captions])
    scores = generative_scores(model, torch.stack(inputs), captions, device)
    return retrieval_summary(scores, text_image, folds, split)


def _draw_attention(
    model: ImageCaptioner,
    feats: Tensor,
    tokens: list[int],
    pixels: np.ndarray,
    preprocess: Preprocess,
    vocab: Vocabulary,
    out_dir: Path,
    image_path: Path,
) -> tuple[list[dict[str, Any]], Path]:
    """Re-run the decoder along the chosen words to collect α per word, and plot them; the
    words with their maps (side x side, over the crop the model saw) and the PNG."""
    from lrcn.plots import plot_attention, save_figure

    word = torch.tensor([vocab.start_id], device=feats.device)
    alphas, shown_tokens = [], []
    with torch.inference_mode():
        state = model.init_state(feats)
        for t in tokens:
            _, state = model.step(word, state)
            if t not in (vocab.start_id, vocab.pad_id):  # the words the caption shows
                alphas.append(state["alpha"][0].cpu())
                shown_tokens.append(t)
            word = torch.tensor([t], device=feats.device)
    if not alphas:  # nothing but special tokens: nothing to draw, say the last step's map
        alphas, shown_tokens = [state["alpha"][0].cpu()], [tokens[-1]]
    side = round(alphas[0].numel() ** 0.5)
    shown = preprocess.shown_crop(pixels)  # what the model saw
    words = [vocab.words[t] for t in shown_tokens]
    figure = plot_attention(shown, [a.view(side, -1).numpy() for a in alphas], words)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{image_path.stem}-attention.png"
    save_figure(figure, path)
    maps = [[[round(v, 4) for v in row] for row in a.view(side, -1).tolist()] for a in alphas]
    return [{"word": w, "map": m} for w, m in zip(words, maps, strict=True)], path


# --------------------------------------------------------------------------------------------
# The task
# --------------------------------------------------------------------------------------------


class CaptioningTask(SentenceTask[CaptioningConfig]):
    """One image in, a sentence out: Show-and-Tell, LRCN, Show-Attend-and-Tell."""

    name = "captioning"
    config_class = CaptioningConfig
    input_kind = "image"
    noun = "images"
    evaluate_options = (
        *SentenceTask.evaluate_options,
        TaskOption("retrieval", bool, "also rank the split's images for each "
                   "sentence, and sentences for each image, by the captioner's likelihood "
                   "(the LRCN paper's retrieval)"),
        TaskOption("folds", int, "score the split in N equal folds of images and "
                   "average (5 on COCO's 5000 test images = the 1k protocol)", min=1),
    )  # fmt: skip
    predict_options = (
        *SentenceTask.predict_options,
        TaskOption("attention", Path, "folder for attention PNGs (attention models)", output="dir"),
    )

    def prepare(self, config: CaptioningConfig, log: Log) -> Prepared:
        d = config.data
        return prepare_vocabulary(read_caption_split(d), d.root, d.min_count, "images", log)

    def training(
        self,
        config: CaptioningConfig,
        model: nn.Module,
        prepared: Prepared,
        device: torch.device,
        log: Log,
        progress: Progress | None,
    ) -> TrainingSetup:
        assert isinstance(model, ImageCaptioner)
        split: CaptionSplit = prepared.data
        vocab = prepared.extras.vocabulary()  # type: ignore[attr-defined]
        skipped: list[Problem] = []
        notes: list[str] = []
        train_items, train_source, features = _sources(
            config, model, split.train, device, skipped, log, True, notes, progress
        )
        val_items, val_source, _ = _sources(
            config, model, split.val, device, skipped, log, False, notes, progress
        )
        dataset = CaptionPairs(train_items, train_source, vocab, config.data.max_len)
        weight = getattr(config.model, "attention_regularization", 0.0)

        def loss(m: nn.Module, batch: dict[str, Any]) -> tuple[Tensor, int]:
            assert isinstance(m, ImageCaptioner)
            inputs, captions = batch["inputs"].to(device), batch["labels"].to(device)
            out = m.decoder(inputs if features else m.features(inputs), captions)
            tokens = real_tokens(captions, vocab.pad_id)  # what the loss is a mean over
            return caption_loss(out, captions, vocab.pad_id, weight), tokens

        references = references_of(val_items)

        def validate(m: nn.Module) -> dict[str, float]:
            assert isinstance(m, ImageCaptioner)
            source, count, gather = sharded(val_source, len(val_items))  # under torchrun
            result = caption_items(
                m, source, count, features, vocab, device, 1, config.decode.max_len
            )
            return validation_scores(gather(result), vocab, references)

        return TrainingSetup(
            train_set=dataset,
            collate=collate_pairs,
            loss=loss,
            validate=validate,
            sharded_validation=True,
            num_workers=0 if features else config.data.num_workers,
            report={
                "vocabulary": len(vocab),
                "train_images": len(train_items),
                "val_images": len(val_items),
                "test_images": len(split.test),
                "converted_to_rgb": _report_conversions(notes, log),
            },
            skipped=[p.problem for p in skipped],
        )

    def cache_features(
        self,
        config: CaptioningConfig,
        model: nn.Module,
        prepared: Prepared,
        device: torch.device,
        log: Log,
        progress: Progress | None,
    ) -> dict[str, Any]:
        assert isinstance(model, ImageCaptioner)
        split: CaptionSplit = prepared.data
        skipped: list[Problem] = list(split.skipped)
        items = split.train + split.val + split.test
        kept, _, _ = _sources(config, model, items, device, skipped, log, False, [], progress)
        cache = feature_cache(config, model.backbone, model.feature_kind)
        return {
            "cache": str(cache.folder),
            "inputs": len(kept),
            "frames": len(kept),
            "skipped": sorted({p.problem for p in skipped}),
        }

    def evaluate(
        self,
        bundle: Bundle,
        config: CaptioningConfig,
        split: str,
        options: dict[str, Any],
        out: Path,
        log: Log,
        progress: Progress | None,
    ) -> dict[str, Any]:
        """Caption a split with beam search; score it and two baselines with pycocoevalcap."""
        folds = int(options.get("folds") or 1)
        if options.get("folds") and not options.get("retrieval"):
            raise ConfigError("--folds", "is an option of --retrieval", expected="--retrieval")
        vocab = bundle.extras_as(CaptioningExtras).vocabulary()
        device = resolve_device(config.train.device)
        model = bundle.model.to(device)
        assert isinstance(model, ImageCaptioner)
        data = read_caption_split(config.data)
        skipped: list[Problem] = list(data.skipped)
        notes: list[str] = []
        items, source, features = _sources(
            config, model, data.split(split), device, skipped, log, False, notes, progress
        )
        train_items, train_source, _ = _sources(
            config, model, data.train, device, skipped, log, False, notes, progress
        )
        if options.get("retrieval"):
            check_folds(len(items), folds, split)  # before the long caption pass
        d = config.decode
        beam = options.get("beam") or d.beam_size
        result = caption_items(
            model, source, len(items), features, vocab, device, beam, d.max_len,
            d.length_penalty, progress=progress,
        )  # fmt: skip
        scores = score_captions(
            items, [str(item.image) for item in items], result, vocab,
            _pooled(source, len(items), features, model, device), train_items,
            _pooled(train_source, len(train_items), features, model, device), out, "image",
        )  # fmt: skip
        summary = {
            "split": split,
            "epoch": bundle.epoch,
            "images": len(items),
            "beam_size": beam,
            **scores,
            "converted_to_rgb": _report_conversions(notes, log),
            "skipped": sorted({p.problem for p in skipped}),
            "outputs": {
                "metrics": str(out / "metrics.json"),
                "captions": str(out / "captions.csv"),
            },
        }
        if options.get("retrieval"):
            summary["retrieval"] = _generative_retrieval(
                model, source, items, features, vocab, device, folds, split,
            )  # fmt: skip
        (out / "metrics.json").write_text(json.dumps(summary, indent=1))
        return summary

    def render_evaluation(self, summary: dict[str, Any], echo: Echo) -> None:
        super().render_evaluation(summary, echo)
        if "retrieval" in summary:
            echo("generative retrieval (sentences ranked by log-likelihood under the captioner):")
            render_retrieval(summary["retrieval"], echo)

    def predict(
        self,
        bundle: Bundle,
        config: CaptioningConfig,
        inputs: Sequence[Path],
        options: dict[str, Any],
    ) -> list[dict[str, Any]]:
        """Caption each image (beam search). With ``attention``, an attention model also saves
        ``<image>-attention.png``: the image and, per word, the attention map laid over it."""
        vocab = bundle.extras_as(CaptioningExtras).vocabulary()
        device = resolve_device("auto")
        # an ImageCaptioner, or its export behind the same methods
        model = cast(ImageCaptioner, bundle.model.to(device).eval())
        beam = options.get("beam") or config.decode.beam_size
        n_best = min(options.get("n_best", 1), beam)
        attention_dir = options.get("attention")
        if attention_dir is not None and model.feature_kind != "grid":
            raise ConfigError(
                "--attention",
                f"needs an attention model; {config.model.name} has no attention",
                expected="a show_attend_tell run",
            )
        results: dict[int, dict[str, Any]] = {}
        images: dict[int, np.ndarray] = {}
        for i, path in enumerate(inputs):
            try:
                images[i] = read_image(Path(path))
            except VideoError as err:
                results[i] = {"input": str(path), "error": str(err)}
        readable = list(images)
        for first in range(0, len(readable), _PREDICT_BATCH):  # all their beams in one batch
            chunk = readable[first : first + _PREDICT_BATCH]
            x = torch.cat([bundle.preprocess.frames_to_tensor(images[i][None]) for i in chunk])
            with torch.inference_mode():
                feats = model.features(x.to(device))  # (N, ...)
                found = beam_search(
                    model.step, model.init_state(feats), len(chunk), vocab.start_id,
                    vocab.end_id, beam, config.decode.max_len, config.decode.length_penalty,
                    n_best,
                )  # fmt: skip
            for row, i in enumerate(chunk):
                hyps = found.hypotheses[row]
                entry = prediction(str(inputs[i]), hyps, vocab)
                if attention_dir is not None:
                    words, path = _draw_attention(
                        model, feats[row : row + 1], hyps[0].tokens, images[i],
                        bundle.preprocess, vocab, Path(attention_dir), Path(inputs[i]),
                    )  # fmt: skip
                    entry["attention"] = str(path)
                    entry["attention_words"] = words
                results[i] = entry
        return [results[i] for i in range(len(inputs))]

    def export_plan(self, bundle: Bundle, config: CaptioningConfig, batch: int) -> ExportPlan:
        """The encoder, the decoder's first state, and one decoding step with the state as
        inputs and outputs: the beam search drives the step graph as it drives the model."""
        model = bundle.model
        vocab_size = len(bundle.extras_as(CaptioningExtras).vocab.words)
        images = example_pixels(bundle.preprocess, batch)  # (B, 3, S, S)
        with torch.no_grad():
            feats = model.features(images)  # type: ignore[operator]
            start = model.init_state(feats)  # type: ignore[operator]
        return ExportPlan(
            [Graph("features", (images,)), Graph("init_state", (feats,)),
             example_step(model, start, vocab_size)],
            {"feature_kind": str(getattr(model, "feature_kind", "pooled"))},
        )  # fmt: skip


register_task(CaptioningTask())
