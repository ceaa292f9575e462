"""Writes: create, validation errors, conflicts, idempotent upsert, If-Match and delete.

Each test writes its own entities (ids carry the run id and are deleted at the end of the run), so tests do
not depend on one another's side effects.
"""

from __future__ import annotations

import copy

from conformance.checks.common import expect_problem, expect_status, json_body
from conformance.checks.registry import check
from conformance.context import JsonObject, RunContext
from conformance.outcomes import CheckFailed, expect
from conformance.seeding import SEED_COUNT, make_entity


def fresh(ctx: RunContext, name: str, n: int = SEED_COUNT) -> JsonObject:
    """A new valid entity of the run (not yet written)."""
    entity = make_entity(ctx.profile, ctx.written[0], run_id=ctx.run_id, name=name, city=ctx.city, n=n)
    ctx.created.add(entity["id"])
    return entity


def create(ctx: RunContext, entity: JsonObject, what: str) -> None:
    response = ctx.send("POST", ctx.collection_path, token=ctx.token(), body=entity)
    expect_status(response, 201, what)


@check("QM-WRITE-001", "create")
def create_entity(ctx: RunContext, param: str) -> str:
    ctx.require_writes()
    entity = fresh(ctx, "create")
    response = ctx.send("POST", ctx.collection_path, token=ctx.token(), body=entity)
    expect_status(response, 201, "a create of a valid entity")
    location = response.headers.get("location")
    expect(bool(location), "the 201 has no Location header", expected="Location: URL of the created entity")
    assert location is not None
    target = location if location.startswith(("http://", "https://")) else str(response.request.url.join(location))
    read = ctx.get(target, token=ctx.token())
    expect_status(read, 200, "a GET of the Location")
    expect(
        json_body(read, "a GET of the Location").get("id") == entity["id"],
        "the Location serves another entity",
        expected=f"the entity {entity['id']}",
    )
    return "201 with a Location serving the entity"


def _invalid(ctx: RunContext) -> tuple[JsonObject, set[str]]:
    """An entity with two errors: a required field missing and a field of the wrong type."""
    entity = fresh(ctx, "invalid")
    required = [name for name in ctx.profile.required if name not in ("id", "type", "city", "dateModified")]
    dropped = required[0]
    del entity[dropped]
    entity["dateModified"] = 12345
    return entity, {f"/{dropped}", "/dateModified"}


@check("QM-WRITE-002", "validation-problem")
def validation_problem(ctx: RunContext, param: str) -> str:
    ctx.require_writes()
    entity, pointers = _invalid(ctx)
    response = ctx.send("POST", ctx.collection_path, token=ctx.token(), body=entity)
    body = expect_problem(response, 422, "a create of an entity missing a required field, with a bad dateModified")
    errors = body.get("errors")
    expect(
        isinstance(errors, list) and bool(errors),
        "the 422 problem has no errors array",
        expected="errors: [{pointer, keyword, message}]",
    )
    assert isinstance(errors, list)
    for error in errors:
        expect(
            isinstance(error, dict) and all(isinstance(error.get(k), str) for k in ("pointer", "keyword", "message")),
            f"an error item is not {{pointer, keyword, message}}: {error!r}",
            expected="pointer, keyword, message",
        )
    seen = {str(error.get("pointer")) for error in errors}
    missing = sorted(pointers - seen)
    expect(
        not missing,
        f"the errors do not point at {', '.join(missing)} (they point at {', '.join(sorted(seen))})",
        expected=f"pointers {', '.join(sorted(pointers))}",
    )
    return f"422 with pointers {', '.join(sorted(pointers))}"


@check("QM-WRITE-003", "duplicate-create")
def duplicate_create(ctx: RunContext, param: str) -> str:
    ctx.require_writes()
    entity = fresh(ctx, "dup")
    create(ctx, entity, "the first create")
    response = ctx.send("POST", ctx.collection_path, token=ctx.token(), body=entity)
    expect_problem(response, 409, "a second create with the same id")
    return "409 for a second create"


@check("QM-WRITE-004", "idempotent-upsert")
def idempotent_upsert(ctx: RunContext, param: str) -> str:
    ctx.require_writes()
    entity = fresh(ctx, "upsert")
    path = ctx.entity_path(entity["id"])
    first = ctx.send("PUT", path, token=ctx.token(), body=entity)
    expect_status(first, {200, 201}, "the first PUT of a new id")
    after_first = json_body(ctx.get(path, token=ctx.token()), "a read after the first PUT")
    second = ctx.send("PUT", path, token=ctx.token(), body=entity)
    expect_status(second, 200, "the same PUT again")
    after_second = json_body(ctx.get(path, token=ctx.token()), "a read after the second PUT")
    changed = sorted(k for k in set(after_first) | set(after_second) if after_first.get(k) != after_second.get(k))
    changed = [k for k in changed if k != "dateModified"]
    expect(not changed, f"repeating the PUT changed {', '.join(changed)}", expected="the same state")
    listed = ctx.get(ctx.collection_path, token=ctx.token(), params={"city": ctx.city, "limit": "1000"})
    ids = [item.get("id") for item in json_body(listed, "a list").get("items", []) if isinstance(item, dict)]
    expect(ids.count(entity["id"]) <= 1, "the upserted entity is listed twice", expected="one entity")
    return "two identical PUTs leave one entity in the same state"


@check("QM-WRITE-005", "if-match")
def if_match(ctx: RunContext, param: str) -> str:
    ctx.require_writes()
    entity = fresh(ctx, "ifmatch")
    create(ctx, entity, "a create")
    path = ctx.entity_path(entity["id"])
    etag = ctx.get(path, token=ctx.token()).headers.get("etag")
    expect(bool(etag), "the entity has no ETag", expected="an ETag header")
    assert etag is not None
    changed = copy.deepcopy(entity)
    changed["dateModified"] = entity["dateModified"].replace("00:00Z", "30:00Z")
    stale = '"qala-conformance-stale-etag"'
    response = ctx.send("PUT", path, token=ctx.token(), body=changed, headers={"If-Match": stale})
    expect_problem(response, 412, "a PUT with an If-Match that is not the current ETag")
    response = ctx.send("PUT", path, token=ctx.token(), body=changed, headers={"If-Match": etag})
    expect_status(response, 200, "a PUT with the current ETag")
    return "412 for a stale If-Match, 200 for the current one"


@check("QM-WRITE-006", "etag")
def etag(ctx: RunContext, param: str) -> str:
    entity = ctx.seeded()[0]
    response = ctx.get(ctx.entity_path(entity["id"]), token=ctx.token())
    expect_status(response, 200, "a single read")
    expect(bool(response.headers.get("etag")), "the single read has no ETag", expected="an ETag header")
    return "single reads carry an ETag"


@check("QM-WRITE-007", "delete")
def delete(ctx: RunContext, param: str) -> str:
    ctx.require_writes()
    entity = fresh(ctx, "delete")
    create(ctx, entity, "a create")
    path = ctx.entity_path(entity["id"])
    response = ctx.send("DELETE", path, token=ctx.token())
    expect_status(response, 204, "a DELETE")
    response = ctx.get(path, token=ctx.token())
    if response.status_code != 404:
        raise CheckFailed(f"the deleted entity still answers {response.status_code}", expected="HTTP 404")
    return "204, then 404"
