"""The ``lrcn`` command. Importing this module must stay cheap: no torch until a command runs."""

from __future__ import annotations

import functools
import inspect
import json
import os
import typing
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from typer.core import TyperCommand

from lrcn import __version__
from lrcn.commands import BadParameter, Command, Group, Help, list_commands

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
            if getattr(err, "quiet", False):  # a torchrun peer's echo of rank 0's error
                raise typer.Exit(1) from None
            _fail(str(err), _EXIT_BAD_INPUT)
        except OSError as err:  # permissions, a full disk, a file where a folder should be
            message = err.strerror or str(err)
            _fail(f"{err.filename}: {message}" if err.filename else message, _EXIT_BAD_INPUT)
        except FloatingPointError as err:
            _fail(str(err), 1)
        except KeyboardInterrupt:
            if os.environ.get("RANK", "0") != "0":  # under torchrun, rank 0 says it once
                raise typer.Exit(130) from None
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

        merged: dict[str, tuple[Any, list[tuple[str, str]]]] = {}
        for name in list_tasks():
            for option in getattr(get_task(name), f"{self.stage}_options"):
                merged.setdefault(option.name, (option, []))[1].append((name, option.help))
        return [(option, helps) for option, helps in merged.values()]

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
    parameters = []
    for option, helps in specs:
        texts = {text for _, text in helps}
        if len(texts) == 1:  # one meaning: "activity, vqa: ..."
            text = f"{', '.join(task for task, _ in helps)}: {texts.pop()}"
        else:  # each task's own words: "activity: classes shown...; vqa: answers shown..."
            text = "; ".join(f"{task}: {help_}" for task, help_ in helps)
        info = typer.Option(
            option.flag,
            help=text,
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
    nproc: Annotated[
        int,
        typer.Option(
            min=1,
            help="Train in N processes on this machine (PyTorch DDP; one per GPU, or CPU "
            "processes): torchrun --nproc-per-node N -m lrcn train ...",
        ),
    ] = 1,
    quiet: QuietOption = False,
) -> None:
    """Train a model; writes checkpoints, metrics and curves into a run folder."""
    from lrcn.tasks import load_config
    from lrcn.tasks import train as train_run

    main_rank = os.environ.get("RANK", "0") == "0"  # under torchrun, rank 0 speaks
    if resume is not None:
        if config is not None or set_ or out is not None:
            raise typer.BadParameter(
                "--resume continues a run with its saved config; drop CONFIG, --set and --out"
            )
        if nproc > 1:
            from lrcn.tasks.trainer import check_resumable

            check_resumable(resume)  # here, before N processes start to say it N times
            raise typer.Exit(_launch(nproc, ["train", "--resume", str(resume)], quiet))
        with _progress(quiet) as progress:
            report = train_run(None, resume, resume=True, log=_log, progress=progress)
    else:
        if config is None:
            raise typer.BadParameter("give a CONFIG file, or --resume RUN_DIR")
        cfg = load_config(config, set_ or [])  # checked once here, before any process starts
        run = out or _default_run_dir(config)
        if nproc > 1:
            from lrcn.config import ConfigError
            from lrcn.training.run import refuse_used_run

            refuse_used_run(run)  # here, before N processes start to say it N times
            if cfg.train.batch_size % nproc:  # fit() says the same under a bare torchrun
                raise ConfigError(
                    "train.batch_size",
                    f"{cfg.train.batch_size} cannot be split over {nproc} processes",
                    expected="a multiple of --nproc (it is the global batch)",
                )
            args = ["train", str(config), *_set_args(set_), "--out", str(run)]
            raise typer.Exit(_launch(nproc, args, quiet))
        if main_rank:
            _log(f"run folder: {run}")
        with _progress(quiet) as progress:
            report = train_run(cfg, run, log=_log, progress=progress)
    if report["summary"]:
        typer.echo(report["summary"])


def _set_args(set_: list[str] | None) -> list[str]:
    """``--set`` overrides as they are passed on to the processes torchrun starts."""
    return [arg for item in set_ or [] for arg in ("--set", item)]


