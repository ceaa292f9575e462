"""``qala serve``, ``qala members``, ``qala clients``, ``qala keys`` and ``qala audit``.

Every command works on the hub of the home (``--home`` / ``QALA_HOME``, see :mod:`qala.home`): its database,
unless ``QALA_DATABASE_URL`` (or ``--database-url``) names another, and the same ``QALA_SECRET_KEY`` as the
server, since client-secret digests and signing keys depend on it. Commands that only read or change existing
state refuse a home with no database instead of creating an empty one.

    qala members create --name "Astana Akimat" --bin 970240001223 --city astana
    qala clients create --member 970240001223 --name "311" --scope service-requests:write --city astana
    qala audit verify
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import httpx
import typer
from pydantic import ValidationError

from gateway.audit import AuditRecord
from gateway.audit_verify import verify_log
from gateway.clients import Client
from gateway.errors import GatewayError
from gateway.services import Services, open_services
from gateway.settings import Settings
from gateway.treehead import HeadInvalid
from gateway.witness import WitnessAlarm, WitnessError, WitnessState, load_head, witness
from qala.cli import CliError, err
from qala.home import Home, HomeBusy, missing_database, no_hub_message
from qala.ports import check_port

T = TypeVar("T")
DatabaseOption = typer.Option(None, "--database-url", help="Database URL (default: QALA_DATABASE_URL).")


def load_settings(database_url: str | None = None) -> Settings:
    """Settings from the environment, with one readable line instead of a validation dump."""
    try:
        return Settings(database_url=database_url) if database_url else Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise CliError(f"invalid settings{' (' + where + ')' if where else ''}: {first['msg']}") from exc


def require_hub(settings: Settings) -> None:
    """Refuse a SQLite database that does not exist: opening it would create an empty hub and report on nothing."""
    missing = missing_database(settings.database_url)
    if missing is not None:
        raise CliError(no_hub_message(settings.home, missing))


def run(database_url: str | None, work: Callable[[Services], Awaitable[T]], *, existing: bool = True) -> T:
    """Open the services for one command, run ``work``, and turn gateway errors into one-line CLI errors.

    ``existing`` (the default) refuses a hub whose database is missing; commands that create state pass False.
    """
    settings = load_settings(database_url)
    if existing:
        require_hub(settings)

    async def main() -> T:
        async with open_services(settings) as services:
            return await work(services)

    try:
        return asyncio.run(main())
    except GatewayError as exc:
        raise CliError(exc.detail) from exc
    except OSError as exc:
        raise CliError(f"cannot reach the database: {exc}") from exc


async def _cli_audit(services: Services, action: str, **fields: Any) -> None:
    fields.setdefault("detail", {"via": "cli"})
    await services.audit.append(AuditRecord(action=action, outcome="ok", **fields))


def serve(
    *,
    host: str = typer.Option("127.0.0.1", help="Interface to bind."),
    port: int = typer.Option(8000, help="Port to listen on."),
    workers: int = typer.Option(1, min=1, help="Worker processes (share the database, and Redis when set)."),
    reload: bool = typer.Option(False, help="Restart on code changes (development)."),
    access_log: bool = typer.Option(
        True, help="Log a line per request on stdout (uvicorn's access log); off saves CPU behind a proxy that logs."
    ),
    graceful_seconds: int = typer.Option(
        20,
        min=0,
        help="On SIGTERM or Ctrl+C, how long requests still running may take before they are cancelled and the hub "
        "stops (event streams end at once).",
    ),
    database_url: str | None = DatabaseOption,
) -> None:
    """Run the hub's HTTP service (uvicorn; every worker builds its app from QALA_* settings)."""
    import uvicorn  # noqa: PLC0415 -- only this command needs the server

    from qala.workers import run_hub  # noqa: PLC0415 -- as uvicorn

    if database_url:
        os.environ["QALA_DATABASE_URL"] = database_url  # workers are new processes: pass it on through the env
    settings = load_settings()  # refuse bad settings here, in one line, before any worker starts
    check_port(host, port)
    home = Home(settings.home)
    # The home's lock is held for the server's life, so that `qala demo` never resets a home a hub runs on.
    lock = home.lock() if settings.database_url == home.database_url else contextlib.nullcontext()
    try:
        with lock:
            config = uvicorn.Config(
                "gateway.app:app_from_environment",
                factory=True,
                workers=None if reload else workers,
                reload=reload,
                host=host,
                port=port,
                proxy_headers=True,
                access_log=access_log,
                # Else one client that stops halfway through sending a request holds the stop up for ever.
                timeout_graceful_shutdown=graceful_seconds,
            )
            if not run_hub(config):  # qala.workers: a socket per worker on Linux; event streams end on stop
                raise CliError(f"the hub could not start on {host}:{port} (its reason is in the log above)")
    except HomeBusy as exc:
        raise CliError(str(exc)) from exc


