"""The ``lrcn`` command. Importing this module must stay cheap: no torch until a command runs."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar

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


def _friendly_errors(fn: F) -> F:
    """Bad input ends in one clear line on stderr and exit code 2, not a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from lrcn.checkpoint import BundleError
        from lrcn.config import ConfigError
        from lrcn.data.items import DataError
        from lrcn.data.video_io import VideoError

        try:
            return fn(*args, **kwargs)
        except (
            ConfigError,
            DataError,
            VideoError,
            BundleError,
            FileExistsError,
            FileNotFoundError,
        ) as err:
            typer.echo(f"error: {err}", err=True)
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


@contextmanager
def _progress() -> Iterator[Callable[[str, int, int], None]]:
    """A progress bar on stderr driven by ``update(description, step, total)`` calls."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        transient=True, console=_stderr_console(),
    ) as bar:  # fmt: skip
        task = bar.add_task("", total=None)

        def update(description: str, step: int, total: int) -> None:
            bar.update(task, description=description, completed=step, total=total)

        yield update


def _stderr_console() -> Any:
    from rich.console import Console

    return Console(stderr=True)


def _log(message: str) -> None:
    typer.echo(message, err=True)


def _bundle_task(run_dir: Path, which: str) -> str:
    """The task of a run's bundle, read from its bundle.json (no model is built)."""
    from lrcn.checkpoint import META, resolve_bundle_dir

    folder = resolve_bundle_dir(run_dir, which)
    try:
        return str(json.loads((folder / META).read_text()).get("task"))
    except json.JSONDecodeError as err:
        from lrcn.checkpoint import BundleError

        raise BundleError(f"{folder / META}: not valid JSON ({err})") from None


def _print_caption_scores(summary: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    names = ["bleu1", "bleu2", "bleu3", "bleu4", "meteor", "rouge_l", "cider"]
    table = Table(
        title=f"{summary['split']} split, {summary['images']} images, beam {summary['beam_size']}"
    )
    table.add_column("captions from")
    for n in names:
        table.add_column(
            n.replace("rouge_l", "ROUGE-L").replace("cider", "CIDEr-D").upper()
            if n.startswith("bleu")
            else {"meteor": "METEOR", "rouge_l": "ROUGE-L", "cider": "CIDEr-D"}[n],
            justify="right",
        )
    for row in ("model", "nearest_neighbour", "most_frequent_caption"):
        table.add_row(row.replace("_", " "), *(f"{summary[row][n]:.3f}" for n in names))
    Console().print(table)
    for name, path in summary["outputs"].items():
        typer.echo(f"{name}: {path}")


def _task_module(task: str) -> Any:
    """The pipeline module of a task (lrcn.tasks.<task>)."""
    import importlib

    return importlib.import_module(f"lrcn.tasks.{task}")


def _default_run_dir(config_path: Path) -> Path:
    base = Path("runs") / config_path.stem
    run, n = base, 1
    while (run / "last").exists():
        n += 1
        run = base.with_name(f"{base.name}-{n}")
    return run


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
) -> None:
    """Train a model; writes checkpoints, metrics and curves into a run folder."""
    from lrcn.config import load_config

    if resume is not None:
        if config is not None or set_:
            raise typer.BadParameter(
                "--resume continues a run with its saved config; drop CONFIG and --set"
            )
        import yaml

        saved = resume / "config.yaml"
        if not saved.is_file():
            raise FileNotFoundError(f"{resume}: no config.yaml; is this a run folder?")
        task = yaml.safe_load(saved.read_text()).get("task")
        with _progress() as progress:
            report = _task_module(task).train(
                None, resume, resume=True, log=_log, progress=progress
            )
    else:
        if config is None:
            raise typer.BadParameter("give a CONFIG file, or --resume RUN_DIR")
        cfg = load_config(config, set_ or [])
        run = out or _default_run_dir(config)
        _log(f"run folder: {run}")
        with _progress() as progress:
            report = _task_module(cfg.task).train(cfg, run, log=_log, progress=progress)
    typer.echo(report["summary"])


@app.command()
@_friendly_errors
def evaluate(
    run_dir: Annotated[Path, typer.Argument(help="A run folder (or a bundle folder).")],
    set_: SetOption = None,
    which: Annotated[str, typer.Option(help="Which checkpoint: best or last.")] = "best",
    split: Annotated[
        str, typer.Option(help="Captioning: the split to caption (test or val).")
    ] = "test",
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the metrics as one JSON object.")
    ] = False,
) -> None:
    """Score a trained model on its test split (activity: accuracy, per class, confusion matrix;
    captioning: BLEU-1..4, METEOR, ROUGE-L, CIDEr-D beside two baselines)."""
    task = _bundle_task(run_dir, which)
    with _progress() as progress:
        if task == "captioning":
            from lrcn.tasks.captioning import evaluate as evaluate_captions

            summary = evaluate_captions(
                run_dir, set_ or [], which=which, split=split, log=_log, progress=progress
            )
        else:
            from lrcn.tasks.activity import evaluate as evaluate_run

            summary = evaluate_run(run_dir, set_ or [], which=which, log=_log, progress=progress)
    if json_output:
        typer.echo(json.dumps(summary))
        return
    if task == "captioning":
        _print_caption_scores(summary)
        return
    k = next(key for key in summary if key.startswith("video_top") and key != "video_top1")
    typer.echo(
        f"videos {summary['videos']}, clips {summary['clips']}\n"
        f"video top-1 {summary['video_top1']:.3f}   {k} {summary[k]:.3f}   "
        f"mean class accuracy {summary['video_mean_class_accuracy']:.3f}\n"
        f"clip  top-1 {summary['clip_top1']:.3f}"
    )
    if summary["skipped"]:
        typer.echo(
            f"skipped {len(summary['skipped'])} videos:\n  " + "\n  ".join(summary["skipped"])
        )
    for name, path in summary["outputs"].items():
        typer.echo(f"{name}: {path}")


