"""The admin API: members, clients (secret shown once), keys and audit, all behind the `admin` scope."""

from __future__ import annotations

from typing import Any

import httpx
from joserfc.jwk import ECKey

from gateway.services import Services
from schemas.identifiers import with_check_digit
from tests.gateway.conftest import get_token

OTHER_BIN = with_check_digit("05014000123")


async def admin_headers(http: httpx.AsyncClient, register: Any) -> dict[str, str]:
    admin = await register(scopes=["admin"], cities=["*"])
    return {"Authorization": f"Bearer {await get_token(http, admin)}"}


async def test_member_and_client_lifecycle_over_the_api(http: httpx.AsyncClient, register: Any) -> None:
    auth = await admin_headers(http, register)
    member = await http.post(
        "/api/v1/admin/members",
        json={"name": "Shymkent Akimat", "bin": OTHER_BIN, "homeCity": "shymkent"},
        headers=auth,
    )
    assert member.status_code == 201, member.text
    assert member.json() == {"bin": OTHER_BIN, "name": "Shymkent Akimat", "homeCity": "shymkent"}
    assert OTHER_BIN in {m["bin"] for m in (await http.get("/api/v1/admin/members", headers=auth)).json()}

    body = {"member": OTHER_BIN, "name": "bus depot", "scopes": ["vehicle-positions:write"], "cities": ["shymkent"]}
    created = await http.post("/api/v1/admin/clients", json=body, headers=auth)
    assert created.status_code == 201, created.text
    client_id, secret = created.json()["clientId"], created.json()["clientSecret"]
    assert secret.startswith("qs_")
    assert len(secret) >= 43, "256 bits of randomness"
    shown = (await http.get(f"/api/v1/admin/clients/{client_id}", headers=auth)).json()
    assert "clientSecret" not in shown
    assert shown["authMethods"] == ["client_secret_basic", "client_secret_post"]

    data = {"grant_type": "client_credentials"}
    assert (await http.post("/oauth/token", data=data, auth=(client_id, secret))).status_code == 200
    rotated = (await http.post(f"/api/v1/admin/clients/{client_id}/rotate-secret", headers=auth)).json()
    assert (await http.post("/oauth/token", data=data, auth=(client_id, secret))).status_code == 401
    assert (await http.post("/oauth/token", data=data, auth=(client_id, rotated["clientSecret"]))).status_code == 200
    disabled = await http.post(f"/api/v1/admin/clients/{client_id}/disable", headers=auth)
    assert disabled.json()["enabled"] is False
    assert (await http.post("/oauth/token", data=data, auth=(client_id, rotated["clientSecret"]))).status_code == 401


async def test_client_with_only_a_public_key(http: httpx.AsyncClient, register: Any) -> None:
    auth = await admin_headers(http, register)
    who = await register()
    key = ECKey.generate_key("P-256")
    body = {
        "member": who.client.member,
        "name": "keyed",
        "scopes": ["service-requests:read"],
        "cities": ["astana"],
        "jwks": {"keys": [key.as_dict(private=False)]},
        "secret": False,
    }
    created = await http.post("/api/v1/admin/clients", json=body, headers=auth)
    assert created.status_code == 201, created.text
    assert created.json()["clientSecret"] is None
    assert created.json()["authMethods"] == ["private_key_jwt"]
    leaked = await http.post(
        "/api/v1/admin/clients", json={**body, "jwks": {"keys": [key.as_dict(private=True)]}}, headers=auth
    )
    assert leaked.status_code == 422
    assert leaked.json()["errors"][0]["pointer"] == "/jwks"


async def test_keys_and_audit_endpoints(http: httpx.AsyncClient, register: Any, services: Services) -> None:
    auth = await admin_headers(http, register)
    keys = (await http.get("/api/v1/admin/keys", headers=auth)).json()
    assert {key["purpose"] for key in keys} >= {"access-token", "audit-checkpoint"}
    rotated = await http.post("/api/v1/admin/keys/rotate", json={"leadSeconds": 120}, headers=auth)
    assert rotated.status_code == 201
    assert rotated.json()["state"] == "pending"
    jwks = (await http.get("/oauth/jwks")).json()
    assert rotated.json()["kid"] in {key["kid"] for key in jwks["keys"]}
    bad = await http.post("/api/v1/admin/keys/rotate", json={"purpose": "nope"}, headers=auth)
    assert bad.status_code == 422

    page = (await http.get("/api/v1/admin/audit", params={"limit": 2}, headers=auth)).json()
    assert len(page["records"]) == 2
    assert page["nextAfter"] == page["records"][-1]["seq"]
    checkpoint = (await http.post("/api/v1/admin/audit/checkpoints", headers=auth)).json()
    assert checkpoint["signed"] is True
    report = (await http.get("/api/v1/admin/audit/verify", headers=auth)).json()
    assert report["intact"] is True
    assert report["checkpoints"] == 1
    assert report["records"] >= checkpoint["seq"]
