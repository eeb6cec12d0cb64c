"""The frozen backbone run over many frames for the feature cache: eager PyTorch, or the same
module exported to ONNX and run by ONNX Runtime.

Why two engines: on the CPU the backbone is the whole cost of extraction, and ONNX Runtime runs
EfficientNet-Lite0 faster than eager PyTorch with channels_last: 2.7x at batch 32, 1.3-1.6x at
batch 8, where eager itself runs twice as fast (``benchmarks/bench_extract.py``, 2 cores, AVX-512;
PERF-NOTES measured 3.6x at 32 on AVX2). Eager stays the reference: the exported
graph is trusted only after it matched eager on the first batch of the run, within
:data:`TOLERANCE` of ``max(1, |eager|)``. Features are stored as float16, whose own rounding is
~5e-4 relative, so features from either engine are interchangeable and share one cache.

Both engines take the center crops as ``uint8 (N, S, S, 3)`` (:meth:`Preprocess.crops`) and
normalise them themselves with :meth:`Preprocess.normalize` (inside the graph, for ONNX
Runtime), as ``frames_to_tensor`` does: crops queue and cross to the engine 4x smaller than
float pixels, and the normalisation runs on the engine's threads.

``engine``: ``"auto"`` is ONNX Runtime on the CPU and eager elsewhere (a GPU runs the eager
module well); there an export that fails, or a graph that disagrees with eager, costs a logged
warning and the run goes on eager, since the user asked for speed, not for a particular engine.
``"onnxruntime"`` asked for by name raises instead (:class:`ExtractionError`): silently running
another engine than the one chosen would hide the problem it was chosen to test.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal, Protocol

import numpy as np
import torch
from torch import Tensor, nn

from lrcn.backbones import Backbone
from lrcn.errors import LrcnError
from lrcn.export.session import cpu_session

Engine = Literal["auto", "eager", "onnxruntime"]
ENGINES: tuple[str, ...] = ("auto", "eager", "onnxruntime")
# The largest |eager - onnxruntime| allowed on the first batch, relative to max(1, |eager|).
# Measured: 1.7e-6 (pooled) and 5.5e-6 (grid) for EfficientNet-Lite0, <1e-7 for simple_cnn;
# float16 storage itself rounds at ~5e-4.
TOLERANCE = 1e-3
OPSET = 17

__all__ = [
    "ENGINES",
    "TOLERANCE",
    "CheckedRunner",
    "EagerRunner",
    "Engine",
    "ExtractionError",
    "OnnxRunner",
    "Runner",
    "backbone_runner",
    "channels_last",
    "export_onnx",
    "relative_difference",
]


class ExtractionError(LrcnError):
    """An extraction engine that cannot be used; the message names the engine and why."""


class Runner(Protocol):
    """Center crops ``uint8 (N, S, S, 3)`` -> ``float32`` features ``(N, C)`` or
    ``(N, C, h, w)``."""

    engine: str

    def __call__(self, crops: np.ndarray) -> np.ndarray: ...


class PixelsToFeatures(nn.Module):
    """The backbone behind its own normalisation (:meth:`Preprocess.normalize`): ``uint8
    (N, S, S, 3)`` -> pooled ``(N, C)`` (``kind`` "pooled") or the grid ``(N, C, h, w)`` (any
    other kind)."""

    def __init__(self, backbone: Backbone, kind: str) -> None:
        super().__init__()
        self.backbone = backbone
        self.pooled = kind == "pooled"

    def forward(self, crops: Tensor) -> Tensor:
        x = self.backbone.preprocess.normalize(crops)  # (N, 3, S, S)
        return self.backbone(x) if self.pooled else self.backbone.forward_features(x)


@contextmanager
def channels_last(backbone: Backbone, device: torch.device) -> Iterator[None]:
    """On the CPU, the backbone's weights in channels_last while inside (faster CPU convolutions,
    PERF-NOTES: 16 -> 24 images/s for Lite0), and back in the layout they had afterwards."""
    if device.type != "cpu":
        yield
        return
    backbone.to(memory_format=torch.channels_last)
    try:
        yield
    finally:
        backbone.to(memory_format=torch.contiguous_format)


class EagerRunner:
    """The reference: the PyTorch module in inference mode on ``device``."""

    engine = "eager"

    def __init__(self, backbone: Backbone, kind: str, device: torch.device) -> None:
        self.module = PixelsToFeatures(backbone, kind).to(device).eval()
        self.device = device

    def __call__(self, crops: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(crops)).to(self.device)  # uint8 (N, S, S, 3)
        with torch.inference_mode():
            return self.module(x).float().cpu().numpy()


class OnnxRunner:
    """An exported :class:`PixelsToFeatures` in ONNX Runtime on the CPU."""

    engine = "onnxruntime"

    def __init__(self, path: Path, threads: int) -> None:
        # Idle threads sleep: the decode threads need those cores between batches.
        self.session = cpu_session(path, threads, spin=False)
        self.input = self.session.get_inputs()[0].name
        self.path = path

    def __call__(self, crops: np.ndarray) -> np.ndarray:
        out: np.ndarray = self.session.run(None, {self.input: np.ascontiguousarray(crops)})[0]
        return out


def export_onnx(backbone: Backbone, kind: str, path: Path) -> None:
    """Write ``backbone`` behind its normalisation as ONNX (opset 17, free batch axis) to
    ``path``, atomically: a killed export leaves no file, and two processes never share one
    temporary file. The backbone must be on the CPU."""
    crop = backbone.preprocess.crop
    module = PixelsToFeatures(backbone, kind).eval()
    example = torch.zeros(2, crop, crop, 3, dtype=torch.uint8)  # (N, S, S, 3)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.onnx.tmp")
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # tracer warnings about Python values made constant
            torch.onnx.export(
                module, (example,), str(tmp), input_names=["crops"], output_names=["features"],
                dynamic_axes={"crops": {0: "batch"}, "features": {0: "batch"}},
                opset_version=OPSET, dynamo=False,
            )  # fmt: skip
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def relative_difference(reference: np.ndarray, other: np.ndarray) -> float:
    """``max |reference - other|`` relative to ``max(1, max |reference|)``; inf when the
    shapes differ."""
    if reference.shape != other.shape:
        return float("inf")
    if reference.size == 0:
        return 0.0
    scale = max(1.0, float(np.abs(reference).max()))
    return float(np.abs(reference.astype(np.float64) - other).max()) / scale


class CheckedRunner:
    """A fast engine trusted only after it matched eager on the first batch it is given.

    The first call runs both; within :data:`TOLERANCE` it returns the fast engine's features,
    so every feature of a run comes from one engine, however the sources are split into
    batches or processes. Past it, it raises (``strict``) or warns through ``log`` and stays
    eager. ``engine`` says which one runs from then on; ``difference`` what the check measured.
    """

    def __init__(
        self, fast: Runner, eager: Runner, strict: bool, log: Callable[[str], None]
    ) -> None:
        self.fast = fast
        self.eager = eager
        self.strict = strict
        self.log = log
        self.engine = fast.engine
        self.difference: float | None = None
        self._current: Runner | None = None

    def __call__(self, crops: np.ndarray) -> np.ndarray:
        if self._current is not None:
            return self._current(crops)
        reference = self.eager(crops)
        fast = self.fast(crops)
        self.difference = relative_difference(reference, fast)
        if self.difference <= TOLERANCE:
            self._current = self.fast
            self.log(
                f"extraction engine: {self.fast.engine} (matches eager within "
                f"{self.difference:.1e} on the first {len(crops)} frames)"
            )
            return fast
        problem = (
            f"{self.fast.engine} differs from eager by {self.difference:.2e} (relative to "
            f"max(1, |eager|)) on the first {len(crops)} frames"
        )
        if self.strict:
            raise ExtractionError(
                "extract_engine=onnxruntime", problem, expected=f"at most {TOLERANCE:g}"
            )
        self.log(f"warning: {problem}, more than {TOLERANCE:g}; extracting with eager PyTorch")
        self._current = self.eager
        self.engine = self.eager.engine
        return reference


def backbone_runner(
    backbone: Backbone,
    kind: str,
    device: torch.device,
    engine: str,
    onnx_path: Path,
    log: Callable[[str], None] | None = None,
) -> Runner:
    """The engine that will run ``backbone`` (already on ``device``, in eval mode) for
    extraction (see the module docstring for ``engine``). The ONNX graph is written to
    ``onnx_path`` once and reused while the file is there: name it by the weights."""
    say = log or (lambda _: None)
    if engine not in ENGINES:
        raise ExtractionError(
            "extract_engine", f"unknown engine {engine!r}", expected=" or ".join(ENGINES)
        )
    eager = EagerRunner(backbone, kind, device)
    if engine == "eager" or (engine == "auto" and device.type != "cpu"):
        return eager
    if device.type != "cpu":
        raise ExtractionError(
            "extract_engine=onnxruntime",
            f"ONNX Runtime extraction runs on the CPU, but the device is {device}",
            expected="extract_engine auto or eager on a GPU, or device cpu",
        )
    try:
        fast = _onnx_runner(backbone, kind, onnx_path, torch.get_num_threads())
    except Exception as err:  # the exporter and ORT raise many types for an unsupported op
        first_line = next(iter(str(err).splitlines()), "")  # exporter messages run long
        problem = f"cannot export {backbone.name} to ONNX ({type(err).__name__}: {first_line})"
        if engine == "onnxruntime":
            raise ExtractionError("extract_engine=onnxruntime", problem) from err
        say(f"warning: {problem}; extracting with eager PyTorch")
        return eager
    return CheckedRunner(fast, eager, strict=engine == "onnxruntime", log=say)


def _onnx_runner(backbone: Backbone, kind: str, path: Path, threads: int) -> OnnxRunner:
    """The session of ``path``, exported first if it is not there (or does not load)."""
    if path.is_file():
        try:
            return OnnxRunner(path, threads)
        except Exception:  # a damaged file: export it again below
            pass
    export_onnx(backbone, kind, path)
    return OnnxRunner(path, threads)
