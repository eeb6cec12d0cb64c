"""The run folder's guarantees: one writer (the lock), and a kill at any named point followed by
``--resume`` ends byte-identical, in the weights of ``last/`` and ``best/`` and in the metric
rows, to a run that never stopped."""

import json
import multiprocessing
import os
import random
import signal
import socket
import subprocess
import sys
import time

import pytest
from typer.testing import CliRunner

from lrcn.cli import app
from lrcn.tasks import train, validate_config
from lrcn.training.faults import POINTS
from lrcn.training.lock import RunLocked

pytestmark = pytest.mark.slow
runner = CliRunner()
EPOCHS = 3


def _raw(videos, features, epochs=EPOCHS):
    return {
        "task": "activity",
        "data": {"format": "ucf101", "root": str(videos), "clip_len": 8, "stride": 4,
                 "num_workers": 0, "val_fraction": 0.4},
        "model": {"name": "lrcn", "backbone": "efficientnet_lite0", "image_size": 64,
                  "hidden_size": 16, "dropout": 0.3},
        "train": {"epochs": epochs, "batch_size": 8, "lr": 0.01, "device": "cpu",
                  "feature_cache": str(features)},
    }  # fmt: skip


def _quiet(message: str) -> None:
    pass


@pytest.fixture(scope="module")
def reference(order_ucf101, tmp_path_factory):
    """An uninterrupted run (it also fills the feature cache the others read)."""
    root = tmp_path_factory.mktemp("commit")
    config = validate_config(_raw(order_ucf101, root / "features"))
    train(config, root / "reference", log=_quiet)
    return config, root / "reference"


def _resume_or_restart(config, run, log):
    """What a user does after a kill: --resume if an epoch was committed, else train again."""
    if (run / "last").exists() or (run / ".commit" / "COMMIT").exists():
        train(None, run, resume=True, log=log)
    else:
        assert not list(run.glob("*/model.safetensors"))
        train(config, run, log=log)


def _rows(run):
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [(r["epoch"], r["train_loss"], r["metrics"]) for r in rows]


def _same_folder(run, reference):
    for name in ("last", "best"):
        mine, theirs = run / name / "model.safetensors", reference / name / "model.safetensors"
        assert mine.read_bytes() == theirs.read_bytes(), name
        epoch = json.loads((run / name / "bundle.json").read_text())["epoch"]
        assert epoch == json.loads((reference / name / "bundle.json").read_text())["epoch"], name
    assert _rows(run) == _rows(reference)
    assert not (run / ".commit").exists() and not (run / ".lock").exists()
    report = json.loads((run / "report.json").read_text())
    assert report["best"] == json.loads((reference / "report.json").read_text())["best"]


def _train_and_kill(config, run, point):
    os.environ["LRCN_KILL_AT"] = point
    train(config, run, log=_quiet)
    os._exit(0)  # the point was never reached


def test_the_reference_improves_then_does_not(reference):
    """The kill cases below are only interesting if some epoch does not improve best/."""
    _, run = reference
    best_epoch = json.loads((run / "best" / "bundle.json").read_text())["epoch"]
    scores = [m["val_video_top1"] for _, _, m in _rows(run)]
    assert len(scores) == EPOCHS
    assert best_epoch == max(range(EPOCHS), key=lambda e: (scores[e], -e))


@pytest.mark.parametrize("epoch", range(1, EPOCHS + 1))
@pytest.mark.parametrize("point", POINTS)
def test_a_kill_at_any_point_then_resume_ends_identical(reference, tmp_path, point, epoch):
    config, ref = reference
    run = tmp_path / "run"
    child = multiprocessing.get_context("fork").Process(
        target=_train_and_kill, args=(config, run, f"{point}@{epoch}")
    )
    child.start()
    child.join(120)
    if child.exitcode == 0:  # best/ is staged only in epochs that improve
        assert point == "staged-best" and epoch > 1, "the kill point was never reached"
        return
    assert child.exitcode == -9
    # The kill leaves the lock behind; its pid is gone, so the resume takes it over.
    assert (run / ".lock").exists()
    logged = []
    _resume_or_restart(config, run, logged.append)
    assert any("stale lock" in line for line in logged)
    _same_folder(run, ref)


