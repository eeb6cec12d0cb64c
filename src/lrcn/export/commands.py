"""``lrcn export``: registered through :mod:`lrcn.commands`; heavy imports stay inside."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

from lrcn.commands import BadParameter, Help, register_command

__all__ = ["export"]


@register_command("export")
def export(
    run: Annotated[Path, Help("A run folder (or a bundle folder).")],
    format: Annotated[str, Help("onnx or torchscript.")] = "onnx",
    out: Annotated[Path | None, Help("Folder to write (default: RUN/best-FORMAT).")] = None,
    which: Annotated[str, Help("Checkpoint of the run: best or last.")] = "best",
    log: Callable[[str], None] = print,
) -> list[str]:
    """Export a run's inference graphs to ONNX or TorchScript, checked against PyTorch.

    The largest difference from eager PyTorch is stored beside the files, and the folder is a
    bundle that lrcn predict --engine onnxruntime and lrcn serve --engine onnxruntime run."""
    if format not in ("onnx", "torchscript"):
        raise BadParameter(f"--format {format!r}: expected onnx or torchscript")
    from lrcn.export.writer import export_bundle

    manifest = export_bundle(run, format, out, which, log)  # type: ignore[arg-type]
    lines = [f"{manifest['task']} ({manifest['model']}) exported to {manifest['folder']}"]
    for graph in manifest["graphs"].values():
        lines.append(
            f"  {graph['file']:<24} largest difference from eager {graph['max_difference']:.2e}"
            f" (tolerance {graph['tolerance']:g})"
        )
    engine = "onnxruntime" if format == "onnx" else "torchscript"
    lines.append(f"run it: lrcn predict {manifest['folder']} INPUT --engine {engine}")
    return lines
