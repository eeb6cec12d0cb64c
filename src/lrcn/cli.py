"""The ``lrcn`` command. Importing this module must stay cheap: no torch until a command runs."""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from typer.core import TyperCommand

from lrcn import __version__

app = typer.Typer(
    name="lrcn",
    help="CNN+LSTM computer vision: the LRCN family of models, from building blocks to demos.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
demo_app = typer.Typer(
    help="Self-contained demos on built-in data (no subcommand: the activity-recognition demo).",
    invoke_without_command=True,
)
app.add_typer(demo_app, name="demo")
datasets_app = typer.Typer(
    help="Prepare data sets: splits and caption files.", no_args_is_help=True
)
app.add_typer(datasets_app, name="datasets")

F = TypeVar("F", bound=Callable[..., Any])
SetOption = Annotated[
    list[str] | None,
    typer.Option("--set", help="Override a config value: key.path=value (repeatable)."),
]
QuietOption = Annotated[
    bool, typer.Option("--quiet", "-q", help="No progress bars (none either off a terminal).")
]
WhichOption = Annotated[
    str, typer.Option(help="Which checkpoint: best (chosen on validation) or last.")
]
_EXIT_BAD_INPUT = 2


def _friendly_errors(fn: F) -> F:
    """The one place errors become output: bad input (an :class:`~lrcn.errors.LrcnError`, or a
    file the system refuses) ends in one line on stderr and exit code 2; anything else is a bug
    in lrcn and ends in one line too, with exit code 1 (``LRCN_TRACEBACK=1`` shows the
    traceback)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from lrcn.errors import LrcnError

        try:
            return fn(*args, **kwargs)
        except LrcnError as err:
            _fail(str(err), _EXIT_BAD_INPUT)
        except OSError as err:  # permissions, a full disk, a file where a folder should be
            message = err.strerror or str(err)
            _fail(f"{err.filename}: {message}" if err.filename else message, _EXIT_BAD_INPUT)
        except FloatingPointError as err:
            _fail(str(err), 1)
        except KeyboardInterrupt:
            _fail("interrupted", 130)
        except Exception as err:
            if _is_cli_exit(err) or os.environ.get("LRCN_TRACEBACK"):
                raise
            _fail(
                f"internal error ({type(err).__name__}: {err}); this is a bug in lrcn, please "
                "report it with the traceback that LRCN_TRACEBACK=1 prints",
                1,
            )

    return wrapper  # type: ignore[return-value]


def _is_cli_exit(err: BaseException) -> bool:
    """typer's and click's own exits and usage errors (typer vendors its own click)."""
    return any(
        k.__name__ in ("ClickException", "Exit", "Abort")
        and k.__module__.split(".")[0] in ("click", "typer")
        for k in type(err).__mro__
    )


def _fail(message: str, code: int) -> NoReturn:
    lines = message.splitlines() or [""]
    typer.echo(f"error: {lines[0]}", err=True)
    for line in lines[1:]:  # a config with several bad keys: one line each
        typer.echo(f"error: {line}", err=True)
    raise typer.Exit(code)


@contextmanager
def _progress(quiet: bool = False) -> Iterator[Callable[[str, int, int], None] | None]:
    """A progress bar with rate and ETA on stderr, driven by ``update(description, step,
    total)``; None (no bar) with ``quiet`` or when stderr is not a terminal."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.text import Text

    class Rate(ProgressColumn):
        def render(self, task: Any) -> Text:
            return Text(f"{task.speed:.1f}/s" if task.speed else "")

    console = _stderr_console()
    if quiet or not console.is_terminal:
        yield None
        return
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), Rate(),
        TimeElapsedColumn(), TimeRemainingColumn(), transient=True, console=console,
    ) as bar:  # fmt: skip
        shown: dict[str, Any] = {"id": None, "step": 0}

        def update(description: str, step: int, total: int) -> None:
            # A pass that starts over (the next epoch, another evaluation) gets a fresh bar, so
            # its rate and ETA are its own.
            if shown["id"] is None or step < shown["step"]:
                if shown["id"] is not None:
                    bar.update(shown["id"], visible=False)
                shown["id"] = bar.add_task(description, total=total)
            shown["step"] = step
            bar.update(shown["id"], description=description, completed=step, total=total)

        yield update


