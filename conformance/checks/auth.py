"""The authorization matrix: the suite is the issuer the module trusts, and mints good and bad tokens.

Each bad token differs from a good one (every scope, both cities of the run) in exactly one respect, so a failure
names one broken rule; and each is tried on every mandated operation (list, read, create, replace, delete),
because a module that checks tokens on reads only is as open as one that checks nothing. A refused write must
also leave no trace. The forgeries cover the classic JOSE attacks: ``alg: none``, a wrong signature under the
issuer's ``kid``, keys the token names itself (``jwk``, ``jku``, ``x5c``, ``x5u``) and HS256 with the issuer's
public key as the HMAC secret.
"""

from __future__ import annotations

from collections.abc import Callable

from joserfc.jwk import ECKey

from conformance.checks.common import expect_problem, expect_status, json_body, seeded_scope, walk
from conformance.checks.operations import Attempt, operations, try_operation, write_operations
from conformance.checks.registry import check
from conformance.context import ALL_SCOPES, RunContext
from conformance.outcomes import expect

HOUR = 3600
Minter = Callable[[RunContext], str | None]


def _minted(ctx: RunContext, **kwargs: object) -> str:
    return ctx.issuer.mint(
        audience=ctx.audience,
        scopes=ctx.scopes(ALL_SCOPES),
        cities=list(ctx.cities),
        **kwargs,  # type: ignore[arg-type]
    )


def _header_key(where: str) -> Minter:
    def mint(ctx: RunContext) -> str:
        return ctx.issuer.mint_with_header_key(
            where, audience=ctx.audience, scopes=ctx.scopes(ALL_SCOPES), cities=list(ctx.cities)
        )

    return mint


def _confused(form: str) -> Minter:
    def mint(ctx: RunContext) -> str:
        return ctx.issuer.mint_hs256_confused(
            audience=ctx.audience, scopes=ctx.scopes(ALL_SCOPES), cities=list(ctx.cities), form=form
        )

    return mint


def _unsigned(ctx: RunContext) -> str:
    return ctx.issuer.mint_unsigned(audience=ctx.audience, scopes=ctx.scopes(ALL_SCOPES), cities=list(ctx.cities))


def _now(ctx: RunContext) -> int:
    return int(ctx.issuer.clock())


BAD_TOKENS: dict[str, tuple[str, str, Minter]] = {
    # name: (requirement, what it is, how to mint it)
    "no-token": ("QM-AUTH-001", "no token", lambda ctx: None),
    "expired-token": (
        "QM-AUTH-002",
        "a token that expired an hour ago",
        lambda ctx: _minted(
            ctx, changes={"iat": _now(ctx) - 2 * HOUR, "nbf": _now(ctx) - 2 * HOUR, "exp": _now(ctx) - HOUR}
        ),
    ),
    "missing-exp": ("QM-AUTH-002", "a token without exp", lambda ctx: _minted(ctx, without=("exp",))),
    "not-yet-valid": (
        "QM-AUTH-003",
        "a token valid only from an hour from now",
        lambda ctx: _minted(
            ctx, changes={"iat": _now(ctx) + HOUR, "nbf": _now(ctx) + HOUR, "exp": _now(ctx) + 2 * HOUR}
        ),
    ),
    "wrong-audience": (
        "QM-AUTH-004",
        "a token for another audience",
        lambda ctx: _minted(ctx, changes={"aud": "https://another-module.example.kz"}),
    ),
    "missing-audience": ("QM-AUTH-004", "a token without aud", lambda ctx: _minted(ctx, without=("aud",))),
    "missing-issuer": ("QM-AUTH-005", "a token without iss", lambda ctx: _minted(ctx, without=("iss",))),
    "wrong-issuer": (
        "QM-AUTH-005",
        "a token from another issuer (same key)",
        lambda ctx: _minted(ctx, changes={"iss": ctx.issuer.url + "/impostor"}),
    ),
    "forged-signature": (
        "QM-AUTH-006",
        "a token signed by another key under the issuer's kid",
        lambda ctx: _minted(ctx, key=ECKey.generate_key("P-256")),
    ),
    "alg-none": (
        "QM-AUTH-007",
        "an unsigned token (alg: none)",
        _unsigned,
    ),
    "wrong-type": (
        "QM-AUTH-008",
        "a JWT whose typ is JWT, not at+jwt",
        lambda ctx: _minted(ctx, header={"typ": "JWT"}),
    ),
    **{
        f"{where}-header": (
            "QM-AUTH-014",
            f"a token signed by a key its own {where} header supplies",
            _header_key(where),
        )
        for where in ("jwk", "jku", "x5c", "x5u")
    },
    **{
        f"hs256-{form}": (
            "QM-AUTH-015",
            f"an HS256 token keyed with the issuer's public key ({form.upper()})",
            _confused(form),
        )
        for form in ("pem", "jwk")
    },
}


