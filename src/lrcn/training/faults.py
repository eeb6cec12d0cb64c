"""Named kill points, for testing that a kill at any moment loses nothing.

``LRCN_KILL_AT=<point>@<epoch>`` (epoch from 1, as logged) makes the process SIGKILL itself
when it reaches ``point`` in that epoch: no ``finally``, no flush, exactly like ``kill -9`` or
a power cut as far as the run folder is concerned. The points are listed in :data:`POINTS`;
the tests kill at every one of them and check that a resume ends byte-identical.
"""

from __future__ import annotations

import os
import signal

__all__ = ["POINTS", "kill_point"]

POINTS = (
    "step",  # mid-epoch, after the first optimizer step
    "staged-last",  # last/ written to the staging folder
    "staged-best",  # best/ written to the staging folder (epochs that improve)
    "committed",  # the commit marker written, nothing moved yet
    "moved-last",  # last/ moved into place
    "moved-best",  # best/ moved into place
    "views",  # metrics.jsonl/.csv rewritten, curves.png not yet
    "done",  # everything in place, the staging folder not yet removed
)


def kill_point(point: str, epoch: int) -> None:
    """SIGKILL this process if ``LRCN_KILL_AT`` names ``point`` at ``epoch`` (0-based)."""
    wanted = os.environ.get("LRCN_KILL_AT")
    if wanted and wanted == f"{point}@{epoch + 1}":
        os.kill(os.getpid(), signal.SIGKILL)
