"""Writes: create, validation errors, conflicts, idempotent upsert, If-Match, ETags and delete.

Each test writes its own entities (ids carry the run id and are deleted at the end of the run), so tests do
not depend on one another's side effects. Every refused write is checked to have left no trace.
"""

from __future__ import annotations

import json

from conformance.checks.common import expect_problem, expect_status, json_body, seeded_scope, walk
from conformance.checks.operations import changed, fresh
from conformance.checks.registry import check
from conformance.context import JsonObject, RunContext
from conformance.invalid import case_names, invalid_cases
from conformance.outcomes import CheckFailed, expect
from schemas import SchemaVersion


def create(ctx: RunContext, entity: JsonObject, what: str) -> None:
    response = ctx.send("POST", ctx.collection_path, token=ctx.token(), body=entity)
    expect_status(response, 201, what)


def _absent(ctx: RunContext, entity_id: str, what: str) -> None:
    status = ctx.get(ctx.entity_path(entity_id), token=ctx.token()).status_code
    expect(status == 404, f"{what}, yet {entity_id} now answers {status}", expected="nothing stored (404)")


def _etag(ctx: RunContext, path: str) -> str:
    response = ctx.get(path, token=ctx.token())
    expect_status(response, 200, "a single read")
    etag = str(response.headers.get("etag", ""))
    expect(bool(etag), "the single read has no ETag", expected="an ETag header", cause="QM-WRITE-006")
    return etag


@check("QM-WRITE-001", "create", params=lambda profile: ["city", "other-city", "charset"])
def create_entity(ctx: RunContext, param: str) -> str:
    ctx.require_writes()
    entity = fresh(ctx, f"create-{param}", city=ctx.other_city if param == "other-city" else ctx.city)
    if param == "charset":  # application/json with a charset parameter is still JSON
        content = json.dumps(entity).encode()
        headers = {"Content-Type": "application/json; charset=utf-8"}
        response = ctx.send("POST", ctx.collection_path, token=ctx.token(), content=content, headers=headers)
    else:
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


def _validation_params(profile: SchemaVersion) -> list[str]:
    return [f"{method}:{name}" for name in case_names(profile.collection) for method in ("POST", "PUT")]


@check("QM-WRITE-002", "validation-problem", params=_validation_params)
def validation_problem(ctx: RunContext, param: str) -> str:
    ctx.require_writes()
    method, name = param.split(":", 1)
    case = invalid_cases(ctx.profile, ctx.run_id, ctx.cities)[name]
    entity = case.entity
    entity_id = str(entity.get("id"))
    ctx.created.add(entity_id)
    path = ctx.collection_path if method == "POST" else ctx.entity_path(entity_id)
    response = ctx.send(method, path, token=ctx.token(), body=entity)
    what = f"{method} of an invalid entity ({case.reason})"
    body = expect_problem(response, 422, what)
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
    expect(
        case.pointer in seen,
        f"the errors do not point at {case.pointer} (they point at {', '.join(sorted(seen))})",
        expected=f"a pointer {case.pointer}",
    )
    _absent(ctx, entity_id, f"{method} answered 422")
    return f"422 pointing at {case.pointer}"


@check("QM-WRITE-003", "duplicate-create")
def duplicate_create(ctx: RunContext, param: str) -> str:
    ctx.require_writes()
    entity = fresh(ctx, "dup")
    create(ctx, entity, "the first create")
    before = json_body(ctx.get(ctx.entity_path(entity["id"]), token=ctx.token()), "a read")
    response = ctx.send("POST", ctx.collection_path, token=ctx.token(), body=changed(ctx, entity, "duplicate"))
    expect_problem(response, 409, "a second create with the same id")
    after = json_body(ctx.get(ctx.entity_path(entity["id"]), token=ctx.token()), "a read")
    expect(before == after, "the refused second create changed the entity", expected="the first entity unchanged")
    return "409 for a second create, the first entity unchanged"


