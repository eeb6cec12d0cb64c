"""The ``lrcn`` command. Importing this module must stay cheap: no torch until a command runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lrcn import __version__

app = typer.Typer(
    name="lrcn",
    help="CNN+LSTM computer vision: the LRCN family of models, from building blocks to demos.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
demo_app = typer.Typer(
    help="Self-contained demos on built-in data; each writes its plots and numbers to --out.",
    no_args_is_help=True,
)
app.add_typer(demo_app, name="demo")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"lrcn {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """CNN+LSTM computer vision: the LRCN family of models."""


def _parse_lengths(text: str) -> list[int]:
    try:
        lengths = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise typer.BadParameter(
            f"expected comma-separated integers such as 5,10,20, got {text!r}"
        ) from None
    if not lengths or min(lengths) < 2:
        raise typer.BadParameter(f"every length must be an integer >= 2, got {text!r}")
    return sorted(set(lengths))


@demo_app.command("gradients")
def demo_gradients(
    out: Annotated[Path, typer.Option(help="Folder for gradients.png and gradients.json.")] = Path(
        "runs/demo-gradients"
    ),
    lengths: Annotated[
        str, typer.Option(help="Comma-separated sequence lengths T to train on.")
    ] = "5,10,20,40,80",
    steps: Annotated[int, typer.Option(min=1, help="Training steps per model and length.")] = 600,
    hidden_size: Annotated[int, typer.Option(min=1, help="Hidden units of both models.")] = 32,
    seed: Annotated[int, typer.Option(help="Seed for data and initialisation.")] = 0,
) -> None:
    """Vanishing gradients: train a tanh RNN and an LSTM to recall a symbol seen T steps ago."""
    from rich.console import Console
    from rich.table import Table

    from lrcn.studies.gradients import StudyConfig, run_study, summary_rows, write_study

    console = Console()
    config = StudyConfig(
        lengths=tuple(_parse_lengths(lengths)),
        train_steps=steps,
        hidden_size=hidden_size,
        seed=seed,
    )
    with console.status("training") as status:
        study = run_study(config, progress=lambda msg: status.update(f"training {msg}"))
    png_path, json_path = write_study(study, out)

    table = Table(title=f"Recall the first of T symbols (chance {study['chance']:.2f})")
    table.add_column("T", justify="right")
    for kind in config.kinds:
        table.add_column(f"{kind.upper()} accuracy", justify="right")
        table.add_column(f"{kind.upper()} ‖∂L/∂x_first‖ / ‖∂L/∂x_last‖", justify="right")
    for row in summary_rows(study):
        cells = [str(row["T"])]
        for kind in config.kinds:
            cells += [f"{row[f'{kind}_accuracy']:.2f}", f"{row[f'{kind}_first_step_gradient']:.1e}"]
        table.add_row(*cells)
    console.print(table)
    typer.echo(f"plot:    {png_path}\nnumbers: {json_path}")  # unwrapped, for copy-paste


def main() -> None:
    """Entry point of the console script."""
    app()


if __name__ == "__main__":
    main()