def _stderr_console() -> Any:
    from rich.console import Console

    return Console(stderr=True)


def _log(message: str) -> None:
    typer.echo(message, err=True)


def _default_run_dir(config_path: Path) -> Path:
    base = Path("runs") / config_path.stem
    run, n = base, 1
    while (run / "last").exists():
        n += 1
        run = base.with_name(f"{base.name}-{n}")
    return run


# --------------------------------------------------------------------------------------------
# Task options: `lrcn evaluate` and `lrcn predict` take the options their tasks declare
# --------------------------------------------------------------------------------------------


class _TaskOptionsCommand(TyperCommand):
    """A command whose task-specific options (``--beam``, ``--top``, ...) come from the task
    registry, loaded only when the command runs or shows its help (``lrcn --help`` stays
    free of torch). The values given on the command line reach the callback in
    ``ctx.meta["task_options"]``; the task checks they apply to it."""

    stage = ""  # "evaluate" or "predict": which of Task.<stage>_options

    def _specs(self) -> list[Any]:
        from lrcn.tasks import get_task, list_tasks

        merged: dict[str, tuple[Any, list[str]]] = {}
        for name in list_tasks():
            for option in getattr(get_task(name), f"{self.stage}_options"):
                merged.setdefault(option.name, (option, []))[1].append(name)
        return [(option, tasks) for option, tasks in merged.values()]

    def get_params(self, ctx: Any) -> list[Any]:
        params = super().get_params(ctx)
        if getattr(self, "_task_params", None) is None:
            self._task_params = _typer_options(self._specs())
        return params[:-1] + self._task_params + params[-1:]  # --help stays last

    def invoke(self, ctx: Any) -> Any:
        given = {}
        for param in self.get_params(ctx):
            if param in self._task_params:
                value = ctx.params.pop(param.name, None)
                source = ctx.get_parameter_source(param.name)
                if source is not None and source.name == "COMMANDLINE":
                    given[param.name] = value
        ctx.meta["task_options"] = given
        return super().invoke(ctx)


def _typer_options(specs: list[Any]) -> list[Any]:
    """Click parameters for task options, made by typer itself from a function signature (so
    they look and parse like every other option), all defaulting to None (= not given)."""
    import inspect

    parameters = []
    for option, tasks in specs:
        info = typer.Option(
            option.flag,
            help=f"{', '.join(tasks)}: {option.help}",
            min=option.min,
            rich_help_panel="Options of some tasks",
        )
        kind = bool if option.type is bool else option.type | None
        parameters.append(
            inspect.Parameter(
                option.name,
                inspect.Parameter.KEYWORD_ONLY,
                default=False if option.type is bool else None,
                annotation=Annotated[kind, info],
            )
        )

    def options(**kwargs: Any) -> None:
        """Never called: only its signature is read."""

    options.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    options.__annotations__ = {p.name: p.annotation for p in parameters}
    holder = typer.Typer(add_completion=False)
    holder.command()(options)
    names = {p.name for p in parameters}
    return [p for p in typer.main.get_command(holder).params if p.name in names]


class _EvaluateCommand(_TaskOptionsCommand):
    stage = "evaluate"


class _PredictCommand(_TaskOptionsCommand):
    stage = "predict"


# --------------------------------------------------------------------------------------------
# Commands
# --------------------------------------------------------------------------------------------


