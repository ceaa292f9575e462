"""``qala status``: where the hub's home is and what it holds; the first thing an operator types.

    $ qala status
    home        /home/me/.local/share/qala  (settings qala.env: QALA_ENV=demo)
    running     yes (pid 4242 holds the home's lock)
    database    sqlite:////home/me/.local/share/qala/qala.db  (1.9 MB)
    issuer      http://127.0.0.1:8000  (env demo)
    ...

It reads state only: a home with no database is refused in one line, as by every other reading command.
"""

from __future__ import annotations

import fcntl
import os
from dataclasses import dataclass, field

import sqlalchemy as sa
import typer

from gateway.audit import audit_log
from gateway.cli import load_settings, require_hub, run
from gateway.clients import clients, members
from gateway.routes.modules import certified_modules
from gateway.services import Services
from gateway.store.tables import entities
from qala.home import LOCK_FILE, Home


@dataclass
class Counts:
    members: int = 0
    clients: int = 0
    modules: int = 0
    entities: dict[str, int] = field(default_factory=dict)
    audit_records: int = 0
    audit_head: tuple[int, str] = (0, "")
    audit_at: str | None = None
    keys: list[str] = field(default_factory=list)


def lock_holder(home: Home) -> str | None:
    """The pid written by the process holding the home's lock, or None when no hub runs on it."""
    path = home.path / LOCK_FILE
    if not path.is_file():
        return None
    descriptor = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return os.read(descriptor, 32).decode(errors="replace").strip() or "?"
    finally:
        os.close(descriptor)  # releases the shared lock if we took it
    return None


async def _counts(services: Services) -> Counts:
    counts = Counts()
    async with services.engine.connect() as conn:

        async def number(table: sa.Table) -> int:
            return int((await conn.execute(sa.select(sa.func.count()).select_from(table))).scalar_one())

        counts.members, counts.clients, counts.modules = (
            await number(members),
            await number(clients),
            await number(certified_modules),
        )
        counts.audit_records = await number(audit_log)
        query = (
            sa.select(entities.c.collection, sa.func.count())
            .where(sa.not_(entities.c.deleted))
            .group_by(entities.c.collection)
            .order_by(entities.c.collection)
        )
        counts.entities = {str(name): int(n) for name, n in (await conn.execute(query)).all()}
    counts.audit_head = await services.audit.head()
    last = await services.audit.last(1)
    counts.audit_at = str(last[0]["at"]) if last else None
    now = services.keys.clock()
    published = {key.kid for key in services.keys.published()}
    for key in services.keys.all_keys():
        state = key.describe(now)["state"]
        shown = ", published" if key.kid in published else ""
        counts.keys.append(f"{key.purpose} {key.kid[:12]}... ({state}{shown})")
    return counts


def status() -> None:
    """Where the hub's home is and what it holds: database, keys, issuer, counts, last audit head."""
    settings = load_settings()
    home = Home(settings.home)
    configured = home.read_env()
    described = ", ".join(f"{key}={value}" for key, value in configured.items()) or "none"
    typer.echo(f"home        {home.path}  (settings {home.env_file.name}: {described})")
    holder = lock_holder(home)
    typer.echo(f"running     {'yes (pid ' + holder + ' holds the home lock)' if holder else 'no hub holds the home'}")
    require_hub(settings)
    size = f"  ({home.database.stat().st_size / 1e6:.1f} MB)" if settings.database_url == home.database_url else ""
    typer.echo(f"database    {settings.database_url}{size}")
    typer.echo(f"issuer      {settings.issuer}  (env {settings.env}; JWKS {settings.issuer}/oauth/jwks)")
    suite_key = home.conformance / "issuer-key.json"
    typer.echo(f"suite key   {suite_key if suite_key.is_file() else 'none yet (made by the first conformance run)'}")
    counts = run(None, _counts)
    for line in counts.keys:
        typer.echo(f"key         {line}")
    typer.echo(f"members     {counts.members}")
    typer.echo(f"clients     {counts.clients}")
    typer.echo(f"modules     {counts.modules} certified")
    total = sum(counts.entities.values())
    detail = ", ".join(f"{name} {n}" for name, n in counts.entities.items())
    typer.echo(f"entities    {total}{'  (' + detail + ')' if detail else ''}")
    seq, digest = counts.audit_head
    typer.echo(
        f"audit head  record {seq} {digest[:16]}... at {counts.audit_at or '-'} ({counts.audit_records} records)"
    )
