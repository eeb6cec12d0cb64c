"""One writer per run folder: ``RUN/.lock`` holds the owner's pid, host and start time.

The lock file is written whole, then hard-linked into place (atomic, and failing when the
file exists, on local file systems and on NFS), so of two trainings started into one folder
exactly one gets it; the other is refused with the
holder's pid, host and start time. A lock whose owner is gone (killed with SIGKILL, a power
cut) is stale: on the same host we can tell (the pid is not running, or it is running but
started after the lock was written, i.e. the pid was reused), say so and take it over. A lock
from another host cannot be checked from here, so it is reported and left for the user.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sys
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from lrcn.errors import LrcnError

LOCK_NAME = ".lock"

__all__ = ["LOCK_NAME", "RunLock", "RunLocked"]


class RunLocked(LrcnError):
    """Another process writes into the run folder."""


def _process_start(pid: int) -> float | None:
    """When ``pid`` started, in seconds since the epoch (Linux /proc); None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = int(fields[19])  # field 22 of stat: start time in clock ticks after boot
        uptime = float(Path("/proc/uptime").read_text().split()[0])
    except (OSError, IndexError, ValueError):
        return None
    return time.time() - uptime + ticks / os.sysconf("SC_CLK_TCK")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def _stale_reason(holder: dict[str, Any]) -> str | None:
    """Why a lock written on this host is stale, or None if its owner may still run."""
    pid = holder.get("pid")
    if not isinstance(pid, int):
        return "it names no pid"
    if not _alive(pid):
        return f"pid {pid} is not running"
    started = _process_start(pid)
    written = holder.get("time")
    if started is not None and isinstance(written, (int, float)) and started > written + 2:
        return f"pid {pid} now belongs to a process started after the lock was written"
    return None


def _describe(holder: dict[str, Any]) -> str:
    when = holder.get("time")
    since = (
        time.strftime(" since %Y-%m-%d %H:%M:%S", time.localtime(when))
        if isinstance(when, (int, float))
        else ""
    )
    return f"pid {holder.get('pid')} on {holder.get('host')}{since}"


class RunLock:
    """Hold ``run_dir/.lock`` while a run writes there (a context manager).

    The folder is created if needed; if it was created here and is empty again when the
    lock is released (the run failed before writing anything), it is removed, so a typo
    leaves nothing behind.
    """

    def __init__(self, run_dir: str | Path, log: Any = None) -> None:
        self.run = Path(run_dir)
        self.path = self.run / LOCK_NAME
        self.log = log
        self.created = False
        self.held = False
        self._previous: Any = None  # the SIGTERM handler to restore on release

    def acquire(self) -> None:
        if not self.run.exists():
            self.run.mkdir(parents=True)
            self.created = True
        elif not self.run.is_dir():
            raise LrcnError(self.run, "is a file, not a run folder")
        me = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "time": time.time(),
            "command": " ".join(sys.argv)[:500],
        }
        # The lock is written whole under a private name, then hard-linked to .lock: link()
        # fails if .lock exists (as O_EXCL would), and no one ever reads a half-written lock.
        mine = self.run / f"{LOCK_NAME}.{socket.gethostname()}.{os.getpid()}"
        mine.write_text(json.dumps(me))
        try:
            for _ in range(3):  # a stale lock removed by us (or another process): try again
                try:
                    self._link(mine)
                except FileExistsError:
                    self._handle_existing()
                    continue
                self.held = True
                self._catch_sigterm()
                return
        finally:
            mine.unlink()
        raise RunLocked(self.path, "could not be taken: it keeps reappearing")

    def _link(self, mine: Path) -> None:
        try:
            os.link(mine, self.path)
        except FileExistsError:
            raise
        except OSError:  # a file system without hard links: exclusive create instead
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            with os.fdopen(fd, "w") as f:
                f.write(mine.read_text())

    def _handle_existing(self) -> None:
        try:
            holder = json.loads(self.path.read_text())
            if not isinstance(holder, dict):
                holder = {}
        except FileNotFoundError:
            return  # released meanwhile: try again
        except (OSError, ValueError):
            holder = {}
        in_use = f"is in use by another training ({_describe(holder)}; lock file {LOCK_NAME})"
        if holder.get("host") != socket.gethostname():
            raise RunLocked(
                self.run,
                in_use,
                expected="another --out, or wait for it; delete the lock only if that process "
                "is gone",
            )
        reason = _stale_reason(holder)
        if reason is None:
            raise RunLocked(
                self.run,
                in_use,
                expected="another --out, or wait for it to finish",
            )
        if self.log is not None:
            self.log(f"{self.path}: stale lock of {_describe(holder)} ({reason}); taking it over")
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def _catch_sigterm(self) -> None:
        """``kill PID`` (SIGTERM) unwinds like Ctrl-C, so the lock is released on the way out;
        only SIGKILL and power cuts leave a stale lock."""
        if threading.current_thread() is threading.main_thread():

            def stop(signum: int, frame: Any) -> None:
                raise SystemExit(128 + signum)

            self._previous = signal.signal(signal.SIGTERM, stop)

    def release(self) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)
            self._previous = None
        if self.held:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
            self.held = False
        if self.created:
            with contextlib.suppress(OSError):
                self.run.rmdir()  # only if empty: nothing was written

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.release()