@check("QM-WRITE-004", "idempotent-upsert")
def idempotent_upsert(ctx: RunContext, param: str) -> str:
    ctx.require_writes()
    entity = fresh(ctx, "upsert")
    path = ctx.entity_path(entity["id"])
    first = ctx.send("PUT", path, token=ctx.token(), body=entity)
    expect_status(first, {200, 201}, "the first PUT of a new id")
    answered = json_body(first, "the first PUT")
    expect(
        isinstance(answered, dict) and answered.get("id") == entity["id"],
        "the PUT's answer is not the entity it stored",
        expected=f"the entity {entity['id']} in the body of the answer",
    )
    after_first = json_body(ctx.get(path, token=ctx.token()), "a read after the first PUT")
    second = ctx.send("PUT", path, token=ctx.token(), body=entity)
    expect_status(second, 200, "the same PUT again")
    after_second = json_body(ctx.get(path, token=ctx.token()), "a read after the second PUT")
    keys = set(after_first) | set(after_second)
    differ = sorted(k for k in keys if after_first.get(k) != after_second.get(k) and k != "dateModified")
    expect(not differ, f"repeating the PUT changed {', '.join(differ)}", expected="the same state")
    replacement = changed(ctx, entity, "replaced")
    third = ctx.send("PUT", path, token=ctx.token(), body=replacement)
    expect_status(third, 200, "a PUT that replaces the entity")
    stored = json_body(ctx.get(path, token=ctx.token()), "a read after the replacing PUT")
    lost = sorted(k for k in replacement if k != "dateModified" and stored.get(k) != replacement[k])
    expect(
        not lost,
        f"the replacing PUT did not store {', '.join(lost)}",
        expected="the replacement as sent",
        cause="" if ctx.profile.is_valid(stored) else "QM-DATA-001",  # an invalid entity served is the root
    )
    items, _ = walk(ctx, {**seeded_scope(ctx), "limit": "1000"}, ctx.token(), "a list")
    ids = [item.get("id") for item in items if isinstance(item, dict)]
    expect(
        ids.count(entity["id"]) == 1, f"the upserted entity is listed {ids.count(entity['id'])} times", expected="once"
    )
    return "two identical PUTs leave one entity in the same state; a third replaces it"


@check("QM-WRITE-008", "id-mismatch")
def id_mismatch(ctx: RunContext, param: str) -> str:
    ctx.require_writes()
    url_entity, body_entity = fresh(ctx, "mismatch-url"), fresh(ctx, "mismatch-body")
    response = ctx.send("PUT", ctx.entity_path(url_entity["id"]), token=ctx.token(), body=body_entity)
    problem = expect_problem(response, {400, 422}, "a PUT whose body id differs from the URL's")
    if response.status_code == 422:  # the mandate's Unprocessable: errors point at what is wrong
        errors = problem.get("errors")
        pointers = {e.get("pointer") for e in errors if isinstance(e, dict)} if isinstance(errors, list) else set()
        shaped = isinstance(errors, list) and all(
            isinstance(e, dict) and all(isinstance(e.get(k), str) for k in ("pointer", "keyword", "message"))
            for e in errors
        )
        expect(shaped and "/id" in pointers, f"the 422 does not point at /id: {errors!r}", expected="an error at /id")
    for entity_id in (url_entity["id"], body_entity["id"]):
        _absent(ctx, entity_id, "the mismatched PUT was refused")
    return "the mismatched PUT is refused and stores nothing"


@check("QM-WRITE-005", "if-match", params=lambda profile: ["PUT", "DELETE"])
def if_match(ctx: RunContext, param: str) -> str:
    """A stale or superseded ETag is refused (and changes nothing); the current one is honoured."""
    ctx.require_writes()
    entity = fresh(ctx, f"ifmatch-{param.lower()}")
    create(ctx, entity, "a create")
    path = ctx.entity_path(entity["id"])
    original = _etag(ctx, path)
    response = ctx.send(
        "PUT", path, token=ctx.token(), body=changed(ctx, entity, "first"), headers={"If-Match": original}
    )
    expect_status(response, 200, "a PUT with the current ETag")
    current = _etag(ctx, path)
    expect(
        current != original,
        f"the ETag stayed {original} after the entity changed, so a superseded version cannot be told apart",
        expected="a new ETag after a write",
        cause="QM-WRITE-006",
    )
    before = json_body(ctx.get(path, token=ctx.token()), "a read")
    for stale in ('"qala-conformance-stale-etag"', original):
        if param == "PUT":
            body = changed(ctx, entity, "second")
            response = ctx.send("PUT", path, token=ctx.token(), body=body, headers={"If-Match": stale})
        else:
            response = ctx.send("DELETE", path, token=ctx.token(), headers={"If-Match": stale})
        label = "a superseded ETag" if stale == original else "an ETag the entity never had"
        expect_problem(response, 412, f"a {param} with If-Match: {label}")
        after = ctx.get(path, token=ctx.token())
        expect(
            after.status_code == 200 and after.json() == before,
            f"the {param} refused with 412 still changed the entity",
            expected="the entity unchanged",
        )
    if param == "PUT":
        body = changed(ctx, entity, "second")
        response = ctx.send("PUT", path, token=ctx.token(), body=body, headers={"If-Match": current})
        expect_status(response, 200, "a PUT with the current ETag")
    else:
        response = ctx.send("DELETE", path, token=ctx.token(), headers={"If-Match": current})
        expect_status(response, 204, "a DELETE with the current ETag")
    return f"412 for a stale or superseded If-Match on {param}, success with the current one"


