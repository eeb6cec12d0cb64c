"""The registry behind ``lrcn demo`` and ``lrcn datasets`` (lrcn.commands), its CLI adapter, and
the data-set tools videos-from-csv and msvd-split, as a user runs them."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pytest
from typer.testing import CliRunner

from lrcn import cli, commands
from lrcn.cli import app
from lrcn.commands import BadParameter, Help, list_commands, load_commands, register_demo
from lrcn.data.formats.video_captions import read_msrvtt, read_msvd
from lrcn.data.items import DataError
from lrcn.data.video_io import write_video

runner = CliRunner()

DEMOS = {
    "activity", "captioning", "gradients", "video-captioning", "vqa", "retrieval", "next-frame"
}  # fmt: skip
TOOLS = {
    "captions-from-csv",
    "split-folders",
    "videos-from-csv",
    "msvd-split",
    "vqa-from-csv",
    "moving-mnist",
}
TOP_LEVEL = {"export", "index", "search", "serve"}


# --------------------------------------------------------------------------------------------
# The registry and the adapter
# --------------------------------------------------------------------------------------------


def test_every_registered_command_is_in_help():
    for group, expected in (("demo", DEMOS), ("datasets", TOOLS)):
        names = [c.name for c in list_commands(group)]
        assert expected <= set(names) and len(names) == len(set(names))
        result = runner.invoke(app, [group, "--help"], env={"COLUMNS": "200"})
        assert result.exit_code == 0, result.output
        for command in list_commands(group):
            assert command.name in result.output and command.help in result.output
            sub = runner.invoke(app, [group, command.name, "--help"])
            assert sub.exit_code == 0, sub.output
            assert "--log" not in sub.output and "--progress" not in sub.output
    top = runner.invoke(app, ["--help"], env={"COLUMNS": "200"})
    assert {c.name for c in list_commands("lrcn")} == TOP_LEVEL
    for command in list_commands("lrcn"):
        assert command.name in top.output and command.help in top.output
        sub = runner.invoke(app, [command.name, "--help"])
        assert sub.exit_code == 0 and "--progress" not in sub.output, sub.output


def test_commands_and_their_modules_import_cheaply():
    code = (
        "import sys; import lrcn.commands as c; "
        "assert not {'torch', 'numpy', 'typer'} & set(sys.modules), 'commands'; "
        "c.load_commands(); "
        "assert not {'torch', 'numpy'} & set(sys.modules), 'command modules'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_load_commands_fails_loudly(monkeypatch, tmp_path):
    (tmp_path / "lrcn_broken_tool.py").write_text("import lrcn_no_such_dependency\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(commands, "COMMAND_MODULES", ("lrcn.demos.no_such_demo",))
    with pytest.raises(ImportError, match=r"command module lrcn.demos.no_such_demo"):
        load_commands()
    monkeypatch.setattr(commands, "COMMAND_MODULES", ("lrcn_broken_tool",))
    with pytest.raises(ImportError, match=r"lrcn_broken_tool .*lrcn_no_such_dependency"):
        load_commands()


@pytest.fixture
def registry(monkeypatch):
    """A copy of the registry and of ``lrcn demo``'s commands, for commands made by a test."""
    monkeypatch.setattr(commands, "_REGISTRY", dict(commands._REGISTRY))
    monkeypatch.setattr(cli.demo_app, "registered_commands", list(cli.demo_app.registered_commands))


def _table(title: str) -> Any:
    from rich.table import Table

    table = Table(title=title)
    table.add_column("column")
    table.add_row("cell")
    return table


