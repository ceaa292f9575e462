"""The authorization matrix: the suite is the issuer the module trusts, and mints good and bad tokens.

Each bad token differs from a good one in exactly one respect, so a failure names one broken rule. Read
checks use the list operation; scope and city checks also try writes.
"""

from __future__ import annotations

import copy

from joserfc.jwk import ECKey

from conformance.checks.common import expect_problem, expect_status, json_body
from conformance.checks.registry import check
from conformance.context import RunContext
from conformance.outcomes import expect

HOUR = 3600


def _read_refused(ctx: RunContext, token: str | None, what: str) -> str:
    response = ctx.get(ctx.collection_path, token=token, params={"limit": "1"})
    expect_problem(response, 401, f"a list request with {what}")
    return f"401 for {what}"


@check("QM-AUTH-013", "valid-token")
def valid_token(ctx: RunContext, param: str) -> str:
    response = ctx.get(ctx.collection_path, token=ctx.token(["read"]), params={"limit": "1"})
    expect_status(response, 200, "a list request with a valid token of the trusted issuer")
    return "200 for a valid token"


@check("QM-AUTH-001", "no-token")
def no_token(ctx: RunContext, param: str) -> str:
    response = ctx.get(ctx.collection_path, token=None, params={"limit": "1"})
    expect_problem(response, 401, "a list request without a token")
    challenge = response.headers.get("www-authenticate", "")
    expect(
        challenge.lower().startswith("bearer"),
        "the 401 has no WWW-Authenticate: Bearer challenge",
        expected="WWW-Authenticate: Bearer ...",
    )
    return "401 with a Bearer challenge"


def _minted(ctx: RunContext, **kwargs: object) -> str:
    return ctx.issuer.mint(
        audience=ctx.audience,
        scopes=[f"{ctx.collection}:read"],
        cities=[ctx.city],
        **kwargs,  # type: ignore[arg-type]
    )


@check("QM-AUTH-002", "expired-token")
def expired_token(ctx: RunContext, param: str) -> str:
    now = int(ctx.issuer.clock())
    token = _minted(ctx, changes={"iat": now - 2 * HOUR, "nbf": now - 2 * HOUR, "exp": now - HOUR})
    return _read_refused(ctx, token, "a token that expired an hour ago")


@check("QM-AUTH-003", "not-yet-valid")
def not_yet_valid(ctx: RunContext, param: str) -> str:
    now = int(ctx.issuer.clock())
    token = _minted(ctx, changes={"iat": now + HOUR, "nbf": now + HOUR, "exp": now + 2 * HOUR})
    return _read_refused(ctx, token, "a token valid only from an hour from now")


@check("QM-AUTH-004", "wrong-audience")
def wrong_audience(ctx: RunContext, param: str) -> str:
    token = _minted(ctx, changes={"aud": "https://another-module.example.kz"})
    return _read_refused(ctx, token, "a token for another audience")


@check("QM-AUTH-005", "wrong-issuer")
def wrong_issuer(ctx: RunContext, param: str) -> str:
    token = _minted(ctx, changes={"iss": ctx.issuer.url + "/impostor"})
    return _read_refused(ctx, token, "a token from another issuer (same key)")


@check("QM-AUTH-006", "forged-signature")
def forged_signature(ctx: RunContext, param: str) -> str:
    forger = ECKey.generate_key("P-256")  # signs under the suite's kid: only the signature is wrong
    return _read_refused(ctx, _minted(ctx, key=forger), "a token signed by another key under the issuer's kid")


@check("QM-AUTH-007", "alg-none")
def alg_none(ctx: RunContext, param: str) -> str:
    token = ctx.issuer.mint_unsigned(audience=ctx.audience, scopes=[f"{ctx.collection}:read"], cities=[ctx.city])
    return _read_refused(ctx, token, "an unsigned token (alg: none)")


@check("QM-AUTH-008", "wrong-type")
def wrong_type(ctx: RunContext, param: str) -> str:
    return _read_refused(ctx, _minted(ctx, header={"typ": "JWT"}), "a JWT whose typ is JWT, not at+jwt")


@check("QM-AUTH-009", "read-without-scope")
def read_without_scope(ctx: RunContext, param: str) -> str:
    token = ctx.token(["other-collection:read", f"{ctx.collection}:write"])
    response = ctx.get(ctx.collection_path, token=token, params={"limit": "1"})
    expect_problem(response, 403, f"a list request without {ctx.collection}:read")
    return "403 without the read scope"


@check("QM-AUTH-009", "write-without-scope")
def write_without_scope(ctx: RunContext, param: str) -> str:
    ctx.require_writes()
    entity = copy.deepcopy(ctx.written[0])
    entity["id"] = ctx.new_entity_id("scope")
    response = ctx.send("POST", ctx.collection_path, token=ctx.token(["read", "read-personal"]), body=entity)
    expect_problem(response, 403, f"a create without {ctx.collection}:write")
    return "403 without the write scope"


@check("QM-AUTH-010", "other-city-write")
def other_city_write(ctx: RunContext, param: str) -> str:
    ctx.require_writes()
    entity = copy.deepcopy(ctx.written[0])
    entity["id"] = ctx.new_entity_id("city", city=ctx.other_city)
    entity["city"] = ctx.other_city
    token = ctx.token(cities=[ctx.city])
    response = ctx.send("POST", ctx.collection_path, token=token, body=entity)
    expect_problem(response, 403, f"a create in {ctx.other_city} with a token limited to {ctx.city}")
    response = ctx.send("PUT", ctx.entity_path(entity["id"]), token=token, body=entity)
    expect_problem(response, 403, f"an upsert in {ctx.other_city} with a token limited to {ctx.city}")
    return f"403 for writes in {ctx.other_city}"


def _personal_present(ctx: RunContext, token: str) -> tuple[set[str], int]:
    """Personal fields seen in the seeded entities, through the list and the single read."""
    found: set[str] = set()
    seeded = ctx.seeded()
    response = ctx.get(ctx.collection_path, token=token, params={"city": ctx.city, "limit": "1000"})
    expect_status(response, 200, "a list request")
    body = json_body(response, "a list request")
    ids = {entity["id"] for entity in seeded}
    items = body.get("items", []) if isinstance(body, dict) else []
    for item in items:
        if isinstance(item, dict) and item.get("id") in ids:
            found |= set(item) & ctx.profile.personal_fields
    for entity in seeded[:3]:
        single = ctx.get(ctx.entity_path(entity["id"]), token=token)
        expect_status(single, 200, "a single read")
        found |= set(json_body(single, "a single read")) & ctx.profile.personal_fields
    return found, len(items)


@check("QM-AUTH-011", "personal-redacted")
def personal_redacted(ctx: RunContext, param: str) -> str:
    leaked, _ = _personal_present(ctx, ctx.token(["read"]))
    expect(
        not leaked,
        f"personal fields returned without read-personal: {', '.join(sorted(leaked))}",
        expected=f"no {', '.join(sorted(ctx.profile.personal_fields))} without {ctx.collection}:read-personal",
    )
    return "personal fields redacted"


@check("QM-AUTH-012", "personal-served")
def personal_served(ctx: RunContext, param: str) -> str:
    written = {field for entity in ctx.written for field in entity} & ctx.profile.personal_fields
    if not written:
        return "no seeded entity carries personal fields"
    found, _ = _personal_present(ctx, ctx.token(["read", "read-personal"]))
    missing = written - found
    expect(
        not missing,
        f"personal fields withheld from read-personal: {', '.join(sorted(missing))}",
        expected="personal fields present for holders of read-personal",
    )
    return "personal fields served with read-personal"
