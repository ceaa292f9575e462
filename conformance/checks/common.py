"""Assertions the checks share: status codes, problem details, pages and walking a list to its end."""

from __future__ import annotations

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
    for member, kind in (("type", str), ("title", str), ("status", int)):
        if not isinstance(body.get(member), kind):
            issues.append(f"member {member!r} is missing or not a {kind.__name__}")
    if isinstance(body.get("status"), int) and body["status"] != response.status_code:
        issues.append(f"member 'status' is {body['status']} but the response status is {response.status_code}")
    return issues


def expect_problem(response: httpx.Response, allowed: set[int] | int, what: str) -> JsonObject:
    expect_status(response, allowed, what)
    issues = problem_issues(response)
    expect(not issues, f"{what}: not RFC 9457 problem details: {'; '.join(issues)}", expected=PROBLEM_JSON)
    body: JsonObject = response.json()
    return body


def page(response: httpx.Response, what: str) -> tuple[list[JsonObject], str | None]:
    """The ``items`` and ``next`` of a list response, failing when it is not a page object."""
    expect_status(response, 200, what)
    body = json_body(response, what)
    expected = '{"items": [...], "next": url or null}'
    expect(isinstance(body, dict), f"{what}: the list body is not an object", expected=expected)
    expect(isinstance(body.get("items"), list), f"{what}: the page has no 'items' array", expected=expected)
    expect("next" in body, f"{what}: the page has no 'next' member", expected=expected)
    next_link = body["next"]
    expect(next_link is None or isinstance(next_link, str), f"{what}: 'next' is neither a URL nor null")
    return body["items"], next_link


def walk(ctx: RunContext, params: dict[str, str], token: str, what: str) -> tuple[list[JsonObject], int]:
    """Every item of a list, following ``next`` links; returns the items and the number of pages."""
    items, next_link = page(ctx.get(ctx.collection_path, token=token, params=params), what)
    pages = 1
    while next_link:
        if pages >= MAX_PAGES:
            raise CheckFailed(f"{what}: still a next link after {MAX_PAGES} pages", expected="a last page")
        more, next_link = page(ctx.get(next_link, token=token), f"{what} (page {pages + 1})")
        items.extend(more)
        pages += 1
    return items, pages


def seeded_scope(ctx: RunContext) -> dict[str, str]:
    """List parameters that narrow the collection to the run's data (and little else)."""
    instants = [parse_instant(entity.get("dateModified")) for entity in ctx.seeded()]
    known = [instant for instant in instants if instant is not None]
    params = {"city": ctx.city}
    if known:
        params["updatedSince"] = format_instant(min(known))
    return params
