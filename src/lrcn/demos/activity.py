"""``lrcn demo``: activity recognition on a built-in data set where order matters.

Writes the order data set (data/synthetic.py) in the UCF-101 layout, writes a YAML config for
LRCN and one for the single-frame baseline (the same files a user would write for real data),
trains and evaluates both on the CPU, and predicts one test video. The single-frame model sees
which pair of objects a video shows but not which came first, so it is capped near 50 %; LRCN
remembers the order.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import yaml

from lrcn.commands import Help, register_demo

__all__ = ["DEMO_MODELS", "activity_demo", "demo_config", "run_activity_demo"]

DEMO_MODELS = ("lrcn", "single_frame")


def demo_config(data_root: Path, model: str, epochs: int, image_size: int) -> dict[str, Any]:
    """The config the demo trains with: EfficientNet-Lite0 frozen, features cached."""
    head: dict[str, Any] = {
        "name": model,
        "backbone": "efficientnet_lite0",
        "image_size": image_size,
        "dropout": 0.3,
    }
    if model == "lrcn":
        head["hidden_size"] = 128
    return {
        "task": "activity",
        "data": {
            "format": "ucf101",
            "root": str(data_root),
            "split": 1,
            "clip_len": 16,
            "stride": 8,
            "num_workers": 0,
        },
        "model": head,
        "train": {
            "epochs": epochs,
            "batch_size": 16,
            "lr": 0.003,
            "clips_per_video": 4,
            "device": "auto",
            "feature_cache": str(data_root.parent / "features"),
        },
    }


def run_activity_demo(
    out: Path,
    epochs: int = 12,
    num_groups: int = 25,
    clips_per_group: int = 2,
    image_size: int = 160,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run the whole demo into ``out``; return each model's test metrics for ``best/`` (the
    epoch chosen on validation) and ``last/``, and one prediction."""
    from lrcn.data.synthetic import write_order_ucf101
    from lrcn.tasks import evaluate_run, predict_run, train, validate_config

    out = Path(out)
    data_root = out / "data" / "UCF-101"
    if not (data_root.parent / "ucfTrainTestlist" / "testlist01.txt").is_file():
        log(f"writing the order data set (UCF-101 layout) to {data_root.parent}")
        write_order_ucf101(data_root.parent, num_groups=num_groups, clips_per_group=clips_per_group)
    results: dict[str, Any] = {}
    for name in DEMO_MODELS:
        raw = demo_config(data_root, name, epochs, image_size)
        config_path = out / "configs" / f"{name}.yaml"
        config_path.parent.mkdir(parents=True, exist_ok=True)
        config_path.write_text(yaml.safe_dump(raw, sort_keys=False))
        run = out / "runs" / name
        if (run / "best").exists():
            log(f"{name}: reusing the trained run in {run}")
        else:
            log(f"training {name} ({config_path})")
            train(validate_config(raw, source=str(config_path)), run, log=log)
        results[name] = {"run": str(run)}
        for which in ("best", "last"):
            _, metrics = evaluate_run(run, which=which, log=log)
            drop = ("confusion", "per_class")
            results[name][which] = {k: v for k, v in metrics.items() if k not in drop}
    test_video = sorted((data_root / "CircleThenSquare").glob("*_g01_*.avi"))[0]
    results["prediction"] = predict_run(out / "runs" / "lrcn", [test_video])[1][0]
    return results


@register_demo("activity")
def activity_demo(
    out: Annotated[Path, Help("Folder for the data, configs and runs.")] = Path("runs/demo"),
    epochs: Annotated[int, Help("Training epochs per model.", min=1)] = 12,
    log: Callable[[str], None] = print,
) -> list[Any]:
    """Activity recognition on built-in data: LRCN against the single-frame baseline."""
    results = run_activity_demo(out, epochs=epochs, log=log)
    p = results["prediction"]
    top = ", ".join(f"{t['class']} {t['probability']:.2f}" for t in p["top"][:2])
    lines = [f"LRCN on {p['input']}: {top}"]
    for name in DEMO_MODELS:
        r = results[name]
        lines.append(f"{name}: {r['best']['outputs']['confusion']}  curves: {r['run']}/curves.png")
    return [_results_table(results), *lines]


def _results_table(results: dict[str, Any]) -> Any:
    """Both models side by side: best/ (chosen on validation) against last/."""
    from rich.table import Table

    first = results["lrcn"]["best"]
    table = Table(
        title=f"Order data set, split 1: {first['videos']} test videos (chance 0.25)",
        caption="best/ is the epoch with the best validation video top-1; one frame shows "
        "the objects, not their order",
    )
    for column in ("model", "video top-1, best/", "clip top-1, best/", "best epoch",
                   "video top-1, last/"):  # fmt: skip
        table.add_column(column, justify="right" if column != "model" else "left")
    for name in DEMO_MODELS:
        best, last = results[name]["best"], results[name]["last"]
        table.add_row(
            name, f"{best['video_top1']:.3f}", f"{best['clip_top1']:.3f}",
            str(best["epoch"] + 1), f"{last['video_top1']:.3f}",
        )  # fmt: skip
    return table
