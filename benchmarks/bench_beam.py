"""Beam search: all images and beams in one tensor against a loop over images.

The LRCN factored captioner at a real size (vocabulary 10,000, embedding and hidden 512),
20 steps, beam 5, 32 images. The loop calls the same beam search one image at a time; both
must produce the same captions. Also: end-to-end latency of captioning one photo (decode the
JPEG, preprocess, EfficientNet-Lite0, beam search).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import torch

from common import best_ms
from lrcn.backbones import create_backbone
from lrcn.decoding import beam_search
from lrcn.models import create_model

VOCAB, HIDDEN, IMAGES, BEAM, STEPS = 10_000, 512, 32, 5, 20


def run(quick: bool = False) -> list[dict[str, float | str]]:
    torch.manual_seed(0)
    images = 8 if quick else IMAGES
    model = create_model(
        "lrcn_captioner",
        backbone=create_backbone("efficientnet_lite0"),
        vocab_size=VOCAB,
        embed_size=HIDDEN,
        hidden_size=HIDDEN,
    ).eval()
    features = torch.randn(images, model.backbone.out_features)

    def batched():
        with torch.inference_mode():
            return beam_search(
                model.step, model.init_state(features), images, 1, 2, BEAM, STEPS
            ).best()

    def looped():
        with torch.inference_mode():
            out = []
            for i in range(images):
                one = features[i : i + 1]
                out += beam_search(model.step, model.init_state(one), 1, 1, 2, BEAM, STEPS).best()
            return out

    if batched() != looped():
        raise AssertionError("batched and per-image beam search disagree")
    fast = best_ms(batched, 3)
    slow = best_ms(looped, 2 if quick else 3)
    rows: list[dict[str, float | str]] = [
        {"what": f"per-image loop, {images} images (baseline)", "ms": slow, "ratio": 1.0},
        {
            "what": f"batched, {images} images x {BEAM} beams in one tensor",
            "ms": fast,
            "ratio": slow / fast,
        },
    ]
    # Latency for one photo through the public predict path (JPEG -> caption).
    from PIL import Image

    from lrcn.checkpoint import save_bundle
    from lrcn.data.vocab import SPECIALS, Vocabulary
    from lrcn.models.captioning import CaptioningExtras
    from lrcn.tasks import predict_run

    with tempfile.TemporaryDirectory() as tmp:
        photo = Path(tmp) / "photo.jpg"
        Image.fromarray(
            np.random.default_rng(0).integers(0, 255, (375, 500, 3), dtype=np.uint8)
        ).save(photo)
        vocab = Vocabulary([*SPECIALS, *(f"w{i}" for i in range(VOCAB - len(SPECIALS)))])
        config = {
            "task": "captioning",
            "data": {"format": "flickr8k", "root": tmp},
            "model": {
                "name": "lrcn_captioner",
                "backbone": "efficientnet_lite0",
                "embed_size": HIDDEN,
                "hidden_size": HIDDEN,
            },
            "train": {"device": "cpu"},
            "decode": {"beam_size": BEAM, "max_len": STEPS},
        }
        save_bundle(
            Path(tmp) / "bundle",
            model,
            config,
            CaptioningExtras.of(vocab),
            model.backbone.preprocess,
        )
        latency = best_ms(lambda: predict_run(Path(tmp) / "bundle", [photo]), 3)
    rows.append(
        {
            "what": "one photo, end to end (load bundle, JPEG, CNN 224, beam 5)",
            "ms": latency,
            "ratio": float("nan"),
        }
    )
    for r in rows:
        print(_format(r), flush=True)
    return rows


HEADER = (
    "| beam search (vocab 10k, hidden 512, 20 steps, beam 5) | ms | speed-up |\n|---|---:|---:|"
)


def _format(r: dict[str, float | str]) -> str:
    ratio = float(r["ratio"])
    return f"| {r['what']} | {float(r['ms']):.0f} | {'' if ratio != ratio else f'{ratio:.1f}×'} |"


def table(rows: list[dict[str, float | str]]) -> str:
    return "\n".join([HEADER, *(_format(r) for r in rows)])
