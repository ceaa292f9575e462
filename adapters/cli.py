"""``qala adapt``: list the adapters and run one over a legacy export.

    $ qala adapt list
    $ qala adapt run csv examples/legacy/ikomek-109-astana.csv --mapping examples/legacy/ikomek-109-astana.yaml \\
        --out cases.ndjson --quarantine cases.quarantine.ndjson
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import IO, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from adapters.errors import AdapterError
from adapters.inspect import bundled_mappings, dump_mapping, inspect_file, known_headers, starting_mapping
from adapters.mapping import Mapping
from adapters.pipeline import Summary, run
from adapters.push import BatchPusher, HubClient, file_fingerprint
from adapters.quarantine import Quarantine, carry_over_hub_lines, hub_lines
from adapters.registry import AdapterRegistry
from adapters.timezones import TimeZoneRulesError, check_rules
from qala.cli import CliError
from schemas import SchemaError, SchemaRegistry

app = typer.Typer(help="Turn legacy municipal exports into canonical entities.", no_args_is_help=True)
out_console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


@app.callback()
def check_time_zones() -> None:
    """Refuse to start with a time-zone database that predates Kazakhstan's move to UTC+5 (see
    :mod:`adapters.timezones`): every local time would silently get +06:00."""
    try:
        check_rules()
    except TimeZoneRulesError as exc:
        raise CliError(str(exc), exit_code=1) from exc


@app.command("list")
def list_adapters() -> None:
    """List the registered adapters (built-in and third-party)."""
    registry = AdapterRegistry.load()
    table = Table("adapter", "mapping", "reads")
    for name in registry.names():
        try:
            info = registry.info(name)
        except AdapterError as exc:
            table.add_row(name, "", f"[red]{exc}[/red]")
            continue
        table.add_row(name, "needed" if info.needs_mapping else "built in", info.summary)
    out_console.print(table)


def _options(pairs: list[str]) -> dict[str, str]:
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise CliError(f"--option takes KEY=VALUE, not {pair!r}")
        options[key.strip()] = value
    return options


def _print_summary(summary: Summary, pusher: BatchPusher | None, out: Path | None, quarantine: Path) -> None:
    """The closing table and the top rejection reasons; on standard error when the NDJSON went to standard output."""
    console = err_console if _is_stdout(out) else out_console
    table = Table(title=f"qala adapt run {summary.adapter}", show_header=False)
    table.add_row("read", str(summary.read))
    table.add_row("accepted", str(summary.accepted))
    table.add_row("rejected", str(summary.rejected))
    for type_name, count in sorted(summary.types.items()):
        table.add_row(f"  {type_name}", str(count))
    if pusher is not None:
        statuses = ", ".join(f"{k} {v}" for k, v in sorted(pusher.statuses.items())) or "nothing new sent"
        table.add_row("hub", statuses)
    if out is not None:
        table.add_row("output", "standard output" if _is_stdout(out) else str(out))
    if summary.rejected:
        table.add_row("quarantine", str(quarantine))
    console.print(table)
    for note in summary.notes:
        console.print(f"  detected: {note}")
    for reason, count in summary.top_reasons():
        console.print(f"  {count:>7}  {reason}")


_STDOUT = Path("-")
"""``--out -``: told apart from a file named ``-`` (``--out ./-``) by identity, since the two paths are equal."""


def _is_stdout(out: Path | None) -> bool:
    return out is _STDOUT


@app.command("run")
def run_adapter(  # noqa: PLR0917 - Typer maps every option to a parameter
    adapter: Annotated[str, typer.Argument(help="Adapter name, see `qala adapt list`.")],
    source: Annotated[str, typer.Argument(help="File, directory or URL to read.")],
    mapping: Annotated[Path | None, typer.Option("--mapping", "-m", help="YAML mapping (tabular adapters).")] = None,
    out_name: Annotated[
        str | None,
        typer.Option("--out", metavar="PATH", help="Write accepted entities here as NDJSON ('-': standard output)."),
    ] = None,
    quarantine: Annotated[
        Path | None, typer.Option("--quarantine", help="Rejected records (default: next to --out or the source).")
    ] = None,
    option: Annotated[list[str] | None, typer.Option("--option", "-o", help="Adapter option KEY=VALUE.")] = None,
    encoding: Annotated[str | None, typer.Option("--encoding", help="Source encoding (overrides the mapping).")] = None,
    push: Annotated[str | None, typer.Option("--push", help="Hub base URL to send batches to.")] = None,
    client_id: Annotated[str | None, typer.Option("--client-id", envvar="QALA_CLIENT_ID")] = None,
    client_secret: Annotated[str | None, typer.Option("--client-secret", envvar="QALA_CLIENT_SECRET")] = None,
    scope: Annotated[str | None, typer.Option("--scope", help="OAuth scopes to ask for.")] = None,
    state: Annotated[Path | None, typer.Option("--state", help="Push state file (default: by the quarantine).")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, max=5000)] = 500,
    workers: Annotated[
        int, typer.Option("--workers", min=1, max=64, help="Processes mapping and validating (same output).")
    ] = 1,
) -> None:
    """Read SOURCE with ADAPTER, validate every entity, write accepted ones and quarantine the rest."""
    options = _options(option or [])
    out = None if out_name is None else _STDOUT if out_name == "-" else Path(out_name)
    if encoding:
        options["encoding"] = encoding
    if quarantine is None:
        base = out if out is not None and not _is_stdout(out) else Path(Path(source).name or "source")
        quarantine = base.with_name(base.name.removesuffix(".ndjson") + ".quarantine.ndjson")
    if push and not (client_id and client_secret):
        raise CliError("--push needs --client-id and --client-secret (or QALA_CLIENT_ID / QALA_CLIENT_SECRET)")
    try:
        summary, pusher = _run(
            adapter_name=adapter,
            source=source,
            mapping_path=mapping,
            out=out,
            quarantine_path=quarantine,
            options=options,
            push=push,
            client_id=client_id,
            client_secret=client_secret,
            scope=scope,
            state=state,
            batch_size=batch_size,
            workers=workers,
        )
    except AdapterError as exc:
        raise CliError(str(exc), exit_code=1) from exc
    except SchemaError as exc:
        raise CliError(f"schema registry: {exc}", exit_code=1) from exc
    except KeyboardInterrupt:
        raise CliError("interrupted; with --push, run the same command again to resume", exit_code=130) from None
    _print_summary(summary, pusher, out, quarantine)
    if summary.rejected == 0:
        quarantine.unlink(missing_ok=True)


def _run(
    *,
    adapter_name: str,
    source: str,
    mapping_path: Path | None,
    out: Path | None,
    quarantine_path: Path,
    options: dict[str, str],
    push: str | None,
    client_id: str | None,
    client_secret: str | None,
    scope: str | None,
    state: Path | None,
    batch_size: int,
    workers: int = 1,
) -> tuple[Summary, BatchPusher | None]:
    registry = AdapterRegistry.load()
    schemas = SchemaRegistry.load()
    mapping = Mapping.load(mapping_path) if mapping_path is not None else None
    if mapping is not None and not schemas.has(mapping.type):
        raise AdapterError(
            f"{mapping_path}: type {mapping.type!r} is not in the schema registry (known: {', '.join(schemas.types())})"
        )
    adapter = registry.create(adapter_name, source, mapping, options)
    pusher: BatchPusher | None = None
    previous: Path | None = None
    if push:
        stem = quarantine_path.name.removesuffix(".ndjson").removesuffix(".quarantine")
        state_path = state or quarantine_path.with_name(stem + ".push-state.json")
        client = HubClient(push, client_id or "", client_secret or "", scope=scope)
        pusher = BatchPusher(client, state_path, file_fingerprint(source), batch_size)
        if pusher.resuming:
            err_console.print(f"resuming after {pusher.skip} entities already committed ({state_path})")
            previous = carry_over_hub_lines(quarantine_path)
    with contextlib.ExitStack() as stack:
        out_stream: IO[bytes] | None = None
        if _is_stdout(out):
            out_stream = sys.stdout.buffer
            stack.callback(out_stream.flush)
        elif out is not None:
            out_stream = stack.enter_context(out.open("wb"))
        q_stream = stack.enter_context(quarantine_path.open("wb"))
        if previous is not None:
            q_stream.writelines(hub_lines(previous))
            previous.unlink()
        progress = stack.enter_context(
            Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[records]} records"),
                TimeElapsedColumn(),
                console=err_console,
                transient=True,
            )
        )
        task = progress.add_task(f"{adapter_name} {Path(source).name}", total=None, records=0)

        def on_progress(done: int, total: int | None, records: int) -> None:
            progress.update(task, completed=done, total=total, records=records)

        summary = run(
            adapter,
            schemas,
            out=out_stream,
            quarantine=Quarantine(q_stream, adapter_name),
            sink=pusher,
            progress=on_progress,
            workers=workers,
        )
    if pusher is not None:
        try:
            upload_quarantine(pusher.client, quarantine_path)
        finally:
            pusher.client.close()
    return summary, pusher


@app.command("inspect")
def inspect_source(
    source: Annotated[Path, typer.Argument(help="The export to look at (CSV, XLSX, XLS, ODS or DBF).")],
    type_name: Annotated[str | None, typer.Option("--type", "-t", help="Canonical type of the mapping.")] = None,
    mapping_out: Annotated[
        Path | None, typer.Option("--mapping-out", help="Where to write the starting mapping (default: SOURCE.yaml).")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing mapping file.")] = False,
) -> None:
    """Show what SOURCE is (kind, encoding and why, delimiter, header, sheets, date forms, rows) and write a
    starting mapping from the header synonyms the bundled mappings know."""
    target = mapping_out or Path(source.stem + ".yaml")
    if target.exists() and not force:
        raise CliError(f"{target} exists; choose another --mapping-out or add --force")
    try:
        mappings = bundled_mappings()
        found = inspect_file(source, known_headers(mappings))
        document, notes = starting_mapping(found, mappings, type_name)
    except AdapterError as exc:
        raise CliError(str(exc), exit_code=1) from exc
    out_console.print(f"[bold]{source}[/bold]: {found.kind}")
    for line in found.evidence:
        out_console.print(f"  detected: {line}")
    if found.sheets:
        out_console.print(f"  sheets: {', '.join(found.sheets)}")
    for column, forms in found.date_forms().items():
        out_console.print(f"  dates in {column!r}: {', '.join(forms)}")
    if found.rows:
        table = Table(*[str(h) for h in found.headers], title="first rows")
        for row in found.rows[:3]:
            table.add_row(*["" if c is None else str(c) for c in row[: len(found.headers)]])
        out_console.print(table)
    for note in notes:
        out_console.print(f"  mapping: {note}")
    target.write_text(dump_mapping(document, found, notes), encoding="utf-8")
    out_console.print(f"wrote {target}: review it, then `qala adapt run {found.kind} {source} --mapping {target}`")


QUARANTINE_UPLOAD_LINES = 1000


def upload_quarantine(client: HubClient, path: Path) -> int:
    """Send the quarantine file to the hub too, in pieces; the hub keeps each record once, so a rerun is safe."""
    sent = 0
    with path.open("rb") as stream:
        while lines := [line for _, line in zip(range(QUARANTINE_UPLOAD_LINES), stream, strict=False)]:
            client.send_quarantine(b"".join(lines))
            sent += len(lines)
    return sent