members_app = typer.Typer(help="Member organisations (identified by BIN).", no_args_is_help=True)
clients_app = typer.Typer(help="OAuth clients: the city systems that call the hub.", no_args_is_help=True)
keys_app = typer.Typer(help="The hub's signing keys.", no_args_is_help=True)
audit_app = typer.Typer(help="The audit log: a hash chain under signed Merkle tree heads.", no_args_is_help=True)


@members_app.command("create")
def create_member(
    name: str = typer.Option(..., help="Organisation name."),
    bin: str = typer.Option(..., "--bin", help="12-digit BIN."),
    city: str = typer.Option(..., help="Home city code, e.g. astana."),
    database_url: str | None = DatabaseOption,
) -> None:
    """Register a member organisation."""

    async def work(services: Services) -> None:
        member = await services.directory.create_member(name=name, bin=bin, home_city=city)
        await _cli_audit(services, "member.created", member=member.bin)
        typer.echo(f"member {member.bin} created: {member.name} ({member.home_city})")

    run(database_url, work, existing=False)


@members_app.command("list")
def list_members(database_url: str | None = DatabaseOption) -> None:
    """List member organisations."""

    async def work(services: Services) -> None:
        for member in await services.directory.list_members():
            typer.echo(f"{member.bin}  {member.home_city:<12} {member.name}")

    run(database_url, work)


@clients_app.command("create")
def create_client(
    *,
    member: str = typer.Option(..., help="BIN of the member organisation."),
    name: str = typer.Option(..., help="Name of the system."),
    scope: Annotated[list[str], typer.Option("--scope", help="A scope; repeat for several.")],
    city: Annotated[list[str], typer.Option("--city", help="A city the client may touch ('*' for all); repeatable.")],
    jwks: Annotated[Path | None, typer.Option(help="JSON file with the client's public JWK Set.")] = None,
    secret: bool = typer.Option(True, help="Issue a client secret (--no-secret for private_key_jwt only)."),
    read_city: Annotated[
        list[str] | None,
        typer.Option("--read-city", help="Narrow reads to this city (default: public fields of all); repeatable."),
    ] = None,
    default_scope: Annotated[
        list[str] | None,
        typer.Option(
            "--default-scope",
            help="Granted when a token request names no scope (default: every --scope); one of --scope, repeatable.",
        ),
    ] = None,
    database_url: str | None = DatabaseOption,
) -> None:
    """Register a client; its secret is printed once and never again."""
    key_set: dict[str, Any] | None = None
    if jwks is not None:
        try:
            key_set = json.loads(jwks.read_text())
        except (OSError, ValueError) as exc:
            raise CliError(f"cannot read a JWK Set from {jwks}: {exc}") from exc

    async def work(services: Services) -> None:
        client, client_secret = await services.directory.create_client(
            member=member,
            name=name,
            scopes=scope,
            cities=city,
            jwks=key_set,
            with_secret=secret,
            read_cities=read_city or None,
            default_scopes=default_scope or None,
        )
        await _cli_audit(services, "client.created", client_id=client.client_id, member=member)
        typer.echo(f"client_id:     {client.client_id}")
        if client_secret:
            typer.echo(f"client_secret: {client_secret}")
            typer.echo("Store the secret now: it is not shown again (rotate it with `qala clients rotate-secret`).")

    run(database_url, work, existing=False)


@clients_app.command("list")
def list_clients(
    member: str | None = typer.Option(None, help="Only this member's clients."),
    database_url: str | None = DatabaseOption,
) -> None:
    """List clients with their scopes, cities and state."""

    async def work(services: Services) -> None:
        for client in await services.directory.list_clients(member):
            state = "enabled" if client.enabled else "DISABLED"
            typer.echo(
                f"{client.client_id}  {state:<8}  {client.member}  {client.name}  "
                f"scopes={','.join(client.scopes)}  cities={','.join(client.cities)}"
                + (f"  read-cities={','.join(client.read_cities)}" if client.read_cities is not None else "")
                + (f"  default-scopes={_default_scopes(client)}" if client.default_scopes is not None else "")
            )

    run(database_url, work)


def _default_scopes(client: Client) -> str:
    if client.default_scopes is None:
        return "all (every scope it holds)"
    return ",".join(client.default_scopes) or "none (requests must name their scopes)"


@clients_app.command("rotate-secret")
def rotate_secret(client_id: str, database_url: str | None = DatabaseOption) -> None:
    """Replace a client's secret (the old one and its tokens stop working) and print the new one."""

    async def work(services: Services) -> None:
        new_secret = await services.directory.rotate_secret(client_id)
        await _cli_audit(services, "client.secret-rotated", client_id=client_id)
        typer.echo(f"client_secret: {new_secret}")

    run(database_url, work)


