"""The lrcn command as a user runs it."""

import json
import subprocess
import sys

from PIL import Image
from typer.testing import CliRunner

from lrcn.cli import app

runner = CliRunner()


def test_help_is_fast_and_does_not_import_torch():
    code = (
        "import sys; from lrcn.cli import app; assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "demo" in result.output


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.startswith("lrcn ")


def test_demo_gradients_writes_plot_and_numbers(tmp_path):
    out = tmp_path / "grad"
    result = runner.invoke(
        app, ["demo", "gradients", "--out", str(out), "--lengths", "4,12", "--steps", "60"]
    )
    assert result.exit_code == 0, result.output
    assert "gradients.png" in result.output
    study = json.loads((out / "gradients.json").read_text())
    assert set(study["results"]) == {"rnn", "lstm"}
    assert set(study["results"]["lstm"]) == {"4", "12"}
    with Image.open(out / "gradients.png") as image:
        assert image.size[0] > 800 and image.size[1] > 400


def test_demo_gradients_rejects_bad_lengths(tmp_path):
    result = runner.invoke(app, ["demo", "gradients", "--out", str(tmp_path), "--lengths", "5,ten"])
    assert result.exit_code != 0
    assert "comma-separated integers" in result.output


def test_datasets_commands(order_ucf101, tmp_path):
    from lrcn.data.formats.captions import read_karpathy_json
    from lrcn.data.formats.folders import read_folders

    result = runner.invoke(
        app, ["datasets", "split-folders", str(order_ucf101), "--out", str(tmp_path / "split.txt")]
    )
    assert result.exit_code == 0, result.output
    split = read_folders(order_ucf101, split_file=tmp_path / "split.txt")
    assert split.group_leaks() == [] and split.test

    images = tmp_path / "photos"
    images.mkdir()
    rows = ["image,caption"]
    for n in range(10):
        Image.new("RGB", (8, 8), (n * 20, 0, 0)).save(images / f"p{n}.jpg")
        rows.append(f"p{n}.jpg,A red photo number {n}.")
    (tmp_path / "caps.csv").write_text("\n".join(rows) + "\n")
    result = runner.invoke(
        app,
        [
            "datasets",
            "captions-from-csv",
            str(images),
            str(tmp_path / "caps.csv"),
            "--out",
            str(tmp_path / "k.json"),
            "--val-fraction",
            "0.2",
            "--test-fraction",
            "0.2",
        ],
    )
    assert result.exit_code == 0, result.output
    data = read_karpathy_json(tmp_path / "k.json", images)
    assert (len(data.train), len(data.val), len(data.test)) == (6, 2, 2)
    result = runner.invoke(
        app, ["datasets", "captions-from-csv", str(images), str(tmp_path / "none.csv")]
    )
    assert result.exit_code == 2 and "none.csv: file not found" in result.output
