"""Export a bundle's inference graphs (ONNX, TorchScript), checked against eager PyTorch
(:mod:`lrcn.export.writer`), and run them (:mod:`lrcn.export.engine`). Tasks say what to
export through :meth:`lrcn.tasks.Task.export_plan` (:mod:`lrcn.export.graphs`).

Nothing is imported here: ``lrcn export --help`` must not import torch.
"""
