"""``lrcn export``: a bundle's inference graphs as ONNX or TorchScript files, each checked
against eager PyTorch before the export is kept.

The exported folder is itself a bundle (``bundle.json`` with the preprocessing preset and the
labels or vocabulary, ``model.safetensors``) plus ``export.json`` (per graph: its file, its
input and output structure and names, the largest difference from eager measured at export)
and one file per graph. Nothing else is needed to run it, and ``lrcn predict --engine
onnxruntime`` runs it through the same task code as eager.

The check runs each graph through the engine that will run it (ONNX Runtime, or the saved
TorchScript loaded back) on the task's example inputs at batch 2, where it was traced, and at
batch 3, which proves the batch axis is free. Past a graph's tolerance the export is refused
and nothing is written.
"""

from __future__ import annotations

import inspect
import json
import shutil
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor, nn

from lrcn._version import __version__
from lrcn.checkpoint import META, WEIGHTS
from lrcn.export.engine import (
    MANIFEST,
    ExportedModel,
    ExportError,
    exported_folder,
    load_exported,
)
from lrcn.export.graphs import ExportPlan, Graph
from lrcn.export.structure import Spec, flatten, rebuild

Format = Literal["onnx", "torchscript"]
ENGINE_OF = {"onnx": "onnxruntime", "torchscript": "torchscript"}
OPSET = 17

__all__ = ["ENGINE_OF", "export_bundle"]


class _Entry(nn.Module):
    """``model.<method>`` with flat tensor inputs and outputs, as tracers want it."""

    def __init__(self, model: nn.Module, method: str, inputs: list[tuple[str, Spec]]) -> None:
        super().__init__()
        self.model = model
        self.method = method
        self.inputs = inputs

    def forward(self, *tensors: Tensor) -> tuple[Tensor, ...]:
        flat = iter(tensors)
        args = [rebuild(spec, flat) for _, spec in self.inputs]
        _, out = flatten(getattr(self.model, self.method)(*args), "out")
        return tuple(t for _, t in out)


def _params_of(method: Callable[..., Any], count: int) -> list[str]:
    """The names of a bound method's first ``count`` parameters (how its graph's inputs are
    named, and how a call binds to them)."""
    names = list(inspect.signature(method).parameters)
    if count > len(names):
        raise ExportError(getattr(method, "__name__", "?"), f"takes {len(names)} arguments")
    return names[:count]


def _inputs(
    model: nn.Module, graph: Graph
) -> tuple[list[tuple[str, Spec]], list[tuple[str, Tensor]]]:
    """Each argument's parameter name and spec, and the flat named tensors of them all."""
    params = _params_of(getattr(model, graph.method), len(graph.args))
    specs, tensors = [], []
    for param, value in zip(params, graph.args, strict=True):
        spec, flat = flatten(value, param)
        specs.append((param, spec))
        tensors += flat
    return specs, tensors


def _write_graph(model: nn.Module, graph: Graph, fmt: Format, folder: Path) -> dict[str, Any]:
    """Trace one graph into ``folder``; its manifest entry."""
    inputs, named = _inputs(model, graph)
    tensors = [t for _, t in named]
    with torch.inference_mode():
        output, flat_out = flatten(getattr(model, graph.method)(*graph.args), "out")
    names_in = [n for n, _ in named]
    names_out = [n for n, _ in flat_out]
    entry = _Entry(model, graph.method, inputs).eval()
    file = f"{graph.method}.onnx" if fmt == "onnx" else f"{graph.method}.pt"
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer warnings about Python values made constant
        if fmt == "onnx":
            dynamic = {n: {0: "batch", **graph.dynamic.get(n, {})} for n in names_in}
            dynamic |= {n: {0: "batch"} for n in names_out}
            torch.onnx.export(
                entry, tuple(tensors), str(folder / file), input_names=names_in,
                output_names=names_out, dynamic_axes=dynamic, opset_version=OPSET,
                dynamo=False,
            )  # fmt: skip
        else:
            traced = torch.jit.trace(entry, tuple(tensors), check_trace=False)
            torch.jit.save(traced, str(folder / file))
    return {
        "file": file,
        "inputs": [{"param": p, "spec": s} for p, s in inputs],
        "input_names": names_in,
        "output": output,
        "output_names": names_out,
        "dynamic_axes": {n: {"0": "batch", **graph.dynamic.get(n, {})} for n in names_in},
        "tolerance": graph.tolerance,
    }


