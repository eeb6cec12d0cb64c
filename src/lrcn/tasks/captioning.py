"""Image captioning end to end: train, evaluate and predict, one function per CLI command.

``train`` builds the vocabulary from the training captions, caches backbone features when
the backbone is frozen (pooled vectors, or grids for attention), trains with teacher forcing
and checks the validation split every epoch (greedy captions, BLEU-4 and CIDEr-D; ``best/`` is
the best CIDEr-D). ``evaluate`` captions the test split with beam search, scores it with
pycocoevalcap against all references and reports two baselines beside the model: the most
frequent training caption for every image, and the caption of the nearest training image in
feature space. ``predict`` captions any images and can draw attention maps.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from lrcn.backbones import BACKBONE_KEYS, Preprocess, backbone_from_config
from lrcn.checkpoint import BundleError, load_bundle, save_bundle
from lrcn.config import (
    CaptionDataConfig,
    CaptioningConfig,
    ConfigError,
    TaskConfig,
    apply_overrides,
    validate_config,
)
from lrcn.data.formats.captions import (
    CaptionItem,
    CaptionSplit,
    read_coco_captions,
    read_flickr8k,
    read_karpathy_json,
)
from lrcn.data.items import DataError, Problem
from lrcn.data.video_io import VideoError, read_image
from lrcn.data.vocab import Vocabulary
from lrcn.decoding import BeamResult, beam_search
from lrcn.models import create_model
from lrcn.models.captioning import ImageCaptioner, caption_loss
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
Source = Callable[[int], Tensor]  # item index -> features or a preprocessed image

__all__ = ["build_model", "evaluate", "predict", "read_split", "train"]

_MODEL_ONLY_KEYS = ("name", *BACKBONE_KEYS, "attention_regularization")


def as_captioning(config: TaskConfig) -> CaptioningConfig:
    """``config`` as a captioning config, or a clear error naming its task."""
    return expect_task(config, CaptioningConfig, "captioning")


def build_model(config: dict[str, Any], vocab_size: int, pretrained: bool = True) -> ImageCaptioner:
    """The captioner a config describes (backbone weights skipped with ``pretrained=False``)."""
    m = config["model"]
    backbone = backbone_from_config(m, pretrained)
    kwargs = {k: v for k, v in m.items() if k not in _MODEL_ONLY_KEYS}
    model = create_model(m["name"], backbone=backbone, vocab_size=vocab_size, **kwargs)
    assert isinstance(model, ImageCaptioner)
    return model


def read_split(data: CaptionDataConfig) -> CaptionSplit:
    """The configured captions, per split."""
    if data.format == "flickr8k":
        return read_flickr8k(data.root, data.on_error)
    if data.annotations is None:
        raise ConfigError(f"data.annotations is required for format {data.format!r}")
    if data.format == "karpathy":
        return read_karpathy_json(data.annotations, data.root, data.on_error)
    if data.val_annotations is None or data.val_root is None:
        raise ConfigError("format 'coco' needs data.val_annotations and data.val_root too")
    return read_coco_captions(
        data.annotations, data.root, data.val_annotations, data.val_root, on_error=data.on_error
    )


def _bundle_vocab(bundle: Any) -> Vocabulary:
    """The vocabulary stored in a bundle, checked against its fingerprint."""
    try:
        return Vocabulary.from_dict(bundle.metadata["vocab"])
    except (KeyError, ValueError) as err:
        raise BundleError(f"{bundle.path / 'bundle.json'}: vocabulary: {err}") from None


def _report_conversions(notes: list[str], log: Log) -> list[str]:
    """Log how many images were not RGB (converted), and return the notes for the report."""
    if notes:
        log(f"note: converted {len(notes)} non-RGB images to RGB, e.g. {notes[0]}")
    return sorted(set(notes))


def _image_loader(notes: list[str]) -> Callable[[Path], np.ndarray]:
    """Images as one-frame clips ``(1, H, W, 3)``, noting every conversion to RGB."""
    return lambda path: read_image(path, notes)[None]


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
) -> tuple[list[CaptionItem], Source, bool]:
    """Usable items and a function giving each one's model input; True when it is features.
    Images converted to RGB on the way are recorded in ``notes``."""
    if model.freeze_backbone:
        cache = feature_cache(config, model.backbone, model.feature_kind)
        missing = cache.missing([item.image for item in items])
        if missing:
            log(
                f"extracting {model.backbone.name} features of {len(missing)} images "
                f"into {cache.folder}"
            )
            skipped += cache.extract(
                missing,
                model.backbone,
                model.feature_kind,
                device,
                on_error=config.data.on_error,
                load_frames=_image_loader(notes),
            )
        kept = [item for item in items if cache.has(item.image)]

        def features(i: int) -> Tensor:
            array = torch.from_numpy(np.asarray(cache.load(kept[i].image), dtype=np.float32))[0]
            return array.flatten(1).transpose(0, 1) if array.dim() == 3 else array  # (P, D) or (D,)

        return kept, features, True
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


class CaptionPairs(Dataset):
    """Every (image, reference caption) pair: ``(input, ids (L,))``."""

    def __init__(
        self, items: Sequence[CaptionItem], source: Source, vocab: Vocabulary, max_len: int
    ) -> None:
        self.source = source
        self.pairs = [
            (i, vocab.encode(list(c[:max_len])))
            for i, item in enumerate(items)
            for c in item.captions
        ]

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> tuple[Tensor, list[int]]:
        i, ids = self.pairs[index]
        return self.source(i), ids


def collate_pairs(batch: list[tuple[Tensor, list[int]]]) -> dict[str, Any]:
    longest = max(len(ids) for _, ids in batch)
    captions = torch.zeros(len(batch), longest, dtype=torch.long)  # <pad> = 0
    for row, (_, ids) in enumerate(batch):
        captions[row, : len(ids)] = torch.tensor(ids)
    return {"inputs": torch.stack([x for x, _ in batch]), "labels": captions, "skipped": []}


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
    hypotheses = []
    with torch.inference_mode():
        for start in range(0, count, batch_size):
            batch = torch.stack(
                [source(i) for i in range(start, min(count, start + batch_size))]
            ).to(device)
            feats = batch if features else model.features(batch)
            result = beam_search(
                model.step,
                model.init_state(feats),
                len(batch),
                vocab.start_id,
                vocab.end_id,
                beam_size,
                max_len,
                alpha,
                n_best,
            )
            hypotheses += result.hypotheses
            if progress is not None:
                progress("captioning", min(count, start + batch_size), count)
    return BeamResult(hypotheses)


def _texts(result: BeamResult, vocab: Vocabulary) -> list[str]:
    return [" ".join(vocab.decode(tokens)) for tokens in result.best()]


def _references(items: Sequence[CaptionItem]) -> dict[str, list[str]]:
    return {str(i): [" ".join(c) for c in item.captions] for i, item in enumerate(items)}


# --------------------------------------------------------------------------------------------
# train
# --------------------------------------------------------------------------------------------


def train(
    config: CaptioningConfig | None,
    run_dir: str | Path,
    resume: bool = False,
    log: Log = print,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Train (or resume) a captioning run; returns its report."""
    run, task_config = open_run(run_dir, config, resume)
    config = as_captioning(task_config)
    config_dict = config.model_dump(mode="json")
    split = read_split(config.data)
    if not split.train or not split.val:
        raise DataError(
            config.data.root,
            f"{len(split.train)} training and {len(split.val)} validation images; both must be > 0",
        )
    vocab = Vocabulary.build(
        (c for item in split.train for c in item.captions), config.data.min_count
    )
    log(
        f"vocabulary: {len(vocab)} words (min count {config.data.min_count}) "
        f"from {len(split.train)} training images"
    )
    device = resolve_device(config.train.device)
    torch.manual_seed(config.train.seed)
    model = build_model(config_dict, len(vocab)).to(device)
    skipped: list[Problem] = list(split.skipped)
    notes: list[str] = []
    train_items, train_source, features = _sources(
        config, model, split.train, device, skipped, log, train=True, notes=notes
    )
    val_items, val_source, _ = _sources(
        config, model, split.val, device, skipped, log, train=False, notes=notes
    )
    dataset = CaptionPairs(train_items, train_source, vocab, config.data.max_len)
    weight = getattr(config.model, "attention_regularization", 0.0)

    def loss_fn(m: nn.Module, batch: dict[str, Any]) -> tuple[Tensor, int]:
        assert isinstance(m, ImageCaptioner)
        inputs, captions = batch["inputs"].to(device), batch["labels"].to(device)
        out = m.decoder(inputs if features else m.features(inputs), captions)
        return caption_loss(out, captions, vocab.pad_id, weight), len(captions)

    references = _references(val_items)

    def validate(m: nn.Module) -> dict[str, float]:
        assert isinstance(m, ImageCaptioner)
        result = caption_items(
            m, val_source, len(val_items), features, vocab, device, 1, config.decode.max_len
        )
        texts = _texts(result, vocab)
        from lrcn.metrics.captioning import caption_metrics

        scores = caption_metrics(references, {str(i): t for i, t in enumerate(texts)}, full=False)
        return {"val_bleu4": scores["bleu4"], "val_cider": scores["cider"]}

    optimizer = make_optimizer(config, model)
    scheduler = make_scheduler(config, optimizer)
    extra_meta = {"vocab": vocab.to_dict()}

    def bundle_to(folder: Path, extra: dict[str, Any]) -> None:
        save_bundle(folder, model, config_dict, [], model.backbone.preprocess, extra_meta | extra)

    recorder = RunRecorder(
        run,
        bundle_to,
        "val_cider",
        optimizer,
        scheduler,
        f"{config.model.name} on {Path(config.data.root).name}",
        log,
        config.train.epochs,
    )
    start_epoch = recorder.resume(model, device) if resume else 0
    t = config.train
    settings = LoopSettings(
        t.epochs,
        t.batch_size,
        t.seed,
        t.grad_clip,
        t.amp,
        num_workers=0 if features else config.data.num_workers,
        eval_every=t.eval_every,
    )
    fit(
        model=model,
        train_set=dataset,
        collate=collate_pairs,
        loss_fn=loss_fn,
        optimizer=optimizer,
        scheduler=scheduler,
        settings=settings,
        device=device,
        evaluate=validate,
        start_epoch=start_epoch,
        on_epoch_end=[recorder],
        progress=progress,
    )
    report = {
        "run": str(run),
        "vocabulary": len(vocab),
        "train_images": len(train_items),
        "val_images": len(val_items),
        "skipped": sorted({p.problem for p in skipped}),
        "converted_to_rgb": _report_conversions(notes, log),
        "best_val_cider": recorder.best,
        "final": recorder.history[-1]["metrics"] if recorder.history else {},
    }
    recorder.write_report(report)
    return report | {"summary": f"best validation CIDEr-D {recorder.best:.3f}; run folder {run}"}


