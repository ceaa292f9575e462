"""The admin API under ``/api/v1/admin`` (scope ``admin``): members, clients, signing keys, audit log.

Each operation has a ``qala`` CLI twin (``qala members``, ``qala clients``, ``qala keys``, ``qala audit``).
``PATCH /clients/{client_id}`` changes a client's ``readCities`` and ``defaultScopes`` (a key left out is kept,
``null`` unsets it), the twin of ``qala clients read-cities`` and ``qala clients default-scopes``.

    curl -H "Authorization: Bearer $ADMIN_TOKEN" -H 'Content-Type: application/json' \\
         -d '{"member": "...", "name": "311", "scopes": ["service-requests:write"], "cities": ["astana"]}' \\
         http://127.0.0.1:8000/api/v1/admin/clients
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from gateway.audit_verify import verify_log
from gateway.auth import require_scope
from gateway.errors import ValidationFailed
from gateway.services import ServicesDep

router = APIRouter(prefix="/api/v1/admin", tags=["admin"], dependencies=[Depends(require_scope("admin"))])


DEFAULT_SCOPES = (
    "What a token request without `scope` is granted (RFC 6749 section 3.3): a subset of `scopes`; "
    "[] for nothing (such a request fails with invalid_scope); null (the default) for every scope the client holds"
)


class MemberIn(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    name: str = Field(min_length=1, max_length=300)
    bin: str = Field(description="12-digit BIN with a valid check digit")
    home_city: str = Field(alias="homeCity")


class ClientIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    member: str = Field(description="BIN of the member organisation")
    name: str = Field(min_length=1, max_length=300)
    scopes: list[str]
    cities: list[str] = Field(min_length=1)
    jwks: dict[str, Any] | None = Field(default=None, description="Public JWK Set for private_key_jwt")
    secret: bool = Field(default=True, description="Issue a client secret (shown once)")
    read_cities: list[str] | None = Field(
        default=None, alias="readCities", description="Narrow reads to these cities (default: public fields of all)"
    )
    default_scopes: list[str] | None = Field(default=None, alias="defaultScopes", description=DEFAULT_SCOPES)


class ClientPatch(BaseModel):
    """The settings of a client that may change after registration; a key left out is kept, ``null`` unsets it."""

    model_config = ConfigDict(extra="forbid")

    read_cities: list[str] | None = Field(
        default=None, alias="readCities", description="Narrow reads to these cities; null: public fields of all"
    )
    default_scopes: list[str] | None = Field(default=None, alias="defaultScopes", description=DEFAULT_SCOPES)


class RotateKeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    purpose: str = "access-token"
    lead_seconds: float | None = Field(default=None, ge=0, alias="leadSeconds")


@router.get("/members")
async def list_members(services: ServicesDep) -> list[dict[str, Any]]:
    return [member.as_json() for member in await services.directory.list_members()]


@router.post("/members", status_code=201)
async def create_member(body: MemberIn, services: ServicesDep) -> dict[str, Any]:
    member = await services.directory.create_member(name=body.name, bin=body.bin, home_city=body.home_city)
    return member.as_json()


@router.get("/members/{bin}")
async def get_member(bin: str, services: ServicesDep) -> dict[str, Any]:
    return (await services.directory.get_member(bin)).as_json()


@router.get("/clients")
async def list_clients(services: ServicesDep, member: str | None = None) -> list[dict[str, Any]]:
    return [client.as_json() for client in await services.directory.list_clients(member)]


@router.post("/clients", status_code=201)
async def create_client(body: ClientIn, services: ServicesDep) -> dict[str, Any]:
    """Register a client; the response is the only time its secret is shown."""
    client, secret = await services.directory.create_client(
        member=body.member,
        name=body.name,
        scopes=body.scopes,
        cities=body.cities,
        jwks=body.jwks,
        with_secret=body.secret,
        read_cities=body.read_cities,
        default_scopes=body.default_scopes,
    )
    return {**client.as_json(), "clientSecret": secret}


@router.get("/clients/{client_id}")
async def get_client(client_id: str, services: ServicesDep) -> dict[str, Any]:
    return (await services.directory.get_client(client_id)).as_json()


@router.patch("/clients/{client_id}")
async def update_client(client_id: str, body: ClientPatch, services: ServicesDep) -> dict[str, Any]:
    """Change a client's read cities or default scopes, from its next token; tokens already issued keep theirs.

    Merge-patch style: a key left out is kept, `null` unsets it (`{"defaultScopes": null}`: every scope again)."""
    changes = {name: getattr(body, name) for name in body.model_fields_set}
    if not changes:
        message = "name at least one setting to change: readCities, defaultScopes"
        raise ValidationFailed(message, errors=[{"pointer": "", "keyword": "minProperties", "message": message}])
    return (await services.directory.update_client(client_id, **changes)).as_json()


@router.post("/clients/{client_id}/rotate-secret")
async def rotate_secret(client_id: str, services: ServicesDep) -> dict[str, Any]:
    """A new secret, shown once; the old one stops working immediately, and so do the tokens issued so far."""
    secret = await services.directory.rotate_secret(client_id)
    await services.revocations.load()  # at once on this worker; the others within the revocation poll
    return {"clientId": client_id, "clientSecret": secret}


@router.post("/clients/{client_id}/disable")
async def disable_client(client_id: str, services: ServicesDep) -> dict[str, Any]:
    """No more tokens for this client, and every token it holds is revoked."""
    client = await services.directory.set_enabled(client_id, False)
    await services.revocations.load()
    return client.as_json()


@router.post("/clients/{client_id}/revoke-tokens")
async def revoke_client_tokens(client_id: str, services: ServicesDep) -> dict[str, Any]:
    """Revoke every token issued to this client so far; tokens it gets from now on work."""
    epoch = await services.directory.revoke_tokens(client_id)
    await services.revocations.load()
    client = await services.directory.get_client(client_id)
    return {"clientId": client_id, "tokenEpoch": epoch, "tokensRevokedAt": client.tokens_revoked_at}


class RevokeTokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    jti: str = Field(min_length=1, max_length=128, description="The token's jti (audit records of token.issued)")


@router.post("/tokens/revoke")
async def revoke_token(body: RevokeTokenIn, services: ServicesDep) -> dict[str, Any]:
    """Revoke one access token by its ``jti``, whoever it was issued to."""
    settings = services.settings
    # The jti alone does not say when the token expires; none lives longer than the token lifetime from now.
    expires_at = services.revocations.clock() + settings.access_token_ttl + settings.clock_leeway
    await services.revocations.revoke(jti=body.jti, client_id="", expires_at=expires_at)
    return {"jti": body.jti, "revoked": True}


@router.post("/clients/{client_id}/enable")
async def enable_client(client_id: str, services: ServicesDep) -> dict[str, Any]:
    return (await services.directory.set_enabled(client_id, True)).as_json()


@router.get("/keys")
async def list_keys(services: ServicesDep) -> list[dict[str, Any]]:
    await services.keys.load()
    now = services.keys.clock()
    published = {key.kid for key in services.keys.published()}
    return [{**key.describe(now), "published": key.kid in published} for key in services.keys.all_keys()]


@router.post("/keys/rotate", status_code=201)
async def rotate_key(services: ServicesDep, body: RotateKeyIn | None = None) -> dict[str, Any]:
    """Add a key that is published now and signs after the lead time (default ``QALA_KEY_PUBLISH_LEAD``)."""
    body = body or RotateKeyIn()
    try:
        key = await services.keys.rotate(body.purpose, lead=body.lead_seconds)
    except KeyError as exc:
        message = str(exc.args[0])
        raise ValidationFailed(
            message, errors=[{"pointer": "/purpose", "keyword": "enum", "message": message}]
        ) from exc
    return key.describe(services.keys.clock())


@router.get("/audit")
async def list_audit(
    services: ServicesDep,
    after: Annotated[
        int, Query(ge=0, le=2**63 - 1, description="Return records with a sequence number above this")
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    records = await services.audit.records(after=after, limit=limit)
    next_after = records[-1]["seq"] if len(records) == limit else None
    return {"records": records, "nextAfter": next_after}


@router.get("/audit/verify")
async def verify_audit(services: ServicesDep) -> dict[str, Any]:
    """Walk the whole chain, recomputing the Merkle tree, and check every stored signed tree head.

    This checks the database against itself; only a head kept elsewhere (``qala audit verify --against``) also
    catches a rewrite that deleted every head covering it."""
    report = await verify_log(services.audit, services.checkpoints)
    result = report.verification
    return {
        "intact": report.intact,
        "records": result.records,
        "head": {"seq": result.head_seq, "hash": result.head_hash},
        "checkpoints": report.heads,
        "unsignedTail": report.unsigned_tail,
        "problem": report.problem,
        "firstBadRecord": result.first_bad_seq,
    }


@router.post("/audit/checkpoints", status_code=201)
async def take_checkpoint(services: ServicesDep) -> dict[str, Any]:
    """Sign a tree head now (the server also does this every ``QALA_AUDIT_CHECKPOINT_SECONDS``)."""
    head = await services.checkpoints.take(services.audit)
    head_seq, head_hash = await services.audit.head()
    return {"signed": head is not None, "seq": head_seq, "hash": head_hash, "treeHead": head and head.as_json()}