@app.command()
@_friendly_errors
def predict(
    run_dir: Annotated[Path, typer.Argument(help="A run folder (or a bundle folder).")],
    inputs: Annotated[list[Path], typer.Argument(help="Videos (activity) or images (captioning).")],
    top: Annotated[int, typer.Option(min=1, help="Activity: classes shown per video.")] = 5,
    beam: Annotated[
        int | None, typer.Option(min=1, help="Captioning: beam size (default: the config's).")
    ] = None,
    n_best: Annotated[int, typer.Option(min=1, help="Captioning: captions shown per image.")] = 1,
    attention: Annotated[
        Path | None, typer.Option(help="Captioning: folder for attention PNGs.")
    ] = None,
    which: Annotated[str, typer.Option(help="Which checkpoint: best or last.")] = "best",
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON list.")] = False,
) -> None:
    """Activity: top classes per video (all 16-frame clips, averaged). Captioning: a caption
    per image, with --attention the attention map of every word."""
    if _bundle_task(run_dir, which) == "captioning":
        from lrcn.tasks.captioning import predict as caption_images

        captions = caption_images(run_dir, inputs, beam, n_best, which, attention)
        if json_output:
            typer.echo(json.dumps(captions))
        for c in captions if not json_output else []:
            if "error" in c:
                typer.echo(f"error: {c['error']}")
                continue
            typer.echo(f"{c['image']}: {c['caption']}")
            for h in c["n_best"][1:]:
                typer.echo(f"    {h['log_prob']:.2f}  {h['caption']}")
            if "attention" in c:
                typer.echo(f"    attention: {c['attention']}")
        if any("error" in c for c in captions):
            raise typer.Exit(1)
        return
    from lrcn.tasks.activity import predict as predict_videos

    results = predict_videos(run_dir, inputs, top_k=top, which=which)
    if json_output:
        typer.echo(json.dumps(results))
    else:
        for r in results:
            if "error" in r:
                typer.echo(f"error: {r['error']}")
                continue
            typer.echo(f"{r['video']} ({r['clips']} clips)")
            for t in r["top"]:
                typer.echo(f"  {t['probability']:.3f}  {t['class']}")
    if any("error" in r for r in results):
        raise typer.Exit(1)


@app.command("extract-features")
@_friendly_errors
def extract_features(
    config: Annotated[Path, typer.Argument(help="YAML config of a model with a frozen backbone.")],
    set_: SetOption = None,
) -> None:
    """Run the frozen backbone over every video once and cache its features for training."""
    from lrcn.config import load_config
    from lrcn.tasks.activity import as_activity
    from lrcn.tasks.activity import extract_features as extract

    report = extract(as_activity(load_config(config, set_ or [])), log=_log)
    typer.echo(f"{report['videos']} videos, {report['frames']} frames cached in {report['cache']}")
    if report["skipped"]:
        typer.echo("skipped:\n  " + "\n  ".join(report["skipped"]))


@app.command()
@_friendly_errors
def flow(
    config: Annotated[Path, typer.Argument(help="Config whose data section names the videos.")],
    out: Annotated[Path, typer.Option(help="Folder for the flow data set.")],
    set_: SetOption = None,
) -> None:
    """Compute optical flow images (x, y, magnitude) for a data set, in the same layout."""
    from lrcn.config import load_config
    from lrcn.tasks.activity import as_activity, compute_flow

    with _progress() as progress:
        report = compute_flow(
            as_activity(load_config(config, set_ or [])), out, log=_log, progress=progress
        )
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
    which: Annotated[str, typer.Option(help="Which checkpoint: best or last.")] = "best",
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Late fusion of video scores from several runs (RGB + flow: 1/2-1/2 and 1/3-2/3)."""
    from lrcn.tasks.activity import fuse as fuse_runs

    if weights and (len(weights) != len(runs) or min(weights) < 0 or sum(weights) <= 0):
        raise typer.BadParameter(
            f"give one non-negative --weight per run ({len(runs)} runs), got {weights}"
        )
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
    table = Table(
        title="Order data set, split 1 (chance 0.25)",
        caption="one frame shows the objects, not their order",
    )
    for column in ("model", "video top-1", "clip top-1", "videos"):
        table.add_column(column, justify="right" if column != "model" else "left")
    for name in ("lrcn", "single_frame"):
        r = results[name]
        table.add_row(name, f"{r['video_top1']:.3f}", f"{r['clip_top1']:.3f}", str(r["videos"]))
    Console().print(table)
    p = results["prediction"]
    typer.echo(
        f"LRCN on {p['video']}: "
        + ", ".join(f"{t['class']} {t['probability']:.2f}" for t in p["top"][:2])
    )
    for name in ("lrcn", "single_frame"):
        r = results[name]
        typer.echo(f"{name}: {r['outputs']['confusion']}  curves: {r['run']}/curves.png")


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

    results = run_captioning_demo(out, epochs=epochs, log=_log)
    _print_caption_scores(results["metrics"])
    for c in results["captions"]:
        typer.echo(f"{Path(c['image']).name}: {c['caption']}")
        typer.echo(f"    reference: {c['references'][0]}")
        typer.echo(f"    attention: {c['attention']}")


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
