"""Several processes, one training (torchrun, gloo on the CPU): two processes with a global
batch give the weights one process gives with that batch, for every task; extraction shared
out over two processes fills the cache one process fills; two launchers meeting through a c10d
rendezvous on loopback (two machines, as far as torchrun knows) train the same run; a run
killed under torchrun resumes to the same weights."""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
import yaml
from safetensors.numpy import load_file

from lrcn.tasks import train, validate_config

pytestmark = pytest.mark.slow
TIMEOUT = 240  # seconds: a hung rendezvous or collective fails the test instead of the suite
SMALL = {"backbone": "simple_cnn", "image_size": 32, "freeze_backbone": True}


def _quiet(message: str) -> None:
    pass


def _lrcn(*args, env=None, check=True):
    """``lrcn ARGS`` in a fresh process (as a user runs it), its result."""
    result = subprocess.run(
        [sys.executable, "-m", "lrcn", *map(str, args)],
        capture_output=True, text=True, timeout=TIMEOUT, env={**os.environ, **(env or {})},
    )  # fmt: skip
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Tiny generated data of every task (real on-disk formats)."""
    from lrcn.data.synthetic import write_order_ucf101, write_shapes_flickr8k
    from lrcn.data.synthetic_motion import write_motion_msrvtt
    from lrcn.data.synthetic_moving_mnist import write_generated
    from lrcn.data.synthetic_vqa import write_shapes_vqa

    root = tmp_path_factory.mktemp("ddp")
    mnist = write_generated(root / "mm", train=24, test=8, frames=6, size=32)
    return {
        "activity": write_order_ucf101(root / "ucf", num_groups=5, frames=20, size=32, seed=1),
        "flickr": write_shapes_flickr8k(root / "flickr", num_images=48, size=32, seed=5),
        "msrvtt": write_motion_msrvtt(root / "msrvtt", num_videos=24, frames=8, size=32, seed=3),
        "vqa": write_shapes_vqa(root / "vqa", num_images=40, size=32, seed=1),
        "mnist": mnist,
        "features": root / "features",
    }


def _raw(task, data, epochs=2, batch_size=8):
    """A tiny config of ``task``: no dropout (the ranks draw other masks than one process);
    SGD, because Adam divides by the gradient's size: where the true gradient is 0 (the bias
    before a softmax) it turns float noise of 1e-9 into lr-sized steps, in either setup."""
    train_section = {"epochs": epochs, "batch_size": batch_size, "lr": 0.05, "device": "cpu",
                     "optimizer": "sgd", "feature_cache": str(data["features"]),
                     "schedule": "none"}  # fmt: skip
    flickr = {"format": "flickr8k", "root": str(data["flickr"]), "min_count": 1}
    msrvtt = {"format": "msrvtt", "root": str(data["msrvtt"]), "frames": 4, "min_count": 1}
    sections = {
        "activity": (
            {"format": "ucf101", "root": str(data["activity"]), "clip_len": 4, "stride": 4,
             "val_fraction": 0.4},
            {"name": "lrcn", **SMALL, "hidden_size": 16, "dropout": 0.0},
        ),
        "captioning": (
            flickr,
            # The attention regulariser is a mean over captions added to a mean over tokens:
            # weighted by the ranks' token shares it is equal only to about 1e-3.
            {"name": "show_attend_tell", **SMALL, "embed_size": 16, "hidden_size": 16,
             "attention_size": 16, "dropout": 0.0, "attention_regularization": 0.0},
        ),
        "video_captioning": (
            msrvtt,
            {"name": "temporal_attention", **SMALL, "embed_size": 16, "hidden_size": 16,
             "dropout": 0.0},
        ),
        "vqa": (
            {"format": "vqa", "root": str(data["vqa"]), "num_answers": 20, "val_fraction": 0.2},
            {"name": "show_ask_attend_answer", **SMALL, "embed_size": 16, "hidden_size": 16,
             "dropout": 0.0},
        ),
        "retrieval": (
            flickr,
            {"name": "vse", **SMALL, "embed_size": 16, "hidden_size": 16, "joint_size": 16},
        ),
        "next_frame": (
            {"format": "moving_mnist", "train": str(data["mnist"]["train"]),
             "test": str(data["mnist"]["test"]), "context": 3, "horizon": 3},
            {"name": "convlstm_encoder_forecaster", "filters": [8], "patch_size": 4},
        ),
    }  # fmt: skip
    data_section, model = sections[task]
    raw = {"task": task, "data": data_section, "model": model, "train": train_section}
    if task in ("captioning", "video_captioning"):
        raw["decode"] = {"beam_size": 1, "max_len": 8}
    return raw


def _write(path, raw):
    path.write_text(yaml.safe_dump(raw))
    return path


def _weights(run, which="last"):
    return load_file(str(run / which / "model.safetensors"))


def _assert_same_weights(run, reference, tolerance=2e-5):
    mine, theirs = _weights(run), _weights(reference)
    assert mine.keys() == theirs.keys()
    for name in theirs:
        scale = max(1.0, float(np.abs(theirs[name]).max()))
        gap = float(np.abs(mine[name] - theirs[name]).max()) / scale
        assert gap <= tolerance, (name, gap)


def _rows(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def _losses(run):
    return [row["train_loss"] for row in _rows(run)]


def _validation(run):
    return [row["metrics"] for row in _rows(run)]


@pytest.mark.parametrize(
    "task", ["activity", "captioning", "video_captioning", "vqa", "retrieval", "next_frame"]
)
def test_two_processes_train_the_weights_of_one(task, data, tmp_path):
    raw = _raw(task, data)
    one = tmp_path / "one"
    train(validate_config(raw), one, log=_quiet)  # also fills the feature cache
    config = _write(tmp_path / f"{task}.yaml", raw)
    two = tmp_path / "two"
    result = _lrcn("train", config, "--out", two, "--nproc", 2, "--quiet")
    _assert_same_weights(two, one)
    assert _losses(two) == pytest.approx(_losses(one), rel=1e-4)
    # Validation (sharded over the processes for activity and captioning, else on rank 0).
    for mine, theirs in zip(_validation(two), _validation(one), strict=True):
        assert mine.keys() == theirs.keys() and mine == pytest.approx(theirs, abs=1e-4)
    # Rank 0 alone wrote the run folder and spoke: one summary, one set of epoch lines.
    assert result.stdout.count("run folder") == 1, result.stdout
    assert result.stderr.count("epoch 2/2") == 1, result.stderr
    assert sorted(p.name for p in two.iterdir()) == sorted(p.name for p in one.iterdir())


def test_bad_runs_are_refused_in_one_line_before_processes_start(data, tmp_path):
    config = _write(tmp_path / "odd.yaml", _raw("activity", data, batch_size=7))
    odd = _lrcn("train", config, "--out", tmp_path / "run", "--nproc", 2, check=False)
    (tmp_path / "used" / "last").mkdir(parents=True)
    used = _lrcn("train", config, "--out", tmp_path / "used", "--nproc", 2, check=False)
    for result, says in ((odd, "train.batch_size: 7 cannot be split"), (used, "already holds")):
        assert result.returncode == 2 and result.stderr.count("error: ") == 1, result.stderr
        assert says in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "run").exists()


def test_under_a_bare_torchrun_a_peer_of_the_failed_process_stays_quiet(data, tmp_path):
    """Rank 0 refuses a used run folder; rank 1, whose collective breaks off, adds nothing
    (torchrun then prints its own report)."""
    config = _write(tmp_path / "used.yaml", _raw("activity", data))
    (tmp_path / "used" / "last").mkdir(parents=True)
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
         "-m", "lrcn", "train", str(config), "--out", str(tmp_path / "used"), "--quiet"],
        capture_output=True, text=True, timeout=TIMEOUT,
    )  # fmt: skip
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "already holds a run" in errors[0], result.stderr


def _cache_files(root):
    (folder,) = [p for p in root.iterdir() if p.is_dir()]
    return folder, sorted(p.name for p in folder.glob("*.npy"))


def test_two_process_extraction_fills_the_cache_of_one(data, tmp_path):
    raw = _raw("activity", data)
    entries = {}
    for nproc in (1, 2):
        raw["train"]["feature_cache"] = str(tmp_path / f"cache{nproc}")
        config = _write(tmp_path / f"extract{nproc}.yaml", raw)
        # One thread per process in both runs: float sums may group differently with other
        # thread counts, which is not what this test is about.
        result = _lrcn(
            "extract-features", config, "--nproc", nproc, "--quiet", env={"OMP_NUM_THREADS": "1"}
        )
        assert result.stdout.count("frames cached") == 1, result.stdout
        entries[nproc] = _cache_files(tmp_path / f"cache{nproc}")
    (one, names), (two, names_two) = entries[1], entries[2]
    assert one.name == two.name and names == names_two and len(names) == 20
    for name in names:
        assert np.load(one / name).tobytes() == np.load(two / name).tobytes(), name
        key_one, key_two = (json.loads((f / name).with_suffix(".json").read_text())
                            for f in (one, two))  # fmt: skip
        assert key_one == key_two


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_machines_meet_through_a_c10d_rendezvous(data, tmp_path):
    """Two torchrun launchers, one process each, standing for two machines: they find each
    other through the c10d rendezvous at rank 0's address (loopback here) and train the run
    one process trains with the same global batch."""
    raw = _raw("activity", data)
    one = tmp_path / "one"
    train(validate_config(raw), one, log=_quiet)
    config = _write(tmp_path / "two-machines.yaml", raw)
    port, run = _free_port(), tmp_path / "two"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc-per-node", "1",
        "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{port}",
        "--rdzv-id", "lrcn-test", "--rdzv-conf", "join_timeout=60", "--max-restarts", "0",
        "-m", "lrcn", "train", str(config), "--out", str(run), "--quiet",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    launchers = [
        subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        )
        for _ in range(2)
    ]
    try:
        outputs = [launcher.communicate(timeout=TIMEOUT) for launcher in launchers]
    finally:
        for launcher in launchers:
            launcher.kill()
    assert [launcher.returncode for launcher in launchers] == [0, 0], outputs
    _assert_same_weights(run, one)


def test_a_run_killed_under_torchrun_resumes_to_the_same_weights(data, tmp_path):
    raw = _raw("activity", data, epochs=2)
    config = _write(tmp_path / "kill.yaml", raw)
    reference, run = tmp_path / "reference", tmp_path / "run"
    _lrcn("train", config, "--out", reference, "--nproc", 2, "--quiet")
    killed = _lrcn(
        "train", config, "--out", run, "--nproc", 2, "--quiet",
        env={"LRCN_KILL_AT": "committed@1"}, check=False,
    )  # fmt: skip
    assert killed.returncode != 0 and "Traceback" not in killed.stderr, killed.stderr
    _lrcn("train", "--resume", run, "--nproc", 2, "--quiet")
    for which in ("last", "best"):
        assert (run / which / "model.safetensors").read_bytes() == (
            reference / which / "model.safetensors"
        ).read_bytes(), which
    assert _losses(run) == _losses(reference)
