"""Member organisations and their OAuth clients (the city systems that call the hub).

A member is an organisation identified by its BIN; a client is one of its systems, holding a set of scopes and
the cities it may touch. A client authenticates with a secret (shown once, stored as a digest) and/or a registered
public JWK Set for ``private_key_jwt``. Its default scopes are what a token request without ``scope`` gets
(RFC 6749 section 3.3): None, every scope it holds; a list, those (a subset of its scopes); an empty list, nothing,
so such a request fails with ``invalid_scope``.

    directory = Directory(engine, settings)
    member = await directory.create_member(name="Astana Akimat", bin="...", home_city="astana")
    client, secret = await directory.create_client(
        member=member.bin, name="311", scopes=["service-requests:read", "service-requests:write"], cities=["astana"]
    )
    await directory.set_default_scopes(client.client_id, ["service-requests:read"])  # a token without scope: read
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from functools import cache
from typing import Any, Literal

import sqlalchemy as sa
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.db import JsonColumn, metadata
from gateway.errors import NotFound, ValidationFailed
from gateway.settings import Settings
from schemas import SchemaRegistry
from schemas.cities import CityRegistry
from schemas.identifiers import is_valid_bin

ADMIN_SCOPE = "admin"
ALL_CITIES = "*"
CITY_PATTERN = re.compile(r"^[a-z][a-z0-9-]{1,31}$")

members = sa.Table(
    "members",
    metadata,
    sa.Column("bin", sa.String(12), primary_key=True),
    sa.Column("name", sa.String(300), nullable=False),
    sa.Column("home_city", sa.String(32), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

clients = sa.Table(
    "clients",
    metadata,
    sa.Column("client_id", sa.String(64), primary_key=True),
    sa.Column("member", sa.String(12), sa.ForeignKey("members.bin"), nullable=False, index=True),
    sa.Column("name", sa.String(300), nullable=False),
    sa.Column("scopes", JsonColumn, nullable=False),
    sa.Column("cities", JsonColumn, nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False, default=True),
    sa.Column("secret_digest", sa.String(64), nullable=True),
    sa.Column("jwks", JsonColumn, nullable=True),
    sa.Column("created_at", sa.Float, nullable=False),
    # The cities whose entities the client may read at all (None: every city). Migration 0002_i15b.
    sa.Column("read_cities", JsonColumn, nullable=True),
    # Revocation of every token issued so far: tokens carry the epoch they were issued in (gateway.revocation).
    sa.Column("token_epoch", sa.Integer, nullable=False, default=0, server_default="0"),
    sa.Column("tokens_revoked_at", sa.Float, nullable=True),
    # What a token request without `scope` is granted (None: every scope the client holds). Migration 0002_i20.
    sa.Column("default_scopes", JsonColumn, nullable=True),
)


class Keep(Enum):
    """Marks a setting :meth:`Directory.update_client` leaves as it is (None already means "not narrowed")."""

    KEEP = "keep"


@cache
def known_scopes() -> frozenset[str]:
    """Every scope a client may hold: three per canonical collection, plus ``admin``."""
    found = {ADMIN_SCOPE}
    for version in SchemaRegistry.load().latest():
        found |= {f"{version.collection}:{verb}" for verb in ("read", "write", "read-personal")}
    return frozenset(found)


@dataclass(frozen=True)
class Member:
    bin: str
    name: str
    home_city: str

    def as_json(self) -> dict[str, Any]:
        return {"bin": self.bin, "name": self.name, "homeCity": self.home_city}


@dataclass(frozen=True)
class Client:
    client_id: str
    member: str
    name: str
    scopes: tuple[str, ...]
    cities: tuple[str, ...]
    enabled: bool
    secret_digest: str | None
    jwks: dict[str, Any] | None
    read_cities: tuple[str, ...] | None = None
    """Narrows what the client may read to these cities; None reads public fields of every city."""
    token_epoch: int = 0  # tokens issued in an earlier epoch are revoked (gateway.revocation)
    tokens_revoked_at: float | None = None
    default_scopes: tuple[str, ...] | None = None
    """Granted to a token request without ``scope``; None grants every scope the client holds."""

    @property
    def default_grant(self) -> tuple[str, ...]:
        """The scopes a token request without ``scope`` is granted now.

        The default is checked against the client's scopes whenever it is set; should the scopes be narrowed
        afterwards, the default is intersected with them, so no token ever carries a scope the client lost.

            Client(..., scopes=("a:read", "a:write"), default_scopes=("a:read", "b:read")).default_grant == ("a:read",)
        """
        if self.default_scopes is None:
            return self.scopes
        return tuple(scope for scope in self.default_scopes if scope in self.scopes)

    def as_json(self) -> dict[str, Any]:
        methods = (["client_secret_basic", "client_secret_post"] if self.secret_digest else []) + (
            ["private_key_jwt"] if self.jwks else []
        )
        return {
            "clientId": self.client_id,
            "member": self.member,
            "name": self.name,
            "scopes": list(self.scopes),
            "cities": list(self.cities),
            "enabled": self.enabled,
            "authMethods": methods,
            "jwks": self.jwks,
            "readCities": list(self.read_cities) if self.read_cities is not None else None,
            "defaultScopes": list(self.default_scopes) if self.default_scopes is not None else None,
            "tokensRevokedAt": self.tokens_revoked_at,
        }


def _client(row: sa.Row[Any]) -> Client:
    return Client(
        row.client_id,
        row.member,
        row.name,
        tuple(row.scopes),
        tuple(row.cities),
        bool(row.enabled),
        row.secret_digest,
        row.jwks,
        tuple(row.read_cities) if row.read_cities is not None else None,
        int(row.token_epoch or 0),
        row.tokens_revoked_at,
        tuple(row.default_scopes) if row.default_scopes is not None else None,
    )


def _invalid(pointer: str, keyword: str, message: str) -> ValidationFailed:
    return ValidationFailed(message, errors=[{"pointer": pointer, "keyword": keyword, "message": message}])


def check_scopes(scopes: Iterable[str]) -> list[str]:
    listed = list(dict.fromkeys(scopes))
    unknown = sorted(set(listed) - known_scopes())
    if unknown:
        raise _invalid("/scopes", "enum", f"unknown scopes: {', '.join(unknown)}")
    return listed


def check_default_scopes(default_scopes: Iterable[str], scopes: Sequence[str]) -> list[str]:
    """The default scopes, each one the client holds (an empty list is allowed: requests must name their scopes).

    Duplicates are dropped; a scope the client does not hold is a 422 problem at ``/defaultScopes``.

        check_default_scopes(["a:read", "a:read"], ["a:read", "a:write"]) == ["a:read"]
        check_default_scopes(["admin"], ["a:read"])  # ValidationFailed
    """
    listed = list(dict.fromkeys(default_scopes))
    outside = [scope for scope in listed if scope not in scopes]
    if outside:
        held = ", ".join(scopes) or "none"
        raise _invalid(
            "/defaultScopes",
            "enum",
            f"default scopes must be among the client's scopes; not held: {', '.join(outside)} (holds: {held})",
        )
    return listed


def check_cities(cities: Iterable[str], pointer: str = "/cities") -> list[str]:
    """The cities, each a code of the city registry (or ``*``); a 422 problem naming the unknown ones."""
    listed = list(dict.fromkeys(cities))
    if not listed:
        raise _invalid(pointer, "minItems", "a client needs at least one city (or '*' for all)")
    bad = [city for city in listed if city != ALL_CITIES and not CITY_PATTERN.match(city)]
    if bad:
        raise _invalid(pointer, "pattern", f"not city codes: {', '.join(bad)}")
    registry = CityRegistry.load()
    unknown = [city for city in listed if city != ALL_CITIES and not registry.is_known(city)]
    if unknown:
        known = ", ".join(registry.codes)
        raise _invalid(pointer, "enum", f"unknown city code(s) {', '.join(unknown)}; known: {known}")
    return listed


def check_jwks(jwks: dict[str, Any]) -> dict[str, Any]:
    """A public JWK Set usable for ``private_key_jwt``; private members are refused, never stored."""
    try:
        key_set = KeySet.import_key_set(jwks)  # type: ignore[arg-type]
    except (JoseError, ValueError, TypeError, KeyError) as exc:
        raise _invalid("/jwks", "format", f"not a JWK Set: {exc}") from exc
    if not key_set.keys:
        raise _invalid("/jwks", "minItems", "the JWK Set has no keys")
    if any(key.is_private for key in key_set.keys):
        raise _invalid("/jwks", "format", "register public keys only; the private key never leaves the client")
    return jwks


class SecretHasher:
    """Digest client secrets with HMAC-SHA256 under the server secret (a pepper).

    Client secrets are 256-bit random values, not passwords: nobody can brute-force that space, so a slow hash
    such as argon2 adds no security here and would cap token issuance at a few per second per core. The pepper
    means a stolen database alone does not even allow checking a guess.
    """

    def __init__(self, pepper: bytes) -> None:
        self._pepper = pepper

    def digest(self, secret: str) -> str:
        return hmac.new(self._pepper, secret.encode(), hashlib.sha256).hexdigest()

    def matches(self, secret: str, digest: str | None) -> bool:
        # Compare in constant time, and do the work even when the client has no secret.
        return hmac.compare_digest(self.digest(secret), digest or "0" * 64) and digest is not None


class Directory:
    """Members and clients in the database."""

    def __init__(self, engine: AsyncEngine, settings: Settings) -> None:
        self.engine = engine
        self.hasher = SecretHasher(settings.secret)

    async def create_member(self, *, name: str, bin: str, home_city: str) -> Member:
        if not is_valid_bin(bin):
            raise _invalid("/bin", "format", f"{bin!r} is not a valid 12-digit BIN (check digit)")
        if not name.strip():
            raise _invalid("/name", "minLength", "a member needs a name")
        check_cities([home_city])
        try:
            async with self.engine.begin() as conn:
                await conn.execute(
                    members.insert().values(bin=bin, name=name.strip(), home_city=home_city, created_at=time.time())
                )
        except IntegrityError as exc:
            raise _invalid("/bin", "unique", f"a member with BIN {bin} already exists") from exc
        return Member(bin, name.strip(), home_city)

    async def list_members(self) -> list[Member]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(sa.select(members).order_by(members.c.name))).all()
        return [Member(row.bin, row.name, row.home_city) for row in rows]

    async def get_member(self, bin: str) -> Member:
        async with self.engine.connect() as conn:
            row = (await conn.execute(sa.select(members).where(members.c.bin == bin))).first()
        if row is None:
            raise NotFound(f"no member with BIN {bin!r}")
        return Member(row.bin, row.name, row.home_city)

    async def create_client(
        self,
        *,
        member: str,
        name: str,
        scopes: Sequence[str],
        cities: Sequence[str],
        jwks: dict[str, Any] | None = None,
        with_secret: bool = True,
        read_cities: Sequence[str] | None = None,
        default_scopes: Sequence[str] | None = None,
    ) -> tuple[Client, str | None]:
        """Register a client; returns it with its secret, which is never retrievable again.

        ``default_scopes`` (a subset of ``scopes``) is what a token request without ``scope`` gets; None, all."""
        await self.get_member(member)
        if not with_secret and jwks is None:
            raise _invalid("/jwks", "required", "a client without a secret needs a JWK Set for private_key_jwt")
        client_id = "qc_" + secrets.token_hex(10)
        secret = self._new_secret() if with_secret else None
        checked_scopes = check_scopes(scopes)
        values = {
            "client_id": client_id,
            "member": member,
            "name": name,
            "scopes": checked_scopes,
            "cities": check_cities(cities),
            "enabled": True,
            "secret_digest": self.hasher.digest(secret) if secret else None,
            "jwks": check_jwks(jwks) if jwks is not None else None,
            "created_at": time.time(),
            "read_cities": check_cities(read_cities, "/readCities") if read_cities is not None else None,
            "default_scopes": (
                check_default_scopes(default_scopes, checked_scopes) if default_scopes is not None else None
            ),
        }
        async with self.engine.begin() as conn:
            await conn.execute(clients.insert().values(**values))
        return await self.get_client(client_id), secret

    @staticmethod
    def _new_secret() -> str:
        return "qs_" + secrets.token_urlsafe(32)  # 256 bits from the OS CSPRNG

    async def get_client(self, client_id: str) -> Client:
        found = await self.find_client(client_id)
        if found is None:
            raise NotFound(f"no client {client_id!r}")
        return found

    async def find_client(self, client_id: str) -> Client | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(sa.select(clients).where(clients.c.client_id == client_id))).first()
        return None if row is None else _client(row)

    async def list_clients(self, member: str | None = None) -> list[Client]:
        query = sa.select(clients).order_by(clients.c.member, clients.c.name)
        if member is not None:
            query = query.where(clients.c.member == member)
        async with self.engine.connect() as conn:
            return [_client(row) for row in (await conn.execute(query)).all()]

    async def rotate_secret(self, client_id: str) -> str:
        """Replace the client's secret and revoke every token issued with the old one.

        The old secret stops working at once; so do its tokens (on other workers within the revocation poll)."""
        secret = self._new_secret()
        await self._update(client_id, cut_tokens=True, secret_digest=self.hasher.digest(secret))
        return secret

    async def update_client(
        self,
        client_id: str,
        *,
        read_cities: Sequence[str] | Literal[Keep.KEEP] | None = Keep.KEEP,
        default_scopes: Sequence[str] | Literal[Keep.KEEP] | None = Keep.KEEP,
    ) -> Client:
        """Change a client's settings, all checked before any is written, in one transaction; from its next token
        (tokens already issued keep what they carry). A setting left out is kept; None unsets it.

            await directory.update_client(client_id, default_scopes=["service-requests:read"])  # read_cities kept
        """
        values: dict[str, Any] = {}
        if read_cities is not Keep.KEEP:
            values["read_cities"] = check_cities(read_cities, "/readCities") if read_cities is not None else None
        if default_scopes is not Keep.KEEP:
            held = (await self.get_client(client_id)).scopes
            values["default_scopes"] = (
                check_default_scopes(default_scopes, held) if default_scopes is not None else None
            )
        if values:
            await self._update(client_id, **values)
        return await self.get_client(client_id)

    async def set_read_cities(self, client_id: str, read_cities: Sequence[str] | None) -> Client:
        """Narrow (or, with None, widen again) the cities whose entities the client may read; from its next token."""
        return await self.update_client(client_id, read_cities=read_cities)

    async def set_default_scopes(self, client_id: str, default_scopes: Sequence[str] | None) -> Client:
        """Set what a token request without ``scope`` gets: a subset of the client's scopes, ``[]`` for nothing
        (such a request fails with ``invalid_scope``), or None for every scope it holds; from its next token."""
        return await self.update_client(client_id, default_scopes=default_scopes)

    async def set_enabled(self, client_id: str, enabled: bool) -> Client:
        """Enable or disable a client; disabling also revokes every token it holds (enabling restores none)."""
        await self._update(client_id, cut_tokens=not enabled, enabled=enabled)
        return await self.get_client(client_id)

    async def revoke_tokens(self, client_id: str) -> int:
        """Revoke every token issued to the client so far (new ones work); returns the new token epoch."""
        return await self._update(client_id, cut_tokens=True)

    async def _update(self, client_id: str, *, cut_tokens: bool = False, **values: Any) -> int:
        """Update one client in one transaction; with ``cut_tokens``, also start a new token epoch."""
        if cut_tokens:
            values |= {"token_epoch": clients.c.token_epoch + 1, "tokens_revoked_at": time.time()}
        statement = clients.update().where(clients.c.client_id == client_id).values(**values)
        async with self.engine.begin() as conn:
            row = (await conn.execute(statement.returning(clients.c.token_epoch))).first()
        if row is None:
            raise NotFound(f"no client {client_id!r}")
        return int(row.token_epoch)
