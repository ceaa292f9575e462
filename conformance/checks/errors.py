"""Errors: problem details for every error, no stack traces, and malformed input is a 4xx, never a 5xx.

Malformed inputs are generated for every parameter of every operation (query parameters of the list, the path
id, ``If-Match``, the request body): wrong values, wrong types, repeated parameters. A value the mandate's
parameter schema refuses must be answered with a 400 (or 422) problem; any other odd value may be accepted, but a
5xx is always a failure.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from conformance.checks.common import STACK_TRACE_MARKERS, describe, expect_problem, expect_status, problem_issues
from conformance.checks.operations import fresh
from conformance.checks.registry import check
from conformance.context import RunContext
from conformance.outcomes import CheckFailed, expect

Probe = Callable[[RunContext], httpx.Response]


@dataclass(frozen=True)
class BadInput:
    probe: Probe
    refuse: bool
    """The mandate's schema refuses the value: a 4xx problem is due. Otherwise only a 5xx fails."""

    def allowed(self, name: str) -> set[int]:
        """The statuses the mandate gives a refusal of this input."""
        operation, what = name.split(":", 1)
        if what.startswith("token="):
            return {401}
        if what.startswith("body="):
            return {400, 422}
        if operation == "list":
            return {400}  # a malformed query parameter is a Bad Request (the mandate's BadRequest response)
        return {400, 404, 422}


def _list(params: list[tuple[str, str | int | float | bool | None]]) -> Probe:
    def probe(ctx: RunContext) -> httpx.Response:
        headers = {**ctx.bearer(ctx.token()), "Accept": "application/json"}
        return ctx.client.request("GET", ctx.collection_path, headers=headers, params=params)

    return probe


def _entity(method: str, entity_id: str | None = None, headers: dict[str, str] | None = None) -> Probe:
    def probe(ctx: RunContext) -> httpx.Response:
        target = entity_id if entity_id is not None else ctx.new_entity_id("odd")
        path = f"{ctx.collection_path}/{target}"
        body = None
        if method == "PUT":
            body = fresh(ctx, "odd-put")
            path = ctx.entity_path(body["id"])
        return ctx.send(method, path, token=ctx.token(), body=body, headers=headers)

    return probe


def _body(method: str, content: bytes) -> Probe:
    def probe(ctx: RunContext) -> httpx.Response:
        path = ctx.collection_path if method == "POST" else ctx.entity_path(ctx.new_entity_id("odd-body"))
        headers = {"Content-Type": "application/json"}
        return ctx.send(method, path, token=ctx.token(), content=content, headers=headers)

    return probe


def _odd_token(header: str, payload: str = "{}") -> str:
    """Three dot-separated base64url parts that decode to JSON, but not to a JOSE header and claims."""
    parts = [base64.urlsafe_b64encode(text.encode()).decode().rstrip("=") for text in (header, payload, "sig")]
    return ".".join(parts)


_FORGED_CURSOR = base64.urlsafe_b64encode(b'{"nothing": 1}').decode().rstrip("=")

