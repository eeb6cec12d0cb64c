"""Export a bundle's inference graphs (ONNX, TorchScript), checked against eager PyTorch, and
run them (:mod:`lrcn.export.engine`). Tasks say what to export through
:meth:`lrcn.tasks.Task.export_plan`."""

from lrcn.export.engine import ExportedModel, ExportError, load_exported
from lrcn.export.graphs import ExportPlan, Graph

__all__ = ["ExportError", "ExportPlan", "ExportedModel", "Graph", "load_exported"]
