"""``lrcn demo video-captioning``: describe built-in videos whose sentences need the motion.

Writes the motion data set (:mod:`lrcn.data.synthetic_motion`: a coloured shape sliding left,
right, up or down, in the MSR-VTT 2016 layout), then trains on the CPU, from cached
EfficientNet-Lite0 features of RGB frames and of optical flow, the models a reader of the
papers wants side by side: the mean-pool baseline on appearance, S2VT on RGB, on flow and on
both, the temporal-attention decoder on flow and on both, and the LRCN paper's tuple pipeline
(a per-slot tuple classifier, then the probability-input sentence generator). Each is
evaluated on the test split beside the two baselines, and every caption is checked for the
colour, the shape and the direction it names. It ends with one video described by the best
model and an attention strip.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import yaml

from lrcn.commands import Help, register_demo

__all__ = ["DEMO_MODELS", "results_table", "run_video_captioning_demo", "video_captioning_demo"]

# run name -> (model section, shown inputs); all on the same cached features
DEMO_MODELS: dict[str, dict[str, Any]] = {
    "mean_pool-rgb": {"name": "mean_pool", "inputs": "rgb"},
    "s2vt-rgb": {"name": "s2vt", "inputs": "rgb"},
    "s2vt-flow": {"name": "s2vt", "inputs": "flow"},
    "s2vt-rgb+flow": {"name": "s2vt", "inputs": "rgb+flow"},
    "temporal_attention-flow": {"name": "temporal_attention", "inputs": "flow",
                                "attention_size": 64},
    "temporal_attention-rgb+flow": {"name": "temporal_attention", "inputs": "rgb+flow",
                                    "attention_size": 64},
    "tuple_probabilities": {"name": "tuple_probabilities"},
}  # fmt: skip

_SLOTS = {"colour": ["red", "green", "blue"], "shape": ["circle", "square", "triangle"],
          "direction": ["left", "right", "up", "down"]}  # fmt: skip
_ALIASES = {
    "disc": "circle", "ball": "circle", "box": "square", "block": "square", "wedge": "triangle",
    "leftwards": "left", "rightwards": "right", "upwards": "up", "upward": "up", "top": "up",
    "downwards": "down", "downward": "down", "bottom": "down",
}  # fmt: skip


def _config(
    task: str, data: dict[str, Any], model: dict[str, Any], epochs: int, cache: Path
) -> dict[str, Any]:
    return {
        "task": task,
        "data": {"format": "msrvtt", **data, "frames": 8},
        "model": {"backbone": "efficientnet_lite0", "image_size": 64, **model},
        "train": {"epochs": epochs, "batch_size": 32, "lr": 0.003, "device": "auto",
                  "feature_cache": str(cache)},
    }  # fmt: skip


def _captioner_config(
    data: Path, model: dict[str, Any], epochs: int, tuples: Path | None
) -> dict[str, Any]:
    extra = {"tuples": str(tuples)} if tuples is not None else {}
    head = {"embed_size": 64, "hidden_size": 128, "dropout": 0.2, **model}
    raw = _config("video_captioning", {"root": str(data), "min_count": 1, **extra}, head, epochs,
                  data.parent / "features")  # fmt: skip
    raw["decode"] = {"beam_size": 3, "max_len": 15}
    return raw


def _train(raw: dict[str, Any], out: Path, name: str, log: Callable[[str], None]) -> Path:
    """Write ``raw`` as ``configs/<name>.yaml`` and train it into ``runs/<name>`` (reusing a
    finished run)."""
    from lrcn.tasks import train, validate_config

    path = out / "configs" / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    run = out / "runs" / name
    if (run / "best").exists():
        log(f"reusing the trained run in {run}")
    else:
        log(f"training {name} ({path})")
        train(validate_config(raw, source=str(path)), run, log=log)
    return run


def _words_right(captions_csv: Path) -> dict[str, float]:
    from lrcn.data.synthetic_motion import motion_word_accuracy

    with captions_csv.open(newline="") as f:
        rows = list(csv.DictReader(f))
    return motion_word_accuracy(
        [r["caption"] for r in rows], [r["references"].split(" | ") for r in rows]
    )


def run_video_captioning_demo(
    out: Path, epochs: int = 30, videos: int = 240, log: Callable[[str], None] = print
) -> dict[str, Any]:
    """Run the whole demo into ``out``; return every model's test scores and word accuracy,
    the baselines', the tuple classifier's slot accuracies, a described video and the
    attention strip."""
    from lrcn.data.synthetic_motion import write_motion_msrvtt
    from lrcn.tasks import evaluate_run, predict_run

    out = Path(out)
    data = out / "data" / "motion"
    if not (data / "test_videodatainfo.json").is_file():
        log(f"writing the motion data set (MSR-VTT layout, {videos} videos) to {data}")
        write_motion_msrvtt(data, num_videos=videos, frames=12, size=48, seed=0)
    heads = _train(
        _config("video_tuples", {"root": str(data), "slots": _SLOTS, "aliases": _ALIASES},
                {"name": "tuple_heads", "inputs": "rgb+flow", "hidden_size": 128,
                 "dropout": 0.2}, epochs, data.parent / "features"),
        out, "tuple_heads", log,
    )  # fmt: skip
    _, tuple_scores = evaluate_run(heads, log=log)
    tuples = Path(tuple_scores["outputs"]["tuples"])
    results: dict[str, Any] = {"models": {}, "tuple_heads": tuple_scores}
    for name, model in DEMO_MODELS.items():
        given = tuples if name.startswith("tuple_") else None
        run = _train(_captioner_config(data, model, epochs, given), out, name, log)
        _, metrics = evaluate_run(run, log=log)
        results["models"][name] = {
            "run": str(run),
            "inputs": model.get("inputs", "visual tuple"),
            "epoch": metrics["epoch"],
            "scores": metrics["model"],
            "words": _words_right(Path(metrics["outputs"]["captions"])),
        }
        results["baselines"] = {
            k: metrics[k] for k in ("nearest_neighbour", "most_frequent_caption")
        }
        results["videos"] = metrics["videos"]
    video = sorted((data / "TestVideo").glob("*.mp4"))[0]
    best = max(results["models"], key=lambda n: results["models"][n]["scores"]["cider"])
    _, described = predict_run(out / "runs" / best, [video])
    _, attended = predict_run(
        out / "runs" / "temporal_attention-rgb+flow", [video], {"attention": out / "attention"}
    )
    results["described"] = {"model": best, **described[0], "attention": attended[0]["attention"]}
    return results


@register_demo("video-captioning")
def video_captioning_demo(
    out: Annotated[Path, Help("Folder for the data, configs, runs and PNGs.")] = Path(
        "runs/demo-video-captioning"
    ),
    epochs: Annotated[int, Help("Training epochs per model.", min=1)] = 30,
    videos: Annotated[int, Help("Videos in the built-in data set.", min=30)] = 240,
    log: Callable[[str], None] = print,
) -> list[str]:
    """Video description on built-in videos: what moves, and which way, model by model."""
    results = run_video_captioning_demo(out, epochs=epochs, videos=videos, log=log)
    heads = results["tuple_heads"]
    slots = ", ".join(f"{k} {v:.2f}" for k, v in heads["slots"].items())
    d = results["described"]
    return [
        f"Motion data set, test split: {results['videos']} videos; best/ chosen by validation "
        "CIDEr-D; beam 3.\nColour / shape / direction: share of test captions that name the "
        "right one (chance for direction 0.25).\n",
        results_table(results),
        f"\ntuple classifier (rgb+flow), test slot accuracy: {slots}",
        f"{d['model']} on {d['input']}: {d['caption']}",
        f"attention strip (temporal_attention): {d['attention']}",
    ]


def results_table(results: dict[str, Any]) -> str:
    """The demo's models and baselines as a Markdown table (what the README shows)."""
    lines = [
        "| sentences from | inputs | CIDEr-D | BLEU-4 | colour | shape | direction | all three |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in results["models"].items():
        s, w = r["scores"], r["words"]
        lines.append(
            f"| {name.split('-')[0]} | {r['inputs']} | {s['cider']:.3f} | {s['bleu4']:.3f} | "
            f"{w['colour']:.2f} | {w['shape']:.2f} | {w['direction']:.2f} | {w['all']:.2f} |"
        )
    for name, s in results["baselines"].items():
        lines.append(
            f"| {name.replace('_', ' ')} (baseline) | | {s['cider']:.3f} | {s['bleu4']:.3f} "
            "| | | | |"
        )
    return "\n".join(lines)
