"""lrcn export: every task's graphs run in ONNX Runtime (and TorchScript) with the results of
eager PyTorch, through the same predict; an export past its tolerance is refused."""

import json
import shutil

import pytest
import torch
from typer.testing import CliRunner

from lrcn.cli import app
from lrcn.export.engine import MANIFEST, ExportError, load_exported
from lrcn.export.graphs import ExportPlan, Graph
from lrcn.export.structure import flatten, rebuild
from lrcn.export.writer import export_bundle
from lrcn.tasks import get_task, predict_run

runner = CliRunner()

TASKS = ["activity", "captioning", "vqa", "retrieval", "video_captioning", "video_tuples",
         "next_frame"]  # fmt: skip
OPTIONS = {
    "captioning": {"beam": 3, "n_best": 2},
    "video_captioning": {"beam": 2},
    "vqa": {"question": "what colour is the circle"},
    "retrieval": {"text": "a red circle"},
    "next_frame": {"horizon": 5},  # more steps than trained: the step graph unrolls any horizon
}


def _inputs(task, media):
    if task == "retrieval":
        return [media["image"], media["jpeg"]]
    return [media["image"] if get_task(task).input_kind == "image" else media["video"]]


def _close(a, b, where="result"):
    """Equal JSON, numbers within 2e-4 (results are rounded to 4 places)."""
    if isinstance(a, float) or isinstance(b, float):
        assert abs(a - b) <= 2e-4, f"{where}: {a} vs {b}"
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            _close(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, list):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _close(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a!r} vs {b!r}"


@pytest.fixture(scope="module")
def exported(untrained_run, tmp_path_factory):
    """Each task's untrained run, exported to ONNX once (a copy: the run stays clean)."""
    made = {}

    def make(task):
        if task not in made:
            run = tmp_path_factory.mktemp(f"export-{task}") / "run"
            shutil.copytree(untrained_run(task), run)
            export_bundle(run, "onnx", log=lambda _: None)
            made[task] = run
        return made[task]

    return make


@pytest.mark.parametrize("task", TASKS)
def test_onnx_predict_equals_eager_predict(task, exported, sample_media):
    run = exported(task)
    manifest = json.loads((run / "best-onnx" / MANIFEST).read_text())
    assert manifest["format"] == "onnx" and manifest["task"] == task
    for name, graph in manifest["graphs"].items():
        assert 0 <= graph["max_difference"] <= graph["tolerance"], name
    inputs = _inputs(task, sample_media)
    options = OPTIONS.get(task, {})
    _, eager = predict_run(run, inputs, options)
    _, onnx = predict_run(run, inputs, options, engine="onnxruntime")
    assert all("error" not in r for r in eager), eager
    _close(eager, onnx)