BAD_INPUTS: dict[str, BadInput] = {
    # list query parameters: values, types and counts
    "list:limit=ten": BadInput(_list([("limit", "ten")]), True),
    "list:limit=huge": BadInput(_list([("limit", "1" + "0" * 30)]), True),
    "list:limit=1.5": BadInput(_list([("limit", "1.5")]), True),
    "list:limit=empty": BadInput(_list([("limit", "")]), True),
    "list:limit=repeated": BadInput(_list([("limit", "1"), ("limit", "1000000")]), False),
    "list:limit=double-minus": BadInput(_list([("limit", "--5")]), True),
    "list:limit=superscript": BadInput(_list([("limit", "\u00b2")]), True),
    "list:limit=padded": BadInput(_list([("limit", " 5 ")]), False),  # lenient parsers read 5: allowed
    "list:cursor=garbage": BadInput(_list([("cursor", "!!not-a-cursor~")]), True),
    "list:cursor=forged": BadInput(_list([("cursor", _FORGED_CURSOR)]), True),
    "list:cursor=empty": BadInput(_list([("cursor", "")]), False),
    "list:bbox=three": BadInput(_list([("bbox", "1,2,three")]), True),
    "list:bbox=three-numbers": BadInput(_list([("bbox", "1,2,3")]), True),
    "list:bbox=five-numbers": BadInput(_list([("bbox", "1,2,3,4,5")]), True),
    "list:bbox=empty": BadInput(_list([("bbox", "")]), True),
    "list:updatedSince=word": BadInput(_list([("updatedSince", "yesterday")]), True),
    "list:updatedSince=naive": BadInput(_list([("updatedSince", "2030-01-01T00:00:00")]), True),
    "list:updatedSince=impossible": BadInput(_list([("updatedSince", "2030-02-30T00:00:00Z")]), True),
    "list:updatedSince=date-only": BadInput(_list([("updatedSince", "2030-01-01")]), True),
    "list:updatedSince=repeated": BadInput(
        _list([("updatedSince", "2030-01-01T00:00:00Z"), ("updatedSince", "x")]), False
    ),
    "list:city=odd": BadInput(_list([("city", "NOT A CITY ✓")]), False),
    "list:filter=odd": BadInput(_list([("status", "\u0000'\"; --")]), False),
    "list:unknown-parameter": BadInput(_list([("qctUnknown", "1")]), False),
    # the path id and If-Match of the entity operations
    "read:id=long": BadInput(_entity("GET", "x" * 5000), False),
    "read:id=odd": BadInput(_entity("GET", "%00%FF..%2F"), False),
    "read:id=other-type": BadInput(_entity("GET", "urn:ngsi-ld:Nothing:astana:x"), False),
    "delete:id=odd": BadInput(_entity("DELETE", "%00%FF..%2F"), False),
    "delete:if-match=odd": BadInput(_entity("DELETE", None, {"If-Match": 'W/"x\\'}), False),
    "replace:if-match=odd": BadInput(_entity("PUT", None, {"If-Match": '"unterminated'}), False),
    # request bodies
    "create:body=malformed-json": BadInput(_body("POST", b'{"id": "urn:'), True),
    "create:body=empty": BadInput(_body("POST", b""), True),
    "create:body=array": BadInput(_body("POST", b"[]"), True),
    "create:body=null": BadInput(_body("POST", b"null"), True),
    "create:body=string": BadInput(_body("POST", b'"entity"'), True),
    "create:body=id-number": BadInput(_body("POST", b'{"id": 5, "type": 7}'), True),
    "replace:body=malformed-json": BadInput(_body("PUT", b'{"id": "urn:'), True),
    "replace:body=array": BadInput(_body("PUT", b"[1, 2]"), True),
    "replace:body=null": BadInput(_body("PUT", b"null"), True),
    "replace:body=no-id": BadInput(_body("PUT", b'{"type": "x"}'), True),
    # a token that is not a JWT at all
    "list:token=malformed": BadInput(lambda ctx: ctx.get(ctx.collection_path, token="not.a.token"), True),  # noqa: S106
    "list:token=no-client-id": BadInput(
        lambda ctx: ctx.get(
            ctx.collection_path,
            token=ctx.issuer.mint(
                audience=ctx.audience, scopes=ctx.scopes(), cities=list(ctx.cities), without=("client_id",)
            ),
        ),
        False,
    ),
    "list:token=four-parts": BadInput(lambda ctx: ctx.get(ctx.collection_path, token=ctx.token() + ".e30"), True),
    "list:token=one-part": BadInput(lambda ctx: ctx.get(ctx.collection_path, token="eyJhbGciOiJFUzI1NiJ9"), True),  # noqa: S106
    "list:token=header-not-object": BadInput(lambda ctx: ctx.get(ctx.collection_path, token=_odd_token("[]")), True),
    "list:token=payload-not-object": BadInput(
        lambda ctx: ctx.get(ctx.collection_path, token=_odd_token('{"alg":"ES256","typ":"at+jwt"}', "[1]")), True
    ),
}


@check("QM-ERR-003", "bad-input", params=lambda profile: sorted(BAD_INPUTS))
def bad_input(ctx: RunContext, param: str) -> str:
    bad = BAD_INPUTS[param]
    if param.split(":", 1)[0] in ("create", "replace", "delete"):
        ctx.require_writes()
    response = bad.probe(ctx)
    ctx.answers[param] = (response, ctx.client.recording[-1])
    if response.status_code >= 500:
        raise CheckFailed(f"{param}: {describe(response)}", expected="a 4xx problem, never a server error")
    if bad.refuse:
        expect_problem(response, bad.allowed(param), param)
    return f"{response.status_code} for {param}"


