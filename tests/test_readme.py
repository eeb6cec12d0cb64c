"""The README's commands and config paths work as written.

Cheap: nothing is trained or run. Every ``configs/*.yaml`` the README names must exist and
validate; every ``lrcn ...`` line of its bash blocks (and every inline ``lrcn ...`` code span)
must parse against the real click command tree, with its ``--set`` overrides valid for its
config; and every ``make <target>`` it mentions must be a Makefile target.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
MAKEFILE = ROOT / "Makefile"

_FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
_CONFIG_PATH = re.compile(r"\bconfigs/[\w.-]+\.ya?ml\b")
_MAKE_TARGET = re.compile(r"\bmake\s+([A-Za-z_][\w-]*)")
_SET_IN_COMMENT = re.compile(r"--set[\s=]+(\S+=\S*)")


def _readme() -> str:
    return README.read_text(encoding="utf-8")


def _fenced_blocks(text: str) -> list[tuple[str, str]]:
    """``(language, body)`` of every fenced code block, in order."""
    return [(m.group(1).strip(), m.group(2)) for m in _FENCE.finditer(text)]


def _prose(text: str) -> str:
    """The README without its fenced code blocks."""
    return _FENCE.sub("", text)


def _inline_code(text: str) -> list[str]:
    return re.findall(r"`([^`\n]+)`", _prose(text))


def _shell_lines(body: str) -> list[str]:
    """Logical lines of a shell block: ``\\`` continuations joined, blank lines dropped."""
    lines: list[str] = []
    pending = ""
    for raw in body.splitlines():
        if raw.rstrip().endswith("\\"):
            pending += raw.rstrip()[:-1] + " "
            continue
        line = (pending + raw).strip()
        pending = ""
        if line:
            lines.append(line)
    if pending.strip():
        lines.append(pending.strip())
    return lines


def _comment_of(line: str) -> str:
    """The trailing ``# comment`` of a shell line (what ``shlex.split(comments=True)`` drops)."""
    quote = ""
    for i, char in enumerate(line):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or line[i - 1].isspace()):
            return line[i:]
    return ""


def _readme_commands() -> list[Any]:
    """One ``pytest.param(argv)`` per ``lrcn`` command the README shows, its text as the id."""
    text = _readme()
    cases: list[Any] = []
    seen: set[str] = set()

    def add(argv: list[str], source: str) -> None:
        ident = shlex.join(argv) + source
        if ident not in seen:
            seen.add(ident)
            cases.append(pytest.param(argv, id=ident))

    for language, body in _fenced_blocks(text):
        if language not in ("bash", "sh", "shell", "console"):
            continue
        for line in _shell_lines(body):
            argv = shlex.split(line, comments=True)
            if not argv or argv[0] != "lrcn":
                continue
            add(argv, "")
            # "# add --set data.split=2 for split 2": the comment's variant must work too
            extra = _SET_IN_COMMENT.findall(_comment_of(line))
            if extra:
                add([*argv, *(t for item in extra for t in ("--set", item))], " (from comment)")
    for span in _inline_code(text):
        if span.startswith("lrcn "):
            add(shlex.split(span), " (inline)")
    return cases


def _readme_configs() -> list[str]:
    return sorted(set(_CONFIG_PATH.findall(_readme())))


def _load_config() -> Any:
    """The config loader, wherever the current layout keeps it."""
    try:
        from lrcn.tasks import load_config
    except ImportError:
        from lrcn.config import load_config  # type: ignore[attr-defined,no-redef]
    return load_config


def _overrides(argv: list[str]) -> list[str]:
    """The values of every ``--set`` in an argument list (``--set k=v`` or ``--set=k=v``)."""
    values: list[str] = []
    it = iter(argv)
    for token in it:
        if token == "--set":
            values.append(next(it, ""))
        elif token.startswith("--set="):
            values.append(token[len("--set=") :])
    return values


def _remaining_args(ctx: Any) -> list[str]:
    """What a group left for its subcommand after parsing its own options."""
    protected = getattr(ctx, "_protected_args", None)
    if protected is None:  # click < 8.2
        protected = ctx.protected_args
    return [*protected, *ctx.args]


def _usage_error() -> type[Exception]:
    """Click's ClickException, from whichever click typer uses (recent typer vendors its own)."""
    import typer

    return next(k for k in typer.BadParameter.__mro__ if k.__name__ == "ClickException")


