"""``lrcn demo captioning``: caption built-in images of coloured shapes.

Writes the shapes data set in the Flickr8k layout (data/synthetic.py), a YAML config for
Show-Attend-and-Tell, trains it on the CPU from cached EfficientNet-Lite0 feature grids,
evaluates it with pycocoevalcap beside the two baselines, captions a few test images and draws
their attention maps.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import yaml

from lrcn.commands import Help, register_demo

__all__ = ["captioning_demo", "run_captioning_demo"]


def _config(data: Path, epochs: int) -> dict[str, Any]:
    return {
        "task": "captioning",
        "data": {"format": "flickr8k", "root": str(data), "min_count": 3, "num_workers": 0},
        "model": {"name": "show_attend_tell", "backbone": "efficientnet_lite0", "image_size": 128,
                  "embed_size": 64, "hidden_size": 128, "attention_size": 64, "dropout": 0.2},
        "train": {"epochs": epochs, "batch_size": 32, "lr": 0.003, "device": "auto",
                  "feature_cache": str(data.parent / "features")},
        "decode": {"beam_size": 3, "max_len": 20},
    }  # fmt: skip


def run_captioning_demo(
    out: Path, epochs: int = 15, images: int = 600, log: Callable[[str], None] = print
) -> dict[str, Any]:
    """Run the whole captioning demo into ``out``; return the metrics and a few captions."""
    from lrcn.data.formats.captions import read_flickr8k
    from lrcn.data.synthetic import write_shapes_flickr8k
    from lrcn.tasks import evaluate_run, predict_run, train, validate_config

    out = Path(out)
    data = out / "data" / "flickr"
    if not (data / "Flickr8k_text" / "Flickr_8k.testImages.txt").is_file():
        log(f"writing the shapes data set (Flickr8k layout) to {data}")
        write_shapes_flickr8k(data, num_images=images)
    raw = _config(data, epochs)
    config_path = out / "configs" / "show_attend_tell.yaml"
    config_path.parent.mkdir(parents=True, exist_ok=True)
    config_path.write_text(yaml.safe_dump(raw, sort_keys=False))
    run = out / "runs" / "show_attend_tell"
    if (run / "best").exists():
        log(f"reusing the trained run in {run}")
    else:
        log(f"training show_attend_tell ({config_path})")
        train(validate_config(raw, source=str(config_path)), run, log=log)
    _, metrics = evaluate_run(run, log=log)
    test = read_flickr8k(data).test[:3]
    _, captions = predict_run(run, [item.image for item in test], {"attention": out / "attention"})
    for caption, item in zip(captions, test, strict=True):
        caption["references"] = [" ".join(c) for c in item.captions[:2]]
    return {"run": str(run), "metrics": metrics, "captions": captions}


@register_demo("captioning")
def captioning_demo(
    out: Annotated[Path, Help("Folder for the data, config, run and PNGs.")] = Path(
        "runs/demo-captioning"
    ),
    epochs: Annotated[int, Help("Training epochs.", min=1)] = 15,
    log: Callable[[str], None] = print,
) -> list[str]:
    """Image captioning on built-in images: Show-Attend-and-Tell with attention maps."""
    from lrcn.tasks import get_task

    results = run_captioning_demo(out, epochs=epochs, log=log)
    lines: list[str] = []
    get_task("captioning").render_evaluation(results["metrics"], lines.append)
    for c in results["captions"]:
        lines.append(f"{Path(c['input']).name}: {c['caption']}")
        lines.append(f"    reference: {c['references'][0]}")
        lines.append(f"    attention: {c['attention']}")
    return lines