@clients_app.command("revoke-tokens")
def revoke_client_tokens(client_id: str, database_url: str | None = DatabaseOption) -> None:
    """Revoke every token issued to a client so far (new ones work); every worker refuses them within
    QALA_REVOCATION_POLL_SECONDS."""

    async def work(services: Services) -> None:
        epoch = await services.directory.revoke_tokens(client_id)
        await _cli_audit(services, "client.tokens-revoked", client_id=client_id)
        typer.echo(f"every token of {client_id} issued so far is revoked (token epoch {epoch})")

    run(database_url, work)


@clients_app.command("revoke-token")
def revoke_token(
    jti: str = typer.Argument(
        ..., help="The token's jti (in the audit record of its token.issued); after -- when it starts with '-'."
    ),
    database_url: str | None = DatabaseOption,
) -> None:
    """Revoke one access token by its jti."""

    async def work(services: Services) -> None:
        settings = services.settings
        expires_at = services.revocations.clock() + settings.access_token_ttl + settings.clock_leeway
        await services.revocations.revoke(jti=jti, client_id="", expires_at=expires_at)
        await _cli_audit(services, "token.revoked", detail={"via": "cli", "jti": jti})
        typer.echo(f"token {jti} revoked")

    run(database_url, work)


@clients_app.command("disable")
def disable_client(client_id: str, database_url: str | None = DatabaseOption) -> None:
    """Stop a client from getting tokens and revoke every token it holds."""

    async def work(services: Services) -> None:
        await services.directory.set_enabled(client_id, False)
        await _cli_audit(services, "client.disabled", client_id=client_id)
        typer.echo(f"client {client_id} disabled")

    run(database_url, work)


@clients_app.command("enable")
def enable_client(client_id: str, database_url: str | None = DatabaseOption) -> None:
    """Allow a disabled client to get tokens again."""

    async def work(services: Services) -> None:
        await services.directory.set_enabled(client_id, True)
        await _cli_audit(services, "client.enabled", client_id=client_id)
        typer.echo(f"client {client_id} enabled")

    run(database_url, work)


@keys_app.command("list")
def list_keys(database_url: str | None = DatabaseOption) -> None:
    """List signing keys: purpose, state (pending, active, retired) and whether the JWKS publishes them."""

    async def work(services: Services) -> None:
        now = services.keys.clock()
        published = {key.kid for key in services.keys.published()}
        for key in services.keys.all_keys():
            info = key.describe(now)
            shown = "published" if key.kid in published else "unpublished"
            typer.echo(f"{key.kid}  {key.purpose:<18} {key.alg}  {info['state']:<8} {shown}")

    run(database_url, work)


@keys_app.command("rotate")
def rotate_key(
    purpose: str = typer.Option("access-token", help="Which key to rotate."),
    lead: float | None = typer.Option(None, min=0, help="Seconds it is published before signing."),
    database_url: str | None = DatabaseOption,
) -> None:
    """Add a new key: published at once, signing after the lead time; the old key stays published meanwhile."""

    async def work(services: Services) -> None:
        try:
            key = await services.keys.rotate(purpose, lead=lead)
        except KeyError as exc:
            raise CliError(str(exc.args[0])) from exc
        await _cli_audit(services, "key.rotated", resource=key.kid)
        typer.echo(f"key {key.kid} ({purpose}) published; signs from {key.activates_at:.0f} (unix time)")

    run(database_url, work)


@audit_app.command("verify")
def verify_audit(
    against: str | None = typer.Option(
        None,
        "--against",
        help="A signed tree head kept outside the hub: a saved head file, a witness state file, or a hub URL.",
    ),
    database_url: str | None = DatabaseOption,
) -> None:
    """Check the chain and every signed tree head; with --against, also that the log still extends a head kept
    elsewhere. Exit 1 naming the first record altered, missing or rewritten."""
    require_hub(load_settings(database_url))

    async def work(services: Services) -> str:
        head = None
        if against is not None:
            try:
                head = await load_head(services.http, against)
            except (WitnessError, HeadInvalid) as exc:
                raise CliError(str(exc)) from exc
        report = await verify_log(services.audit, services.checkpoints, against=head)
        if not report.intact:
            raise CliError(f"audit log NOT intact: {report.problem}", exit_code=1)
        return report.summary()

    typer.echo(run(database_url, work))
    if against is None:
        err.print(
            "qala: note: without --against, a rewrite that also deletes every signed head covering it cannot be "
            "told apart from an intact log; keep heads outside the hub (qala audit witness) and verify against them",
            markup=False,
        )