@app.command()
@_friendly_errors
def train(
    config: Annotated[
        Path | None, typer.Argument(help="YAML config (not needed with --resume).")
    ] = None,
    set_: SetOption = None,
    out: Annotated[
        Path | None, typer.Option(help="Run folder (default: runs/<config name>).")
    ] = None,
    resume: Annotated[
        Path | None, typer.Option(help="Continue this run folder from its last epoch.")
    ] = None,
    quiet: QuietOption = False,
) -> None:
    """Train a model; writes checkpoints, metrics and curves into a run folder."""
    from lrcn.tasks import load_config
    from lrcn.tasks import train as train_run

    if resume is not None:
        if config is not None or set_ or out is not None:
            raise typer.BadParameter(
                "--resume continues a run with its saved config; drop CONFIG, --set and --out"
            )
        with _progress(quiet) as progress:
            report = train_run(None, resume, resume=True, log=_log, progress=progress)
    else:
        if config is None:
            raise typer.BadParameter("give a CONFIG file, or --resume RUN_DIR")
        cfg = load_config(config, set_ or [])
        run = out or _default_run_dir(config)
        _log(f"run folder: {run}")
        with _progress(quiet) as progress:
            report = train_run(cfg, run, log=_log, progress=progress)
    typer.echo(report["summary"])


@app.command(cls=_EvaluateCommand)
@_friendly_errors
def evaluate(
    ctx: typer.Context,
    run_dir: Annotated[Path, typer.Argument(help="A run folder (or a bundle folder).")],
    set_: SetOption = None,
    which: WhichOption = "best",
    split: Annotated[str, typer.Option(help="The split to score: test or val.")] = "test",
    out: Annotated[
        Path | None, typer.Option(help="Folder for the results (default: RUN/eval-WHICH-SPLIT).")
    ] = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the metrics as one JSON object.")
    ] = False,
    quiet: QuietOption = False,
) -> None:
    """Score a trained model on its test split with its task's metrics, beside baselines
    (activity: accuracy, per class, confusion matrix; captioning: BLEU, METEOR, ROUGE-L,
    CIDEr-D)."""
    from lrcn.tasks import evaluate_run

    with _progress(quiet or json_output) as progress:
        task, summary = evaluate_run(
            run_dir, set_ or [], which, split, ctx.meta["task_options"], out, _log, progress
        )
    if json_output:
        typer.echo(json.dumps(summary))
    else:
        task.render_evaluation(summary, typer.echo)


@app.command(cls=_PredictCommand)
@_friendly_errors
def predict(
    ctx: typer.Context,
    run_dir: Annotated[Path, typer.Argument(help="A run folder (or a bundle folder).")],
    inputs: Annotated[
        list[Path], typer.Argument(help="What the run's task takes: videos, images, ...")
    ],
    which: WhichOption = "best",
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON list.")] = False,
) -> None:
    """Predict with a trained model (activity: top classes per video; captioning: a caption per
    image). An unreadable input is reported on stderr and the others are still predicted."""
    from lrcn.tasks import predict_run

    task, results = predict_run(run_dir, inputs, ctx.meta["task_options"], which)
    failed = [r for r in results if "error" in r]
    if json_output:
        typer.echo(json.dumps(results))
    else:
        task.render_predictions([r for r in results if "error" not in r], typer.echo)
    for r in failed:
        typer.echo(f"error: {r['error']}", err=True)
    if failed:
        raise typer.Exit(1)


@app.command("extract-features")
@_friendly_errors
def extract_features(
    config: Annotated[Path, typer.Argument(help="YAML config of a model with a frozen backbone.")],
    set_: SetOption = None,
    quiet: QuietOption = False,
) -> None:
    """Run the frozen backbone over the whole data set once and cache its features."""
    from lrcn.tasks import get_task, load_config

    cfg = load_config(config, set_ or [])
    with _progress(quiet) as progress:
        report = get_task(cfg.task).extract_features(cfg, _log, progress)
    typer.echo(f"{report['inputs']} inputs, {report['frames']} frames cached in {report['cache']}")
    if report["skipped"]:
        typer.echo("skipped:\n  " + "\n  ".join(report["skipped"]))