def _refused(  # noqa: PLR0917 -- one call shape for every refusal of the matrix
    ctx: RunContext, operation: str, token: str | None, status: int, what: str, city: str = ""
) -> Attempt:
    attempt = try_operation(ctx, operation, token, city=city or None)
    expect_problem(attempt.response, status, f"{attempt.what} with {what}")
    expect(
        not attempt.effect, f"{attempt.what} with {what} answered {status}, but {attempt.effect}", expected="no change"
    )
    return attempt


def _register_bad_token(name: str, requirement: str, what: str, mint: Minter) -> None:
    def bad_token(ctx: RunContext, param: str) -> str:
        token = mint(ctx)
        attempt = _refused(ctx, param, token, 401, what)
        challenge = attempt.response.headers.get("www-authenticate", "")
        expect(
            challenge.lower().startswith("bearer"),
            f"the 401 for {attempt.what} has no WWW-Authenticate: Bearer challenge",
            expected="WWW-Authenticate: Bearer ...",
        )
        return f"401 for {param} with {what}"

    bad_token.__name__ = f"bad_token_{name.replace('-', '_')}"
    check(requirement, name, params=operations)(bad_token)


for _name, (_requirement, _what, _mint) in BAD_TOKENS.items():
    _register_bad_token(_name, _requirement, _what, _mint)


ACCEPTED = {"list": 200, "read": 200, "create": 201, "replace": 200, "delete": 204}


@check("QM-AUTH-013", "valid-token", params=operations)
def valid_token(ctx: RunContext, param: str) -> str:
    """A token limited to either city of the run is accepted for that city."""
    for city in ctx.cities:
        attempt = try_operation(ctx, param, ctx.token(cities=[city]), city=city)
        expect_status(attempt.response, ACCEPTED[param], f"{attempt.what} with a valid token for {city}")
    return f"{param} accepted with a valid token for either city"


@check("QM-AUTH-009", "without-scope", params=operations)
def without_scope(ctx: RunContext, param: str) -> str:
    if param in ("list", "read"):
        scopes, missing = ["other-collection:read", "write", "read-personal"], "read"
    else:
        scopes, missing = ["read", "read-personal", "other-collection:write"], "write"
    _refused(ctx, param, ctx.token(scopes), 403, f"a token without {ctx.collection}:{missing}")
    return f"403 for {param} without {ctx.collection}:{missing}"


@check("QM-AUTH-010", "other-city", params=write_operations)
def other_city(ctx: RunContext, param: str) -> str:
    # both directions: a module that trusts a fixed city passes one of them, never both
    for allowed, touched in ((ctx.city, ctx.other_city), (ctx.other_city, ctx.city)):
        _refused(ctx, param, ctx.token(cities=[allowed]), 403, f"a token limited to {allowed}", city=touched)
    return f"403 for {param} in a city outside the token's, both ways"


# -- redaction, on every form of the list and on single reads ----------------------------------------------------


def list_forms(ctx: RunContext) -> dict[str, dict[str, str]]:
    """Every way of asking for a list, each narrowed to the seeded data of the run."""
    scope = seeded_scope(ctx)
    forms = {
        "plain": {**scope, "limit": "1000"},
        "later-pages": {**scope, "limit": "2"},
        "city": {**scope, "city": ctx.other_city, "limit": "1000"},
    }
    for field in sorted(ctx.profile.filterable_fields):
        values = sorted({str(e[field]) for e in ctx.seeded() if isinstance(e.get(field), str | int)})
        if values and field != "city":
            forms[f"filter-{field}"] = {**scope, field: values[0], "limit": "1000"}
    located = [e for e in ctx.seeded() if isinstance(e.get("location"), dict)]
    if located:
        forms["bbox"] = {**scope, "bbox": "-180,-90,180,90", "limit": "1000"}
    return forms


