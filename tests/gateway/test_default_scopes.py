"""Default scopes (RFC 6749 section 3.3): what a token request without ``scope`` is granted, set per client.

Tokens are fetched by a real OAuth client (Authlib) from the app in process, on SQLite and PostgreSQL; the
settings are changed through the admin API, the CLI and the directory, as an operator would.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory
from authlib.integrations.base_client import OAuthError
from authlib.integrations.httpx_client import AsyncOAuth2Client
from fastapi import FastAPI

from gateway.app import create_app
from gateway.clients import clients, members
from gateway.db import make_engine
from gateway.migrate import alembic_config, downgrade, upgrade
from gateway.services import Services
from gateway.settings import Settings
from tests.gateway.conftest import ISSUER, MEMBER_BIN, Registered
from tests.gateway.test_admin import admin_headers
from tests.gateway.test_cli import Outcome, field, qala
from tests.gateway.test_errors import assert_problem

__all__ = ["qala"]  # the fixture

TOKEN_URL = f"{ISSUER}/oauth/token"
READ, WRITE = "service-requests:read", "service-requests:write"
REVISION = "0002_i20_default_scopes"


async def fetch(
    app: FastAPI, who: Registered | tuple[str, str], scope: str | None = None
) -> tuple[dict[str, Any], list[str]]:
    """A token from Authlib's client (``scope`` sent only when given) and the scopes ``whoami`` sees with it."""
    client_id, secret = (who.client_id, who.secret) if isinstance(who, Registered) else who
    async with AsyncOAuth2Client(client_id, secret, transport=httpx.ASGITransport(app=app), base_url=ISSUER) as client:
        extra = {} if scope is None else {"scope": scope}
        token = await client.fetch_token(TOKEN_URL, grant_type="client_credentials", **extra)
        whoami = await client.get("/api/v1/whoami")
    assert whoami.status_code == 200, whoami.text
    return dict(token), whoami.json()["scopes"]


async def refused(app: FastAPI, who: Registered | tuple[str, str], scope: str | None = None) -> OAuthError:
    with pytest.raises(OAuthError) as raised:
        await fetch(app, who, scope)
    return raised.value


async def test_without_a_default_a_request_without_scope_gets_every_scope(app: FastAPI, register: Any) -> None:
    who = await register(scopes=[READ, WRITE])
    assert who.client.default_scopes is None
    token, seen = await fetch(app, who)
    assert token["scope"] == f"{READ} {WRITE}"
    assert seen == [READ, WRITE]


async def test_the_default_is_granted_when_scope_is_absent_and_an_explicit_scope_still_works(
    app: FastAPI, register: Any, services: Services
) -> None:
    who = await register(scopes=[READ, WRITE])
    await services.directory.set_default_scopes(who.client_id, [READ])
    token, seen = await fetch(app, who)
    assert token["scope"] == READ
    assert seen == [READ]
    token, seen = await fetch(app, who, scope=WRITE)  # beyond the default, within the client's scopes
    assert token["scope"] == WRITE
    assert seen == [WRITE]
    token, _ = await fetch(app, who, scope=f"{READ} {WRITE}")
    assert token["scope"] == f"{READ} {WRITE}"
    error = await refused(app, who, scope="admin")
    assert error.error == "invalid_scope"

    await services.directory.set_default_scopes(who.client_id, None)  # back to every scope
    token, _ = await fetch(app, who)
    assert token["scope"] == f"{READ} {WRITE}"


async def test_an_empty_default_makes_the_client_name_its_scopes(
    app: FastAPI, http: httpx.AsyncClient, register: Any, services: Services
) -> None:
    who = await register(scopes=[READ, WRITE])
    await services.directory.set_default_scopes(who.client_id, [])
    error = await refused(app, who)
    assert error.error == "invalid_scope"
    assert error.description is not None
    assert "name the scopes" in error.description
    blank = await http.post(
        "/oauth/token", data={"grant_type": "client_credentials", "scope": " "}, auth=(who.client_id, who.secret or "")
    )
    assert blank.status_code == 400
    assert blank.json()["error"] == "invalid_scope", "a blank scope is no scope"
    token, _ = await fetch(app, who, scope=READ)
    assert token["scope"] == READ


async def test_scopes_narrowed_afterwards_cut_the_default_down_to_what_the_client_holds(
    app: FastAPI, register: Any, services: Services
) -> None:
    who = await register(scopes=[READ, WRITE])
    await services.directory.set_default_scopes(who.client_id, [READ, WRITE])
    # No command narrows a client's scopes yet; the documented rule must hold whatever does it later.
    async with services.engine.begin() as conn:
        await conn.execute(clients.update().where(clients.c.client_id == who.client_id).values(scopes=[WRITE]))
    token, _ = await fetch(app, who)
    assert token["scope"] == WRITE
    async with services.engine.begin() as conn:
        await conn.execute(clients.update().where(clients.c.client_id == who.client_id).values(scopes=["admin"]))
    error = await refused(app, who)
    assert error.error == "invalid_scope", "nothing of the default is left: refuse, never widen"


