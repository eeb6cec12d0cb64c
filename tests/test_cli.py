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
