"""Errors: problem details everywhere, no stack traces, bad input is a 4xx and never a 5xx.

The bad inputs are the ones a careless client really sends: malformed JSON, a huge or non-numeric ``limit``,
a forged cursor, a malformed ``bbox`` or ``updatedSince``.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx

from conformance.checks.common import STACK_TRACE_MARKERS, describe, expect_problem, expect_status, problem_issues
from conformance.checks.registry import check
from conformance.context import RunContext
from conformance.outcomes import CheckFailed, expect
from conformance.seeding import SEED_COUNT, make_entity

Probe = Callable[[RunContext], httpx.Response]


def _bad_json(ctx: RunContext) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    return ctx.send("POST", ctx.collection_path, token=ctx.token(), content=b'{"id": "urn:', headers=headers)


BAD_INPUTS: dict[str, Probe] = {
    "malformed-json": _bad_json,
    "huge-limit": lambda ctx: ctx.get(ctx.collection_path, token=ctx.token(), params={"limit": "1" + "0" * 30}),
    "non-numeric-limit": lambda ctx: ctx.get(ctx.collection_path, token=ctx.token(), params={"limit": "ten"}),
    "forged-cursor": lambda ctx: ctx.get(ctx.collection_path, token=ctx.token(), params={"cursor": "!!not-a-cursor~"}),
    "bad-bbox": lambda ctx: ctx.get(ctx.collection_path, token=ctx.token(), params={"bbox": "1,2,three"}),
    "bad-updated-since": lambda ctx: ctx.get(
        ctx.collection_path, token=ctx.token(), params={"updatedSince": "yesterday"}
    ),
    "malformed-token": lambda ctx: ctx.get(ctx.collection_path, token="not.a.token"),  # noqa: S106 -- a deliberately malformed token,
}

ERROR_PROBES: dict[str, Probe] = {
    "unauthorized": lambda ctx: ctx.get(ctx.collection_path, token=None),
    "not-found": lambda ctx: ctx.get(ctx.entity_path(ctx.new_entity_id("missing")), token=ctx.token()),
    "bad-request": BAD_INPUTS["forged-cursor"],
    "forbidden": lambda ctx: ctx.get(ctx.collection_path, token=ctx.token(["other-collection:read"])),
}


@check("QM-ERR-001", "problem-details", params=lambda profile: sorted(ERROR_PROBES))
def problem_details(ctx: RunContext, param: str) -> str:
    response = ERROR_PROBES[param](ctx)
    expect(response.status_code >= 400, f"{describe(response)} where an error was due", expected="a 4xx status")
    issues = problem_issues(response)
    expect(
        not issues,
        f"{describe(response)}: not RFC 9457 problem details: {'; '.join(issues)}",
        expected="application/problem+json with type, title, status",
    )
    return f"{response.status_code} as problem details"


@check("QM-ERR-002", "no-stack-trace", params=lambda profile: sorted(BAD_INPUTS))
def no_stack_trace(ctx: RunContext, param: str) -> str:
    response = BAD_INPUTS[param](ctx)
    leaked = [marker.strip() for marker in STACK_TRACE_MARKERS if marker in response.text]
    expect(
        not leaked,
        f"{describe(response)} with what looks like a stack trace ({', '.join(leaked)})",
        expected="a problem detail for people, no internals",
    )
    return "no stack trace"


@check("QM-ERR-003", "bad-input", params=lambda profile: sorted(BAD_INPUTS))
def bad_input(ctx: RunContext, param: str) -> str:
    response = BAD_INPUTS[param](ctx)
    if response.status_code >= 500:
        raise CheckFailed(f"{param}: {describe(response)}", expected="a 4xx problem, never a server error")
    expect_problem(response, {400, 401, 422}, f"{param}")
    return f"{response.status_code} for {param}"


@check("QM-ERR-004", "unknown-id")
def unknown_id(ctx: RunContext, param: str) -> str:
    response = ctx.get(ctx.entity_path(ctx.new_entity_id("never-written")), token=ctx.token())
    expect_problem(response, 404, "a read of an id that was never written")
    return "404 for an unknown id"


@check("QM-ERR-005", "unsupported-media-type")
def unsupported_media_type(ctx: RunContext, param: str) -> str:
    ctx.require_writes()
    entity = make_entity(ctx.profile, ctx.written[0], run_id=ctx.run_id, name="text", city=ctx.city, n=SEED_COUNT)
    ctx.created.add(entity["id"])
    response = ctx.send(
        "POST",
        ctx.collection_path,
        token=ctx.token(),
        content=str(entity).encode(),
        headers={"Content-Type": "text/plain"},
    )
    expect_status(response, 415, "a create with a text/plain body")
    return "415 for text/plain"