def _train(config, run):
    train(config, run, log=_quiet)
    os._exit(0)


def test_kills_at_random_instants_then_resume_end_identical(reference, tmp_path):
    """Not only the named points: SIGKILL from outside at seeded random instants of a run."""
    config, ref = reference
    started = time.perf_counter()
    _train_in_child = multiprocessing.get_context("fork").Process
    child = _train_in_child(target=_train, args=(config, tmp_path / "timing"))
    child.start()
    child.join(120)
    duration = time.perf_counter() - started
    rng = random.Random(7)
    for n in range(4):
        run = tmp_path / f"run{n}"
        child = _train_in_child(target=_train, args=(config, run))
        child.start()
        child.join(rng.uniform(0.1, duration))
        if child.is_alive():
            os.kill(child.pid, signal.SIGKILL)
        child.join()
        _resume_or_restart(config, run, _quiet)
        _same_folder(run, ref)


def test_kill_9_through_the_cli_then_resume(reference, tmp_path):
    config, ref = reference
    path = tmp_path / "c.yaml"
    path.write_text(json.dumps(config.model_dump(mode="json")))
    run = tmp_path / "run"
    env = {**os.environ, "LRCN_KILL_AT": "moved-last@2"}
    command = [sys.executable, "-m", "lrcn", "train", str(path), "--out", str(run), "-q"]
    killed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert killed.returncode == -9, killed.stderr
    result = runner.invoke(app, ["train", "--resume", str(run), "-q"])
    assert result.exit_code == 0, result.output
    assert "finished the commit of epoch 2" in result.output
    _same_folder(run, ref)


def test_a_second_training_into_a_locked_folder_is_refused(reference, tmp_path):
    config, _ = reference
    run = tmp_path / "run"
    run.mkdir()
    holder = {"pid": os.getpid(), "host": socket.gethostname(), "time": time.time()}
    (run / ".lock").write_text(json.dumps(holder))
    with pytest.raises(RunLocked, match=f"in use by another training \\(pid {os.getpid()} on "):
        train(config, run, log=_quiet)
    assert sorted(p.name for p in run.iterdir()) == [".lock"]  # nothing written, lock kept
    holder["host"] = "elsewhere"  # cannot be checked from here: refused too
    (run / ".lock").write_text(json.dumps(holder))
    with pytest.raises(RunLocked, match=r"pid \d+ on elsewhere"):
        train(None, run, resume=True, log=_quiet)


def test_two_cli_trainings_into_one_folder(reference, tmp_path):
    """The first holds the lock while it runs; the second gets one line naming the holder;
    SIGTERM stops the first and releases the lock."""
    config, _ = reference
    path = tmp_path / "c.yaml"
    path.write_text(json.dumps(config.model_dump(mode="json") | {"train": {
        **config.train.model_dump(mode="json"), "epochs": 200}}))  # fmt: skip
    run = tmp_path / "run"
    command = [sys.executable, "-m", "lrcn", "train", str(path), "--out", str(run), "-q"]
    first = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        while not (run / "metrics.jsonl").exists() and time.time() < deadline:
            time.sleep(0.1)
        second = runner.invoke(app, ["train", str(path), "--out", str(run), "-q"])
        assert second.exit_code == 2
        lines = [line for line in second.output.splitlines() if line.startswith("error:")]
        assert len(lines) == 1 and "Traceback" not in second.output, second.output
        assert f"is in use by another training (pid {first.pid} on" in lines[0]
        resumed = runner.invoke(app, ["train", "--resume", str(run), "-q"])
        assert resumed.exit_code == 2 and "in use by another training" in resumed.output
    finally:
        first.terminate()
        first.wait(60)
    assert first.returncode != 0
    assert not (run / ".lock").exists()
    assert "Traceback" not in first.stderr.read()
