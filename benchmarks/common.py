"""Timing helpers shared by the benchmarks: best-of-n wall time, interleaved candidates."""

from __future__ import annotations

import platform
import time
from collections.abc import Callable

import torch


def best_ms(fn: Callable[[], object], repeats: int, warmup: int = 1) -> float:
    """Best wall time of ``fn`` in milliseconds over ``repeats`` runs (the machine is noisy)."""
    for _ in range(warmup):
        fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best * 1e3


def machine() -> str:
    """One line describing where the numbers were measured."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    isa = torch.backends.cpu.get_cpu_capability()
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU"
    return f"{cpu}, {torch.get_num_threads()} threads, {isa}, torch {torch.__version__}, {device}"


def interleaved_best(
    candidates: list[tuple[str, Callable[[], object], int]], rounds: int = 2
) -> dict[str, float]:
    """Best ms per candidate ``(name, fn, repeats per round)``, timed in turns over ``rounds``,
    so that drift in the machine's speed hits every candidate alike."""
    best: dict[str, float] = {}
    for _ in range(rounds):
        for name, fn, repeats in candidates:
            best[name] = min(best.get(name, float("inf")), best_ms(fn, repeats))
    return best
