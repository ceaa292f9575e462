"""Audit records for floods: at most so many per source and window, the rest counted into the next one.

Failed authentications are worth recording (who is probing, from where), but each costs an audit append, and a
flood of them must not fill the log or turn into a write load. A sampler admits at most ``per_source`` records
per ``window`` seconds for one source and ``total`` for all sources together, per worker; what it holds back is
counted and reported as ``suppressed`` in the next record it admits for that source, so the log still says how
many attempts there were.

    sampler = AuditSampler(per_source=20, total=200, window=60.0)
    suppressed = sampler.admit("203.0.113.7")
    if suppressed is not None:
        await audit.append(AuditRecord(..., detail={"suppressed": suppressed}))
"""

from __future__ import annotations

import time
from collections.abc import Callable

ALL = "\x00all"  # the key of the bucket shared by every source (no real address looks like it)


class AuditSampler:
    def __init__(
        self, *, per_source: int, total: int, window: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.per_source = per_source
        self.total = total
        self.window = window
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self._held: dict[str, int] = {}

    def _take(self, key: str, capacity: int, now: float) -> bool:
        tokens, stamp = self._buckets.get(key, (float(capacity), now))
        tokens = min(float(capacity), tokens + (now - stamp) * capacity / self.window)
        allowed = tokens >= 1
        self._buckets[key] = (tokens - 1 if allowed else tokens, now)
        return allowed

    def admit(self, source: str) -> int | None:
        """``None``: do not record this one. Otherwise record it, with this many held back before it."""
        now = self.clock()
        if len(self._buckets) > 50_000:  # bounded memory under a flood of sources; errs towards recording
            self._buckets.clear()
        if not (self._take(source, self.per_source, now) and self._take(ALL, self.total, now)):
            if len(self._held) < 50_000 or source in self._held:
                self._held[source] = self._held.get(source, 0) + 1
            return None
        return self._held.pop(source, 0)
