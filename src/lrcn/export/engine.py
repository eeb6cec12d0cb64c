"""Run an exported bundle: ONNX Runtime or TorchScript behind the model's own methods.

:class:`ExportedModel` stands in for the PyTorch model in a task's predict: each exported graph
is a method of the same name taking and returning the same nested values (tensors, state
dicts, NamedTuples), so the batched beam search in :mod:`lrcn.decoding`, which only calls
``model.step``, drives either engine unchanged.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from lrcn.errors import LrcnError
from lrcn.export.session import cpu_session
from lrcn.export.structure import StructureError, flatten, rebuild, same_structure

MANIFEST = "export.json"
FORMATS = {"onnxruntime": "onnx", "torchscript": "torchscript"}  # engine -> export format
Runner = Callable[[list[tuple[str, Tensor]]], list[Tensor]]  # named inputs -> outputs

__all__ = [
    "MANIFEST",
    "ExportError",
    "ExportedModel",
    "exported_folder",
    "find_export",
    "load_exported",
    "read_manifest",
]


class ExportError(LrcnError):
    """An export that cannot be written or run; the message names the graph and the problem."""


def read_manifest(folder: Path) -> dict[str, Any]:
    path = folder / MANIFEST
    if not path.is_file():
        raise ExportError(
            folder, f"no {MANIFEST}: not an exported bundle",
            expected="a folder written by lrcn export (e.g. RUN/best-onnx)",
        )  # fmt: skip
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ExportError(path, f"not valid JSON ({err})") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("graphs"), dict):
        raise ExportError(path, "graphs: missing; is this an lrcn export?")
    return manifest


def _onnx_runner(path: Path, threads: int) -> Runner:
    session = cpu_session(path, threads)
    wanted = {i.name for i in session.get_inputs()}  # the exporter drops inputs never read
    outputs = [o.name for o in session.get_outputs()]

    def run(tensors: list[tuple[str, Tensor]]) -> list[Tensor]:
        feed = {n: t.detach().cpu().contiguous().numpy() for n, t in tensors if n in wanted}
        return [torch.from_numpy(a) for a in session.run(outputs, feed)]

    return run


def _torchscript_runner(path: Path) -> Runner:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # TorchScript is deprecated, still works
        module = torch.jit.load(str(path), map_location="cpu").eval()

    def run(tensors: list[tuple[str, Tensor]]) -> list[Tensor]:
        with torch.inference_mode():
            out = module(*[t.detach().cpu() for _, t in tensors])
        return list(out) if isinstance(out, tuple | list) else [out]

    return run


class ExportedModel(nn.Module):
    """The exported graphs of a model as its methods (``model.step(tokens, state)``), plus
    the plain attributes its task reads. A module without parameters, so ``to`` and ``eval``
    work as on the model it stands for; the runtimes themselves run on the CPU."""

    def __init__(self, folder: Path, manifest: dict[str, Any], runners: dict[str, Runner]):
        super().__init__()
        self.folder = folder
        self.manifest = manifest
        self.runners = runners
        for name, value in manifest.get("attributes", {}).items():
            setattr(self, name, value)

    def __getattr__(self, name: str) -> Any:
        graphs = self.__dict__.get("manifest", {}).get("graphs", {})
        if name in graphs:
            return _Method(name, graphs[name], self.__dict__["runners"][name])
        try:
            return super().__getattr__(name)
        except AttributeError:
            raise AttributeError(
                f"{self.__dict__.get('folder')}: the export has no {name!r} graph (it has "
                f"{', '.join(sorted(graphs))}); export the run again with this lrcn version"
            ) from None

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.__getattr__("forward")(*args, **kwargs)


class _Method:
    """One graph as a callable with the eager method's arguments."""

    def __init__(self, name: str, graph: dict[str, Any], run: Runner) -> None:
        self.name = name
        self.graph = graph
        self.run = run

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        params = [p["param"] for p in self.graph["inputs"]]
        if len(args) > len(params) or any(k not in params for k in kwargs):
            raise ExportError(
                self.name, f"called with {len(args)} arguments and {sorted(kwargs)}, "
                f"the graph takes {params}",
            )  # fmt: skip
        given = dict(zip(params, args, strict=False)) | kwargs
        tensors: list[tuple[str, Tensor]] = []
        for entry in self.graph["inputs"]:
            param = entry["param"]
            if param not in given:
                raise ExportError(self.name, f"missing argument {param!r}")
            spec, flat = flatten(given[param], param)
            try:
                same_structure(entry["spec"], spec, param)
            except StructureError as err:
                raise ExportError(f"{self.name}: {err}") from None
            tensors += flat
        outputs = self.run(tensors)
        return rebuild(self.graph["output"], iter(outputs))


def exported_folder(bundle_dir: Path, fmt: str) -> Path:
    """Where ``lrcn export`` writes by default: beside the bundle, ``RUN/best-onnx``."""
    return bundle_dir.parent / f"{bundle_dir.name}-{fmt}"


def find_export(bundle_dir: Path, engine: str) -> Path:
    """``bundle_dir`` if it is an export for ``engine``, else its default export folder."""
    if (bundle_dir / MANIFEST).is_file():
        return bundle_dir
    fmt = FORMATS[engine]
    beside = exported_folder(bundle_dir, fmt)
    if (beside / MANIFEST).is_file():
        return beside
    raise ExportError(
        bundle_dir, f"no {fmt} export (looked for {beside})",
        expected=f"lrcn export {bundle_dir} --format {fmt}, then --engine {engine}",
    )  # fmt: skip


def load_exported(folder: Path, engine: str, threads: int | None = None) -> ExportedModel:
    """The exported model in ``folder`` run by ``engine`` ("onnxruntime" or "torchscript")."""
    manifest = read_manifest(folder)
    wanted = FORMATS[engine]
    if manifest.get("format") != wanted:
        raise ExportError(
            folder / MANIFEST, f"holds an export to {manifest.get('format')}, not {wanted}",
            expected=f"lrcn export RUN --format {wanted}",
        )  # fmt: skip
    threads = threads or torch.get_num_threads()
    runners: dict[str, Runner] = {}
    for name, graph in manifest["graphs"].items():
        path = folder / graph["file"]
        if not path.is_file():
            raise ExportError(path, "graph file missing", expected="run lrcn export again")
        try:
            runners[name] = (
                _onnx_runner(path, threads) if wanted == "onnx" else _torchscript_runner(path)
            )
        except Exception as err:  # the runtimes raise their own types for a damaged file
            first = (str(err).strip().splitlines() or [""])[0][:200]
            raise ExportError(
                path, f"cannot be loaded ({type(err).__name__}: {first})",
                expected="an intact file: run lrcn export again",
            ) from None  # fmt: skip
    return ExportedModel(folder, manifest, runners)