def _personal_seen(ctx: RunContext, token: str) -> tuple[dict[str, set[str]], int]:
    """Personal fields seen per list form and in single reads of every seeded entity."""
    found: dict[str, set[str]] = {}
    seeded_ids = {entity["id"] for entity in ctx.seeded()}
    seen = 0
    for form, params in list_forms(ctx).items():
        items, _ = walk(ctx, params, token, f"a list ({form})")
        for item in items:
            if isinstance(item, dict) and item.get("id") in seeded_ids:
                seen += 1
                found.setdefault(form, set()).update(set(item) & ctx.profile.personal_fields)
    for entity in ctx.seeded():
        single = ctx.get(ctx.entity_path(entity["id"]), token=token)
        expect_status(single, 200, "a single read")
        found.setdefault("single read", set()).update(
            set(json_body(single, "a single read")) & ctx.profile.personal_fields
        )
    return {form: fields for form, fields in found.items() if fields}, seen


@check("QM-AUTH-011", "personal-redacted")
def personal_redacted(ctx: RunContext, param: str) -> str:
    leaked, seen = _personal_seen(ctx, ctx.token(["read"]))
    expect(
        not leaked,
        "personal fields returned without read-personal: "
        + "; ".join(f"{form}: {', '.join(sorted(fields))}" for form, fields in sorted(leaked.items())),
        expected=f"no {', '.join(sorted(ctx.profile.personal_fields))} without {ctx.collection}:read-personal",
    )
    return f"personal fields redacted in {len(list_forms(ctx))} list forms ({seen} items) and single reads"


@check("QM-AUTH-012", "personal-served")
def personal_served(ctx: RunContext, param: str) -> str:
    written = {field for entity in ctx.written for field in entity} & ctx.profile.personal_fields
    if not written:
        return "no seeded entity carries personal fields"
    found, _ = _personal_seen(ctx, ctx.token(["read", "read-personal"]))
    missing = written - set().union(*found.values()) if found else written
    expect(
        not missing,
        f"personal fields withheld from read-personal: {', '.join(sorted(missing))}",
        expected="personal fields present for holders of read-personal",
    )
    return "personal fields served with read-personal"


@check("QM-AUTH-016", "invalid-token-error", params=lambda profile: ["no-token", "expired-token", "forged-signature"])
def invalid_token_error(ctx: RunContext, param: str) -> str:
    """A 401 for a token that was presented but refused names the error ``invalid_token``; a request that
    carried no token at all gets a challenge without an error code (RFC 6750 §3.1)."""
    _, _, mint = BAD_TOKENS[param]
    if param == "no-token":
        response = ctx.get(ctx.collection_path, token=None, params={"limit": "1"})
        expect_status(response, 401, "a list request without a token")
        challenge = response.headers.get("www-authenticate", "")
        expect(
            "error=" not in challenge.replace(" ", ""),
            f"the challenge {challenge!r} names an error although no token was sent",
            expected="WWW-Authenticate: Bearer realm=... (no error code)",
        )
        return "the challenge to a request without a token names no error"
    response = ctx.get(ctx.collection_path, token=mint(ctx), params={"limit": "1"})
    expect_status(response, 401, f"a list request with {BAD_TOKENS[param][1]}")
    challenge = response.headers.get("www-authenticate", "")
    expect(
        'error="invalid_token"' in challenge.replace(" ", ""),
        f"the challenge {challenge!r} does not name the error invalid_token",
        expected='WWW-Authenticate: Bearer error="invalid_token", ...',
    )
    return 'the challenge names error="invalid_token"'


@check("QM-AUTH-013", "typ-application-at-jwt")
def typ_application_at_jwt(ctx: RunContext, param: str) -> str:
    """RFC 9068 §4 allows both spellings of the access-token type: ``application/at+jwt`` is accepted too."""
    token = _minted(ctx, header={"typ": "application/at+jwt"})
    response = ctx.get(ctx.collection_path, token=token, params={"limit": "1"})
    expect_status(response, 200, "a list request with a valid token whose typ is application/at+jwt")
    return "typ application/at+jwt accepted"
