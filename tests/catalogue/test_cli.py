"""``qala catalogue``: tokens are created once, listed without secrets, revoked; failures are one line."""

from __future__ import annotations

import asyncio
from pathlib import Path

from typer.testing import CliRunner

from catalogue.cli import app
from catalogue.service import Catalogue
from catalogue.source import MemorySource
from gateway.db import make_engine
from schemas.registry import SchemaRegistry


async def _holder(database_url: str, token: str) -> str | None:
    engine = make_engine(database_url)
    try:
        return await Catalogue(engine, MemorySource(), SchemaRegistry.load()).store.token_name(token)
    finally:
        await engine.dispose()


def test_token_create_list_revoke(database_url: str) -> None:
    runner = CliRunner()
    created = runner.invoke(app, ["token", "create", "city-portal", "--database-url", database_url])
    assert created.exit_code == 0, created.output
    token = created.output.strip()
    assert token.startswith("qala_")
    assert asyncio.run(_holder(database_url, token)) == "city-portal"
    listed = runner.invoke(app, ["token", "list", "--database-url", database_url])
    assert "city-portal" in listed.output
    assert token not in listed.output
    token_id = listed.output.split()[0]
    assert runner.invoke(app, ["token", "revoke", token_id, "--database-url", database_url]).exit_code == 0
    assert asyncio.run(_holder(database_url, token)) is None
    assert "revoked" in runner.invoke(app, ["token", "list", "--database-url", database_url]).output


def test_revoking_an_unknown_token_is_a_one_line_error(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/c.db"
    assert CliRunner().invoke(app, ["token", "create", "someone", "--database-url", url]).exit_code == 0
    result = CliRunner().invoke(app, ["token", "revoke", "nope", "--database-url", url])
    assert result.exit_code == 2
    assert result.output.strip() == "qala: error: no token with id nope"
