"""The ``qala`` command.

Sub-commands are plugins: each is an entry point in the group ``qala.commands`` naming either a Typer app (a
command group such as ``qala schemas``) or a function (a single command such as ``qala demo``). Qala's own
commands are registered in ``pyproject.toml`` exactly as a third-party package would register its own.

Every failure prints one line to standard error and exits non-zero; ``QALA_DEBUG=1`` shows the traceback.
"""

from __future__ import annotations

import os
import sys
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Annotated, Any

import typer
import typer.core
import typer.main
from rich.console import Console
from typer import _click as click  # Typer >= 0.22 vendors click: its commands and contexts are these classes

from qala import __version__
from qala.home import HOME_ENV, resolve_home

ENTRY_POINT_GROUP = "qala.commands"
err = Console(stderr=True, highlight=False, soft_wrap=True)


class CliError(typer.Exit):
    """A failure to report as one line, with an exit code (2: usage or input, 1: a check failed).

    Raising it prints ``qala: error: <message>`` to standard error and exits. It derives from ``typer.Exit``
    because Typer handles that the same way in the real CLI and in ``CliRunner`` tests.
    """

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(exit_code)
        self.message = message
        err.print(f"qala: error: {message}", markup=False)

    def __str__(self) -> str:
        return self.message


_WORDS = {"str": "TEXT", "int": "INTEGER", "bool": "BOOLEAN"}
# Typer >= 0.28 labels every option with its Python type (`<bool>`, `<list[str]>`), which reads as code; the
# CLI's help shows what a user types instead, as click does. Older Typer (openapi-python-client, a dev tool, keeps
# it below 0.28) already prints click's words and has no such hook, so nothing is patched there.
_PARAMETER: Any = getattr(typer.core, "_TyperParameter", None)
_TYPER_DISPLAY_TYPE: Any = getattr(_PARAMETER, "display_type", None)


def _plain_type(self: Any, ctx: click.Context) -> str:
    """Click's words (``TEXT``, ``INTEGER``, ``PATH``, ``[a|b]``) instead of Typer's ``<str>`` labels."""
    label = str(_TYPER_DISPLAY_TYPE(self, ctx)).removeprefix("<").removesuffix(">")
    label = label.removeprefix("list[").removesuffix("]")  # a repeatable option takes one value at a time
    if self.type_descriptor.is_choice:
        return f"[{label}]"
    head, _, rest = label.partition(" ")
    return " ".join(part for part in (_WORDS.get(head, head).upper(), rest.upper()) if part)


def _option_type(self: Any, ctx: click.Context) -> str | None:
    if self.is_flag or self.count:
        return None  # a flag takes no value: no type to show
    return self.metavar or _plain_type(self, ctx)


if _TYPER_DISPLAY_TYPE is not None:
    _PARAMETER.display_type = _plain_type
    typer.core.TyperOption.display_type_rich = _option_type  # type: ignore[method-assign]


def _wide_when_piped() -> None:
    """Tables written to a file or a pipe are not cut to 80 columns (Rich's width when it sees no terminal)."""
    if "COLUMNS" not in os.environ and not sys.stdout.isatty():
        os.environ["COLUMNS"] = "250"


def _version(value: bool) -> None:
    if value:
        typer.echo(f"qala {__version__}")
        raise typer.Exit


def _home(value: Path | None) -> None:
    if value is not None:
        os.environ[HOME_ENV] = str(resolve_home(value))  # sub-commands and the processes they start read it


SUMMARIES = {
    "adapt": "Turn legacy municipal exports into canonical entities.",
    "audit": "The audit log: a hash chain under signed Merkle tree heads.",
    "catalogue": "Open-data catalogue: API tokens, harvest, push, serve.",
    "clients": "OAuth clients: the city systems that call the hub.",
    "conformance": "Certify a module against the open-API mandate.",
    "deliver": "Deliver webhooks in this process until stopped; several processes share the work through leases.",
    "demo": "Start the hub on http://127.0.0.1:8000 with demo data loaded through the adapters.",
    "keys": "The hub's signing keys.",
    "kpi": "CityScore-KZ: the KPI book, computing and explaining figures.",
    "members": "Member organisations (identified by BIN).",
    "openapi": "The open-API mandate: one OpenAPI 3.1 document per collection.",
    "schemas": "Canonical data models: list, show, validate, check compatibility.",
    "serve": "Run the hub's HTTP service (uvicorn; every worker builds its app from QALA_* settings).",
    "simulate": "Feed a hub realistic, continuous data for Astana, Almaty and Shymkent through its real interfaces.",
    "status": "Where the hub's home is and what it holds: database, keys, issuer, counts, last audit head.",
    "subscriptions": "Subscriptions: changes pushed to city systems.",
}
"""One-line help of Qala's own commands, so that ``qala --help`` lists them without importing each one's stack
(a test holds them to the commands' own help). Third-party commands are loaded to read theirs."""


