"""The receiver app: ``POST /webhook`` takes deliveries, ``GET /events`` lists what it kept."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


@dataclass
class ReceiverConfig:
    secrets: list[str]
    store: Path | None = None
    """NDJSON file: one line per kept change, with the ``webhookId`` that brought it (reloaded on start)."""
    fail_ratio: float = 0.0
    """Share of deliveries answered with a 500 or a stall instead of being taken (half each)."""
    slow_seconds: float = 0.0
    seed: int = 1
    gone: bool = False
    """Answer every delivery with 410 Gone (the hub then stops the subscription)."""


@dataclass
class Kept:
    seen: set[str] = field(default_factory=set)
    changes: list[dict[str, Any]] = field(default_factory=list)
    received: int = 0
    """Deliveries that passed the signature check, duplicates included."""
    rejected: int = 0


def create_receiver(config: ReceiverConfig) -> Starlette:
    hooks = [Webhook(secret) for secret in config.secrets]
    kept = Kept()
    rng = random.Random(config.seed)  # noqa: S311 -- induced failures, not security
    lock = asyncio.Lock()
    if config.store is not None and config.store.exists():
        for line in config.store.read_bytes().splitlines():
            change = orjson.loads(line)
            kept.seen.add(change["webhookId"])
            kept.changes.append(change)

    def verified(body: bytes, headers: dict[str, str]) -> dict[str, Any] | None:
        for hook in hooks:
            try:
                message: dict[str, Any] = hook.verify(body, headers)
            except WebhookVerificationError:
                continue
            return message
        return None

    async def webhook(request: Request) -> Response:
        body = await request.body()  # the raw bytes: the signature covers exactly these
        message = verified(body, dict(request.headers))
        if message is None:
            kept.rejected += 1
            return JSONResponse({"error": "bad signature or timestamp"}, status_code=401)
        if config.gone:
            return Response(status_code=410)
        if config.fail_ratio and rng.random() < config.fail_ratio:
            if rng.random() < 0.5:
                return JSONResponse({"error": "induced failure"}, status_code=500)
            await asyncio.sleep(config.slow_seconds or 30)  # longer than the hub waits: a timeout
        webhook_id = request.headers["webhook-id"]
        async with lock:
            kept.received += 1
            if webhook_id in kept.seen:
                return Response(status_code=204)  # a retry of what is already kept
            lines = [{"webhookId": webhook_id, **change} for change in message["changes"]]
            if config.store is not None:
                with config.store.open("ab") as out:
                    out.write(b"".join(orjson.dumps(line) + b"\n" for line in lines))
            kept.seen.add(webhook_id)
            kept.changes.extend(lines)
        return Response(status_code=204)

    async def events(request: Request) -> JSONResponse:
        return JSONResponse(
            {"changes": kept.changes, "messages": len(kept.seen), "received": kept.received, "rejected": kept.rejected}
        )

    return Starlette(routes=[Route("/webhook", webhook, methods=["POST"]), Route("/events", events)])
