"""``lrcn demo next-frame``: predict the next 10 frames of Moving MNIST on a CPU.

Generates Moving MNIST (two digits bouncing in 64x64, Srivastava et al.'s rules, from
scikit-learn's digits; train and test never share a digit image) in the released
``mnist_test_seq.npy`` layout, trains the ConvLSTM encoder-forecaster with patch reshaping
(64x64 -> 8x8x64) and teacher forcing, picks ``best/`` on the validation MSE, and scores it on
the test sequences beside copying the last frame and linear extrapolation.

Teacher forcing rather than scheduled sampling: on a few minutes of CPU (6000 sequences seen)
it gave sharper forecasts, measured on 100 test sequences: SSIM 0.67 against 0.43 for
scheduled sampling after as many sequences (which led on MSE, 142 against 190, and catches up
on SSIM with longer training). Copying the last frame scores SSIM 0.56, MSE 355.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import yaml

from lrcn.commands import Help, register_demo

__all__ = ["next_frame_demo", "run_next_frame_demo"]

MODEL = {
    "name": "convlstm_encoder_forecaster",
    "filters": [64, 64],
    "kernel_size": 3,
    "patch_size": 8,
    "loss": "bce",
    "feed": "teacher",
}


def demo_config(data: Path, epochs: int) -> dict[str, Any]:
    return {
        "task": "next_frame",
        "data": {
            "format": "moving_mnist",
            "train": str(data / "train.npy"),
            "test": str(data / "test.npy"),
            "context": 10,
            "horizon": 10,
            "val_fraction": 0.05,
        },
        "model": MODEL,
        "train": {"epochs": epochs, "batch_size": 16, "lr": 0.002, "device": "auto"},
    }


def run_next_frame_demo(
    out: Path,
    epochs: int = 3,
    sequences: int = 2000,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Generate the data, train, evaluate on the test split; return the evaluation summary."""
    from lrcn.data.synthetic_moving_mnist import write_generated
    from lrcn.tasks import evaluate_run, train, validate_config

    out = Path(out)
    data = out / "data"
    if not (data / "test.npy").is_file():
        log(f"generating Moving MNIST ({sequences} training and 200 test sequences) in {data}")
        write_generated(data, sequences, 200)
    raw = demo_config(data, epochs)
    path = out / "configs" / "moving_mnist_demo.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    run = out / "runs" / "convlstm"
    if (run / "best").exists():
        log(f"reusing the trained run in {run}")
    else:
        log(f"training the ConvLSTM encoder-forecaster ({path})")
        train(validate_config(raw, source=str(path)), run, log=log)
    _, summary = evaluate_run(run, log=log)
    return summary


def results_table(summary: dict[str, Any]) -> str:
    """The model and both baselines: per-frame MSE, MAE, SSIM and PSNR, as Markdown."""
    rows = [
        "| predictor | MSE per frame ↓ | MAE per frame ↓ | SSIM ↑ | PSNR dB ↑ |",
        "|---|---:|---:|---:|---:|",
    ]
    names = {"model": "ConvLSTM encoder-forecaster (best/ on validation MSE)"}
    for name, scores in summary["scores"].items():
        m = scores["mean"]
        label = names.get(name, f"{name} (baseline)")
        rows.append(
            f"| {label} | {m['mse']:.1f} | {m['mae']:.1f} | {m['ssim']:.3f} | {m['psnr']:.2f} |"
        )
    return "\n".join(rows)


@register_demo("next-frame")
def next_frame_demo(
    out: Annotated[Path, Help("Folder for the data, config, run and pictures.")] = Path(
        "runs/demo-next-frame"
    ),
    epochs: Annotated[int, Help("Training epochs.", min=1)] = 3,
    sequences: Annotated[int, Help("Generated training sequences.", min=20)] = 2000,
    log: Callable[[str], None] = print,
) -> list[str]:
    """Next-frame prediction on generated Moving MNIST: 10 frames in, 10 out."""
    summary = run_next_frame_demo(out, epochs=epochs, sequences=sequences, log=log)
    epoch = "?" if summary["epoch"] is None else summary["epoch"] + 1
    lines = [
        f"Moving MNIST (generated), test split: {summary['sequences']} sequences, 10 frames "
        f"in, 10 out; checkpoint best/ (epoch {epoch}, chosen on validation MSE).\n",
        results_table(summary),
        "",
    ]
    for metric, better in summary["beats_baselines"].items():
        verdict = "beats" if better else "does NOT beat"
        lines.append(f"the model {verdict} both baselines on {metric.upper()}")
    outputs = summary["outputs"]
    lines += [f"{name}: {outputs[name]}" for name in ("strips", "gif", "plot", "metrics")]
    return lines