async def test_admin_api_sets_default_scopes_at_creation_and_afterwards(
    app: FastAPI, http: httpx.AsyncClient, register: Any
) -> None:
    auth = await admin_headers(http, register)
    body = {"member": MEMBER_BIN, "name": "bus depot", "scopes": [READ, WRITE], "cities": ["astana"]}
    created = await http.post("/api/v1/admin/clients", json={**body, "defaultScopes": [READ]}, headers=auth)
    assert created.status_code == 201, created.text
    assert created.json()["defaultScopes"] == [READ]
    client_id, secret = created.json()["clientId"], created.json()["clientSecret"]
    who = (client_id, secret)
    token, _ = await fetch(app, who)
    assert token["scope"] == READ

    url = f"/api/v1/admin/clients/{client_id}"
    changed = await http.patch(url, json={"defaultScopes": [WRITE]}, headers=auth)
    assert changed.status_code == 200, changed.text
    assert changed.json()["defaultScopes"] == [WRITE]
    assert changed.json()["readCities"] is None, "a key left out is kept"
    assert (await http.get(url, headers=auth)).json()["defaultScopes"] == [WRITE]
    token, _ = await fetch(app, who)
    assert token["scope"] == WRITE

    narrowed = await http.patch(url, json={"readCities": ["astana"]}, headers=auth)
    assert narrowed.json()["readCities"] == ["astana"]
    assert narrowed.json()["defaultScopes"] == [WRITE], "a key left out is kept"
    unset = await http.patch(url, json={"defaultScopes": None}, headers=auth)
    assert unset.json()["defaultScopes"] is None
    assert unset.json()["readCities"] == ["astana"]
    token, _ = await fetch(app, who)
    assert token["scope"] == f"{READ} {WRITE}"
    listed = (await http.get("/api/v1/admin/clients", headers=auth)).json()
    assert next(c for c in listed if c["clientId"] == client_id)["defaultScopes"] is None


async def test_admin_api_refuses_a_default_outside_the_clients_scopes(
    app: FastAPI, http: httpx.AsyncClient, register: Any, services: Services
) -> None:
    auth = await admin_headers(http, register)
    body = {"member": MEMBER_BIN, "name": "bus depot", "scopes": [READ], "cities": ["astana"]}
    refused_create = await http.post(
        "/api/v1/admin/clients", json={**body, "defaultScopes": [READ, WRITE]}, headers=auth
    )
    problem = assert_problem(refused_create, 422, "validation-failed")
    assert problem["errors"] == [
        {
            "pointer": "/defaultScopes",
            "keyword": "enum",
            "message": f"default scopes must be among the client's scopes; not held: {WRITE} (holds: {READ})",
        }
    ]
    assert [c.name for c in await services.directory.list_clients(MEMBER_BIN)].count("bus depot") == 0

    created = await http.post("/api/v1/admin/clients", json=body, headers=auth)
    url = f"/api/v1/admin/clients/{created.json()['clientId']}"
    outside = await http.patch(url, json={"defaultScopes": ["admin"]}, headers=auth)
    assert assert_problem(outside, 422, "validation-failed")["errors"][0]["pointer"] == "/defaultScopes"
    both = await http.patch(url, json={"defaultScopes": [READ], "readCities": ["gotham"]}, headers=auth)
    assert assert_problem(both, 422, "validation-failed")["errors"][0]["pointer"] == "/readCities"
    assert (await http.get(url, headers=auth)).json()["defaultScopes"] is None, "nothing is written when any fails"
    empty = await http.patch(url, json={}, headers=auth)
    assert assert_problem(empty, 422, "validation-failed")["errors"][0]["keyword"] == "minProperties"
    snake = await http.patch(url, json={"default_scopes": [READ]}, headers=auth)
    assert_problem(snake, 422, "validation-failed")
    missing = await http.patch("/api/v1/admin/clients/qc_nobody", json={"defaultScopes": None}, headers=auth)
    assert_problem(missing, 404, "not-found")
    reader = await register(scopes=[READ])
    token, _ = await fetch(app, reader)
    not_admin = await http.patch(
        url, json={"defaultScopes": []}, headers={"Authorization": f"Bearer {token['access_token']}"}
    )
    assert_problem(not_admin, 403, "insufficient-scope")


