"""Collection routes are tried first, and only for paths under a collection; no other route may live there."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest
from fastapi import APIRouter, FastAPI, Request

from gateway.app import create_app
from gateway.auth import authorize
from gateway.routes import collections
from gateway.routes.collections import CollectionDispatch, CollectionRouter, RouteConflict
from gateway.settings import Settings
from tests.gateway.conftest import ISSUER
from tests.gateway.exchange_app import reader, writer
from tests.gateway.exchange_fixtures import service_request

__all__ = ["reader", "writer"]  # fixtures
SR = "/api/v1/service-requests"


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


async def test_the_dispatch_answers_every_collection_request_as_fastapi_s_routes_do(
    app: FastAPI,
    http: httpx.AsyncClient,
    writer: dict[str, str],
    reader: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The same requests, sent through CollectionDispatch and through FastAPI's router alone, get the same answers
    (status, headers, body, errors as problem documents), and the endpoints see the same route, endpoint and path
    parameters in the scope, which telemetry and the audit log name the route by."""
    dispatch = app.router.middleware_stack
    assert isinstance(dispatch, CollectionDispatch)
    seen: list[tuple[Any, ...]] = []

    async def spied(request: Request, scope: str) -> Any:
        route = request.scope["route"]
        seen.append((route.path, route.name, request.scope["endpoint"], request.scope["path_params"], scope))
        assert request.scope["router"] is app.router
        return await authorize(request, scope)

    monkeypatch.setattr(collections, "authorize", spied)
    json_type = {"Content-Type": "application/json"}

    async def exchange(tag: str) -> list[tuple[int, list[tuple[str, str]], bytes]]:
        local = f"D-{tag}"
        own = f"{SR}/urn:ngsi-ld:ServiceRequest:astana:{local}"
        entity = service_request(local)
        steps: list[tuple[str, str, dict[str, str], bytes | None]] = [
            ("POST", SR, writer | json_type, orjson.dumps(entity)),
            ("POST", SR, writer | json_type, orjson.dumps(entity)),  # 409
            ("POST", SR, writer | json_type, orjson.dumps({**entity, "status": 7})),  # 422
            ("POST", SR, writer | {"Content-Type": "text/plain"}, b"x"),  # 415
            ("POST", SR, json_type, orjson.dumps(entity)),  # 401
            ("POST", SR, reader | json_type, orjson.dumps(entity)),  # 403
            ("GET", own, writer, None),
            ("GET", own, writer | {"If-None-Match": '"1"'}, None),  # 304
            ("GET", own, reader, None),  # another city's reader: no personal fields
            ("GET", own + "x", writer, None),  # 404
            ("GET", f"{SR}/", writer, None),  # an empty id
            ("GET", f"{SR}/a/b%2Fc", writer, None),  # an id with slashes
            ("GET", own, {"Authorization": "Bearer nonsense"}, None),  # 401
            ("GET", f"{SR}?limit=2&city=astana", writer, None),
            ("GET", f"{SR}?status=open&limit=1", reader, None),
            ("GET", f"{SR}?limit=0", writer, None),  # 400
            ("GET", f"{SR}?colour=red", writer, None),  # 400
            ("PUT", own, writer | json_type, orjson.dumps({**entity, "status": "closed"})),  # 422: no dateClosed
            ("PUT", own, writer | json_type, orjson.dumps({**entity, "description": "Deeper now"})),
            ("PUT", own, writer | json_type | {"If-Match": '"1"'}, orjson.dumps(entity)),  # 412
            ("PUT", own + "x", writer | json_type, orjson.dumps(entity)),  # 400: the ids differ
            ("HEAD", own, writer, None),  # left to FastAPI
            ("PATCH", own, writer | {"Content-Type": "application/merge-patch+json"}, b'{"status":"open"}'),
            ("OPTIONS", own, writer, None),  # 405
            ("GET", "/api/v1/no-such-collection/x", writer, None),
            ("DELETE", own, writer | {"If-Match": '"1"'}, None),  # 412
            ("DELETE", own, writer, None),
            ("DELETE", own, writer, None),  # 404
        ]
        answers = []
        for method, url, headers, body in steps:
            response = await http.request(method, url, headers=headers, content=body)
            counting = ("ratelimit-remaining", "ratelimit-reset")
            kept = [(k, v.replace(tag, "*")) for k, v in response.headers.multi_items() if k not in counting]
            answers.append((response.status_code, kept, response.content.replace(tag.encode(), b"*")))
        return answers

    through_dispatch = await exchange("zq1")
    dispatched, seen[:] = list(seen), []
    with monkeypatch.context() as patched:  # FastAPI's router alone
        patched.setattr(app.router, "middleware_stack", dispatch.app)
        through_fastapi = await exchange("zq2")
    assert [status for status, _, _ in through_dispatch] == [status for status, _, _ in through_fastapi]
    for one, two in zip(through_dispatch, through_fastapi, strict=True):
        assert one == two
    assert [(*s[:3], {k: v.replace("zq1", "*") for k, v in s[3].items()}, s[4]) for s in dispatched] == [
        (*s[:3], {k: v.replace("zq2", "*") for k, v in s[3].items()}, s[4]) for s in seen
    ]
    assert len(dispatched) >= 20
