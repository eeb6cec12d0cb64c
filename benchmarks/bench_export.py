"""Eager PyTorch against the ONNX Runtime engine, through lrcn's own path.

Both engines run the same code: the eager model, or the graphs ``lrcn export`` wrote, behind the
same methods (:class:`lrcn.export.engine.ExportedModel`). Models at the sizes of
``configs/ucf101_lrcn_rgb.yaml`` (EfficientNet-Lite0 + LSTM 256 over 16 frames, here at 112x112
as in PERF-NOTES) and ``configs/flickr8k_show_attend_tell.yaml`` (Lite0's 7x7x1280 grid at 224,
512/512/512, a 10k vocabulary, beam 3, 20 words), with the pretrained backbone and untrained
heads (the speed does not depend on the weights' values). Each row checks that the two engines
agree: the largest difference of the clip scores, or whether the captions are identical.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import torch

from common import best_ms
from lrcn.checkpoint import load_bundle, save_bundle
from lrcn.data.vocab import SPECIALS, Vocabulary
from lrcn.decoding import beam_search
from lrcn.export.graphs import example_pixels
from lrcn.export.writer import export_bundle
from lrcn.models import build_model
from lrcn.models.activity import ActivityExtras
from lrcn.models.captioning import CaptioningExtras

Row = dict[str, float | str]

HEADER = (
    "Eager PyTorch (inference mode) against ONNX Runtime, both through lrcn's own path: the "
    "task's model methods, or the exported graphs behind the same methods. **Activity**: LRCN "
    "(EfficientNet-Lite0 + LSTM 256) on 16-frame clips at 112x112, and its head alone on "
    "cached features; **caption**: Show-Attend-Tell at the Flickr8k config's sizes (224, grid "
    "7x7x1280, 512/512/512, vocabulary 10k), features + batched beam search (beam 3, 20 "
    "words). Best of a few runs; the last column checks that the engines agree."
)

ACTIVITY = {
    "task": "activity",
    "data": {"format": "ucf101", "root": "UCF-101", "clip_len": 16},
    "model": {"name": "lrcn", "backbone": "efficientnet_lite0", "image_size": 112,
              "hidden_size": 256, "dropout": 0.5},
    "train": {"device": "cpu"},
}  # fmt: skip
CAPTION = {
    "task": "captioning",
    "data": {"format": "flickr8k", "root": "Flickr8k"},
    "model": {"name": "show_attend_tell", "backbone": "efficientnet_lite0", "image_size": 224,
              "embed_size": 512, "hidden_size": 512, "attention_size": 512, "dropout": 0.5},
    "train": {"device": "cpu"},
    "decode": {"beam_size": 3, "max_len": 20},
}  # fmt: skip


def _exported(config: dict, extras, folder: Path):  # -> (eager Bundle, onnx Bundle, seconds)
    torch.manual_seed(0)
    model = build_model(config["model"], extras)
    save_bundle(folder / "best", model, config, extras, model.backbone.preprocess)
    start = time.perf_counter()
    export_bundle(folder, "onnx", log=lambda _: None)
    seconds = time.perf_counter() - start
    return load_bundle(folder), load_bundle(folder, engine="onnxruntime"), seconds


def _pair(name: str, batch: int, eager_fn, onnx_fn, repeats: int, agree: str) -> Row:
    eager = best_ms(eager_fn, repeats)
    onnx = best_ms(onnx_fn, repeats)
    return {"what": name, "batch": batch, "eager_ms": eager, "onnx_ms": onnx,
            "speedup": eager / onnx, "agree": agree}  # fmt: skip


def _activity(folder: Path, quick: bool) -> tuple[list[Row], float]:
    classes = ActivityExtras(classes=[f"c{i}" for i in range(101)])
    eager, onnx, seconds = _exported(ACTIVITY, classes, folder)
    rows = []
    for batch in (1, 4) if quick else (1, 32):
        clips = example_pixels(eager.preprocess, batch * 16).view(batch, 16, 3, 112, 112)
        with torch.inference_mode():
            ref = eager.model(clips).probs
            features = eager.model.forward_features(clips)
        diff = float((ref - onnx.model(clips).probs).abs().max())
        rows.append(_pair("activity clip", batch, lambda: _eager(eager.model, clips),
                          lambda: onnx.model(clips), 1 if batch > 4 else 3,
                          f"max diff {diff:.1e}"))  # fmt: skip
        head = _eager(eager.model.forward_head, features).probs
        hdiff = float((head - onnx.model.forward_head(features).probs).abs().max())
        rows.append(_pair("activity head on features", batch,
                          lambda: _eager(eager.model.forward_head, features),
                          lambda: onnx.model.forward_head(features), 20,
                          f"max diff {hdiff:.1e}"))  # fmt: skip
    return rows, seconds


def _eager(fn, *args):
    with torch.inference_mode():
        return fn(*args)


def _caption(folder: Path, quick: bool) -> tuple[list[Row], float]:
    vocab = Vocabulary([*SPECIALS, *(f"w{i}" for i in range(10_000 - len(SPECIALS)))])
    eager, onnx, seconds = _exported(CAPTION, CaptioningExtras.of(vocab), folder)
    rows = []
    for batch in (1, 4) if quick else (1, 32):
        images = example_pixels(eager.preprocess, batch)

        def caption(model, images=images, batch=batch):
            with torch.inference_mode():
                state = model.init_state(model.features(images))
                return beam_search(model.step, state, batch, vocab.start_id, vocab.end_id, 3, 20)

        same = caption(eager.model).best() == caption(onnx.model).best()
        rows.append(_pair("caption (features + beam 3)", batch, lambda: caption(eager.model),
                          lambda: caption(onnx.model), 1 if batch > 4 else 3,
                          "identical captions" if same else "CAPTIONS DIFFER"))  # fmt: skip
    return rows, seconds


def run(quick: bool = False) -> list[Row]:
    torch.set_num_threads(torch.get_num_threads())
    with tempfile.TemporaryDirectory() as tmp:
        activity, a_seconds = _activity(Path(tmp) / "activity", quick)
        caption, c_seconds = _caption(Path(tmp) / "caption", quick)
    rows = activity + caption
    for row in rows:
        print(f"  {row['what']:<30} batch {row['batch']:>2}: eager {row['eager_ms']:8.1f} ms  "
              f"onnx {row['onnx_ms']:8.1f} ms  {row['speedup']:.2f}x  {row['agree']}")  # fmt: skip
    print(f"  export + parity check: activity {a_seconds:.0f} s, caption {c_seconds:.0f} s")
    return rows


def table(rows: list[Row]) -> str:
    lines = [
        "| what | batch | eager ms | ONNX Runtime ms | speed-up | engines agree |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        lines.append(f"| {r['what']} | {r['batch']} | {r['eager_ms']:.1f} | {r['onnx_ms']:.1f} "
                     f"| {r['speedup']:.2f}x | {r['agree']} |")  # fmt: skip
    return "\n".join(lines)
