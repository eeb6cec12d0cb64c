"""Late fusion of activity runs: a weighted average of video scores, e.g. RGB and flow (the
LRCN paper averages the two streams 1/2-1/2 and 1/3 RGB - 2/3 flow).

It reads each run's ``eval-<which>-test/scores.npz`` (written by ``lrcn evaluate``; a run
without one is evaluated first) and matches videos by their path inside each data set.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from lrcn.data.items import DataError

__all__ = ["fuse"]


SCORE_ARRAYS = ("classes", "videos", "probs", "labels")


def _read_scores(path: Path) -> dict[str, np.ndarray]:
    """An evaluation's ``scores.npz``: plain arrays only (``allow_pickle`` stays False)."""
    try:
        with np.load(path) as data:
            if not hasattr(data, "files"):
                raise DataError(path, "not an .npz archive of arrays")
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError, EOFError) as err:  # pickled objects end up here, unloaded
        problem = " ".join(str(err).split())
        raise DataError(path, f"not a readable scores archive ({problem})") from None
    missing = [k for k in SCORE_ARRAYS if k not in arrays]
    if missing:
        raise DataError(path, f"missing arrays {missing}", expected=f"{list(SCORE_ARRAYS)}")
    probs = arrays["probs"]
    if probs.ndim != 2 or probs.shape != (len(arrays["videos"]), len(arrays["classes"])):
        raise DataError(
            path, f"probs has shape {probs.shape}", expected="(videos, classes) as listed"
        )
    return arrays


def fuse(
    run_dirs: Sequence[str | Path],
    weights: Sequence[float] | None = None,
    which: str = "best",
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Late fusion: a weighted average of several runs' video scores (e.g. RGB and flow).

    Videos are matched by their path inside each data set (a flow folder is named like its
    video). Without ``weights``, two runs are fused 1/2-1/2 and 1/3-2/3 (the LRCN paper's RGB
    and flow weights); otherwise the given weights (normalised to sum 1) are used.
    """
    if len(run_dirs) < 2:
        raise DataError(
            "lrcn fuse", f"got {len(run_dirs)} run", expected="two or more runs (RGB and flow)"
        )
    if len({Path(run).resolve() for run in run_dirs}) < len(run_dirs):
        raise DataError("lrcn fuse", "a run is given twice", expected="different runs")
    from lrcn.checkpoint import read_bundle_task

    for run in run_dirs:
        task = read_bundle_task(run, which)
        if task != "activity":
            raise DataError(run, f"is a {task} run", expected="activity runs to fuse")
    loaded = []
    for run in run_dirs:
        path = Path(run) / f"eval-{which}-test" / "scores.npz"
        if not path.is_file():
            from lrcn.tasks import evaluate_run

            log(f"{run}: no {path.name} yet, evaluating")
            evaluate_run(run, which=which, log=log)
        if not path.is_file():
            raise DataError(run, "its evaluation wrote no scores.npz; is it an activity run?")
        loaded.append(_read_scores(path))
    classes = loaded[0]["classes"].tolist()
    for run, data in zip(run_dirs, loaded, strict=True):
        if data["classes"].tolist() != classes:
            raise DataError(
                run, "its classes differ from the first run's; fuse runs of one data set"
            )
    common = set.intersection(*(set(d["videos"].tolist()) for d in loaded))
    if not common:
        raise DataError(
            run_dirs[1], "no test video in common with the first run (different splits?)"
        )
    order = sorted(common)
    aligned = []
    for data in loaded:
        position = {v: i for i, v in enumerate(data["videos"].tolist())}
        rows = [position[v] for v in order]
        aligned.append(
            (torch.from_numpy(data["probs"][rows]), torch.from_numpy(data["labels"][rows]))
        )
    labels = aligned[0][1]
    for (_, other), run in zip(aligned[1:], run_dirs[1:], strict=True):
        if not torch.equal(other, labels):
            raise DataError(run, "the same videos carry different labels than in the first run")

    def top1(probs: Tensor) -> float:
        return float((probs.argmax(dim=1) == labels).float().mean())

    if weights is None:
        weightings = [[0.5, 0.5], [1 / 3, 2 / 3]] if len(aligned) == 2 else [[1.0] * len(aligned)]
    else:
        if len(weights) != len(aligned) or min(weights) < 0 or sum(weights) <= 0:
            raise DataError(
                "--weight",
                f"got {list(weights)}",
                expected=f"one non-negative weight per run ({len(aligned)} runs), not all 0",
            )
        weightings = [list(weights)]
    fused = []
    for w in weightings:
        total = sum(w)
        probs = sum(wi / total * p for wi, (p, _) in zip(w, aligned, strict=True))
        assert isinstance(probs, Tensor)
        fused.append({"weights": [round(wi / total, 4) for wi in w], "video_top1": top1(probs)})
    return {
        "videos": len(order),
        "runs": [
            {"run": str(r), "video_top1": top1(p)}
            for r, (p, _) in zip(run_dirs, aligned, strict=True)
        ],
        "fused": fused,
    }