# --------------------------------------------------------------------------------------------
# evaluate
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


def evaluate(
    run_dir: str | Path,
    overrides: list[str] | None = None,
    which: str = "best",
    split: str = "test",
    out_dir: str | Path | None = None,
    log: Log = print,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Caption a split with beam search; score it and two baselines with pycocoevalcap."""
    from lrcn.metrics.captioning import caption_metrics

    bundle = load_bundle(run_dir, which=which)
    config = as_captioning(
        validate_config(
            apply_overrides(bundle.config, overrides or []), source=f"{bundle.path}/bundle.json"
        )
    )
    vocab = _bundle_vocab(bundle)
    device = resolve_device(config.train.device)
    model = bundle.model.to(device)
    assert isinstance(model, ImageCaptioner)
    data = read_split(config.data)
    skipped: list[Problem] = list(data.skipped)
    notes: list[str] = []
    items, source, features = _sources(
        config, model, data.split(split), device, skipped, log, train=False, notes=notes
    )
    train_items, train_source, _ = _sources(
        config, model, data.train, device, skipped, log, train=False, notes=notes
    )
    d = config.decode
    result = caption_items(
        model,
        source,
        len(items),
        features,
        vocab,
        device,
        d.beam_size,
        d.max_len,
        d.length_penalty,
        progress=progress,
    )
    texts = _texts(result, vocab)
    references = _references(items)
    scores = {"model": caption_metrics(references, {str(i): t for i, t in enumerate(texts)})}
    # Baselines: what a captioner gets without learning to describe the image.
    frequent = Counter(" ".join(c) for item in train_items for c in item.captions).most_common(1)[
        0
    ][0]
    scores["most_frequent_caption"] = caption_metrics(
        references, {str(i): frequent for i in range(len(items))}
    )
    similarity = (
        _pooled(source, len(items), features, model, device)
        @ _pooled(train_source, len(train_items), features, model, device).T
    )
    neighbours = similarity.argmax(dim=1).tolist()
    nearest = {str(i): " ".join(train_items[j].captions[0]) for i, j in enumerate(neighbours)}
    scores["nearest_neighbour"] = caption_metrics(references, nearest)

    out = Path(out_dir) if out_dir else Path(run_dir) / f"eval-{which}-{split}"
    out.mkdir(parents=True, exist_ok=True)
    with (out / "captions.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["image", "caption", "log_prob", "nearest_neighbour_caption", "references"])
        for i, item in enumerate(items):
            hyp = result.hypotheses[i][0]
            writer.writerow(
                [
                    str(item.image),
                    texts[i],
                    f"{hyp.log_prob:.3f}",
                    nearest[str(i)],
                    " | ".join(references[str(i)]),
                ]
            )
    summary = {
        "split": split,
        "images": len(items),
        "beam_size": d.beam_size,
        **scores,
        "converted_to_rgb": _report_conversions(notes, log),
        "skipped": sorted({p.problem for p in skipped}),
        "outputs": {"metrics": str(out / "metrics.json"), "captions": str(out / "captions.csv")},
    }
    (out / "metrics.json").write_text(json.dumps(summary, indent=1))
    return summary


# --------------------------------------------------------------------------------------------
# predict
# --------------------------------------------------------------------------------------------


def predict(
    run_dir: str | Path,
    images: Sequence[str | Path],
    beam_size: int | None = None,
    n_best: int = 1,
    which: str = "best",
    attention_dir: str | Path | None = None,
    device: str = "auto",
) -> list[dict[str, Any]]:
    """Caption each image (beam search). With ``attention_dir``, an attention model also saves
    ``<image>-attention.png``: the image and, per word, the attention map laid over it."""
    bundle = load_bundle(run_dir, which=which)
    config = as_captioning(validate_config(bundle.config))
    vocab = _bundle_vocab(bundle)
    dev = resolve_device(device)
    model = bundle.model.to(dev).eval()
    assert isinstance(model, ImageCaptioner)
    beam = beam_size or config.decode.beam_size
    if attention_dir is not None and model.feature_kind != "grid":
        raise ConfigError(
            f"--attention needs an attention model; {config.model.name} has no attention"
        )
    results: list[dict[str, Any]] = []
    for path in images:
        try:
            pixels = read_image(Path(path))
        except VideoError as err:
            results.append({"image": str(path), "error": str(err)})
            continue
        x = bundle.preprocess.frames_to_tensor(pixels[None]).to(dev)  # (1, 3, S, S)
        with torch.inference_mode():
            feats = model.features(x)
            out = beam_search(
                model.step,
                model.init_state(feats),
                1,
                vocab.start_id,
                vocab.end_id,
                beam,
                config.decode.max_len,
                config.decode.length_penalty,
                min(n_best, beam),
            )
        hyps = out.hypotheses[0]
        entry: dict[str, Any] = {
            "image": str(path),
            "caption": " ".join(vocab.decode(hyps[0].tokens)),
            "n_best": [
                {"caption": " ".join(vocab.decode(h.tokens)), "log_prob": round(h.log_prob, 4)}
                for h in hyps
            ],
        }
        if attention_dir is not None:
            entry["attention"] = str(
                _draw_attention(
                    model,
                    feats,
                    hyps[0].tokens,
                    pixels,
                    bundle.preprocess,
                    vocab,
                    Path(attention_dir),
                    Path(path),
                )
            )
        results.append(entry)
    return results


def _draw_attention(
    model: ImageCaptioner,
    feats: Tensor,
    tokens: list[int],
    pixels: np.ndarray,
    preprocess: Preprocess,
    vocab: Vocabulary,
    out_dir: Path,
    image_path: Path,
) -> Path:
    """Re-run the decoder along the chosen words to collect α per word, and plot them."""
    from lrcn.plots import plot_attention, save_figure

    word = torch.tensor([vocab.start_id], device=feats.device)
    alphas = []
    with torch.inference_mode():
        state = model.init_state(feats)
        for t in tokens:
            _, state = model.step(word, state)
            alphas.append(state["alpha"][0].cpu())
            word = torch.tensor([t], device=feats.device)
    side = round(alphas[0].numel() ** 0.5)
    crop = preprocess.frames_to_tensor(pixels[None])[0]  # what the model saw, normalised
    mean, std = (
        torch.tensor(preprocess.mean).view(3, 1, 1),
        torch.tensor(preprocess.std).view(3, 1, 1),
    )
    shown = ((crop * std + mean).clamp(0, 1).permute(1, 2, 0).numpy() * 255).astype(np.uint8)
    words = [vocab.words[t] for t in tokens]
    figure = plot_attention(shown, [a.view(side, -1).numpy() for a in alphas], words)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{image_path.stem}-attention.png"
    save_figure(figure, path)
    return path
