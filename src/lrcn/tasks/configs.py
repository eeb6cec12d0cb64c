"""Config files to task configs: the file's ``task:`` picks the class from the task registry."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lrcn.config import apply_overrides, read_config_file, validate_as
from lrcn.tasks.base import TaskConfig, get_task

__all__ = ["load_config", "validate_config"]


def validate_config(
    raw: dict[str, Any],
    source: str = "<config>",
    key_lines: dict[tuple[str, ...], int] | None = None,
    overridden: frozenset[str] = frozenset(),
) -> TaskConfig:
    """Validate a config dict as its task's config class (see :func:`load_config`)."""
    task = get_task(raw.get("task"), source if not key_lines else _at(source, key_lines))
    return validate_as(task.config_class, raw, source, key_lines, overridden)


def _at(source: str, key_lines: dict[tuple[str, ...], int]) -> str:
    line = key_lines.get(("task",))
    return f"{source}:{line}" if line is not None else source


def load_config(path: str | Path, overrides: list[str] | None = None) -> TaskConfig:
    """Read a YAML config, apply ``--set key=value`` overrides and validate it.

    Raises:
        ConfigError: unreadable YAML, unknown task, unknown key or a bad value; the message
            names the file, the key path and (when the value is in the file) its line.
    """
    raw, lines = read_config_file(path)
    overrides = overrides or []
    raw = apply_overrides(raw, overrides)
    changed = frozenset(item.partition("=")[0].strip() for item in overrides)
    return validate_config(raw, str(path), lines, changed)
