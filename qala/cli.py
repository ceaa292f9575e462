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

import typer
from rich.console import Console

from qala import __version__

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


def _version(value: bool) -> None:
    if value:
        typer.echo(f"qala {__version__}")
        raise typer.Exit


def build_app(commands: list[EntryPoint] | None = None) -> typer.Typer:
    """The root Typer app with every registered sub-command attached."""
    app = typer.Typer(
        name="qala",
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
    ) -> None:
        """Qala: canonical data models, adapters, gateway, catalogue and conformance suite."""

    found = commands if commands is not None else list(entry_points(group=ENTRY_POINT_GROUP))
    for entry in sorted(found, key=lambda e: e.name):
        try:
            target = entry.load()
        except Exception as exc:  # a broken plugin must not take the whole CLI down
            err.print(f"qala: warning: command {entry.name!r} could not be loaded: {exc}")
            continue
        if isinstance(target, typer.Typer):
            app.add_typer(target, name=entry.name)
        else:
            app.command(name=entry.name)(target)
    return app


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    registered = list(entry_points(group=ENTRY_POINT_GROUP))
    # Load only the sub-command being run: each plugin imports its own stack (web framework, database drivers,
    # RDF, browsers), and `qala schemas list` should not pay for all of them. Help lists every command.
    chosen = [entry for entry in registered if args and entry.name == args[0]]
    app = build_app(chosen or registered)
    try:
        app(args=args, prog_name="qala", standalone_mode=True)
    except Exception as exc:
        if os.environ.get("QALA_DEBUG"):
            raise
        err.print(f"qala: error: {type(exc).__name__}: {exc} (QALA_DEBUG=1 shows the traceback)", markup=False)
        sys.exit(1)
