"""``qala schemas``: list, show and validate against the canonical data models; check compatibility."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.table import Table

from qala.cli import CliError
from schemas.bundle import inline_refs
from schemas.compat import check_compatibility
from schemas.errors import SchemaError
from schemas.reading import read_entities
from schemas.registry import SchemaRegistry

app = typer.Typer(help="Canonical data models: list, show, validate, check compatibility.", no_args_is_help=True)
out = Console(highlight=False, soft_wrap=True, markup=False)


def _registry() -> SchemaRegistry:
    try:
        return SchemaRegistry.load()
    except SchemaError as exc:
        raise CliError(f"cannot load the schemas: {exc}") from exc


@app.command("list")
def list_types() -> None:
    """Every canonical type with its collection, versions and personal fields."""
    table = Table("type", "collection", "latest", "released", "personal fields", "aligned with")
    for column in table.columns[:3]:
        column.no_wrap = True
    registry = _registry()
    for latest in registry.latest():
        released = ", ".join(v.version for v in registry.versions(latest.type_name) if v.released)
        aligned = "; ".join(latest.source.get("x-aligned-with", []))
        table.add_row(
            latest.type_name,
            latest.collection,
            latest.version,
            released,
            ", ".join(sorted(latest.personal_fields)) or "-",
            aligned,
        )
    out.print(table)


@app.command()
def show(
    name: Annotated[str, typer.Argument(help="Type (ServiceRequest) or collection (service-requests).")],
    version: Annotated[str | None, typer.Option("--version", "-v", help="A released version; default latest.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the self-contained JSON Schema document.")] = False,
) -> None:
    """Show a type's fields, or its whole schema with --json."""
    try:
        schema = _registry().get(name, version)
    except SchemaError as exc:
        raise CliError(str(exc)) from exc
    if as_json:
        out.print_json(orjson.dumps(schema.document).decode())
        return
    out.print(f"{schema.type_name} {schema.version}  ({schema.collection})  {schema.schema_id}")
    out.print(schema.description)
    table = Table("field", "type", "required", "personal", "description")
    for field, spec in schema.document.get("properties", {}).items():
        table.add_row(
            field,
            _describe_type(spec, schema.document),
            "yes" if field in schema.required else "",
            "yes" if spec.get("x-personal") else "",
            spec.get("description", ""),
        )
    out.print(table)


def _describe_type(spec: dict[str, Any], document: dict[str, Any]) -> str:
    ref = str(spec.get("$ref", ""))
    if ref.startswith("#/$defs/"):
        return ref.removeprefix("#/$defs/")
    if "enum" in spec:
        return " | ".join(str(v) for v in spec["enum"])
    if "const" in spec:
        return f"= {spec['const']}"
    kind = spec.get("type", "any")
    return kind if isinstance(kind, str) else " | ".join(kind)


@app.command()
def validate(
    files: Annotated[list[Path], typer.Argument(help="JSON (an object or array) or NDJSON (.ndjson, .jsonl) files.")],
) -> None:
    """Validate entities against their canonical schema; print every error with its JSON pointer.

    Exits 1 when any entity is invalid or any file cannot be read.
    """
    registry = _registry()
    valid = invalid = unreadable = 0
    for path in files:
        for item in read_entities(path):
            if item.problem is not None:
                unreadable += 1
                out.print(f"{item.where}: {item.problem}")
                continue
            if registry.is_valid(item.entity):
                valid += 1
                continue
            invalid += 1
            label = item.entity.get("id", "(no id)")
            for issue in registry.explain(item.entity):
                out.print(f"{item.where}: {label}: {issue.pointer or '/'}: {issue.message} [{issue.keyword}]")
    summary = f"{valid + invalid} entities: {valid} valid, {invalid} invalid"
    if unreadable:
        summary += f"; {unreadable} unreadable"
    out.print(summary)
    if invalid or unreadable:
        raise typer.Exit(1)


@app.command()
def compat(
    old: Annotated[str, typer.Argument(help="Type@version (ServiceRequest@1.0.0) or a schema file.")],
    new: Annotated[str, typer.Argument(help="Type@version, a type (its latest version) or a schema file.")],
) -> None:
    """Is NEW a compatible successor of OLD? Lists every change; exits 1 when any breaks compatibility."""
    registry = _registry()
    report = check_compatibility(_document(registry, old), _document(registry, new))
    for change in report.changes:
        mark = "BREAKING" if change.breaking else "ok"
        out.print(f"{mark:8} {change.pointer or '/'}: {change.message}")
    verdict = "compatible" if report.compatible else "NOT compatible"
    out.print(f"{report.new_version} is {verdict} with {report.old_version}")
    if not report.compatible:
        raise typer.Exit(1)


def _document(registry: SchemaRegistry, ref: str) -> dict[str, Any]:
    path = Path(ref)
    if path.suffix == ".json" or path.exists():
        try:
            source = orjson.loads(path.read_bytes())
        except (OSError, orjson.JSONDecodeError) as exc:
            raise CliError(f"{path}: cannot read a schema: {exc}") from exc
        if not isinstance(source, dict):
            raise CliError(f"{path}: a schema is a JSON object")
        try:
            document, defs = inline_refs(source, registry.shared, "#/$defs/")
        except SchemaError as exc:
            raise CliError(f"{path}: {exc}") from exc
        document.setdefault("$defs", {}).update(defs)
        return document
    name, _, version = ref.partition("@")
    try:
        return registry.get(name, version or None).document
    except SchemaError as exc:
        raise CliError(str(exc)) from exc
