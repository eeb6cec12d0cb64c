"""``lrcn demo gradients``: why LSTMs, in one table and one plot.

Trains a tanh RNN and an LSTM to recall the first of T symbols, for several T, and shows how
the gradient reaching the first step and the accuracy fall with T for the RNN but not for the
LSTM (the study itself is :mod:`lrcn.studies.gradients`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

from lrcn.commands import BadParameter, Help, register_demo

__all__ = ["gradients_demo", "parse_lengths"]


def parse_lengths(text: str) -> list[int]:
    """``"5,10,20"`` as sorted distinct lengths, each >= 2 (one symbol and one distractor)."""
    try:
        lengths = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise BadParameter(
            f"expected comma-separated integers such as 5,10,20, got {text!r}"
        ) from None
    if not lengths or min(lengths) < 2:
        raise BadParameter(f"every length must be an integer >= 2, got {text!r}")
    return sorted(set(lengths))


@register_demo("gradients")
def gradients_demo(
    out: Annotated[Path, Help("Folder for gradients.png and gradients.json.")] = Path(
        "runs/demo-gradients"
    ),
    lengths: Annotated[str, Help("Comma-separated sequence lengths T to train on.")] = (
        "5,10,20,40,80"
    ),
    steps: Annotated[int, Help("Training steps per model and length.", min=1)] = 600,
    hidden_size: Annotated[int, Help("Hidden units of both models.", min=1)] = 32,
    seed: Annotated[int, Help("Seed for data and initialisation.")] = 0,
) -> list[Any]:
    """Vanishing gradients: train a tanh RNN and an LSTM to recall a symbol seen T steps ago."""
    from rich.console import Console

    from lrcn.studies.gradients import StudyConfig, run_study, write_study

    config = StudyConfig(
        lengths=tuple(parse_lengths(lengths)),
        train_steps=steps,
        hidden_size=hidden_size,
        seed=seed,
    )
    with Console().status("training") as status:  # a spinner, on a terminal only
        study = run_study(config, progress=lambda msg: status.update(f"training {msg}"))
    png_path, json_path = write_study(study, out)
    # unwrapped, for copy-paste
    return [_summary_table(study, config.kinds), f"plot:    {png_path}\nnumbers: {json_path}"]


def _summary_table(study: dict[str, Any], kinds: Sequence[str]) -> Any:
    """Accuracy and the first-step gradient ratio per T, for each model."""
    from rich.table import Table

    from lrcn.studies.gradients import summary_rows

    table = Table(title=f"Recall the first of T symbols (chance {study['chance']:.2f})")
    table.add_column("T", justify="right")
    for kind in kinds:
        table.add_column(f"{kind.upper()} accuracy", justify="right")
        table.add_column(f"{kind.upper()} ‖∂L/∂x_first‖ / ‖∂L/∂x_last‖", justify="right")
    for row in summary_rows(study):
        cells = [str(row["T"])]
        for kind in kinds:
            cells += [f"{row[f'{kind}_accuracy']:.2f}", f"{row[f'{kind}_first_step_gradient']:.1e}"]
        table.add_row(*cells)
    return table