def _launch(nproc: int, args: list[str], quiet: bool) -> int:
    """``lrcn ARGS`` in ``nproc`` processes through torchrun; the exit status."""
    from lrcn.training.launch import launch

    return launch(nproc, [*args, *(["--quiet"] if quiet else [])])


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
    (activity: accuracy, per class, confusion matrix; image and video captioning: BLEU, METEOR,
    ROUGE-L, CIDEr-D; video tuples: slot accuracy, and tuples.json for every video; vqa: VQA
    accuracy per answer type; retrieval: R@1/5/10 and median rank both ways; next_frame: MSE,
    MAE, SSIM and PSNR per horizon step beside copy-last-frame and linear extrapolation)."""
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
    engine: Annotated[
        str,
        typer.Option(
            help="What runs the model: eager (PyTorch), onnxruntime or torchscript (an export "
            "of the run made by lrcn export: RUN/best-onnx, or give that folder)."
        ),
    ] = "eager",
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON list.")] = False,
) -> None:
    """Predict with a trained model, whatever its task (a video's classes, a sentence for a photo
    or a video, a video's tuple, the answer to a question about a photo, photos ranked for a
    sentence, a video's next frames). An unreadable input is reported on stderr and the others
    are still predicted."""
    from lrcn.tasks import predict_run

    task, results = predict_run(run_dir, inputs, ctx.meta["task_options"], which, engine)
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
    nproc: Annotated[
        int,
        typer.Option(
            min=1,
            help="Share the videos out over N processes on this machine (torchrun "
            "--nproc-per-node N -m lrcn extract-features ...).",
        ),
    ] = 1,
    quiet: QuietOption = False,
) -> None:
    """Run the frozen backbone over the whole data set once and cache its features."""
    from lrcn.tasks import get_task, load_config

    cfg = load_config(config, set_ or [])
    if nproc > 1:
        args = ["extract-features", str(config), *_set_args(set_)]
        raise typer.Exit(_launch(nproc, args, quiet))
    with _progress(quiet) as progress:
        report = get_task(cfg.task).extract_features(cfg, _log, progress)
    if not report["main"]:  # under torchrun, rank 0 reports
        return
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


# --------------------------------------------------------------------------------------------
# `lrcn demo ...`, `lrcn datasets ...`, `lrcn search`: the functions registered in lrcn.commands
# --------------------------------------------------------------------------------------------

_GROUP_APPS: dict[Group, typer.Typer] = {"lrcn": app, "demo": demo_app, "datasets": datasets_app}
_DEFAULT_DEMO = "activity"  # what plain `lrcn demo` runs (`make demo`)


def add_command(typer_app: typer.Typer, command: Command) -> None:
    """Add a registered command to ``typer_app`` under its name."""
    typer_app.command(command.name, help=command.help)(_typer_function(command))


def _typer_function(command: Command, *, group_default: bool = False) -> Callable[..., None]:
    """A function typer reads as a command: the registered function's parameters as typer
    Arguments and Options (in ``__signature__``); it passes ``log`` when the function takes
    one, prints what the function returns and reports its errors like every command does.
    ``group_default``: a group's callback, which runs the command only when no subcommand
    was named (plain ``lrcn demo``)."""
    parameters, passed = _typer_parameters(command)

    def run(**kwargs: Any) -> None:
        ctx = kwargs.pop("ctx", None)
        if ctx is not None and ctx.invoked_subcommand is not None:
            return
        if "log" in passed:
            kwargs["log"] = _log
        with _progress(quiet="progress" not in passed) as progress:
            if "progress" in passed:
                kwargs["progress"] = progress
            try:
                result = command.function(**kwargs)
            except BadParameter as err:  # a usage error, like a value of the wrong type
                raise typer.BadParameter(str(err)) from None
        _print_result(result)

    wrapped = _friendly_errors(run)
    if group_default:
        ctx = inspect.Parameter("ctx", inspect.Parameter.KEYWORD_ONLY, annotation=typer.Context)
        parameters = [ctx, *parameters]
    wrapped.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    return wrapped


def _typer_parameters(command: Command) -> tuple[list[inspect.Parameter], set[str]]:
    """The command's parameters, each ``Annotated[T, typer.Argument | typer.Option]``, and
    which of ``log`` and ``progress`` (a progress bar's ``update(what, done, total)``, None
    off a terminal) it takes: the CLI passes those."""
    hints = typing.get_type_hints(command.function, include_extras=True)
    parameters: list[inspect.Parameter] = []
    passed: set[str] = set()
    for param in inspect.signature(command.function).parameters.values():
        if param.name in ("log", "progress"):
            passed.add(param.name)
            continue
        kind, help_ = _annotated_help(command, param, hints.get(param.name))
        info = _typer_info(help_, argument=param.default is param.empty)
        parameters.append(
            inspect.Parameter(
                param.name,
                inspect.Parameter.KEYWORD_ONLY,  # keyword-only: arguments may follow options
                default=param.default,
                annotation=Annotated[kind, info],
            )
        )
    return parameters, passed


def _annotated_help(command: Command, param: inspect.Parameter, hint: Any) -> tuple[Any, Help]:
    """``(T, Help)`` of a parameter annotated ``Annotated[T, Help(...)]``; a TypeError naming
    the function otherwise (a registration bug, caught by the tests of every command)."""
    helps = [m for m in getattr(hint, "__metadata__", ()) if isinstance(m, Help)]
    variadic = param.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    if typing.get_origin(hint) is not Annotated or len(helps) != 1 or variadic:
        function = command.function
        raise TypeError(
            f"lrcn {command.group} {command.name}: parameter {param.name!r} of "
            f"{function.__module__}.{function.__qualname__} must be declared "
            f"'{param.name}: Annotated[<type>, Help(\"...\")]' (or be 'log')"
        )
    return typing.get_args(hint)[0], helps[0]


def _typer_info(help_: Help, *, argument: bool) -> Any:
    if argument:
        return typer.Argument(help=help_.text, min=help_.min, max=help_.max)
    flags = (help_.flag,) if help_.flag else ()
    return typer.Option(*flags, help=help_.text, min=help_.min, max=help_.max)


def _print_result(result: Any) -> None:
    """What a registered command returned: text is echoed, a list printed item by item, and
    anything else (a rich Table) printed by rich."""
    if result is None:
        return
    if isinstance(result, list | tuple):
        for part in result:
            _print_result(part)
    elif isinstance(result, str):
        typer.echo(result)
    else:
        from rich.console import Console

        Console().print(result)


def _add_registered_commands() -> None:
    for group, typer_app in _GROUP_APPS.items():
        for command in list_commands(group):
            add_command(typer_app, command)
    default = next(c for c in list_commands("demo") if c.name == _DEFAULT_DEMO)
    demo_app.callback()(_typer_function(default, group_default=True))


_add_registered_commands()


def main() -> None:
    """Entry point of the console script."""
    app()


if __name__ == "__main__":
    main()