@audit_app.command("witness")
def witness_hub(
    url: str = typer.Argument(..., help="The hub's base URL (or its /api/v1/audit/tree-head URL)."),
    state: Annotated[Path, typer.Option(help="Where the heads kept so far are stored.")] = Path("qala-witness.json"),
    every: float | None = typer.Option(None, min=1.0, help="Keep watching, checking every this many seconds."),
) -> None:
    """Keep the hub's signed tree heads and check each new one extends the last (exit 1 when it does not)."""

    async def main() -> None:
        kept = WitnessState.load(state)
        async with httpx.AsyncClient(timeout=10.0) as http:
            while True:
                try:
                    message = await witness(http, url, kept)
                except WitnessError as exc:
                    if every is None:
                        raise
                    # Watching: an unreachable hub is not an alarm; say so and ask again next time.
                    err.print(f"qala: warning: {exc}", markup=False)
                else:
                    kept.save()
                    typer.echo(message)
                if every is None:
                    return
                await asyncio.sleep(every)

    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(main())
    except WitnessAlarm as exc:
        raise CliError(f"ALARM: {exc}", exit_code=1) from exc
    except (WitnessError, HeadInvalid) as exc:
        raise CliError(str(exc)) from exc


def _line(record: dict[str, Any]) -> str:
    fields = [str(record["seq"]), record["at"], record["action"], record["outcome"], str(record["status"] or "-")]
    fields += [record["client_id"] or "-", record["method"] or "-", record["resource"] or record["route"] or "-"]
    fields.append(f"trace={record['trace_id']}" if record["trace_id"] else "")
    return "  ".join(fields).rstrip()


@audit_app.command("tail")
def tail_audit(
    lines: int = typer.Option(20, "-n", "--lines", min=1, help="How many of the latest records to show."),
    follow: bool = typer.Option(False, "--follow", "-f", help="Keep printing new records (Ctrl-C stops)."),
    interval: float = typer.Option(1.0, help="Polling interval for --follow, seconds."),
    database_url: str | None = DatabaseOption,
) -> None:
    """Show the latest audit records, oldest first."""
    require_hub(load_settings(database_url))

    async def work(services: Services) -> None:
        records = await services.audit.last(lines)
        for record in records:
            typer.echo(_line(record))
        after = records[-1]["seq"] if records else 0
        while follow:
            await asyncio.sleep(interval)
            for record in await services.audit.records(after=after, limit=1000):
                typer.echo(_line(record))
                after = record["seq"]

    with contextlib.suppress(KeyboardInterrupt):
        run(database_url, work)


@audit_app.command("checkpoint")
def checkpoint_audit(database_url: str | None = DatabaseOption) -> None:
    """Sign a tree head over the log now (the server does this every QALA_AUDIT_CHECKPOINT_SECONDS)."""
    require_hub(load_settings(database_url))

    async def work(services: Services) -> str:
        head = await services.checkpoints.take(services.audit)
        return f"signed {head.describe()}" if head else "nothing new to sign"

    typer.echo(run(database_url, work))


@clients_app.command("read-cities")
def set_read_cities(
    client_id: str,
    read_city: Annotated[
        list[str] | None, typer.Option("--read-city", help="A city the client may read; repeatable.")
    ] = None,
    everywhere: bool = typer.Option(False, "--all", help="Remove the narrowing: public fields of every city."),
    database_url: str | None = DatabaseOption,
) -> None:
    """Narrow the cities a client may read (from its next token), or widen it again with --all."""
    if bool(read_city) == everywhere:
        raise CliError("give either --read-city (one or more) or --all")

    async def work(services: Services) -> None:
        client = await services.directory.set_read_cities(client_id, None if everywhere else read_city)
        await _cli_audit(services, "client.read-cities", client_id=client_id)
        shown = ",".join(client.read_cities) if client.read_cities is not None else "all (public fields)"
        typer.echo(f"client {client_id} reads: {shown}")

    run(database_url, work)


@clients_app.command("default-scopes")
def set_default_scopes(
    client_id: str,
    default_scope: Annotated[
        list[str] | None,
        typer.Option("--default-scope", help="A scope granted when a token request names none; repeatable."),
    ] = None,
    everything: bool = typer.Option(False, "--all", help="Grant every scope the client holds (the default)."),
    nothing: bool = typer.Option(False, "--none", help="Grant nothing: token requests must name their scopes."),
    database_url: str | None = DatabaseOption,
) -> None:
    """Set what a token request without a scope gets (from the client's next token): some of its scopes, all of
    them again with --all, or nothing with --none (the request then fails with invalid_scope)."""
    if [bool(default_scope), everything, nothing].count(True) != 1:
        raise CliError("give either --default-scope (one or more), --all or --none")

    async def work(services: Services) -> None:
        chosen = None if everything else [] if nothing else default_scope
        client = await services.directory.set_default_scopes(client_id, chosen)
        await _cli_audit(services, "client.default-scopes", client_id=client_id)
        typer.echo(f"client {client_id} gets without a scope: {_default_scopes(client)}")

    run(database_url, work)
