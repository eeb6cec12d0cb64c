"""The seam between ``lrcn demo`` / ``lrcn datasets`` / task commands such as ``lrcn search``
and the code behind them.

A demo or a data-set tool is a plain function, registered by name; its parameters carry their
command-line help in ``Annotated[T, Help(...)]``, and what it returns is what the command
prints. The CLI (``cli.py``) turns every registered function into a typer command, so a new
demo or tool is one new function in a module listed in :data:`COMMAND_MODULES`, never an edit
of ``cli.py``::

    @register_demo("shapes")
    def shapes(
        out: Annotated[Path, Help("Folder for the run.")] = Path("runs/shapes"),
        epochs: Annotated[int, Help("Training epochs.", min=1)] = 5,
        log: Callable[[str], None] = print,
    ) -> str:
        \"\"\"Train on shapes.\"\"\"
        ...
        return f"accuracy {accuracy:.3f}"

``register_command("search")`` adds a top-level ``lrcn search`` the same way: a task that
brings a command of its own (retrieval's ``index`` and ``search``) registers it here too.

A parameter without a default becomes a positional argument, one with a default an option
(``--name-with-dashes``, or ``Help(flag=...)``). A parameter named ``log`` is not on the
command line: the CLI passes its logging function (a line on stderr). The return value:
``None`` prints nothing, a ``str`` is echoed, anything else (a rich ``Table``) is printed by
rich, and a list or tuple prints its elements in turn.

Importing this module stays cheap (no torch, numpy or typer), as must importing the command
modules: they import their heavy dependencies inside the registered functions.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from lrcn.errors import LrcnError

__all__ = [
    "COMMAND_MODULES",
    "BadParameter",
    "Command",
    "Group",
    "Help",
    "list_commands",
    "load_commands",
    "register_command",
    "register_dataset_tool",
    "register_demo",
]

Group = Literal["lrcn", "demo", "datasets"]  # "lrcn": a top-level command (lrcn search)
F = TypeVar("F", bound=Callable[..., Any])

# The modules whose import registers the commands, in the order they are listed in --help.
COMMAND_MODULES = (
    "lrcn.demos.activity",
    "lrcn.demos.captioning",
    "lrcn.demos.gradients",
    "lrcn.demos.video_captioning",
    "lrcn.demos.vqa",
    "lrcn.demos.retrieval",
    "lrcn.demos.next_frame",
    "lrcn.data.formats.tools",
    "lrcn.search.commands",
    "lrcn.export.commands",
    "lrcn.serve.commands",
)


class Help:
    """Command-line help of one parameter, as ``Annotated`` metadata: the help ``text``, the
    bounds of a number (``min``, ``max``: checked by the CLI before the function runs) and,
    for an option, its ``flag`` when ``--name-with-dashes`` is not wanted."""

    __slots__ = ("flag", "max", "min", "text")

    def __init__(
        self,
        text: str,
        *,
        min: int | float | None = None,
        max: int | float | None = None,
        flag: str | None = None,
    ) -> None:
        self.text = text
        self.min = min
        self.max = max
        self.flag = flag

    def __repr__(self) -> str:
        extras = "".join(
            f", {name}={getattr(self, name)!r}"
            for name in ("min", "max", "flag")
            if getattr(self, name) is not None
        )
        return f"Help({self.text!r}{extras})"


class BadParameter(LrcnError):
    """A value the command line accepted by type but the command cannot use (``5,ten`` as
    sequence lengths). The CLI reports it as a usage error of the command, like a bad type."""


@dataclass(frozen=True)
class Command:
    """One registered subcommand: ``lrcn <group> <name>`` runs ``function``."""

    group: Group
    name: str
    help: str
    function: Callable[..., Any]


_REGISTRY: dict[tuple[str, str], Command] = {}


def _first_paragraph(function: Callable[..., Any]) -> str:
    """The summary --help shows: the docstring's first paragraph, on one line."""
    doc = inspect.getdoc(function) or ""
    return " ".join(doc.split("\n\n")[0].split())


def _register(group: Group, name: str, help: str | None) -> Callable[[F], F]:
    def decorator(function: F) -> F:
        key = (group, name)
        known = _REGISTRY.get(key)
        if known is not None and _qualified(known.function) != _qualified(function):
            raise ValueError(
                f"lrcn {group} {name}: already registered by {_qualified(known.function)}, "
                f"cannot register {_qualified(function)} under the same name"
            )
        text = help if help is not None else _first_paragraph(function)
        _REGISTRY[key] = Command(group, name, text, function)
        return function

    return decorator


def _qualified(function: Callable[..., Any]) -> str:
    return f"{function.__module__}.{function.__qualname__}"


def register_demo(name: str, *, help: str | None = None) -> Callable[[F], F]:
    """Register ``lrcn demo <name>``; ``help`` defaults to the docstring's first paragraph."""
    return _register("demo", name, help)


def register_command(name: str, *, help: str | None = None) -> Callable[[F], F]:
    """Register a top-level ``lrcn <name>`` (``lrcn index``, ``lrcn search``); ``help``
    defaults to the docstring's first paragraph."""
    return _register("lrcn", name, help)


def register_dataset_tool(name: str, *, help: str | None = None) -> Callable[[F], F]:
    """Register ``lrcn datasets <name>``; ``help`` defaults to the docstring's first
    paragraph."""
    return _register("datasets", name, help)


def load_commands() -> None:
    """Import every module of :data:`COMMAND_MODULES`, which registers their commands. A
    module that fails to import is an error naming it: a command silently missing from
    ``lrcn --help`` would look like a typo of the user's."""
    for module in COMMAND_MODULES:
        try:
            importlib.import_module(module)
        except ImportError as err:
            raise ImportError(f"command module {module} (lrcn.commands) failed: {err}") from err


def list_commands(group: Group) -> list[Command]:
    """The registered commands of ``group``, in registration order (the order of
    :data:`COMMAND_MODULES`, then of the functions in each module)."""
    load_commands()
    return [command for (g, _), command in _REGISTRY.items() if g == group]