@check("QM-WRITE-005", "if-match-any")
def if_match_any(ctx: RunContext, param: str) -> str:
    """``If-Match: *`` matches any current version, and none when the entity does not exist (RFC 9110 §13.1.1)."""
    ctx.require_writes()
    entity = fresh(ctx, "ifmatch-any")
    path = ctx.entity_path(entity["id"])
    response = ctx.send("PUT", path, token=ctx.token(), body=entity, headers={"If-Match": "*"})
    expect_problem(response, 412, "a PUT of a new id with If-Match: * (there is no current version)")
    _absent(ctx, entity["id"], "the PUT was refused with 412")
    create(ctx, entity, "a create")
    response = ctx.send("PUT", path, token=ctx.token(), body=changed(ctx, entity), headers={"If-Match": "*"})
    expect_status(response, 200, "a PUT of an existing entity with If-Match: *")
    return "If-Match: * refused for a new id, honoured for an existing one"


@check("QM-WRITE-006", "etag", params=lambda profile: ["present", "changes"])
def etag(ctx: RunContext, param: str) -> str:
    if param == "present":
        for entity in ctx.seeded():
            _etag(ctx, ctx.entity_path(entity["id"]))
        return "single reads carry an ETag"
    ctx.require_writes()
    entity = fresh(ctx, "etag")
    create(ctx, entity, "a create")
    path = ctx.entity_path(entity["id"])
    first, again = _etag(ctx, path), _etag(ctx, path)
    expect(first == again, f"two reads of an unchanged entity give ETags {first} and {again}", expected="one ETag")
    response = ctx.send("PUT", path, token=ctx.token(), body=changed(ctx, entity))
    expect_status(response, 200, "a PUT that changes the entity")
    after = _etag(ctx, path)
    expect(after != first, f"the ETag stayed {first} after the entity changed", expected="a new ETag")
    written = response.headers.get("etag")
    expect(
        written == after,
        f"the PUT answered with ETag {written}, a read of the entity then gives {after}",
        expected="the ETag of the stored version on the write's answer (for the next If-Match)",
    )
    return "the ETag is stable while the entity is, and changes with it"


@check("QM-WRITE-007", "delete")
def delete(ctx: RunContext, param: str) -> str:
    ctx.require_writes()
    entity = fresh(ctx, "delete", city=ctx.other_city)
    create(ctx, entity, "a create")
    path = ctx.entity_path(entity["id"])
    response = ctx.send("DELETE", path, token=ctx.token())
    expect_status(response, 204, "a DELETE")
    read = ctx.get(path, token=ctx.token())
    if read.status_code != 404:
        raise CheckFailed(f"the deleted entity still answers {read.status_code}", expected="HTTP 404")
    for params in (
        {**seeded_scope(ctx), "limit": "1000"},
        {**seeded_scope(ctx), "city": ctx.other_city, "limit": "1000"},
    ):
        items, _ = walk(ctx, params, ctx.token(), "a list after the delete")
        listed = [item for item in items if isinstance(item, dict) and item.get("id") == entity["id"]]
        expect(not listed, "the deleted entity is still listed", expected="gone from every list")
    again = ctx.send("DELETE", path, token=ctx.token())
    expect_problem(again, 404, "a second DELETE of the same id")
    return "204, then 404, gone from lists, and 404 for a second DELETE"
