"""``GET /api/v1/whoami``: the verified caller, for city systems debugging their credentials.

curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8000/api/v1/whoami
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from gateway.auth import CallerDep

router = APIRouter(prefix="/api/v1", tags=["identity"])


@router.get("/whoami")
async def whoami(caller: CallerDep) -> dict[str, Any]:
    """Who the access token says you are: client, member, scopes, cities, issuer and token id."""
    return caller.as_json()
