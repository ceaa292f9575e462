"""Collection routes are tried first, and only for paths under a collection; no other route may live there."""

from __future__ import annotations

import httpx
import pytest
from fastapi import APIRouter, FastAPI

from gateway.app import create_app
from gateway.routes.collections import CollectionRouter, RouteConflict
from gateway.settings import Settings
from tests.gateway.conftest import ISSUER


def test_a_collection_router_claims_its_collections_only() -> None:
    router = CollectionRouter(["service-requests", "devices"])
    assert router.claims("/api/v1/service-requests")
    assert router.claims("/api/v1/devices/urn:ngsi-ld:Device:astana:d-1/x")
    assert not router.claims("/api/v1/service-requests-archive")
    assert not router.claims("/api/v1/changes")
    assert not router.claims("/service-requests")


@pytest.mark.parametrize(
    "path",
    ["/api/v1/service-requests/stats", "/api/v1/service-requests", "/api/v1/{anything}", "/{path:path}"],
)
def test_the_app_refuses_a_route_that_could_take_a_collection_s_requests(tmp_path: object, path: str) -> None:
    extra = APIRouter()
    extra.add_api_route(path, lambda: {}, methods=["GET"])
    with pytest.raises(RouteConflict, match="would compete with the routes of collection"):
        create_app(Settings(env="demo", database_url=f"sqlite:///{tmp_path}/hub.db"), routers=[extra])


async def test_routes_beside_the_collections_still_answer(tmp_path: object) -> None:
    extra = APIRouter()
    extra.add_api_route("/api/v1/service-requests-archive", lambda: {"archive": True}, methods=["GET"])
    app: FastAPI = create_app(Settings(env="demo", database_url=f"sqlite:///{tmp_path}/hub.db"), routers=[extra])
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url=ISSUER) as http:
        assert (await http.get("/api/v1/service-requests-archive")).json() == {"archive": True}
        assert (await http.get("/api/v1/service-requests")).status_code == 401  # the collection's, with no token
        answer = await http.patch("/api/v1/service-requests")
        assert answer.status_code == 405
