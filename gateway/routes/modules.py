"""The registry of certified modules: ``POST /api/v1/modules`` takes a certificate, ``GET`` lists them.

A certificate is self-authenticating: it is accepted when a conformance key of this hub's own JWKS verifies it,
so registering needs no token. The list is public; the catalogue's certified-module page reads it.

    curl -X POST -H 'Content-Type: application/jose' --data-binary @report/certificate.jws \\
         http://127.0.0.1:8000/api/v1/modules
    curl http://127.0.0.1:8000/api/v1/modules?profile=service-requests
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Request, Response
from sqlalchemy.ext.asyncio import AsyncEngine

from conformance.certificate import verify_certificate
from conformance.errors import CertificateError
from conformance.hubkeys import PURPOSE
from gateway.db import JsonColumn, metadata
from gateway.errors import BadRequest, ValidationFailed
from gateway.services import ServicesDep

router = APIRouter(prefix="/api/v1", tags=["certified modules"])

certified_modules = sa.Table(
    "certified_modules",
    metadata,
    sa.Column("jti", sa.String(64), primary_key=True),
    sa.Column("profile", sa.String(64), nullable=False, index=True),
    sa.Column("vendor", sa.String(300), nullable=False),
    sa.Column("module_name", sa.String(300), nullable=False),
    sa.Column("module_version", sa.String(100), nullable=False),
    sa.Column("openapi_sha256", sa.String(64), nullable=False),
    sa.Column("mandate_version", sa.String(32), nullable=False),
    sa.Column("suite_version", sa.String(32), nullable=False),
    sa.Column("issued_at", sa.Integer, nullable=False),
    sa.Column("expires_at", sa.Integer, nullable=False),
    sa.Column("claims", JsonColumn, nullable=False),
    sa.Column("certificate", sa.Text, nullable=False),
    sa.Column("registered_at", sa.Float, nullable=False),
)


async def _certificate_text(request: Request) -> str:
    raw = await request.body()
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media == "application/json":
        try:
            body = json.loads(raw)
        except ValueError:
            raise BadRequest("the body is not valid JSON") from None
        if not isinstance(body, dict) or not isinstance(body.get("certificate"), str):
            errors = [{"pointer": "/certificate", "keyword": "required", "message": "a compact JWS string"}]
            raise ValidationFailed('the body must be {"certificate": "<compact JWS>"}', errors=errors)
        return str(body["certificate"])
    return raw.decode("utf-8", errors="replace")


def _entry(row: Any) -> dict[str, Any]:
    return {
        "id": row.jti,
        "profile": row.profile,
        "vendor": row.vendor,
        "moduleName": row.module_name,
        "moduleVersion": row.module_version,
        "openapiSha256": row.openapi_sha256,
        "mandateVersion": row.mandate_version,
        "suiteVersion": row.suite_version,
        "issuedAt": row.issued_at,
        "expiresAt": row.expires_at,
        "certificate": row.certificate,
    }


@router.post("/modules", status_code=201)
async def register_module(request: Request, response: Response, services: ServicesDep) -> dict[str, Any]:
    """Register a certificate issued by this hub's conformance suite (idempotent: 200 when already known)."""
    token = (await _certificate_text(request)).strip()
    try:
        certificate = verify_certificate(token, services.keys.verification_set(PURPOSE))
    except CertificateError:
        await services.keys.refresh_if_stale(force=True)  # a key created since this worker last loaded
        try:
            certificate = verify_certificate(token, services.keys.verification_set(PURPOSE))
        except CertificateError as exc:
            errors = [{"pointer": "/certificate", "keyword": "x-certificate", "message": str(exc)}]
            raise ValidationFailed(f"the certificate is not valid: {exc}", errors=errors) from exc
    claims = certificate.claims
    module = claims["module"]
    async with services.engine.begin() as conn:
        existing = (
            await conn.execute(sa.select(certified_modules).where(certified_modules.c.jti == claims["jti"]))
        ).first()
        if existing is not None:
            response.status_code = 200
            return _entry(existing)
        values = {
            "jti": str(claims["jti"]),
            "profile": str(claims["profile"]),
            "vendor": str(module.get("vendor", "")),
            "module_name": str(module.get("name", "")),
            "module_version": str(module.get("version", "")),
            "openapi_sha256": str(module.get("openapiSha256", "")),
            "mandate_version": str(claims["mandateVersion"]),
            "suite_version": str(claims["suiteVersion"]),
            "issued_at": int(claims["iat"]),
            "expires_at": int(claims["exp"]),
            "claims": claims,
            "certificate": token,
            "registered_at": time.time(),
        }
        await conn.execute(certified_modules.insert().values(**values))
        row = (await conn.execute(sa.select(certified_modules).where(certified_modules.c.jti == values["jti"]))).one()
    response.headers["Location"] = f"/api/v1/modules/{values['jti']}"
    listing = getattr(getattr(request.app.state, "catalogue", None), "modules", None)
    if isinstance(listing, ModuleListing):
        await listing.refresh()  # this worker's registry page shows it at once; other workers within 30 s
    return _entry(row)


async def certified(
    engine: AsyncEngine, profile: str | None = None, vendor: str | None = None, include_expired: bool = False
) -> list[dict[str, Any]]:
    """Certified modules, newest first; expired certificates only with ``include_expired``."""
    query = sa.select(certified_modules).order_by(certified_modules.c.issued_at.desc(), certified_modules.c.jti)
    if profile is not None:
        query = query.where(certified_modules.c.profile == profile)
    if vendor is not None:
        query = query.where(certified_modules.c.vendor == vendor)
    if not include_expired:
        query = query.where(certified_modules.c.expires_at > int(time.time()))
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    return [_entry(row) for row in rows]


@router.get("/modules")
async def list_modules(
    services: ServicesDep, profile: str | None = None, vendor: str | None = None, include_expired: bool = False
) -> dict[str, Any]:
    """Certified modules, newest first; expired certificates only with ``include_expired=true``."""
    return {"items": await certified(services.engine, profile, vendor, include_expired), "next": None}


class ModuleListing:
    """A snapshot of the certified modules for the catalogue's registry page, refreshed in the background.

    The catalogue asks for the list synchronously while rendering, so the hub keeps a copy fresh instead.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.items: list[dict[str, Any]] = []

    def __call__(self) -> list[dict[str, Any]]:
        return self.items

    async def refresh(self) -> None:
        self.items = await certified(self.engine)

    async def run(self, every: float) -> None:
        while True:
            await asyncio.sleep(every)
            try:
                await self.refresh()
            except Exception:  # a failed refresh keeps the last list; the next one tries again
                logging.getLogger("qala.gateway").exception("could not refresh the certified-module list")
