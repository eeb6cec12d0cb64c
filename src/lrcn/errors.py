"""One base class for every error a user can fix by changing their input.

The CLI turns an :class:`LrcnError` into one line on stderr and exit code 2, in one place
(``cli.py``), so every library error must say where the problem is (a file, its line, a
config key) and what was expected. Anything else that escapes is a bug in lrcn.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["LrcnError"]


class LrcnError(ValueError):
    """Bad input: ``where`` (a file or a config source), optional ``line`` and ``key``, the
    ``problem`` and what was ``expected``.

    The one-argument form ``LrcnError(message)`` is kept: PyTorch's DataLoader re-raises a
    worker's exception as ``type(message)``.
    """

    def __init__(
        self,
        where: str | Path,
        problem: str | None = None,
        line: int | None = None,
        *,
        key: str | None = None,
        expected: str | None = None,
    ) -> None:
        place = f"{where}:{line}" if line is not None else str(where)
        parts = [place]
        if key:
            parts.append(key)
        if problem is not None:
            parts.append(problem if expected is None else f"{problem}; expected {expected}")
        super().__init__(": ".join(parts))
        self.path = str(where)
        self.line = line
        self.key = key
        self.expected = expected
        self.problem = problem or str(where)
