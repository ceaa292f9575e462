"""Every mandated operation, tried with a given token, and whether a refused write still took effect.

Authorization rules hold on every operation, not only the one a vendor thought of: the auth checks run each bad
token against each of these. A write that was refused must also leave no trace, so each attempt knows how to see
its own effect (the entity created, changed or gone) and undoes it for the tests that follow.

    attempt = try_operation(ctx, "delete", token)
    attempt.response.status_code, attempt.effect       # e.g. (401, "")
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import timedelta

import httpx

from conformance.context import JsonObject, RunContext
from conformance.outcomes import CheckSkipped
from conformance.seeding import SEED_COUNT, format_instant, make_entity, parse_instant

OPERATIONS = ("list", "read", "create", "replace", "delete")
WRITES = frozenset({"create", "replace", "delete"})


def operations(_: object) -> list[str]:
    """The params of a test run once per operation."""
    return list(OPERATIONS)


def write_operations(_: object) -> list[str]:
    return [name for name in OPERATIONS if name in WRITES]


def fresh(ctx: RunContext, name: str, *, city: str | None = None, n: int = SEED_COUNT) -> JsonObject:
    """A new valid entity of the run (not yet written), deleted at the end of the run if it ever is."""
    base = ctx.written[0]
    entity = make_entity(ctx.profile, base, run_id=ctx.run_id, name=name, city=city or ctx.city, n=n)
    ctx.created.add(entity["id"])
    return entity


def target(ctx: RunContext, city: str) -> JsonObject:
    """The run's target entity in ``city`` (created on first use, and again if a test lost it)."""
    entity = ctx.targets.get(city)
    if entity is None:
        entity = ctx.targets[city] = fresh(ctx, f"target-{city}", city=city)
    path = ctx.entity_path(entity["id"])
    if ctx.get(path, token=ctx.token()).status_code == 404:
        response = ctx.send("PUT", path, token=ctx.token(), body=entity)
        if response.status_code not in (200, 201):
            raise CheckSkipped(f"cannot write the target entity {entity['id']}: PUT answered {response.status_code}")
    return entity


@dataclass
class Attempt:
    operation: str
    response: httpx.Response
    effect: str
    """What the request changed although it should have been refused ("" when nothing)."""

    @property
    def what(self) -> str:
        request = self.response.request
        return f"{request.method} {request.url.path}"


def _snapshot(ctx: RunContext, entity_id: str) -> tuple[int, object]:
    response = ctx.get(ctx.entity_path(entity_id), token=ctx.token())
    try:
        body = response.json() if response.status_code == 200 else None
    except ValueError:
        body = None
    return response.status_code, body


def changed(ctx: RunContext, entity: JsonObject, mark: str = "changed") -> JsonObject:
    """A valid replacement of ``entity`` that differs from it in a field the module keeps as written.

    ``source`` (a free text every canonical type has) gets ``mark`` appended, and ``dateModified`` moves a minute
    on; a module that stamps ``dateModified`` itself still sees a changed entity.
    """
    out = copy.deepcopy(entity)
    instant = parse_instant(out.get("dateModified"))
    if instant is not None:
        out["dateModified"] = format_instant(instant + timedelta(minutes=1))
    if "source" in ctx.profile.document.get("properties", {}):
        candidate = {**out, "source": f"{out.get('source', 'qala-conformance')} ({mark})"[:200]}
        if ctx.profile.is_valid(candidate):
            out = candidate
    return out


def try_operation(ctx: RunContext, operation: str, token: str | None, *, city: str | None = None) -> Attempt:
    """Send ``operation`` with ``token`` on an entity of ``city`` (default: the run's city); see its effect."""
    city = city or ctx.city
    if operation == "list":
        response = ctx.get(ctx.collection_path, token=token, params={"limit": "1"})
        return Attempt(operation, response, "")
    if operation == "read":
        seeded = ctx.seeded_in(city) or ctx.seeded()
        return Attempt(operation, ctx.get(ctx.entity_path(seeded[0]["id"]), token=token), "")
    ctx.require_writes()
    if operation == "create":
        entity = fresh(ctx, f"attempt-{len(ctx.created)}", city=city)
        response = ctx.send("POST", ctx.collection_path, token=token, body=entity)
        status, _ = _snapshot(ctx, entity["id"])
        effect = f"{entity['id']} was created all the same" if status != 404 else ""
        if effect:
            ctx.send("DELETE", ctx.entity_path(entity["id"]), token=ctx.token())
        return Attempt(operation, response, effect)
    entity = target(ctx, city)
    path = ctx.entity_path(entity["id"])
    before = _snapshot(ctx, entity["id"])
    if operation == "replace":
        response = ctx.send("PUT", path, token=token, body=changed(ctx, entity))
    elif operation == "delete":
        response = ctx.send("DELETE", path, token=token)
    else:
        raise ValueError(f"unknown operation {operation!r}")
    after = _snapshot(ctx, entity["id"])
    effect = ""
    if after[0] == 404:
        effect = f"{entity['id']} was deleted all the same"
    elif after != before:
        effect = f"{entity['id']} was changed all the same"
    if effect:
        ctx.send("PUT", path, token=ctx.token(), body=entity)  # restore the target for the tests that follow
    return Attempt(operation, response, effect)
