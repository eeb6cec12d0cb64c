"""Visual question answering: answers from cached features, and predict on one image file.

1. Evaluate: both models at the sizes of configs/vqa_v2_*.yaml answer questions from cached
   image features (a 7x7x1280 grid, or the pooled 1280 vector) through the task's own batched
   path (``lrcn.tasks.vqa._answer``, 128 questions a batch), against the same call one question
   at a time; both must give the same answers.
2. Predict: the path ``VqaTask.predict`` takes for one 640x480 JPEG and one question, step by
   step (decode, preprocess, backbone, question + attention + classifier) and whole.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from common import best_ms
from lrcn.backbones import create_backbone
from lrcn.data.formats.vqa import VqaItem
from lrcn.data.video_io import read_image
from lrcn.data.vocab import SPECIALS, Vocabulary
from lrcn.models import create_model
from lrcn.tasks.vqa import _answer, _Questions

# VQA v2 train2014's questions hold ~14k words (min_count 1); 3000 answers; ~6 words a question
VOCAB, ANSWERS, WORDS, GRID = 14_000, 3000, 6, 49

Row = dict[str, float | str]

HEADER = (
    "Visual question answering at the sizes of `configs/vqa_v2_show_ask_attend_answer.yaml` "
    "(embedding 300, LSTM 1024, 2 glimpses over a 7x7 grid of 1280 channels, attention 512, "
    "classifier 1024) and `configs/vqa_v2_deeper_lstm.yaml` (2-layer LSTM 512, fused 1024), "
    f"question vocabulary {VOCAB:,}, {ANSWERS} answers, {WORDS}-word questions. **Evaluate** "
    "answers questions from cached image features (random, as the cache holds them) with the "
    "task's own `_answer` (128 questions a batch) against the same call one question at a time "
    "(the baseline); both give the same answers. **Predict** is the path `VqaTask.predict` "
    "takes for one 640x480 JPEG and one question; the last column is each step's share of the "
    "total (timed apart, so the shares need not add to exactly 100%). Best of a few runs each."
)


def _vocabulary() -> Vocabulary:
    return Vocabulary([*SPECIALS, *(f"w{i}" for i in range(VOCAB - len(SPECIALS)))])


def _model(name: str, backbone):  # -> VqaModel
    sizes = {
        "show_ask_attend_answer": {"embed_size": 300, "hidden_size": 1024, "glimpses": 2,
                                   "attention_size": 512, "classifier_size": 1024},
        "deeper_lstm_q_norm_i": {"embed_size": 300, "hidden_size": 512, "num_layers": 2,
                                 "fused_size": 1024},
    }[name]  # fmt: skip
    return create_model(
        name, backbone=backbone, vocab_size=VOCAB, num_answers=ANSWERS, **sizes
    ).eval()


def _questions(count: int, vocab: Vocabulary, features: torch.Tensor) -> _Questions:
    rng = np.random.default_rng(0)
    items = [
        VqaItem(
            image=Path(f"{i}.jpg"), image_id=i, question_id=i,
            question=tuple(f"w{k}" for k in rng.integers(0, VOCAB - len(SPECIALS), WORDS)),
            question_text="", answers=("yes",) * 10, answer_type="yes/no", question_type="",
        )
        for i in range(count)
    ]  # fmt: skip
    return _Questions(items, lambda path: features[int(path.stem)], vocab, ["yes"], 20)


def _evaluate(backbone, quick: bool) -> list[Row]:
    count, looped = (64, 16) if quick else (1024, 128)
    vocab, cpu = _vocabulary(), torch.device("cpu")
    rows: list[Row] = []
    for name in ("show_ask_attend_answer", "deeper_lstm_q_norm_i"):
        model = _model(name, backbone)
        shape = (count, GRID, 1280) if model.feature_kind == "grid" else (count, 1280)
        data = _questions(count, vocab, torch.randn(shape))
        few = _questions(looped, vocab, torch.randn(shape))
        batched = _answer(model, few, cpu, batch=128)
        if not torch.equal(batched, _answer(model, few, cpu, batch=1)):
            raise AssertionError(f"{name}: batched and one-at-a-time answers disagree")
        slow = best_ms(lambda m=model, d=few: _answer(m, d, cpu, batch=1), 1 if quick else 2)
        fast = best_ms(lambda m=model, d=data: _answer(m, d, cpu, batch=128), 1 if quick else 3)
        base = looped / slow
        rows += [
            {"part": "evaluate", "what": f"{name}, one question at a time, {looped} (baseline)",
             "ms": slow, "per_s": base * 1e3, "ratio": 1.0},
            {"part": "evaluate", "what": f"{name}, batched (128 a batch), {count} questions",
             "ms": fast, "per_s": count / fast * 1e3, "ratio": count / fast / base},
        ]  # fmt: skip
    return rows


def _predict(backbone, quick: bool) -> list[Row]:
    repeats = 1 if quick else 5
    model = _model("show_ask_attend_answer", backbone)
    preprocess = backbone.preprocess
    question = torch.randint(4, VOCAB, (1, WORDS))
    lengths = torch.tensor([WORDS])
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "photo.jpg"
        rng = np.random.default_rng(0)
        y, x = np.mgrid[0:480, 0:640]
        pixels = np.stack([(x // 3) % 256, (y // 2) % 256, rng.integers(0, 256, (480, 640))], -1)
        Image.fromarray(pixels.astype(np.uint8)).save(path, quality=90)
        image = read_image(path)
        with torch.inference_mode():
            x_in = preprocess.frames_to_tensor(image[None])
            grid = model.features(x_in)

        def head() -> torch.Tensor:
            with torch.inference_mode():
                return model(grid, question, lengths).logits

        def backbone_step() -> torch.Tensor:
            with torch.inference_mode():
                return model.features(x_in)

        def total() -> torch.Tensor:
            with torch.inference_mode():
                picture = preprocess.frames_to_tensor(read_image(path)[None])
                return model(model.features(picture), question, lengths).logits

        if not torch.equal(total().argmax(1), head().argmax(1)):
            raise AssertionError("the timed predict path and its steps disagree")
        timed = {
            "decode": best_ms(lambda: read_image(path), repeats),
            "preprocess": best_ms(lambda: preprocess.frames_to_tensor(image[None]), repeats),
            "backbone": best_ms(backbone_step, repeats),
            "head": best_ms(head, repeats),
            "total": best_ms(total, repeats),
        }
    names = {
        "decode": "decode the 640x480 JPEG (`read_image`)",
        "preprocess": "preprocess (resize, crop 224, normalise)",
        "backbone": "EfficientNet-Lite0, the 7x7 grid",
        "head": "question LSTM + 2 glimpses + classifier",
        "total": "total, file and question to answers",
    }
    return [
        {"part": "predict", "what": what, "ms": timed[k], "share": timed[k] / timed["total"]}
        for k, what in names.items()
    ]


def run(quick: bool = False) -> list[Row]:
    torch.manual_seed(0)
    load = os.getloadavg()[0]
    print(f"1-minute load average at the start: {load:.1f} on {os.cpu_count()} CPUs", flush=True)
    backbone = create_backbone("efficientnet_lite0")
    rows = _evaluate(backbone, quick) + _predict(backbone, quick)
    for r in rows:
        r["load"] = load
        print(_format(r), flush=True)
    return rows


def _format(r: Row) -> str:
    if r["part"] == "evaluate":
        return (
            f"| {r['what']} | {float(r['ms']):.0f} | {float(r['per_s']):.0f} "
            f"| {float(r['ratio']):.1f}× |"
        )
    return f"| {r['what']} | {float(r['ms']):.1f} | {float(r['share']):.0%} |"


def table(rows: list[Row]) -> str:
    evaluate = [_format(r) for r in rows if r["part"] == "evaluate"]
    predict = [_format(r) for r in rows if r["part"] == "predict"]
    return "\n".join(
        [
            f"1-minute load average at the start: {float(rows[0]['load']):.1f}",
            "",
            "| answer from cached features | ms | questions/s | vs baseline |",
            "|---|---:|---:|---:|",
            *evaluate,
            "",
            "| predict, one image and one question | ms | share of total |",
            "|---|---:|---:|",
            *predict,
        ]
    )
