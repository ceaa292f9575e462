"""One webhook delivery over HTTP, and what its answer means for the next attempt.

    result = await send(http, url, webhook_id, body, secrets, timeout=10.0)
    result.ok, result.gone, result.retry_after

2xx is delivered; ``410 Gone`` means the receiver is gone for good (the subscription stops); anything else,
including a timeout or a refused connection, is retried later, no sooner than a ``Retry-After`` the receiver
sent. Redirects are not followed: a webhook URL is where the hub sends, never a pointer somewhere else.
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import httpx

from gateway.subscriptions.signing import signed_headers

MAX_RETRY_AFTER = 86_400.0


@dataclass(frozen=True)
class SendResult:
    status: int | None
    error: str | None
    latency_ms: float
    retry_after: float | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def gone(self) -> bool:
        return self.status == 410


def retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date); None when absent or bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), MAX_RETRY_AFTER)
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return min(max(moment.timestamp() - now, 0.0), MAX_RETRY_AFTER)


def backoff(attempt: int, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Exponential backoff with jitter: half of ``min(cap, base * 2**(attempt-1))`` fixed, half random.

    >>> 4.0 <= backoff(4, 1.0, 300.0) <= 8.0
    True
    """
    ceiling: float = min(cap, base * 2.0 ** max(attempt - 1, 0))
    jitter: float = (rng or random).uniform(0, ceiling / 2)
    return ceiling / 2 + jitter


async def send(
    http: httpx.AsyncClient,
    url: str,
    webhook_id: str,
    body: bytes,
    secrets: Sequence[str],
    *,
    timeout: float,
    headers: Mapping[str, str] | None = None,
) -> SendResult:
    """POST one signed message, with ``headers`` besides the signature's; never raises for what the network or
    the receiver does."""
    started = time.monotonic()
    headers = {**(headers or {}), **signed_headers(webhook_id, body, secrets, time.time())}
    try:
        response = await http.post(url, content=body, headers=headers, timeout=timeout, follow_redirects=False)
    except httpx.TimeoutException:
        return SendResult(None, f"no answer within {timeout:g} s", (time.monotonic() - started) * 1000)
    except httpx.HTTPError as exc:
        return SendResult(None, f"{type(exc).__name__}: {exc}"[:500], (time.monotonic() - started) * 1000)
    latency = (time.monotonic() - started) * 1000
    if 200 <= response.status_code < 300:
        return SendResult(response.status_code, None, latency)
    return SendResult(
        response.status_code,
        f"HTTP {response.status_code}: {response.text[:200]}",
        latency,
        retry_after(response.headers.get("retry-after"), time.time()),
    )
