"""``lrcn train CONFIG --nproc N``: torchrun on this machine, without typing torchrun.

It is exactly ``torchrun --standalone --nproc-per-node N -m lrcn train ...`` (PyTorch's own
launcher, run in this process through its Python entry point), with each worker's CPU
threads set to this machine's cores divided by N, so that N processes do not fight over
cores. A failed worker prints its own one-line error; the launcher then exits non-zero
without torchrun's traceback.
"""

from __future__ import annotations

import logging
import os

__all__ = ["launch"]


def launch(nproc: int, lrcn_args: list[str]) -> int:
    """Run ``lrcn <lrcn_args>`` in ``nproc`` processes on this machine; the exit status."""
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import get_args_parser, run

    # torchrun logs each worker's exit, the signals it forwards and the SIGTERMs it sends the
    # others; the worker that failed (or was interrupted) has printed its own one line.
    for name in list(logging.root.manager.loggerDict):
        if name.startswith("torch.distributed"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
    logging.getLogger("torch.distributed").setLevel(logging.CRITICAL)
    cores = os.cpu_count() or 1
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, cores // nproc)))
    args = get_args_parser().parse_args(
        ["--standalone", "--nproc-per-node", str(nproc), "-m", "lrcn", *lrcn_args]
    )
    try:
        run(args)
    except ChildFailedError:
        return 1
    except SignalException as err:  # Ctrl-C or a kill: the workers got it too and said so
        return 128 + int(err.sigval)
    return 0