def test_the_exported_folder_alone_is_enough(exported, sample_media, tmp_path):
    """Copied away from its run, the export predicts: labels, preset and graphs travel."""
    alone = tmp_path / "shipped"
    shutil.copytree(exported("activity") / "best-onnx", alone)
    result = runner.invoke(
        app, ["predict", str(alone), str(sample_media["video"]), "--engine", "onnxruntime",
              "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    top = json.loads(result.stdout)[0]["top"]
    assert {t["class"] for t in top} == {"jump", "run", "wave"}


def test_vqa_questions_of_any_length_run_in_the_export(exported, sample_media):
    """The question's length is a free axis of the exported graph (traced at 20 words)."""
    run = exported("vqa")
    for question in ["red", "is the green square on the left of the red circle"]:
        options = {"question": question}
        _, eager = predict_run(run, [sample_media["image"]], options)
        _, onnx = predict_run(run, [sample_media["image"]], options, engine="onnxruntime")
        _close(eager, onnx)


def test_torchscript_export_through_the_cli(untrained_run, sample_media, tmp_path):
    out = tmp_path / "ts"
    result = runner.invoke(
        app, ["export", str(untrained_run("captioning")), "--format", "torchscript", "--out",
              str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "largest difference from eager" in result.stdout
    assert sorted(p.name for p in out.glob("*.pt")) == ["features.pt", "init_state.pt", "step.pt"]
    options = {"beam": 2}
    _, eager = predict_run(untrained_run("captioning"), [sample_media["image"]], options)
    _, traced = predict_run(out, [sample_media["image"]], options, engine="torchscript")
    _close(eager, traced)


def test_an_export_past_its_tolerance_is_refused_and_nothing_is_written(
    untrained_run, tmp_path, monkeypatch
):
    """A tolerance no export can meet (negative): the check refuses, naming the graph."""
    task = get_task("activity")
    real = task.export_plan

    def strict(bundle, config, batch):
        plan = real(bundle, config, batch)
        graphs = [Graph(g.method, g.args, g.dynamic, tolerance=-1.0) for g in plan.graphs]
        return ExportPlan(graphs, plan.attributes)

    monkeypatch.setattr(task, "export_plan", strict)
    out = tmp_path / "refused"
    with pytest.raises(ExportError, match=r"forward .*tolerance -1"):
        export_bundle(untrained_run("activity"), "onnx", out, log=lambda _: None)
    assert not out.exists() and not list(tmp_path.glob("*.partial"))


def test_predict_with_an_engine_but_no_export_says_how_to_make_one(untrained_run, sample_media):
    result = runner.invoke(
        app, ["predict", str(untrained_run("next_frame")), str(sample_media["video"]),
              "--engine", "onnxruntime"],
    )  # fmt: skip
    assert result.exit_code == 2
    assert "no onnx export" in result.output and "lrcn export" in result.output


def test_export_refuses_to_overwrite_a_folder_that_is_not_an_export(untrained_run, tmp_path):
    keep = tmp_path / "mine"
    keep.mkdir()
    (keep / "notes.txt").write_text("precious")
    result = runner.invoke(app, ["export", str(untrained_run("activity")), "--out", str(keep)])
    assert result.exit_code == 2 and "not an earlier export" in result.output
    assert (keep / "notes.txt").read_text() == "precious"


def test_a_call_with_another_structure_than_exported_is_refused(exported):
    model = load_exported(exported("captioning") / "best-onnx", "onnxruntime")
    feats = torch.rand(1, 16, 64)
    state = model.init_state(feats)
    with pytest.raises(ExportError, match="keys"):
        model.step(torch.tensor([1]), {k: v for k, v in state.items() if k != "h"})
    with pytest.raises(AttributeError, match="no 'forward' graph"):
        model.forward(feats)


def test_structures_round_trip():
    """Nested values <-> flat named tensors, NamedTuple fields and constants kept."""
    from lrcn.models.activity import ActivityOutput

    value = (ActivityOutput(torch.ones(2, 3, 4), torch.zeros(2, 4)),
             {"h": torch.ones(1), "c": [torch.zeros(2), None]}, 7)  # fmt: skip
    spec, flat = flatten(value, "out")
    assert [n for n, _ in flat] == ["out.0.step_logits", "out.0.probs", "out.1.h", "out.1.c.0"]
    back = rebuild(json.loads(json.dumps(spec)), iter(t for _, t in flat))
    assert back[0].probs is flat[1][1] and back[0]._fields == ("step_logits", "probs")
    assert back[1]["c"][1] is None and back[2] == 7


def test_a_damaged_graph_file_is_one_line_saying_export_again(exported, tmp_path):
    from lrcn.checkpoint import load_bundle

    damaged = tmp_path / "damaged"
    shutil.copytree(exported("captioning") / "best-onnx", damaged)
    data = (damaged / "step.onnx").read_bytes()
    (damaged / "step.onnx").write_bytes(data[: len(data) // 2])
    with pytest.raises(ExportError, match=r"step.onnx: cannot be loaded .*lrcn export again"):
        load_bundle(damaged, engine="onnxruntime")
