"""The suite's tests, registered in one table (:data:`REGISTRY`) by the modules imported here.

>>> from schemas import SchemaRegistry
>>> tests = planned_tests(SchemaRegistry.load().get("service-requests"))
>>> tests[0][0]
'QM-DISC-001/openapi-document'
"""

from __future__ import annotations

from conformance.checks import auth, data, discovery, errors, latency, lists, writes
from conformance.checks.registry import REGISTRY, Check, check
from schemas import SchemaVersion

MODULES = (discovery, auth, data, lists, writes, errors, latency)
"""In run order: discovery first (it gates nothing but explains much), latency last."""


def planned_tests(profile: SchemaVersion) -> list[tuple[str, str, Check]]:
    """``(test_id, param, check)`` for every test of ``profile``, in run order."""
    order = {module.__name__: index for index, module in enumerate(MODULES)}
    checks = sorted(REGISTRY, key=lambda c: order.get(c.function.__module__, len(order)))
    return [(test_id, param, item) for item in checks for test_id, param in item.test_ids(profile)]


__all__ = ["REGISTRY", "Check", "check", "planned_tests"]
