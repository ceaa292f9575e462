"""Per-client rate limits: a token bucket per (client_id, route class), in process or shared through Redis.

A bucket holds up to ``capacity`` tokens and refills at ``capacity / window`` tokens per second; each request
takes one. The Redis bucket is one Lua script (atomic, so several workers never double-spend), keyed only by
the stable client identity, timed by the Redis server's clock (worker clocks may drift), and expiring in
*seconds* once the bucket would be full again. When Redis fails, ``failure_mode`` decides: "open" admits,
"closed" refuses with 503.

    limiter = InProcessLimiter()
    decision = await limiter.hit("qc_1:api", capacity=600, window=60.0)
    decision.allowed, decision.remaining, decision.reset_after
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError

from gateway.errors import RateLimited, ServiceUnavailable

logger = logging.getLogger("qala.gateway.ratelimit")


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_after: int  # seconds until the bucket is full again
    retry_after: int  # seconds until one request would be admitted (0 when allowed)

    def headers(self) -> dict[str, str]:
        """The IETF draft ``RateLimit-*`` headers, plus ``Retry-After`` on a refusal."""
        headers = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_after),
        }
        if not self.allowed:
            headers["Retry-After"] = str(self.retry_after)
        return headers

    def enforce(self) -> None:
        if not self.allowed:
            raise RateLimited(
                f"rate limit of {self.limit} requests exceeded; retry in {self.retry_after} s", headers=self.headers()
            )


def _decision(allowed: bool, tokens: float, capacity: int, rate: float) -> Decision:
    return Decision(
        allowed=allowed,
        limit=capacity,
        remaining=max(0, math.floor(tokens)),
        reset_after=math.ceil((capacity - tokens) / rate),
        retry_after=0 if allowed else max(1, math.ceil((1 - tokens) / rate)),
    )


class RateLimiter(Protocol):
    """One method: take ``cost`` tokens from bucket ``key`` (``cost=0`` only looks). In process and Redis."""

    async def hit(self, key: str, *, capacity: int, window: float, cost: int = 1) -> Decision: ...


class InProcessLimiter:
    """Buckets in this process's memory: exact for one worker; N workers would admit N times the limit."""

    def __init__(self) -> None:
        self._buckets: dict[str, tuple[float, float]] = {}

    async def hit(self, key: str, *, capacity: int, window: float, cost: int = 1) -> Decision:
        rate = capacity / window
        now = time.monotonic()
        tokens, stamp = self._buckets.get(key, (float(capacity), now))
        tokens = min(float(capacity), tokens + (now - stamp) * rate)
        allowed = tokens >= 1
        if allowed:
            tokens -= cost
        if len(self._buckets) > 100_000:
            self._buckets.clear()  # bounded memory; a reset bucket only errs towards admitting
        self._buckets[key] = (tokens, now)
        return _decision(allowed, tokens, capacity, rate)


BUCKET_SCRIPT = """
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'stamp')
local tokens = tonumber(state[1]) or capacity
local stamp = tonumber(state[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - stamp) * rate)
local allowed = 0
if tokens >= 1 then
  tokens = tokens - tonumber(ARGV[3])
  allowed = 1
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'stamp', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil(capacity / rate) + 1)
return {allowed, tostring(tokens)}
"""


class RedisLimiter:
    """Buckets in Redis, shared by every worker and replica."""

    def __init__(self, redis: Redis, failure_mode: Literal["open", "closed"], prefix: str = "qala:rl:") -> None:
        self.redis = redis
        self.failure_mode = failure_mode
        self.prefix = prefix
        self._script = redis.register_script(BUCKET_SCRIPT)

    async def hit(self, key: str, *, capacity: int, window: float, cost: int = 1) -> Decision:
        rate = capacity / window
        try:
            result: Any = await self._script(keys=[self.prefix + key], args=[capacity, repr(rate), cost])
        except (RedisError, OSError) as exc:
            if self.failure_mode == "open":
                logger.warning("rate limiter unavailable, admitting (fail-open): %s", exc)
                return Decision(True, capacity, capacity, 0, 0)
            raise ServiceUnavailable(
                "the rate limiter is unavailable; retry shortly", headers={"Retry-After": "1"}
            ) from exc
        allowed, tokens = int(result[0]), float(result[1])
        return _decision(bool(allowed), tokens, capacity, rate)
