"""Helpers for the subscription tests: quick delivery settings, a receiver on a real port, waiting."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from conformance.serving import serve_app
from examples.receiver import ReceiverConfig, create_receiver
from gateway.settings import Settings
from tests.gateway.conftest import ISSUER

QUICK = {
    "delivery_poll_seconds": 0.05,
    "delivery_backoff_base": 0.05,
    "delivery_backoff_max": 0.2,
    "delivery_lease_seconds": 5.0,
    "webhook_timeout": 1.0,
    "rate_limit_enabled": False,
}


def quick_settings(database_url: str, **changes: Any) -> Settings:
    values: dict[str, Any] = {
        "env": "demo",
        "database_url": database_url,
        "issuer": ISSUER,
        "key_publish_lead": 0,
        "revocation_poll_seconds": 0.2,
        "key_refresh_seconds": 0.5,
        **QUICK,
        **changes,
    }
    return Settings(**values)


@contextmanager
def receiver(secret: str, store: Path | None = None, **options: Any) -> Iterator[str]:
    """The reference receiver on a free port; yields its webhook URL."""
    with serve_app(create_receiver(ReceiverConfig([secret], store, **options))) as base:
        yield f"{base}/webhook"


async def kept(url: str) -> dict[str, Any]:
    async with httpx.AsyncClient() as client:
        found: dict[str, Any] = (await client.get(url.removesuffix("/webhook") + "/events")).json()
        return found


async def eventually(check: Callable[[], Any], timeout: float = 20.0, every: float = 0.1) -> Any:
    """Await ``check()`` until it returns something truthy; fail with its last value after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {timeout} s: {value!r}")
        await asyncio.sleep(every)
