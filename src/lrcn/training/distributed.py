"""Several processes, one training: PyTorch DDP as ``torchrun`` starts it.

``torchrun --nproc-per-node N -m lrcn train CONFIG`` starts N copies of ``lrcn train``, each
with ``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE`` in its environment; :func:`join` joins them
into one process group (gloo on the CPU, NCCL on GPUs, one GPU per local rank). Without those
variables everything here is a no-op for a world of one, so single-process code needs no
branch.

What the rest of lrcn does with a :class:`World`:

* the loop shards each epoch's shuffled order with a ``DistributedSampler`` (seeded per epoch),
  so the ranks' batches together are exactly the single process's global batch, and scales
  each rank's loss so that DDP's mean of gradients is the global batch's mean (equal to one
  process up to float summation order);
* rank 0 alone writes the run folder, logs and shows progress;
* feature extraction and validation shard their items (:func:`shard`) and gather the results
  (:func:`gather_shards`) in the order one process would have made them.
"""

from __future__ import annotations

import contextlib
import datetime
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
import torch.distributed as dist

from lrcn.errors import LrcnError

__all__ = [
    "World",
    "all_concat",
    "all_sum",
    "barrier",
    "broadcast",
    "current_world",
    "gather_shards",
    "join",
    "leave",
    "rank_device",
    "shard",
]

T = TypeVar("T")

# How long a rank waits for the others at a collective before failing (one rank validating
# alone can take long on a CPU; a dead peer should not hang a job forever).
TIMEOUT = datetime.timedelta(minutes=60)


@dataclass(frozen=True)
class World:
    """This process's place among the training's processes."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that writes the run folder and talks to the user."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


_WORLD = World()


class PeerFailed(LrcnError):
    """Another process of the training failed, so this one's collective broke off. The
    process that failed says why; rank 0 adds this one line, the others stay ``quiet``."""

    def __init__(self, world: World) -> None:
        super().__init__(
            f"process {world.rank} of {world.size}",
            "stopped because another process of this training failed (its error is above)",
        )
        self.quiet = not world.is_main


@contextlib.contextmanager
def peers_may_fail(world: World) -> Iterator[None]:
    """Turn a broken collective (a peer exited: gloo's "Connection closed by peer", NCCL's
    errors, a barrier's timeout) into :class:`PeerFailed`, instead of an internal error."""
    try:
        yield
    except (RuntimeError, dist.DistError) as err:
        if not world.distributed or not _peer_failure(err):
            raise
        raise PeerFailed(world) from None


def _peer_failure(err: Exception) -> bool:
    text = str(err)
    return isinstance(err, dist.DistError) or any(
        sign in text for sign in ("Connection closed by peer", "Connection reset", "NCCL", "gloo")
    )


def launched_by_torchrun() -> bool:
    """True when ``torchrun`` (or another launcher setting its variables) started us with
    more than one process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def join() -> World:
    """Join the process group torchrun describes and return this process's world; a no-op
    world of one without torchrun. Both backends are set up when there is a GPU (NCCL for
    CUDA tensors, gloo for CPU ones), so the group exists before the config picks a device."""
    global _WORLD
    if not launched_by_torchrun():
        return _WORLD
    _die_with_launcher()
    world = World(
        int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ["LOCAL_RANK"])
    )
    if not dist.is_initialized():
        backend = "cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend, timeout=TIMEOUT)
    _WORLD = world
    return world


def _die_with_launcher() -> None:
    """Ask Linux to kill this worker when its launcher dies (``kill -9`` of ``lrcn train
    --nproc``, a scheduler's timeout, the OOM killer): torchrun starts each worker in a session
    of its own, so otherwise it would train on, orphaned, holding the run folder's lock."""
    import ctypes
    import signal
    import sys

    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:  # the launcher died before the request was in place
        os._exit(1)


def rank_device(device: torch.device, world: World | None = None) -> torch.device:
    """This rank's device: ``cuda:LOCAL_RANK`` (one GPU per process) when ``device`` is a
    GPU and there are several processes, else ``device``."""
    world = world or _WORLD
    if world.distributed and device.type == "cuda":
        device = torch.device("cuda", world.local_rank)
        torch.cuda.set_device(device)
    return device


def leave() -> None:
    """Leave the process group (after the last collective)."""
    global _WORLD
    if dist.is_initialized():
        dist.destroy_process_group()
    _WORLD = World()


def current_world() -> World:
    """The world :func:`join` joined (a world of one before, or without torchrun)."""
    return _WORLD


def barrier() -> None:
    if _WORLD.distributed:
        dist.barrier()


def shard(items: Sequence[T], world: World | None = None) -> list[T]:
    """This rank's items: every ``size``-th from its rank on. Strided, so that the shards of
    a list sorted by cost get similar costs."""
    world = world or _WORLD
    return list(items[world.rank :: world.size])


def gather_shards(mine: list[T], total: int, world: World | None = None) -> list[T]:
    """Every rank's :func:`shard` results, back in the order of the unsharded list of
    ``total`` items (each rank gives one result per item of its shard)."""
    world = world or _WORLD
    if not world.distributed:
        return mine
    every: list[Any] = [None] * world.size
    dist.all_gather_object(every, mine)
    merged: list[Any] = [None] * total
    for rank, results in enumerate(every):
        merged[rank :: world.size] = results
    return merged


def broadcast(value: T, world: World | None = None) -> T:
    """Rank 0's ``value`` on every rank (plain data: numbers, strings, tensors, dicts)."""
    world = world or _WORLD
    if not world.distributed:
        return value
    box = [value if world.is_main else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]  # type: ignore[return-value]


def all_sum(values: Sequence[float], device: torch.device) -> list[float]:
    """Element-wise sums of ``values`` over the ranks."""
    if not _WORLD.distributed:
        return list(values)
    tensor = torch.tensor(list(values), dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return tensor.tolist()


def all_concat(mine: list[T]) -> list[T]:
    """Every rank's list, concatenated in rank order (the same on every rank)."""
    if not _WORLD.distributed:
        return mine
    every: list[Any] = [None] * _WORLD.size
    dist.all_gather_object(every, mine)
    return [item for items in every for item in items]


def gather_batch(x: torch.Tensor) -> torch.Tensor:
    """Every rank's ``x`` (``(B, ...)``, the same B on every rank), concatenated along the
    batch, with gradients flowing back to each rank's own part: for losses over the whole
    global batch (contrastive ones, whose negatives are the other items of the batch).

    Every rank then computes the same global loss; the gather's backward sums the ranks'
    gradients, so each rank holds N x its items' share, and DDP's mean over the N ranks
    makes it the global loss's gradient."""
    if not _WORLD.distributed:
        return x
    from torch.distributed.nn.functional import all_gather

    return torch.cat(all_gather(x), dim=0)  # (N*B, ...)
