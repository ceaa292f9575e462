"""``qala catalogue``: API tokens, harvest and push, and a standalone catalogue server.

qala catalogue token create "city-portal"        # prints the token once; only its hash is stored
qala catalogue harvest https://data.example.kz   # import datasets from a CKAN-compatible catalogue
qala catalogue push https://ckan.example.kz --token T
qala catalogue serve --examples --port 8100      # a catalogue alone, with the bundled example entities
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Callable
from importlib.resources import files
from typing import TypeVar

import typer
import uvicorn

from catalogue.app import create_app
from catalogue.errors import CatalogueError
from catalogue.harvest import Report, harvest, push
from catalogue.service import Catalogue, CatalogueSettings
from catalogue.source import MemorySource
from gateway.db import make_engine
from qala.cli import CliError
from qala.home import Home, missing_database, no_hub_message, resolve_home
from schemas.registry import SchemaRegistry

T = TypeVar("T")
app = typer.Typer(help="Open-data catalogue: API tokens, harvest, push, serve.", no_args_is_help=True)
token_app = typer.Typer(help="API tokens for the catalogue's write actions.", no_args_is_help=True)
app.add_typer(token_app, name="token")
DatabaseOption = typer.Option(None, "--database-url", help="Database URL (default: QALA_DATABASE_URL).")


def _database_url(value: str | None) -> str:
    """``--database-url``, else ``QALA_DATABASE_URL``, else the home's database (see :mod:`qala.home`)."""
    home = Home(resolve_home())
    return value or os.environ.get("QALA_DATABASE_URL") or home.read_env().get("QALA_DATABASE_URL") or home.database_url


def _settings() -> CatalogueSettings:
    return CatalogueSettings(site_url=os.environ.get("QALA_CATALOGUE_SITE_URL", "http://127.0.0.1:8000"))


def _run(database_url: str | None, work: Callable[[Catalogue], Awaitable[T]], *, existing: bool = True) -> T:
    """Run ``work`` on the catalogue; ``existing`` (the default) refuses a SQLite file that is not there."""
    url = _database_url(database_url)
    missing = missing_database(url) if existing else None
    if missing is not None:
        raise CliError(no_hub_message(resolve_home(), missing))

    async def main() -> T:
        engine = make_engine(url)
        catalogue = Catalogue(engine, MemorySource(), SchemaRegistry.load(), _settings(), create_tables=True)
        try:
            await catalogue.prepare()
            return await work(catalogue)
        finally:
            await engine.dispose()

    try:
        return asyncio.run(main())
    except CatalogueError as exc:
        raise CliError(exc.message, 1) from exc
    except OSError as exc:
        raise CliError(f"database unavailable: {exc}", 1) from exc


@token_app.command("create")
def token_create(
    name: str = typer.Argument(..., help="Who holds the token."), database_url: str | None = DatabaseOption
) -> None:
    """Create an API token and print it (it cannot be shown again)."""
    typer.echo(_run(database_url, lambda c: c.store.create_token(name), existing=False))


@token_app.command("list")
def token_list(database_url: str | None = DatabaseOption) -> None:
    """List tokens (names and ids, never the secrets)."""
    for token in _run(database_url, lambda c: c.store.tokens()):
        typer.echo(f"{token['id']}  {token['name']}  {token['created']}{'  revoked' if token['revoked'] else ''}")


@token_app.command("revoke")
def token_revoke(token_id: str, database_url: str | None = DatabaseOption) -> None:
    """Revoke a token by its id (see ``token list``)."""
    if not _run(database_url, lambda c: c.store.revoke_token(token_id)):
        raise CliError(f"no token with id {token_id}", 2)
    typer.echo(f"revoked {token_id}")


def _print(report: Report) -> None:
    for name, reason in report.failed.items():
        typer.echo(f"failed: {name}: {reason}", err=True)
    typer.echo(report.summary())


@app.command("harvest")
def harvest_command(
    url: str = typer.Argument(..., help="Base URL of a CKAN-compatible catalogue."),
    database_url: str | None = DatabaseOption,
) -> None:
    """Import the dataset metadata of a CKAN-compatible catalogue."""
    report = _run(
        database_url, lambda c: harvest(c, url, progress=lambda n: typer.echo(f"  {n}", err=True)), existing=False
    )
    _print(report)


@app.command("push")
def push_command(
    url: str = typer.Argument(..., help="Base URL of a CKAN-compatible catalogue."),
    token: str = typer.Option(..., "--token", help="API token on the remote catalogue."),
    database_url: str | None = DatabaseOption,
) -> None:
    """Publish our datasets to a CKAN-compatible catalogue."""
    report = _run(database_url, lambda c: push(c, url, token, progress=lambda n: typer.echo(f"  {n}", err=True)))
    _print(report)
    if report.failed:
        raise typer.Exit(1)


def example_source(registry: SchemaRegistry) -> MemorySource:
    """A source holding every bundled example entity of every canonical type."""
    source = MemorySource()
    models = files("schemas").joinpath("models")
    for version in registry.latest():
        folder = models.joinpath(version.type_name, "examples")
        for item in sorted(folder.iterdir(), key=lambda p: p.name) if folder.is_dir() else []:
            if item.name.endswith(".json"):
                entity = json.loads(item.read_text(encoding="utf-8"))
                source.add(entity, collection=version.collection, publisher=str(entity.get("source", "")))
    return source


@app.command("serve")
def serve(
    host: str = typer.Option("127.0.0.1"),
    port: int = typer.Option(8100),
    database_url: str | None = DatabaseOption,
    examples: bool = typer.Option(False, "--examples", help="Serve the bundled example entities live."),
) -> None:
    """Run a catalogue alone (the hub mounts the same routers)."""
    registry = SchemaRegistry.load()
    source = example_source(registry) if examples else MemorySource()
    settings = CatalogueSettings(site_url=os.environ.get("QALA_CATALOGUE_SITE_URL", f"http://{host}:{port}"))
    uvicorn.run(
        create_app(make_engine(_database_url(database_url)), source, registry, settings),
        host=host,
        port=port,
        log_level="warning",
    )
