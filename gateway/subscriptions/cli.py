"""``qala deliver`` and ``qala subscriptions ...``: delivery in its own process, and the operator's twins of the API.

    qala deliver                                   # deliver webhooks until Ctrl-C / SIGTERM (run several on PostgreSQL)
    qala subscriptions create --client qc_... --type ServiceRequest --city astana --url https://utility.kz/hook
    qala subscriptions list
    qala subscriptions pause sub_...  |  resume sub_...  |  replay sub_... --since <cursor>  |  log sub_...

Like ``qala clients``, these work on the database of ``QALA_DATABASE_URL`` with the server's ``QALA_SECRET_KEY``.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from gateway.audit import AuditRecord
from gateway.cli import DatabaseOption, load_settings, run
from gateway.errors import GatewayError, InsufficientScope
from gateway.services import Services, open_services
from gateway.store.cursor import CursorCodec
from gateway.subscriptions.feed import head
from gateway.subscriptions.selection import Selection
from gateway.subscriptions.store import FEED_QUERY, Subscription, SubscriptionStore
from gateway.subscriptions.targets import check_target
from gateway.subscriptions.worker import DeliveryWorker
from qala.cli import CliError
from schemas import SchemaRegistry

subscriptions_app = typer.Typer(help="Subscriptions: changes pushed to city systems.", no_args_is_help=True)


def deliver(
    concurrency: int | None = typer.Option(None, min=1, help="Subscriptions delivered at once (default: setting)."),
    database_url: str | None = DatabaseOption,
) -> None:
    """Deliver webhooks in this process until stopped; several processes share the work through leases."""
    settings = load_settings(database_url)
    if concurrency is not None:
        settings.delivery_concurrency = concurrency

    async def main() -> None:
        async with open_services(settings) as services:
            worker = DeliveryWorker(services.engine, services.audit, SchemaRegistry.load(), settings)
            typer.echo(f"delivering as {worker.name} ({settings.delivery_concurrency} at once); Ctrl-C stops")
            task = asyncio.create_task(worker.run())
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(signum, task.cancel)
            with contextlib.suppress(asyncio.CancelledError):
                await task

    try:
        asyncio.run(main())
    except OSError as exc:
        raise CliError(f"cannot reach the database: {exc}") from exc


def _store(services: Services) -> SubscriptionStore:
    return SubscriptionStore(services.engine, SchemaRegistry.load(), services.settings)


def _line(subscription: Subscription) -> str:
    target = subscription.url or "stream"
    selected = ",".join(subscription.selection.types)
    cities = ",".join(subscription.selection.cities) or "*"
    error = f"  last error: {subscription.last_error}" if subscription.last_error else ""
    return (
        f"{subscription.id}  {subscription.state:<7} {subscription.client_id}  {selected} [{cities}]  "
        f"-> {target}  at {subscription.position}  delivered {subscription.delivered}{error}"
    )


async def _audit(services: Services, action: str, subscription: Subscription) -> None:
    await services.audit.append(
        AuditRecord(
            action=action,
            outcome="ok",
            client_id=subscription.client_id,
            resource=subscription.id,
            detail={"via": "cli"},
        )
    )


@subscriptions_app.command("list")
def list_subscriptions(
    client: str | None = typer.Option(None, help="Only this client's subscriptions."),
    database_url: str | None = DatabaseOption,
) -> None:
    """List subscriptions with their state, position and last error."""

    async def work(services: Services) -> None:
        for subscription in await _store(services).all(client):
            typer.echo(_line(subscription))

    run(database_url, work)


@subscriptions_app.command("create")
def create(
    *,
    client: str = typer.Option(..., help="The client that owns the subscription."),
    types: Annotated[list[str], typer.Option("--type", help="An entity type; repeat for several.")],
    city: Annotated[list[str] | None, typer.Option("--city", help="A city; repeatable (default: all).")] = None,
    filters: Annotated[list[str] | None, typer.Option("--filter", help="field=value equality; repeatable.")] = None,
    bbox: str | None = typer.Option(None, help="minLon,minLat,maxLon,maxLat"),
    url: str | None = typer.Option(None, help="Webhook URL (omit with --stream)."),
    stream: bool = typer.Option(False, "--stream", help="Delivered by GET /api/v1/stream instead of a webhook."),
    from_start: bool = typer.Option(False, help="Deliver the whole feed, not only changes from now on."),
    name: str | None = typer.Option(None, help="A name for people."),
    database_url: str | None = DatabaseOption,
) -> None:
    """Subscribe a client (it must be able to read every type); the webhook secret is printed once."""
    if (url is None) == (not stream):
        raise CliError("give either --url for a webhook or --stream")
    pairs = [item.partition("=") for item in filters or []]
    if any(not sep for _, sep, _ in pairs):
        raise CliError("--filter takes field=value")

    async def work(services: Services) -> None:
        owner = await services.directory.get_client(client)
        selection = Selection.parse(
            {"types": types, "cities": city or [], "filters": {k: v for k, _, v in pairs}, "bbox": bbox},
            SchemaRegistry.load(),
        )
        for collection in selection.collections:
            if f"{collection}:read" not in owner.scopes:
                raise InsufficientScope(f"{collection}:read")
        target = None if stream else await check_target(url or "", services.settings)
        position = 0 if from_start else await head(services.engine)
        subscription, secret = await _store(services).create(
            client, selection, "stream" if stream else "webhook", target, position=position, name=name
        )
        await _audit(services, "subscription.created", subscription)
        typer.echo(f"subscription:  {subscription.id}")
        if secret:
            typer.echo(f"secret:        {secret}")
            typer.echo("Store the secret now: it is not shown again (the API's rotate-secret replaces it).")

    run(database_url, _explained(work))


def _explained(work: Any) -> Any:
    """Validation problems carry their reason in ``errors``: print that, not only the summary."""

    async def wrapped(services: Services) -> Any:
        try:
            return await work(services)
        except GatewayError as exc:
            reasons = "; ".join(error["message"] for error in exc.errors or [])
            raise CliError(reasons or exc.detail) from exc

    return wrapped


def _action(command: str, action: str) -> None:
    def handler(subscription_id: str, database_url: str | None = DatabaseOption) -> None:
        async def work(services: Services) -> None:
            store = _store(services)
            changed = await getattr(store, command)(subscription_id)
            await _audit(services, action, changed)
            typer.echo(_line(changed))

        run(database_url, work)

    handler.__doc__ = f"{command.capitalize()} a subscription."
    subscriptions_app.command(command)(handler)


_action("pause", "subscription.paused")
_action("resume", "subscription.resumed")


@subscriptions_app.command("replay")
def replay(
    subscription_id: str,
    since: str | None = typer.Option(None, help="A change-feed cursor; omit to replay the whole feed."),
    database_url: str | None = DatabaseOption,
) -> None:
    """Deliver again every change after a cursor (new messages, new webhook ids)."""

    async def work(services: Services) -> None:
        position = int(CursorCodec(services.settings.secret).decode(since, FEED_QUERY)) if since else 0
        changed = await _store(services).replay(subscription_id, position)
        await _audit(services, "subscription.replayed", changed)
        typer.echo(_line(changed))

    run(database_url, work)


@subscriptions_app.command("log")
def log(
    subscription_id: str,
    lines: int = typer.Option(20, "-n", "--lines", min=1, help="How many of the latest attempts."),
    database_url: str | None = DatabaseOption,
) -> None:
    """The latest delivery attempts, oldest first: time, webhook id, attempt, changes, status, latency."""

    async def work(services: Services) -> None:
        store = _store(services)
        await store.get(subscription_id)
        for entry in reversed(await store.deliveries(subscription_id, lines)):
            at = datetime.fromtimestamp(entry["at"], UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            outcome = str(entry["status"]) if entry["status"] is not None else "-"
            latency = f"{entry['latencyMs']:.0f} ms" if entry["latencyMs"] is not None else "-"
            error = f"  {entry['error']}" if entry["error"] else ""
            typer.echo(
                f"{at}  {entry['webhookId']}  attempt {entry['attempt']}  seq {entry['firstSeq']}..{entry['lastSeq']}"
                f"  {entry['events']} changes  {outcome}  {latency}{error}"
            )

    run(database_url, work)
