"""The one table of tests: every check registers here with the requirement it verifies.

A check is a function ``(ctx, param) -> message`` that returns to pass or raises an outcome signal. Checks
with ``params`` are generated per profile from the mandate (e.g. one equality-filter test per filterable field),
so the list of tests is known before the run starts.

    @check("QM-AUTH-002", "expired-token")
    def expired_token(ctx: RunContext, param: str) -> str:
        ...
        return "401 for a token that expired an hour ago"
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from conformance.context import RunContext
from schemas import SchemaVersion

CheckFunction = Callable[[RunContext, str], str | None]
ParamsFunction = Callable[[SchemaVersion], list[str]]


@dataclass(frozen=True)
class Check:
    requirement: str
    name: str
    function: CheckFunction
    params: ParamsFunction | None = None

    def test_ids(self, profile: SchemaVersion) -> list[tuple[str, str]]:
        """``(test_id, param)`` pairs of this check for ``profile``."""
        base = f"{self.requirement}/{self.name}"
        if self.params is None:
            return [(base, "")]
        return [(f"{base}[{param}]", param) for param in self.params(profile)]


REGISTRY: list[Check] = []


def check(
    requirement: str, name: str, *, params: ParamsFunction | None = None
) -> Callable[[CheckFunction], CheckFunction]:
    """Register the decorated function as the test ``<requirement>/<name>``."""

    def register(function: CheckFunction) -> CheckFunction:
        if any(existing.requirement == requirement and existing.name == name for existing in REGISTRY):
            raise ValueError(f"the test {requirement}/{name} is registered twice")
        REGISTRY.append(Check(requirement, name, function, params))
        return function

    return register