def _command(name: str, target: object) -> click.Command:
    command: click.Command
    if isinstance(target, typer.Typer):
        command = typer.main.get_group(target)
    else:
        single = typer.Typer(pretty_exceptions_enable=False, add_completion=False)
        single.command(name=name)(target)  # type: ignore[type-var]
        command = typer.main.get_command(single)
    command.name = name
    return command


class LazyGroup(typer.core.TyperGroup):
    """The root group: a sub-command's module is imported only when that command runs.

    Each plugin imports its own stack (web framework, database drivers, RDF, browsers); ``qala schemas list`` and
    ``qala --help`` should not pay for all of them.
    """

    entries: dict[str, EntryPoint] = {}  # noqa: RUF012 -- set per instance by build_app
    listing = False

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *self.entries})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands:
            return self.commands[cmd_name]
        entry = self.entries.get(cmd_name)
        if entry is None:
            return None
        if self.listing and cmd_name in SUMMARIES:
            return typer.core.TyperCommand(cmd_name, help=SUMMARIES[cmd_name])
        try:
            target = entry.load()
        except Exception as exc:  # a broken plugin must not take the whole CLI down
            err.print(f"qala: warning: command {cmd_name!r} could not be loaded: {exc}", markup=False)
            return None
        self.commands[cmd_name] = _command(cmd_name, target)
        return self.commands[cmd_name]

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        self.listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self.listing = False


def build_app(commands: list[EntryPoint] | None = None) -> typer.Typer:
    """The root Typer app; ``commands`` (default: every registered entry point) are attached lazily."""
    found = commands if commands is not None else list(entry_points(group=ENTRY_POINT_GROUP))
    group = type("QalaGroup", (LazyGroup,), {"entries": {entry.name: entry for entry in found}})
    app = typer.Typer(
        name="qala",
        cls=group,
        help="Qala: interoperability hub for smart cities.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=False,
    )

    @app.callback()
    def root(
        version: bool = typer.Option(
            False, "--version", callback=_version, is_eager=True, help="Show the version and exit."
        ),
        home: Annotated[
            Path | None,
            typer.Option(
                "--home",
                callback=_home,
                is_eager=True,
                help="The hub's home: database, keys, settings (default: QALA_HOME, else ~/.local/share/qala).",
            ),
        ] = None,
    ) -> None:
        """Qala: canonical data models, adapters, gateway, catalogue and conformance suite."""

    return app


CLOSED_PIPE_STATUS = 0
"""The status when the reader of standard output went away (``qala adapt run ... --out - | head``): the reader had
what it wanted. Zero, because whether a write meets the closed pipe at all depends on how much output the pipe's
buffer took: `qala conformance issuer | head -n 3` must not succeed or fail by the size of its output."""


def _stdout_is_null() -> bool:
    """Typer and Rich answer a closed pipe by pointing standard output at /dev/null, then exit 1."""
    if isinstance(sys.stdout, click.utils.PacifyFlushWrapper):
        return True
    try:
        return os.path.samestat(os.fstat(1), os.stat(os.devnull))
    except OSError:
        return False


def _quiet_exit_on_closed_pipe() -> None:
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)  # the interpreter's last flush must not complain about the closed pipe either
    os.close(null)
    sys.exit(CLOSED_PIPE_STATUS)


def main(argv: list[str] | None = None) -> None:
    """Run ``qala``; every failure, usage errors included, is one line on standard error."""
    args = sys.argv[1:] if argv is None else argv
    _wide_when_piped()
    null_from_the_start = _stdout_is_null()
    app = build_app()
    try:
        code = app(args=args, prog_name="qala", standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as exc:
        sys.exit(exc.exit_code)  # the help is already printed
    except click.exceptions.UsageError as exc:
        where = exc.ctx.command_path if exc.ctx is not None else "qala"
        err.print(f"qala: error: {exc.format_message()} (see: {where} --help)", markup=False)
        sys.exit(exc.exit_code)
    except click.exceptions.ClickException as exc:
        err.print(f"qala: error: {exc.format_message()}", markup=False)
        sys.exit(exc.exit_code)
    except typer.Abort:
        sys.exit(130)
    except BrokenPipeError:
        _quiet_exit_on_closed_pipe()
    except SystemExit as exc:
        if exc.code == 1 and not null_from_the_start and _stdout_is_null():
            sys.exit(CLOSED_PIPE_STATUS)  # a closed pipe, which Typer or Rich already silenced
        raise
    except Exception as exc:
        if os.environ.get("QALA_DEBUG"):
            raise
        err.print(f"qala: error: {type(exc).__name__}: {exc} (QALA_DEBUG=1 shows the traceback)", markup=False)
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)