@pytest.fixture
def fake(registry):
    """``lrcn demo fake``: a demo registered by the test, added to the real command tree."""

    @register_demo("fake")
    def fake_demo(
        source: Annotated[Path, Help("Where to read from.")],
        count: Annotated[int, Help("How many things.", min=1, max=5)] = 2,
        name_with_dashes: Annotated[str, Help("What to call them.")] = "thing",
        kind: Annotated[str, Help("What to return.", flag="--output-kind")] = "text",
        log: Callable[[str], None] = print,
    ) -> Any:
        """A demo made by the tests.

        A second paragraph, which the command list leaves out."""
        if kind == "text":
            log(f"reading {source}")
        outputs = {
            "text": lambda: f"{count} {name_with_dashes}",
            "none": lambda: None,
            "table": lambda: _table("A table"),
            "list": lambda: ["first", _table("Second"), None, ("third", "fourth")],
        }
        if kind == "data":
            raise DataError(source, "broken", 3, expected="a good file")
        if kind == "usage":
            raise BadParameter("expected a good kind")
        if kind == "bug":
            raise RuntimeError("oops")
        return outputs[kind]()

    (command,) = [c for c in list_commands("demo") if c.name == "fake"]
    assert command.help == "A demo made by the tests." and command.function is fake_demo
    cli.add_command(cli.demo_app, command)
    return command


