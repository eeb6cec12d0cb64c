"""``lrcn demo vqa``: answer questions about built-in images of shapes.

Writes the shapes VQA data set in the VQA v2 layout (:mod:`lrcn.data.synthetic_vqa`: colour,
shape, count, position and existence questions, ten noisy human answers each), trains the
question-only and image-only priors and the two real models on the CPU from cached
EfficientNet-Lite0 features, evaluates all four with the official VQA accuracy, and answers one
question about a test image with the attention model, drawing where each glimpse looked.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import yaml

from lrcn.commands import Help, register_demo

__all__ = ["DEMO_MODELS", "run_vqa_demo", "vqa_demo"]

DEMO_MODELS: dict[str, dict[str, Any]] = {
    "question_only": {"name": "question_only", "hidden_size": 128, "fused_size": 256},
    "image_only": {"name": "image_only", "fused_size": 256},
    "deeper_lstm_q_norm_i": {"name": "deeper_lstm_q_norm_i", "hidden_size": 128,
                             "num_layers": 2, "fused_size": 256},
    "show_ask_attend_answer": {"name": "show_ask_attend_answer", "hidden_size": 256,
                               "glimpses": 2, "attention_size": 128, "classifier_size": 256},
}  # fmt: skip


def _config(data: Path, model: dict[str, Any], epochs: int) -> dict[str, Any]:
    return {
        "task": "vqa",
        "data": {"format": "vqa", "root": str(data), "num_answers": 100, "val_fraction": 0.1},
        "model": {"backbone": "efficientnet_lite0", "image_size": 224, "embed_size": 64,
                  "dropout": 0.2, **model},
        "train": {"epochs": epochs, "batch_size": 64, "lr": 0.002, "device": "auto",
                  "feature_cache": str(data.parent / "features")},
    }  # fmt: skip


def run_vqa_demo(
    out: Path, epochs: int = 25, images: int = 600, log: Callable[[str], None] = print
) -> dict[str, Any]:
    """Run the whole VQA demo into ``out``; return each model's test scores and one answer."""
    from lrcn.data.synthetic_vqa import write_shapes_vqa
    from lrcn.tasks import evaluate_run, predict_run, train, validate_config

    out = Path(out)
    data = out / "data" / "vqa"
    if not (data / "v2_mscoco_val2014_annotations.json").is_file():
        log(f"writing the shapes VQA data set (VQA v2 layout, {images} images) to {data}")
        write_shapes_vqa(data, num_images=images, seed=0)
    results: dict[str, Any] = {"models": {}}
    for name, model in DEMO_MODELS.items():
        raw = _config(data, model, epochs)
        path = out / "configs" / f"{name}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(raw, sort_keys=False))
        run = out / "runs" / name
        if (run / "best").exists():
            log(f"reusing the trained run in {run}")
        else:
            log(f"training {name} ({path})")
            train(validate_config(raw, source=str(path)), run, log=log)
        _, metrics = evaluate_run(run, log=log)
        results["models"][name] = metrics
    image, question = _shape_question(data)
    _, answered = predict_run(
        out / "runs" / "show_ask_attend_answer", [image],
        {"question": question, "top": 3, "attention": out / "attention"},
    )  # fmt: skip
    results["answered"] = answered[0]
    return results


def _shape_question(data: Path) -> tuple[Path, str]:
    """The first test image and its own "what shape is the <colour> one?" question (its first
    question when it has none): a question whose answer needs one object found."""
    import json

    asked = json.loads((data / "v2_OpenEnded_mscoco_val2014_questions.json").read_text())
    first = min(q["image_id"] for q in asked["questions"])
    mine = [q["question"] for q in asked["questions"] if q["image_id"] == first]
    shape = [q for q in mine if q.startswith("what shape")]
    image = data / "val2014" / f"COCO_val2014_{first:012d}.jpg"
    return image, (shape or mine)[0]


def results_table(results: dict[str, Any]) -> str:
    """The models and the question-type prior as a Markdown table (what the README shows)."""
    kinds = sorted({k for m in results["models"].values() for k in m["per_answer_type"]})
    lines = [
        "| answers from | VQA accuracy | " + " | ".join(kinds) + " |",
        "|---|---:|" + "---:|" * len(kinds),
    ]
    prior = None
    for name, m in results["models"].items():
        cells = [f"{m['per_answer_type'].get(k, 0):.3f}" for k in kinds]
        lines.append(f"| {name} | {m['vqa_accuracy']:.3f} | " + " | ".join(cells) + " |")
        prior = m["question_type_prior"]
    if prior is not None:
        cells = [f"{prior['per_answer_type'].get(k, 0):.3f}" for k in kinds]
        lines.append(
            f"| question-type prior (baseline) | {prior['vqa_accuracy']:.3f} | "
            + " | ".join(cells) + " |"
        )  # fmt: skip
    return "\n".join(lines)


@register_demo("vqa")
def vqa_demo(
    out: Annotated[Path, Help("Folder for the data, configs, runs and PNGs.")] = Path(
        "runs/demo-vqa"
    ),
    epochs: Annotated[int, Help("Training epochs per model.", min=1)] = 25,
    images: Annotated[int, Help("Images in the built-in data set.", min=20)] = 600,
    log: Callable[[str], None] = print,
) -> list[str]:
    """Visual question answering on built-in images: both models against both priors."""
    results = run_vqa_demo(out, epochs=epochs, images=images, log=log)
    first = next(iter(results["models"].values()))
    a = results["answered"]
    answers = ", ".join(f"{x['answer']} {x['score']:.2f}" for x in a["answers"])
    return [
        f"Shapes VQA, test split (the val2014 side): {first['questions']} questions; best/ "
        "chosen on validation VQA accuracy.\n",
        results_table(results),
        f"\nshow_ask_attend_answer on {a['input']}: {a['question']} -> {answers}",
        f"attention: {a.get('attention', '')}",
    ]
