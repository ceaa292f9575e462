"""Helpers for the exchange API tests: an app with the exchange routers and clients with tokens."""

from __future__ import annotations

import copy
import json
from typing import Any

import httpx

from schemas.registry import MODELS_DIR

SR_EXAMPLE = json.loads((MODELS_DIR / "ServiceRequest/examples/astana-pothole-phone.json").read_text("utf-8"))


def service_request(local_id: str, city: str = "astana", **changes: Any) -> dict[str, Any]:
    entity = copy.deepcopy(SR_EXAMPLE)
    entity["id"] = f"urn:ngsi-ld:ServiceRequest:{city}:{local_id}"
    entity["city"] = city
    entity.update(changes)
    return entity


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def ndjson_results(response: httpx.Response) -> list[dict[str, Any]]:
    return [json.loads(line) for line in response.text.splitlines() if line.strip()]