def _skip_exists_checks(command: Any, ctx: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """README paths (run folders, photos, data) are placeholders: a path parameter declared
    with ``exists=True`` is parsed as if it had ``exists=False`` (its name, arity, type and
    file/dir checks still apply). Covers plain click (``param.type.exists``) and typer's own
    path coercion (``param.type_descriptor.parameter_info.exists``); the parameters come from
    ``get_params(ctx)``, so options a command adds at run time are included."""
    for param in command.get_params(ctx):
        holders = (
            getattr(param, "type", None),
            getattr(getattr(param, "type_descriptor", None), "parameter_info", None),
        )
        for holder in holders:
            if getattr(holder, "exists", None) is True:
                monkeypatch.setattr(holder, "exists", False)


def _parse(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> Any:
    """Parse ``lrcn ARGS`` down the command tree the way click would, without invoking anything;
    returns the innermost context. Raises click's usage errors (and ``Exit`` for ``--help``)."""
    import typer

    from lrcn.cli import app

    command: Any = typer.main.get_command(app)
    name, args, parent = argv[0], argv[1:], None
    while True:
        _skip_exists_checks(
            command, typer.Context(command, info_name=name, parent=parent), monkeypatch
        )
        ctx = command.make_context(name, args, parent=parent, resilient_parsing=False)
        if not hasattr(command, "resolve_command"):  # a command, not a group
            return ctx
        args = _remaining_args(ctx)
        if not args:
            if not command.invoke_without_command:
                ctx.fail("Missing command.")
            return ctx
        name, command, args = command.resolve_command(ctx, args)
        assert command is not None, f"{ctx.command_path}: no such command {name!r}"
        parent = ctx


# --------------------------------------------------------------------------------------------


def test_readme_mentions_commands_and_configs():
    """Guards the collectors themselves: a README reformat must not make the tests vacuous."""
    assert len(_readme_commands()) >= 10
    assert "configs/flickr8k_show_attend_tell.yaml" in _readme_configs()


@pytest.mark.parametrize("path", _readme_configs())
def test_readme_config_exists_and_validates(path):
    file = ROOT / path
    assert file.is_file(), f"README names {path}, which does not exist"
    config = _load_config()(file)
    assert config.task


@pytest.mark.parametrize("argv", _readme_commands())
def test_readme_command_parses(argv, monkeypatch):
    import typer

    monkeypatch.chdir(ROOT)  # the README's relative paths are relative to the repository
    try:
        ctx = _parse(argv, monkeypatch)
    except typer.Exit as stop:  # --help, --version: parsed, and asked to stop
        assert stop.exit_code == 0
        return
    except _usage_error() as err:
        message = err.format_message()  # type: ignore[attr-defined]
        pytest.fail(f"{shlex.join(argv)}: {type(err).__name__}: {message}", pytrace=False)
    assert ctx.command is not None
    overrides = _overrides(argv)
    configs = [arg for arg in argv[1:] if _CONFIG_PATH.fullmatch(arg)]
    for config in configs:  # the README's own --set overrides must fit the config's schema
        assert (ROOT / config).is_file(), f"{config} does not exist"
        try:
            _load_config()(ROOT / config, overrides)
        except Exception as err:
            pytest.fail(f"{config} with --set {overrides}: {err}", pytrace=False)


def test_readme_first_block_is_make_demo_and_make_test():
    language, body = _fenced_blocks(_readme())[0]
    assert language == "bash"
    commands = [shlex.split(line, comments=True) for line in _shell_lines(body)]
    assert ["make", "demo"] in commands
    assert ["make", "test"] in commands


def _makefile_targets() -> set[str]:
    targets: set[str] = set()
    for line in MAKEFILE.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^([A-Za-z0-9_.][^:=#\t]*?)\s*::?(?!=)", line)
        if match:
            targets.update(match.group(1).split())
    return targets


def test_readme_make_targets_exist():
    text = _readme()
    code = (
        "\n".join(body for _, body in _fenced_blocks(text)) + "\n" + "\n".join(_inline_code(text))
    )
    mentioned = set(_MAKE_TARGET.findall(code))
    assert {"demo", "test"} <= mentioned
    missing = mentioned - _makefile_targets()
    assert not missing, f"README mentions make targets the Makefile lacks: {sorted(missing)}"