@app.command()
@_friendly_errors
def flow(
    config: Annotated[Path, typer.Argument(help="Config whose data section names the videos.")],
    out: Annotated[Path, typer.Option(help="Folder for the flow data set.")],
    set_: SetOption = None,
    quiet: QuietOption = False,
) -> None:
    """Compute optical flow images (x, y, magnitude) for a video data set, in the same layout."""
    from lrcn.config import ConfigError
    from lrcn.data.flow import write_flow_of_config
    from lrcn.data.video_split import VideoDataConfig
    from lrcn.tasks import load_config

    data = getattr(load_config(config, set_ or []), "data", None)
    if not isinstance(data, VideoDataConfig):
        raise ConfigError(config, "data: flow is computed for video data sets", key="data")
    with _progress(quiet) as progress:
        report = write_flow_of_config(
            data, out, _log,
            (lambda done, total: progress("optical flow", done, total)) if progress else None,
        )  # fmt: skip
    typer.echo(f"flow of {report['videos']} videos in {report['flow_root']}")
    typer.echo(f"train a flow model with: --set data.root={report['flow_root']}")
    if report["skipped"]:
        typer.echo("skipped:\n  " + "\n  ".join(report["skipped"]))


@app.command()
@_friendly_errors
def fuse(
    runs: Annotated[list[Path], typer.Argument(help="Run folders to fuse, e.g. RGB then flow.")],
    weights: Annotated[
        list[float] | None, typer.Option("--weight", help="One weight per run (repeat the option).")
    ] = None,
    which: WhichOption = "best",
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Late fusion of video scores from several activity runs (RGB + flow: 1/2-1/2 and
    1/3-2/3), on their test split."""
    from lrcn.fusion import fuse as fuse_runs

    report = fuse_runs(runs, weights, which=which, log=_log)
    if json_output:
        typer.echo(json.dumps(report))
        return
    typer.echo(f"{report['videos']} test videos")
    for r in report["runs"]:
        typer.echo(f"  {r['video_top1']:.3f}  {r['run']}")
    for f in report["fused"]:
        shares = " / ".join(f"{w:.2f}" for w in f["weights"])
        typer.echo(f"  {f['video_top1']:.3f}  fused, weights {shares}")


@datasets_app.command("captions-from-csv")
@_friendly_errors
def datasets_captions_from_csv(
    images: Annotated[Path, typer.Argument(help="Folder of your photos.")],
    captions: Annotated[
        Path, typer.Argument(help="CSV (or TSV) with 'image' and 'caption' columns.")
    ],
    out: Annotated[Path, typer.Option(help="Karpathy split JSON to write.")] = Path(
        "captions.json"
    ),
    val_fraction: Annotated[float, typer.Option(help="Share of images for validation.")] = 0.1,
    test_fraction: Annotated[float, typer.Option(help="Share of images for testing.")] = 0.1,
    seed: Annotated[int, typer.Option(help="Seed of the split.")] = 0,
) -> None:
    """Turn a folder of photos and a CSV of captions into a Karpathy split JSON."""
    from lrcn.data.formats.captions import csv_to_karpathy

    counts = csv_to_karpathy(images, captions, out, val_fraction, test_fraction, seed)
    typer.echo(f"{out}: " + ", ".join(f"{n} {s}" for s, n in counts.items()) + " images")
    typer.echo(f"train with data.format=karpathy, data.annotations={out}, data.root={images}")


@datasets_app.command("split-folders")
@_friendly_errors
def datasets_split_folders(
    root: Annotated[Path, typer.Argument(help="Videos in <root>/<class>/.")],
    out: Annotated[Path, typer.Option(help="Split file to write.")] = Path("split.txt"),
    test_fraction: Annotated[float, typer.Option(help="Share of each class for testing.")] = 0.2,
    seed: Annotated[int, typer.Option(help="Seed of the split.")] = 0,
    group_pattern: Annotated[
        str, typer.Option(help="Regex whose first group names a video's source.")
    ] = r"_g(\d+)_",
) -> None:
    """Write a train/test split of a folder-per-class video set, keeping sources on one side."""
    from lrcn.data.formats.folders import list_videos, make_split, write_split_file

    classes, items = list_videos(root, group_pattern)
    train, test = make_split(items, test_fraction, seed)
    write_split_file(out, root, train, test)
    groups = len({(i.label, i.group) for i in items})
    typer.echo(f"{out}: {len(train)} train and {len(test)} test videos, {len(classes)} classes, ")
    typer.echo(f"{groups} source groups kept whole")


@demo_app.callback()
def demo(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option(help="Folder for the data, configs and runs.")] = Path(
        "runs/demo"
    ),
    epochs: Annotated[int, typer.Option(min=1, help="Training epochs per model.")] = 12,
) -> None:
    """Activity recognition on built-in data: LRCN against the single-frame baseline."""
    if ctx.invoked_subcommand is not None:
        return
    _friendly_errors(_activity_demo)(out, epochs)


def _activity_demo(out: Path, epochs: int) -> None:
    from rich.console import Console
    from rich.table import Table

    from lrcn.demos.activity import run_activity_demo

    results = run_activity_demo(out, epochs=epochs, log=_log)
    first = results["lrcn"]["best"]
    table = Table(
        title=f"Order data set, split 1: {first['videos']} test videos (chance 0.25)",
        caption="best/ is the epoch with the best validation video top-1; one frame shows "
        "the objects, not their order",
    )
    for column in ("model", "video top-1, best/", "clip top-1, best/", "best epoch",
                   "video top-1, last/"):  # fmt: skip
        table.add_column(column, justify="right" if column != "model" else "left")
    for name in ("lrcn", "single_frame"):
        best, last = results[name]["best"], results[name]["last"]
        table.add_row(
            name, f"{best['video_top1']:.3f}", f"{best['clip_top1']:.3f}",
            str(best["epoch"] + 1), f"{last['video_top1']:.3f}",
        )  # fmt: skip
    Console().print(table)
    p = results["prediction"]
    typer.echo(
        f"LRCN on {p['input']}: "
        + ", ".join(f"{t['class']} {t['probability']:.2f}" for t in p["top"][:2])
    )
    for name in ("lrcn", "single_frame"):
        r = results[name]
        typer.echo(f"{name}: {r['best']['outputs']['confusion']}  curves: {r['run']}/curves.png")


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


@demo_app.command("activity")
def demo_activity(
    out: Annotated[Path, typer.Option(help="Folder for the data, configs and runs.")] = Path(
        "runs/demo"
    ),
    epochs: Annotated[int, typer.Option(min=1, help="Training epochs per model.")] = 12,
) -> None:
    """Activity recognition on built-in data: LRCN against the single-frame baseline."""
    _friendly_errors(_activity_demo)(out, epochs)


@demo_app.command("captioning")
def demo_captioning(
    out: Annotated[Path, typer.Option(help="Folder for the data, config, run and PNGs.")] = Path(
        "runs/demo-captioning"
    ),
    epochs: Annotated[int, typer.Option(min=1, help="Training epochs.")] = 15,
) -> None:
    """Image captioning on built-in images: Show-Attend-and-Tell with attention maps."""
    _friendly_errors(_captioning_demo)(out, epochs)


def _captioning_demo(out: Path, epochs: int) -> None:
    from lrcn.demos.captioning import run_captioning_demo
    from lrcn.tasks import get_task

    results = run_captioning_demo(out, epochs=epochs, log=_log)
    get_task("captioning").render_evaluation(results["metrics"], typer.echo)
    for c in results["captions"]:
        typer.echo(f"{Path(c['input']).name}: {c['caption']}")
        typer.echo(f"    reference: {c['references'][0]}")
        typer.echo(f"    attention: {c['attention']}")


@demo_app.command("gradients")
@_friendly_errors
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
