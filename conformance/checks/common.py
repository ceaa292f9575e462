"""Assertions the checks share: status codes, problem details, pages and walking a list to its end."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from conformance.context import JsonObject, RunContext
from conformance.outcomes import CheckFailed, expect
from conformance.seeding import format_instant, parse_instant

PROBLEM_JSON = "application/problem+json"
MAX_PAGES = 200
STACK_TRACE_MARKERS = ("Traceback (most recent call last)", 'File "/', "  at ", "Exception in thread", "sqlalchemy.")


def describe(response: httpx.Response) -> str:
    media = response.headers.get("content-type", "no content type")
    return f"{response.request.method} {response.request.url.path} answered {response.status_code} ({media})"


def expect_status(response: httpx.Response, allowed: set[int] | int, what: str) -> None:
    codes = {allowed} if isinstance(allowed, int) else allowed
    listed = " or ".join(str(code) for code in sorted(codes))
    expect(response.status_code in codes, f"{what}: {describe(response)}", expected=f"HTTP {listed}")


def json_body(response: httpx.Response, what: str) -> Any:
    try:
        return response.json()
    except ValueError:
        raise CheckFailed(f"{what}: the body is not JSON ({describe(response)})", expected="a JSON body") from None


def problem_issues(response: httpx.Response) -> list[str]:
    """What is wrong with ``response`` as an RFC 9457 problem document (empty when nothing)."""
    issues = []
    media = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != PROBLEM_JSON:
        issues.append(f"content type is {media or 'missing'!r}, not {PROBLEM_JSON}")
    try:
        body = response.json()
    except ValueError:
        return [*issues, "the body is not JSON"]
    if not isinstance(body, dict):
        return [*issues, "the body is not a JSON object"]
    for member, kind in (("type", str), ("title", str), ("status", int), ("detail", str)):
        if not isinstance(body.get(member), kind):
            issues.append(f"member {member!r} is missing or not a {kind.__name__}")
    if isinstance(body.get("status"), int) and body["status"] != response.status_code:
        issues.append(f"member 'status' is {body['status']} but the response status is {response.status_code}")
    return issues


PROBLEM_REQUIREMENT = "QM-ERR-001"


def expect_problem(response: httpx.Response, allowed: set[int] | int, what: str) -> JsonObject:
    """The status must be one of ``allowed``; a body that is not a problem document fails with QM-ERR-001 as its
    cause, so one missing ``status`` member is reported as one root cause, not as every test that met it."""
    expect_status(response, allowed, what)
    issues = problem_issues(response)
    expect(
        not issues,
        f"{what}: not RFC 9457 problem details: {'; '.join(issues)}",
        expected=PROBLEM_JSON,
        cause=PROBLEM_REQUIREMENT,
    )
    body: JsonObject = response.json()
    return body


PAGE_REQUIREMENT, LIMIT_REQUIREMENT = "QM-LIST-007", "QM-LIST-002"
Predicate = Callable[[JsonObject], bool]


def page(response: httpx.Response, what: str) -> tuple[list[JsonObject], str | None]:
    """The ``items`` and ``next`` of a list response, failing (caused by QM-LIST-007) when it is not a page."""
    expect_status(response, 200, what)
    expected = '{"items": [...], "next": url or null}'
    try:
        body = response.json()
    except ValueError:
        body = None
    shape = PAGE_REQUIREMENT
    expect(isinstance(body, dict), f"{what}: the list body is not a JSON object", expected=expected, cause=shape)
    assert isinstance(body, dict)
    expect(
        isinstance(body.get("items"), list), f"{what}: the page has no 'items' array", expected=expected, cause=shape
    )
    expect("next" in body, f"{what}: the page has no 'next' member", expected=expected, cause=shape)
    next_link = body["next"]
    expect(next_link is None or isinstance(next_link, str), f"{what}: 'next' is neither a URL nor null", cause=shape)
    return body["items"], next_link


def walk(
    ctx: RunContext,
    params: dict[str, str],
    token: str,
    what: str,
    *,
    matches: Predicate | None = None,
    rule: str = "",
) -> tuple[list[JsonObject], int]:
    """Every item of a list, following ``next`` links; returns the items and the number of pages.

    Every page, not only the first, must hold at most ``limit`` items (else QM-LIST-002 is the cause) and, when
    ``matches`` is given, only items that match the query (else ``rule``, the filter's requirement, is).
    """
    limit = int(params["limit"]) if params.get("limit", "").isdigit() else None
    items: list[JsonObject] = []
    pages, next_link = 0, None
    while pages == 0 or next_link:
        if pages >= MAX_PAGES:
            raise CheckFailed(f"{what}: still a next link after {MAX_PAGES} pages", expected="a last page")
        label = what if pages == 0 else f"{what} (page {pages + 1})"
        if pages == 0:
            response = ctx.get(ctx.collection_path, token=token, params=params)
        else:
            assert next_link is not None
            response = ctx.get(next_link, token=token)
        more, next_link = page(response, label)
        pages += 1
        if limit is not None:
            expect(
                len(more) <= limit,
                f"{label}: {len(more)} items on a page of limit={limit}",
                expected=f"at most {limit} items on every page",
                cause=LIMIT_REQUIREMENT,
            )
        if matches is not None:
            wrong = [str(item.get("id")) for item in more if isinstance(item, dict) and not matches(item)]
            expect(
                not wrong,
                f"{label}: items that do not match the query: {', '.join(wrong[:10])}",
                expected="only items that match, on every page",
                cause=rule,
            )
        items.extend(more)
    return items, pages


def seeded_scope(ctx: RunContext) -> dict[str, str]:
    """List parameters that narrow the collection to the run's data (both cities) and little else."""
    instants = [parse_instant(entity.get("dateModified")) for entity in ctx.seeded()]
    known = [instant for instant in instants if instant is not None]
    return {"updatedSince": format_instant(min(known))} if known else {}
