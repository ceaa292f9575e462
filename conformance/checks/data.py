"""Data: every entity the module serves is a valid canonical entity, coherent, and what was written.

Validation uses the canonical schema of the profile from ``schemas`` (the same registry the mandate is built
from), and reports each error with its JSON pointer.
"""

from __future__ import annotations

from typing import Any

from conformance.checks.common import expect_status, json_body, seeded_scope, walk
from conformance.checks.registry import check
from conformance.context import JsonObject, RunContext
from conformance.outcomes import CheckFailed, expect

SERVER_MANAGED = frozenset({"dateModified", "dateCreated"})


def _served(ctx: RunContext) -> list[JsonObject]:
    """The seeded entities as a list returns them, plus each one as a single read returns it."""
    token = ctx.token()
    items, _ = walk(ctx, {**seeded_scope(ctx), "limit": "100"}, token, "a list of the seeded entities")
    for entity in ctx.seeded():
        response = ctx.get(ctx.entity_path(entity["id"]), token=token)
        expect_status(response, 200, "a single read")
        items.append(json_body(response, "a single read"))
    return items


def _schema_errors(ctx: RunContext, entity: Any) -> list[str]:
    if ctx.profile.is_valid(entity):
        return []
    return [f"{issue.pointer or '/'}: {issue.message} ({issue.keyword})" for issue in ctx.profile.explain(entity)]


@check("QM-DATA-001", "schema-valid")
def schema_valid(ctx: RunContext, param: str) -> str:
    served = _served(ctx)
    for entity in served:
        errors = _schema_errors(ctx, entity)
        if errors:
            label = entity.get("id", "an entity") if isinstance(entity, dict) else "an item"
            raise CheckFailed(
                f"{label} does not validate against {ctx.profile.schema_id}: {'; '.join(errors[:5])}",
                expected=f"every entity valid against {ctx.profile.type_name} {ctx.profile.version}",
            )
    return f"{len(served)} served entities are valid {ctx.profile.type_name}"


@check("QM-DATA-002", "identity")
def identity(ctx: RunContext, param: str) -> str:
    served = _served(ctx)
    for entity in served:
        expect(isinstance(entity, dict), "a served item is not an object")
        entity_id, city = str(entity.get("id", "")), entity.get("city")
        prefix = f"urn:ngsi-ld:{ctx.profile.type_name}:{city}:"
        expect(
            entity.get("type") == ctx.profile.type_name,
            f"{entity_id} has type {entity.get('type')!r}",
            expected=f"type {ctx.profile.type_name}",
        )
        expect(
            entity_id.startswith(prefix),
            f"{entity_id} does not agree with its city {city!r}",
            expected=f"an id starting with {prefix}",
        )
    return "ids, types and cities agree"


def _differences(written: JsonObject, stored: JsonObject, personal: frozenset[str]) -> list[str]:
    keys = (set(written) | set(stored)) - SERVER_MANAGED
    return sorted(key for key in keys if written.get(key) != stored.get(key))


@check("QM-DATA-003", "round-trip")
def round_trip(ctx: RunContext, param: str) -> str:
    ctx.seeded()
    for written in ctx.written:
        stored = ctx.stored.get(written["id"])
        if stored is None:
            raise CheckFailed(f"{written['id']} was written but cannot be read back", expected="HTTP 200")
        changed = _differences(written, stored, ctx.profile.personal_fields)
        expect(
            not changed,
            f"{written['id']} reads back with different {', '.join(changed)}",
            expected="the fields as written (dateModified may be set by the module)",
            cause="" if ctx.profile.is_valid(stored) else "QM-DATA-001",  # an invalid entity is the root
        )
    return f"{len(ctx.written)} entities read back as written"
