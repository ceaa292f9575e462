"""Throttling client-secret guessing at the OAuth endpoints, per claimed client id and per source address.

Every failed client authentication takes a token from two buckets: the client id it claimed and the address it
came from. While either bucket is empty, the endpoint answers 429 (RFC 6749 body, ``Retry-After``) *before*
looking at the credentials, so a guesser learns nothing from the answer, right or wrong. Buckets live in the
rate limiter, shared through Redis when ``QALA_REDIS_URL`` is set. Successful authentications cost nothing.

The trade-off of keying by client id: someone who knows a client's id can hold it at 429 by failing on its
behalf. The window is short and refills steadily, and ``private_key_jwt`` clients are keyed the same way.

    throttle = GuessThrottle(limiter, settings)
    await throttle.check(client_id, address)        # raises TooManyFailures
    ...
    await throttle.failed(client_id, address)       # after an InvalidClient
"""

from __future__ import annotations

from gateway.errors import OAuthError
from gateway.ratelimit import Decision, RateLimiter
from gateway.settings import Settings


class TooManyFailures(OAuthError):
    """429 with the RFC 6749 body; ``slow_down`` is descriptive (RFC 6749 registers no code for this)."""

    status, error = 429, "slow_down"


class GuessThrottle:
    def __init__(self, limiter: RateLimiter, settings: Settings) -> None:
        self.limiter = limiter
        self.settings = settings

    def _buckets(self, client_id: str | None, address: str) -> list[tuple[str, int, str]]:
        settings = self.settings
        buckets = [(f"authfail:addr:{address}", settings.auth_failures_per_address, f"from {address}")]
        if client_id:
            buckets.insert(
                0, (f"authfail:client:{client_id[:64]}", settings.auth_failures_per_client, "for this client")
            )
        return buckets

    async def _hit(self, client_id: str | None, address: str, cost: int) -> list[tuple[Decision, str]]:
        window = self.settings.auth_failure_window_seconds
        return [
            (await self.limiter.hit(key, capacity=capacity, window=window, cost=cost), what)
            for key, capacity, what in self._buckets(client_id, address)
        ]

    async def check(self, client_id: str | None, address: str) -> None:
        """Raise :class:`TooManyFailures` while the client id's or the address's failures are over the limit."""
        if not self.settings.rate_limit_enabled:
            return
        for decision, what in await self._hit(client_id, address, cost=0):
            if not decision.allowed:
                raise TooManyFailures(
                    f"too many failed client authentications {what}; retry in {decision.retry_after} s",
                    headers={"Retry-After": str(decision.retry_after)},
                )

    async def failed(self, client_id: str | None, address: str) -> None:
        """Count one failed authentication against the client id and the address."""
        if self.settings.rate_limit_enabled:
            await self._hit(client_id, address, cost=1)