def _difference(eager: Any, exported: Any) -> float:
    """The largest ``|eager - exported|`` over every output tensor, relative to
    ``max(1, |eager|)``; integer outputs must be equal (else infinity)."""
    _, a = flatten(eager, "out")
    _, b = flatten(exported, "out")
    if [n for n, _ in a] != [n for n, _ in b]:
        return float("inf")
    worst = 0.0
    for (_, x), (_, y) in zip(a, b, strict=True):
        if x.shape != y.shape:
            return float("inf")
        if not x.is_floating_point():
            if not torch.equal(x.cpu(), y.cpu().to(x.dtype)):
                return float("inf")
            continue
        x, y = x.float().cpu(), y.float().cpu()
        scale = max(1.0, float(x.abs().max())) if x.numel() else 1.0
        worst = max(worst, float((x - y).abs().max()) / scale if x.numel() else 0.0)
    return worst


def _check(model: nn.Module, engine: ExportedModel, plans: list[ExportPlan]) -> dict[str, float]:
    """Each graph's largest difference from eager over every plan's examples."""
    worst: dict[str, float] = {}
    for plan in plans:
        for graph in plan.graphs:
            with torch.inference_mode():
                eager = getattr(model, graph.method)(*graph.args)
            exported = getattr(engine, graph.method)(*graph.args)
            diff = _difference(eager, exported)
            worst[graph.method] = max(worst.get(graph.method, 0.0), diff)
    return worst


def export_bundle(
    run: str | Path,
    fmt: Format,
    out: str | Path | None = None,
    which: str = "best",
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Export a run's (or a bundle's) inference graphs; return the manifest written."""
    from lrcn.tasks import load_predictor

    if fmt not in ENGINE_OF:
        raise ExportError("--format", f"unknown format {fmt!r}", expected="onnx or torchscript")
    predictor = load_predictor(run, which)
    bundle, task, config = predictor.bundle, predictor.task, predictor.config
    model = bundle.model.cpu().eval()
    torch.manual_seed(0)  # the example inputs are drawn: the same ones on every export
    plan = task.export_plan(bundle, config, 2)
    second = task.export_plan(bundle, config, 3)
    target = Path(out) if out is not None else exported_folder(bundle.path, fmt)
    if target.resolve() == bundle.path.resolve():
        raise ExportError(target, "is the bundle itself", expected="another folder for --out")
    if target.exists() and not (target / MANIFEST).is_file() and any(target.iterdir()):
        raise ExportError(target, "exists and is not an earlier export", expected="a new folder")
    tmp = target.with_name(target.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        for name in (META, WEIGHTS):  # the contents, not the run's file modes: it ships
            shutil.copyfile(bundle.path / name, tmp / name)
        graphs = {}
        for graph in plan.graphs:
            log(f"exporting {graph.method} ({fmt})")
            try:
                graphs[graph.method] = _write_graph(model, graph, fmt, tmp)
            except (RuntimeError, torch.onnx.errors.OnnxExporterError) as err:
                first = str(err).strip().splitlines()[0] if str(err).strip() else ""
                raise ExportError(
                    bundle.path,
                    f"{graph.method}: the {fmt} exporter failed ({type(err).__name__}: {first})",
                ) from err
        manifest: dict[str, Any] = {
            "format": fmt,
            "lrcn_version": __version__,
            "torch_version": torch.__version__,
            "opset": OPSET if fmt == "onnx" else None,
            "task": bundle.task,
            "model": str(config.model.name),
            "attributes": plan.attributes,
            "graphs": graphs,
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1))
        engine = load_exported(tmp, ENGINE_OF[fmt], threads=1)
        differences = _check(model, engine, [plan, second])
        refused = {
            name: diff for name, diff in differences.items()
            if not diff <= graphs[name]["tolerance"]
        }  # fmt: skip
        if refused:
            worst = ", ".join(
                f"{name} {diff:.3g} (tolerance {graphs[name]['tolerance']:g})"
                for name, diff in refused.items()
            )
            raise ExportError(
                bundle.path, f"the {fmt} export differs from eager PyTorch: {worst}; "
                "nothing was written",
            )  # fmt: skip
        for name, diff in differences.items():
            graphs[name]["max_difference"] = diff
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if target.exists():
        shutil.rmtree(target)  # an earlier export (checked above), replaced whole
    tmp.rename(target)
    manifest["folder"] = str(target)
    return manifest