def test_fake_demo_help_arguments_and_options(fake):
    result = runner.invoke(app, ["demo", "--help"])
    assert "fake" in result.output and "A demo made by the tests." in result.output
    assert "second paragraph" not in result.output
    result = runner.invoke(app, ["demo", "fake", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for text in ("Where to read from.", "How many things.", "What to call them.",
                 "What to return.", "--count", "--name-with-dashes", "--output-kind",
                 "1<=x<=5", "[default: 2]", "[default: thing]"):  # fmt: skip
        assert text in result.output, text
    assert "--log" not in result.output and "--kind" not in result.output


def test_fake_demo_runs_with_log_and_bounds(fake):
    result = runner.invoke(app, ["demo", "fake", "in.txt", "--name-with-dashes", "cats"])
    assert result.exit_code == 0, result.output
    assert result.stdout == "2 cats\n" and result.stderr == "reading in.txt\n"
    result = runner.invoke(app, ["demo", "fake", "in.txt", "--count", "5"])
    assert result.stdout == "5 thing\n"
    for bad in ("0", "6", "two"):
        result = runner.invoke(app, ["demo", "fake", "in.txt", "--count", bad])
        assert result.exit_code == 2 and "--count" in result.stderr, result.output
    result = runner.invoke(app, ["demo", "fake"])
    assert result.exit_code == 2 and "SOURCE" in result.stderr.upper()


def test_fake_demo_prints_what_it_returns(fake):
    def run(kind):
        result = runner.invoke(app, ["demo", "fake", "x", "--output-kind", kind])
        assert result.exit_code == 0, result.output
        return result.stdout

    assert run("none") == ""
    table = run("table")
    assert "A table" in table and "cell" in table and "column" in table
    lines = run("list").splitlines()
    assert lines[0] == "first" and lines[-2:] == ["third", "fourth"]
    assert any("Second" in line for line in lines[1:-2])


def test_fake_demo_errors(fake):
    result = runner.invoke(app, ["demo", "fake", "in.txt", "--output-kind", "data"])
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr == "error: in.txt:3: broken; expected a good file\n"
    result = runner.invoke(app, ["demo", "fake", "in.txt", "--output-kind", "usage"])
    assert result.exit_code == 2 and "expected a good kind" in result.stderr
    assert "Usage:" in result.stderr  # a usage error, like a value of the wrong type
    result = runner.invoke(app, ["demo", "fake", "in.txt", "--output-kind", "bug"])
    assert result.exit_code == 1 and len(result.stderr.splitlines()) == 1
    assert "internal error (RuntimeError: oops)" in result.stderr


def test_registration_mistakes_are_named(registry):
    def other(out: Annotated[Path, Help("Out.")] = Path("x")) -> None:
        """Another function."""

    with pytest.raises(ValueError, match=r"lrcn demo activity: already registered by "):
        register_demo("activity")(other)

    @register_demo("undocumented")
    def undocumented(out: Path = Path("x")) -> None:
        """No Help on its parameter."""

    (command,) = [c for c in list_commands("demo") if c.name == "undocumented"]
    with pytest.raises(TypeError, match=r"parameter 'out' of .*undocumented must be declared"):
        cli.add_command(cli.demo_app, command)


def _fake_activity_results(calls: list[Any]) -> Callable[..., dict[str, Any]]:
    def run_activity_demo(out, epochs, log):
        calls.append((out, epochs, log))
        model = {
            "best": {"videos": 8, "video_top1": 0.875, "clip_top1": 0.8, "epoch": 2,
                     "outputs": {"confusion": "c.png"}},
            "last": {"video_top1": 0.75},
        }  # fmt: skip
        return {
            "lrcn": {"run": "r/lrcn", **model},
            "single_frame": {"run": "r/single_frame", **model},
            "prediction": {"input": "v.avi", "top": [{"class": "A", "probability": 0.9},
                                                     {"class": "B", "probability": 0.1}]},
        }  # fmt: skip

    return run_activity_demo


@pytest.mark.parametrize("argv", [["demo"], ["demo", "activity"]])
def test_plain_demo_runs_the_activity_demo(monkeypatch, tmp_path, argv):
    import lrcn.demos.activity

    calls: list[Any] = []
    monkeypatch.setattr(lrcn.demos.activity, "run_activity_demo", _fake_activity_results(calls))
    result = runner.invoke(
        app, [*argv, "--out", str(tmp_path), "--epochs", "3"], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 0, result.output
    assert calls == [(tmp_path, 3, cli._log)]
    out = result.stdout
    assert "Order data set, split 1: 8 test videos (chance 0.25)" in out and "0.875" in out
    assert out.splitlines()[-3:] == [
        "LRCN on v.avi: A 0.90, B 0.10",
        "lrcn: c.png  curves: r/lrcn/curves.png",
        "single_frame: c.png  curves: r/single_frame/curves.png",
    ]
    result = runner.invoke(app, [*argv, "--epochs", "0"])
    assert result.exit_code == 2 and len(calls) == 1


# --------------------------------------------------------------------------------------------
# lrcn datasets videos-from-csv
# --------------------------------------------------------------------------------------------

VIDEOS = ["cat.mp4", "dog.mp4", "bird.avi", "fish.mkv", "cow.mp4", "owl.avi"]


@pytest.fixture(scope="module")
def video_template(tmp_path_factory):
    root = tmp_path_factory.mktemp("own") / "videos"
    for k, name in enumerate(VIDEOS):
        write_video(root / name, np.full((4, 16, 16, 3), 40 * k, np.uint8))
    return root


@pytest.fixture
def own(video_template, tmp_path):
    """Six videos of your own in ``videos/`` and a CSV with two captions each."""
    root = tmp_path / "videos"
    shutil.copytree(video_template, root)
    rows = ["video,caption"]
    for name in VIDEOS:
        animal = Path(name).stem
        rows += [f"{name},A {animal} walks.", f'{name},"The {animal}, slowly, turns."']
    (tmp_path / "caps.csv").write_text("\n".join(rows) + "\n")
    return root


def _videos_from_csv(root, csv, *options):
    return runner.invoke(app, ["datasets", "videos-from-csv", str(root), str(csv), *options])


def test_videos_from_csv_reads_back_as_msrvtt(own):
    result = _videos_from_csv(own, own.parent / "caps.csv", "--seed", "3")
    assert result.exit_code == 0, result.output
    annotations = own / "videodatainfo_2017.json"
    assert result.stdout.splitlines() == [
        f"{annotations}: 4 train, 1 validate, 1 test videos (12 sentences)",
        f"train with data.format=msrvtt, data.root={own}",
    ]
    data = read_msrvtt(own)
    assert (len(data.train), len(data.val), len(data.test)) == (4, 1, 1) and not data.skipped
    items = data.train + data.val + data.test
    assert sorted(i.video_id for i in items) == sorted(Path(n).stem for n in VIDEOS)
    for item in items:
        assert item.path == own / next(n for n in VIDEOS if Path(n).stem == item.video_id)
        animal = item.video_id
        assert item.captions == (("a", animal, "walks"), ("the", animal, "slowly", "turns"))
    doc = json.loads(annotations.read_text())
    assert set(doc) == {"info", "videos", "sentences"}
    assert doc["videos"][0] == {"video_id": "bird", "split": doc["videos"][0]["split"],
                                "category": 0, "url": "", "start time": 0.0, "end time": 0.0,
                                "id": 0}  # fmt: skip
    assert doc["sentences"][1] == {"caption": "The cat, slowly, turns.", "video_id": "cat",
                                   "sen_id": 1}  # fmt: skip
    # the same seed gives the same split, another seed (here) another
    before = annotations.read_text()
    assert _videos_from_csv(own, own.parent / "caps.csv", "--seed", "3").exit_code == 0
    assert annotations.read_text() == before
    assert _videos_from_csv(own, own.parent / "caps.csv", "--seed", "4").exit_code == 0
    assert annotations.read_text() != before


def test_videos_from_csv_tsv_out_in_parent_and_three_videos(own):
    rows = ["caption\tvideo"] + [f"a {Path(n).stem} here\t{n}" for n in VIDEOS]
    (own.parent / "caps.tsv").write_text("\n".join(rows) + "\n")
    out = own.parent / "videodatainfo_2017.json"
    result = _videos_from_csv(own, own.parent / "caps.tsv", "--out", str(out),
                              "--val-fraction", "0", "--test-fraction", "0.5")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        f"{out}: 2 train, 1 validate, 3 test videos (6 sentences)",
        f"train with data.format=msrvtt, data.root={own.parent}",
    ]
    data = read_msrvtt(own.parent)
    assert (len(data.train), len(data.val), len(data.test)) == (2, 1, 3)
    # three videos: one on each side, whatever the fractions
    for name in VIDEOS[3:]:
        (own / name).unlink()
    (own.parent / "caps.tsv").write_text("\n".join(rows[:4]) + "\n")
    result = _videos_from_csv(own, own.parent / "caps.tsv", "--val-fraction", "0.5")
    assert result.exit_code == 0, result.output
    data = read_msrvtt(own)
    assert (len(data.train), len(data.val), len(data.test)) == (1, 1, 1)


def _rewrite(path: Path, old: str, new: str) -> None:
    path.write_text(path.read_text().replace(old, new, 1))


def _keep_two_videos(root: Path) -> None:
    for name in VIDEOS[2:]:
        (root / name).unlink()
    (root.parent / "caps.csv").write_text("video,caption\ncat.mp4,a cat\ndog.mp4,a dog\n")


# name -> (edit of the folder, the error after "error: " (regex))
VIDEO_CSV_ERRORS = {
    "missing column": (lambda r: _rewrite(r.parent / "caps.csv", "video,caption", "video,text"),
                       r"{csv}:1: the header must name 'video' and 'caption' columns, got \['video', 'text'\]"),
    "empty caption": (lambda r: _rewrite(r.parent / "caps.csv", "A dog walks.", " ?! "),
                      r"{csv}:4: empty caption '\?!'; expected words"),
    "missing video": (lambda r: (r / "bird.avi").unlink(),
                      r"{csv}:6: video {root}/bird.avi does not exist"),
    "same stem in the CSV": (lambda r: _rewrite(r.parent / "caps.csv", 'dog.mp4,"The', 'dog.avi,"The'),
                             r"{csv}:5: video dog.avi has the stem of dog.mp4 \(line 4\); expected one file per name stem: the stem is the video's id"),
    "same stem on disk": (lambda r: shutil.copy(r / "cat.mp4", r / "cat.webm"),
                          r"{csv}:2: video cat.mp4 has the stem of {root}/cat.webm too; expected one file per name stem"),
    "video with no caption": (lambda r: shutil.copy(r / "cat.mp4", r / "zebra.mp4"),
                              r"{csv}: video {root}/zebra.mp4 has no caption; expected at least one row naming it"),
    "not a video": (lambda r: _rewrite(r.parent / "caps.csv", "cow.mp4,A", "cow.gif,A"),
                    r"{csv}:10: video cow.gif: not a video file name; expected a suffix .mp4, .avi, .mkv, .webm"),
    "too few videos": (lambda r: _keep_two_videos(r),
                       r"{csv}: 2 video\(s\); expected at least 3: one each for train, validate and test"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(VIDEO_CSV_ERRORS))
def test_videos_from_csv_errors_name_the_csv_and_line(own, case):
    edit, pattern = VIDEO_CSV_ERRORS[case]
    edit(own)
    csv = own.parent / "caps.csv"
    result = _videos_from_csv(own, csv)
    assert result.exit_code == 2, result.output
    assert len(result.stderr.splitlines()) == 1 and result.stdout == ""
    assert re.match("error: " + pattern.format(csv=csv, root=own), result.stderr), result.stderr
    assert not (own / "videodatainfo_2017.json").exists()


def test_videos_from_csv_out_must_be_where_the_reader_looks(own, tmp_path):
    csv = own.parent / "caps.csv"
    for out in (tmp_path / "elsewhere" / "videodatainfo_2017.json", own / "mine.json"):
        result = _videos_from_csv(own, csv, "--out", str(out))
        assert result.exit_code == 2 and len(result.stderr.splitlines()) == 1
        assert result.stderr.startswith(f"error: {out}: ")
    renamed = own.rename(own.parent / "clips")
    result = _videos_from_csv(renamed, csv, "--out", str(own.parent / "videodatainfo_2017.json"))
    assert result.exit_code == 2
    assert "must lie where read_msrvtt finds the videos" in result.stderr
    result = _videos_from_csv(renamed, csv, "--val-fraction", "0.5", "--test-fraction", "0.5")
    assert result.exit_code == 2 and "leaves no video to train on" in result.stderr
    result = _videos_from_csv(renamed, csv, "--val-fraction", "-0.1")
    assert result.exit_code == 2 and "--val-fraction" in result.stderr


# --------------------------------------------------------------------------------------------
# lrcn datasets msvd-split
# --------------------------------------------------------------------------------------------

CLIPS = ["-4wsuPCjDBc_5_15", "0lh_UWF9ZP4_27_31", "Ab_c-D_1_9", "zz9_0_4", "kid_2_8", "q_q_3_7"]


@pytest.fixture
def msvd(tmp_path):
    """A tiny MSVD: six clips with two sentences each."""
    root = tmp_path / "msvd"
    for clip in CLIPS:
        write_video(root / "YouTubeClips" / f"{clip}.avi", np.zeros((2, 16, 16, 3), np.uint8))
    lines = [f"{clip} A man plays number {k}." for k, clip in enumerate(CLIPS)]
    lines += [f"{clip} Someone plays music." for clip in CLIPS]
    (root / "AllVideoDescriptions.txt").write_text("\n".join(lines) + "\n")
    return root


def test_msvd_split(msvd, tmp_path):
    result = runner.invoke(app, ["datasets", "msvd-split", str(msvd)])
    assert result.exit_code == 0, result.output
    path = msvd / "msvd_split.json"
    assert result.stdout.splitlines() == [
        f"{path}: 4 train, 0 val, 2 test clips",
        f"train with data.format=msvd, data.root={msvd}, data.split_file={path}",
    ]
    data = read_msvd(msvd)
    assert [i.video_id for i in data.train + data.test] == sorted(CLIPS)
    other = tmp_path / "mine.json"
    result = runner.invoke(app, ["datasets", "msvd-split", str(msvd), "--out", str(other)])
    assert result.exit_code == 0 and f"data.split_file={other}" in result.stdout
    assert len(read_msvd(msvd, split_file=other).test) == 2
    result = runner.invoke(app, ["datasets", "msvd-split", str(tmp_path / "nowhere")])
    assert result.exit_code == 2
    assert (
        result.stderr
        == f"error: {tmp_path / 'nowhere'}: data root not found; expected an existing folder\n"
    )


def test_moving_mnist_writes_the_standard_layout(tmp_path):
    from lrcn.data.formats.moving_mnist import read_moving_mnist

    out = tmp_path / "mm"
    result = runner.invoke(
        app, ["datasets", "moving-mnist", "--out", str(out), "--train", "3", "--test", "2"]
    )
    assert result.exit_code == 0, result.output
    assert read_moving_mnist(out / "train.npy").shape == (20, 3, 64, 64)
    assert read_moving_mnist(out / "test.npy").shape == (20, 2, 64, 64)