@check("QM-ERR-002", "no-stack-trace")
def no_stack_trace(ctx: RunContext, param: str) -> str:
    probes = [name for name in sorted(BAD_INPUTS) if not (ctx.read_only and name.split(":")[0] != "list")]
    for name in probes:
        if name in ctx.answers:  # the answer QM-ERR-003 already got: shown again as this test's evidence
            response, exchange = ctx.answers[name]
            ctx.client.recording.append(exchange)
        else:
            response = BAD_INPUTS[name].probe(ctx)
        leaked = [marker.strip() for marker in STACK_TRACE_MARKERS if marker in response.text]
        expect(
            not leaked,
            f"{name}: {describe(response)} with what looks like a stack trace ({', '.join(leaked)})",
            expected="a problem detail for people, no internals",
        )
    return f"no stack trace in {len(probes)} answers to bad input"


def _conflict(ctx: RunContext) -> httpx.Response:
    entity = fresh(ctx, "conflict")
    ctx.send("POST", ctx.collection_path, token=ctx.token(), body=entity)
    return ctx.send("POST", ctx.collection_path, token=ctx.token(), body=entity)


def _precondition(ctx: RunContext) -> httpx.Response:
    entity = fresh(ctx, "precondition")
    ctx.send("POST", ctx.collection_path, token=ctx.token(), body=entity)
    path = ctx.entity_path(entity["id"])
    return ctx.send("DELETE", path, token=ctx.token(), headers={"If-Match": '"qala-conformance-stale"'})


def _unprocessable(ctx: RunContext) -> httpx.Response:
    entity = fresh(ctx, "unprocessable")
    entity["dateModified"] = "yesterday"
    return ctx.send("POST", ctx.collection_path, token=ctx.token(), body=entity)


ERROR_PROBES: dict[str, tuple[str, bool, Probe]] = {
    # name: (the requirement that makes it an error, needs writes, probe)
    "unauthorized": ("QM-AUTH-001", False, lambda ctx: ctx.get(ctx.collection_path, token=None)),
    "not-found": (
        "QM-ERR-004",
        False,
        lambda ctx: ctx.get(ctx.entity_path(ctx.new_entity_id("missing")), token=ctx.token()),
    ),
    "bad-request": ("QM-ERR-003", False, BAD_INPUTS["list:cursor=garbage"].probe),
    "forbidden": ("QM-AUTH-009", False, lambda ctx: ctx.get(ctx.collection_path, token=ctx.token(["other:read"]))),
    "conflict": ("QM-WRITE-003", True, _conflict),
    "precondition-failed": ("QM-WRITE-005", True, _precondition),
    "unprocessable": ("QM-WRITE-002", True, _unprocessable),
    "method-not-allowed": (
        "QM-ERR-001",
        False,
        lambda ctx: ctx.send("PATCH", ctx.entity_path(ctx.new_entity_id("patch")), token=ctx.token(), body={}),
    ),
}


@check("QM-ERR-001", "problem-details", params=lambda profile: sorted(ERROR_PROBES))
def problem_details(ctx: RunContext, param: str) -> str:
    cause, writes, probe = ERROR_PROBES[param]
    if writes:
        ctx.require_writes()
    response = probe(ctx)
    expect(
        response.status_code >= 400,
        f"{describe(response)} where an error was due",
        expected="a 4xx status",
        cause=cause,
    )
    issues = problem_issues(response)
    expect(
        not issues,
        f"{describe(response)}: not RFC 9457 problem details: {'; '.join(issues)}",
        expected="application/problem+json with type, title, status",
    )
    if response.status_code == 405:  # RFC 9110 §15.5.6: a 405 MUST list the allowed methods
        expect(bool(response.headers.get("allow")), "the 405 has no Allow header", expected="Allow: GET, PUT, ...")
    return f"{response.status_code} as problem details"


@check("QM-ERR-004", "unknown-id", params=lambda profile: ["GET", "DELETE"])
def unknown_id(ctx: RunContext, param: str) -> str:
    if param == "DELETE":
        ctx.require_writes()
    response = ctx.send(param, ctx.entity_path(ctx.new_entity_id("never-written")), token=ctx.token())
    expect_problem(response, 404, f"a {param} of an id that was never written")
    return f"404 for {param} of an unknown id"


@check("QM-ERR-005", "unsupported-media-type", params=lambda profile: ["POST", "PUT"])
def unsupported_media_type(ctx: RunContext, param: str) -> str:
    ctx.require_writes()
    entity = fresh(ctx, f"text-{param.lower()}")
    path = ctx.collection_path if param == "POST" else ctx.entity_path(entity["id"])
    response = ctx.send(
        param, path, token=ctx.token(), content=str(entity).encode(), headers={"Content-Type": "text/plain"}
    )
    expect_status(response, 415, f"a {param} with a text/plain body")
    return f"415 for text/plain on {param}"