def test_cli_sets_lists_and_refuses_default_scopes(qala: Callable[..., Outcome], database_url: str) -> None:
    assert qala("members", "create", "--name", "Astana Akimat", "--bin", MEMBER_BIN, "--city", "astana").code == 0
    made = qala(
        "clients", "create", "--member", MEMBER_BIN, "--name", "311", "--scope", READ, "--scope", WRITE,
        "--city", "astana", "--default-scope", READ,
    )  # fmt: skip
    assert made.code == 0, made.err
    client_id = field(r"client_id:\s+(\S+)", made.out)
    secret = field(r"client_secret:\s+(\S+)", made.out)
    assert f"default-scopes={READ}" in qala("clients", "list").out
    assert scope_without_request(database_url, client_id, secret) == READ

    done = qala("clients", "default-scopes", client_id, "--default-scope", WRITE)
    assert (done.code, done.out.strip()) == (0, f"client {client_id} gets without a scope: {WRITE}")
    assert scope_without_request(database_url, client_id, secret) == WRITE
    none = qala("clients", "default-scopes", client_id, "--none")
    assert none.out.strip().endswith("none (requests must name their scopes)")
    assert "default-scopes=none" in qala("clients", "list").out
    assert scope_without_request(database_url, client_id, secret) == "invalid_scope"
    every = qala("clients", "default-scopes", client_id, "--all")
    assert every.out.strip().endswith("all (every scope it holds)")
    assert "default-scopes" not in qala("clients", "list").out, "unset, like read-cities"
    assert scope_without_request(database_url, client_id, secret) == f"{READ} {WRITE}"

    failures = {
        ("clients", "default-scopes", client_id, "--default-scope", "admin"): "not held: admin",
        ("clients", "default-scopes", client_id): "give either --default-scope (one or more), --all or --none",
        ("clients", "default-scopes", client_id, "--all", "--none"): "give either",
        ("clients", "default-scopes", client_id, "--all", "--default-scope", READ): "give either",
        ("clients", "default-scopes", "qc_nobody", "--all"): "no client 'qc_nobody'",
        (
            "clients", "create", "--member", MEMBER_BIN, "--name", "x", "--scope", READ, "--city", "astana",
            "--default-scope", WRITE,
        ): f"not held: {WRITE} (holds: {READ})",
    }  # fmt: skip
    for args, message in failures.items():
        outcome = qala(*args)
        assert outcome.code == 2, args
        assert outcome.err.startswith("qala: error: "), outcome.err
        assert message in outcome.err, (args, outcome.err)
        assert outcome.err.count("\n") == 1, outcome.err
    assert qala("clients", "list").out.count(MEMBER_BIN) == 1, "the refused client was not created"
    actions = [line.split()[2] for line in qala("audit", "tail", "-n", "50").out.splitlines()]
    assert [action for action in actions if action.startswith("client.")] == ["client.created"] + [
        "client.default-scopes"
    ] * 3


def scope_without_request(database_url: str, client_id: str, secret: str) -> str:
    """What a hub on this database grants the client when its token request names no scope (or the error)."""

    async def ask() -> str:
        app = create_app(Settings(database_url=database_url, issuer=ISSUER))
        async with app.router.lifespan_context(app):
            try:
                token, _ = await fetch(app, (client_id, secret))
            except OAuthError as exc:
                return str(exc.error)
            return str(token["scope"])

    return asyncio.run(ask())


async def test_the_migration_keeps_existing_clients_as_they_were(database_url: str) -> None:
    """Clients registered before the column existed get every scope, as before; downgrading drops the column."""
    before = ScriptDirectory.from_config(alembic_config()).get_revision(REVISION).down_revision
    assert isinstance(before, str)
    engine = make_engine(database_url)
    try:
        await upgrade(engine, before)
        async with engine.begin() as conn:  # only the columns the schema had before
            await conn.execute(members.insert().values(bin=MEMBER_BIN, name="Akimat", home_city="astana", created_at=0))
            old = {"client_id": "qc_old", "member": MEMBER_BIN, "name": "old", "scopes": [READ, WRITE]}
            await conn.execute(clients.insert().values(**old, cities=["astana"], created_at=0))
        await upgrade(engine)
        async with engine.connect() as conn:
            row = (await conn.execute(sa.select(clients).where(clients.c.client_id == "qc_old"))).one()
        assert row.default_scopes is None
        await downgrade(engine, before)
        async with engine.connect() as conn:
            columns = await conn.run_sync(lambda sync: {c["name"] for c in sa.inspect(sync).get_columns("clients")})
        assert "default_scopes" not in columns
        assert "read_cities" in columns
    finally:
        await engine.dispose()


async def test_the_token_endpoint_documents_the_default(http: httpx.AsyncClient) -> None:
    document = (await http.get("/openapi.json")).json()
    description = document["paths"]["/oauth/token"]["post"]["description"]
    assert "default scopes" in description
    assert "RFC 6749 section 3.3" in description
    schemas = document["components"]["schemas"]
    assert "defaultScopes" in schemas["ClientIn"]["properties"]
    assert "defaultScopes" in schemas["ClientPatch"]["properties"]
