"""NGSI-LD subscriptions: made with bodies shaped as the specification's example (ETSI GS CIM 009 §5.8.1),
delivered by the hub's worker as signed NGSI-LD Notifications to a receiver listening on a real port."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from conformance.serving import serve_app
from gateway.settings import Settings
from schemas.registry import MODELS_DIR
from tests.gateway.conftest import get_token
from tests.gateway.exchange_fixtures import bearer, service_request
from tests.gateway.subscription_fixtures import eventually, quick_settings

ERRORS = "https://uri.etsi.org/ngsi-ld/errors/"
CONTEXT = "http://testserver/ngsi-ld/v1/jsonldContexts/qala.jsonld"
AQ = "AirQualityObserved"
DEAD_END = "http://127.0.0.1:1/notify"  # a receiver needs its secret first: subscribe, then point here
AQ_EXAMPLES = MODELS_DIR / AQ / "examples"


@pytest.fixture
def settings(database_url: str) -> Settings:
    return quick_settings(database_url)


@dataclass
class Received:
    notifications: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    rejected: int = 0

    def entities(self, subscription: str | None = None) -> list[dict[str, Any]]:
        return [
            entity
            for n in self.notifications
            if subscription is None or n["subscriptionId"] == subscription
            for entity in n["data"]
        ]


@contextmanager
def ngsi_receiver(*secrets: str) -> Iterator[tuple[str, Received]]:
    """An NGSI-LD notification endpoint that checks the Standard Webhooks signature and keeps what it gets."""
    hooks = [Webhook(secret) for secret in secrets]
    got = Received()

    async def notify(request: Request) -> Response:
        body = await request.body()
        for hook in hooks:
            try:
                hook.verify(body, dict(request.headers))
            except WebhookVerificationError:
                continue
            got.notifications.append(json.loads(body))
            got.headers.append(dict(request.headers))
            return Response(status_code=204)
        got.rejected += 1
        return Response(status_code=401)

    with serve_app(Starlette(routes=[Route("/notify", notify, methods=["POST"])])) as base:
        yield f"{base}/notify", got


def aq(name: str, local_id: str | None = None) -> dict[str, Any]:
    entity: dict[str, Any] = json.loads((AQ_EXAMPLES / name).read_text("utf-8"))
    if local_id is not None:
        city = entity["city"]
        entity["id"] = f"urn:ngsi-ld:{AQ}:{city}:{local_id}"
    return entity


def spec_shaped(uri: str = DEAD_END, **changes: Any) -> dict[str, Any]:
    """The specification's example subscription, for Qala's types (ETSI GS CIM 009, example of §5.8.1)."""
    body: dict[str, Any] = {
        "id": "urn:ngsi-ld:Subscription:smog-watch",
        "type": "Subscription",
        "subscriptionName": "Smog watch",
        "description": "Notify me of very unhealthy air",
        "entities": [{"type": AQ}],
        "q": 'airQualityLevel=="veryUnhealthy"',
        "notification": {
            "attributes": ["pm25", "airQualityLevel", "location"],
            "format": "keyValues",
            "endpoint": {"uri": uri, "accept": "application/json"},
        },
        "@context": [CONTEXT, "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld"],
    }
    body.update(changes)
    return body


async def token(http: httpx.AsyncClient, register: Any, *scopes: str, cities: list[str] | None = None) -> Any:
    who = await register(scopes=list(scopes), cities=cities or ["astana"])
    return bearer(await get_token(http, who))


async def subscribe(
    http: httpx.AsyncClient, headers: dict[str, str], body: dict[str, Any], tenant: str | None = None
) -> httpx.Response:
    extra = {"NGSILD-Tenant": tenant} if tenant else {}
    return await http.post(
        "/ngsi-ld/v1/subscriptions",
        content=json.dumps(body),
        headers={**headers, **extra, "Content-Type": "application/ld+json"},
    )


async def point_at(http: httpx.AsyncClient, headers: dict[str, str], location: str, uri: str) -> None:
    patched = await http.patch(location, json={"notification": {"endpoint": {"uri": uri}}}, headers=headers)
    assert patched.status_code == 204, patched.text


async def write(http: httpx.AsyncClient, writer: dict[str, str], *entities: dict[str, Any]) -> None:
    for entity in entities:
        collection = "air-quality-observed" if entity["type"] == AQ else "service-requests"
        response = await http.post(f"/api/v1/{collection}", json=entity, headers=writer)
        assert response.status_code == 201, response.text


async def test_spec_shaped_subscriptions_notify_in_key_values_and_normalized(
    http: httpx.AsyncClient, register: Any
) -> None:
    writer = await token(
        http, register, "air-quality-observed:write", "air-quality-observed:read", cities=["astana", "almaty"]
    )
    reader = await token(http, register, "air-quality-observed:read")
    smog = await subscribe(http, reader, spec_shaped())
    assert smog.status_code == 201, smog.text
    assert smog.headers["location"] == "/ngsi-ld/v1/subscriptions/urn:ngsi-ld:Subscription:smog-watch"
    assert smog.json()["secret"].startswith("whsec_"), "the webhook secret, shown once"
    # Everything of Astana, in the normalized default, for the type named by its IRI in the hub's @context
    every = spec_shaped(
        entities=[{"type": f"https://smartdatamodels.org/dataModel.Environment/{AQ}"}],
        notification={"endpoint": {"uri": DEAD_END}},
    )
    del every["id"], every["q"]
    astana = await subscribe(http, reader, every, tenant="astana")
    assert astana.status_code == 201, astana.text
    astana_id = astana.json()["id"]
    assert astana.headers["location"] == f"/ngsi-ld/v1/subscriptions/{astana_id}"

    with ngsi_receiver(smog.json()["secret"], astana.json()["secret"]) as (uri, got):
        await point_at(http, reader, smog.headers["location"], uri)
        await point_at(http, reader, astana.headers["location"], uri)
        await write(
            http,
            writer,
            aq("almaty-winter-smog.json"),
            aq("astana-summer-good.json"),
            aq("astana-low-cost-sensor.json"),
        )
        await eventually(lambda: len(got.entities()) >= 3)

        (key_values,) = [n for n in got.notifications if n["subscriptionId"] == "urn:ngsi-ld:Subscription:smog-watch"]
        assert key_values["type"] == "Notification"
        assert key_values["id"].startswith("urn:ngsi-ld:Notification:")
        assert datetime.fromisoformat(key_values["notifiedAt"].replace("Z", "+00:00")).tzinfo is not None
        smog_entity = aq("almaty-winter-smog.json")
        assert key_values["data"] == [
            {
                "id": smog_entity["id"],
                "type": AQ,
                "location": smog_entity["location"],
                "pm25": smog_entity["pm25"],
                "airQualityLevel": "veryUnhealthy",
            }
        ]

        normalized = got.entities(astana_id)
        assert sorted(e["id"] for e in normalized) == sorted(
            aq(name)["id"] for name in ("astana-summer-good.json", "astana-low-cost-sensor.json")
        ), "the tenant's city only"
        for entity in normalized:
            assert entity["location"]["type"] == "GeoProperty"
            assert entity["pm25"]["type"] == "Property"
            assert entity["dateObserved"]["value"]["@type"] == "DateTime"
            assert entity["city"] == {"type": "Property", "value": "astana"}
        assert got.rejected == 0
        for headers in got.headers:
            assert headers["webhook-id"].startswith("msg_")
            assert headers["content-type"] == "application/json"
            assert headers["link"].startswith(f"<{CONTEXT}>")
        webhook_id = got.headers[got.notifications.index(key_values)]["webhook-id"]
        assert key_values["id"] == f"urn:ngsi-ld:Notification:{webhook_id}", "a retry names the same notification"

        # PATCH merges: the format changes, the attributes go, the endpoint and the q stay
        patched = await http.patch(
            smog.headers["location"],
            json={"notification": {"format": "normalized", "attributes": None}},
            headers=reader,
        )
        assert patched.status_code == 204, patched.text
        await write(http, writer, aq("almaty-winter-smog.json", "smog-2"))
        await eventually(lambda: len(got.entities("urn:ngsi-ld:Subscription:smog-watch")) >= 2)
        latest = got.entities("urn:ngsi-ld:Subscription:smog-watch")[-1]
        assert latest["pm25"] == {"type": "Property", "value": smog_entity["pm25"]}
        assert "pm10" in latest, "every attribute again"

    async def shown_after_two_sends() -> httpx.Response | None:
        # The receiver has the notification before the hub records the send: wait for the record, not a sleep.
        response = await http.get(smog.headers["location"], headers=reader)
        assert response.status_code == 200, response.text
        return response if response.json()["notification"].get("timesSent") == 2 else None

    shown = await eventually(shown_after_two_sends)
    subscription = shown.json()
    assert shown.headers["link"].startswith(f"<{CONTEXT}>")
    assert subscription["id"] == "urn:ngsi-ld:Subscription:smog-watch"
    assert subscription["type"] == "Subscription"
    assert subscription["subscriptionName"] == "Smog watch"
    assert subscription["entities"] == [{"type": AQ}]
    assert subscription["q"] == 'airQualityLevel=="veryUnhealthy"'
    assert (subscription["isActive"], subscription["status"]) == (True, "active")
    notification = subscription["notification"]
    assert notification["format"] == "normalized"
    assert "attributes" not in notification
    assert notification["endpoint"] == {"uri": uri, "accept": "application/json"}
    assert notification["status"] == "ok"
    assert notification["timesSent"] == 2
    assert notification["lastSuccess"] == notification["lastNotification"]
    assert "lastFailure" not in notification
    # the same subscription through the hub's own API
    own = await http.get("/api/v1/subscriptions/smog-watch", headers=reader)
    assert own.json()["payload"] == {"format": "ngsi-ld-normalized", "attributes": None}
    assert own.json()["delivered"] == 2


async def test_refusals_are_ngsi_ld_problems(http: httpx.AsyncClient, register: Any) -> None:
    service_reader = await token(http, register, "service-requests:read")
    denied = await subscribe(http, service_reader, spec_shaped())
    assert denied.status_code == 403, denied.text
    assert denied.json()["type"] == ERRORS + "AccessDenied"
    assert "air-quality-observed:read" in denied.json()["detail"]
    anonymous = await http.post("/ngsi-ld/v1/subscriptions", json=spec_shaped())
    assert anonymous.status_code == 401
    assert anonymous.json()["type"] == ERRORS + "AccessDenied"

    reader = await token(http, register, "air-quality-observed:read")
    geo = {"geometry": "Point", "coordinates": [76.9, 43.2], "georel": "near;maxDistance==2000"}
    polygon = [[[71.3, 51.0], [71.6, 51.0], [71.6, 51.3], [71.3, 51.0]]]
    refused = [
        ("geoQ", spec_shaped(geoQ=geo)),
        ("geoQ", spec_shaped(geoQ={"geometry": "Polygon", "coordinates": polygon, "georel": "within"})),
        ("watchedAttributes", spec_shaped(watchedAttributes=["pm25"])),
        ("expiresAt", spec_shaped(expiresAt="2030-01-01T00:00:00Z")),
        ("attr==value", spec_shaped(q="pm25>100")),
        ("not a filter of", spec_shaped(q="pm25==100")),
        ("idPattern", spec_shaped(entities=[{"type": AQ, "idPattern": ".*"}])),
        ("no entity type", spec_shaped(entities=[{"type": "Vehicle"}])),
        ("credentials", spec_shaped(notification={"endpoint": {"uri": "https://user:pw@receiver.example/n"}})),
        ("https://", spec_shaped(notification={"endpoint": {"uri": "ftp://receiver.example/n"}})),
        ("normalized or keyValues", spec_shaped(notification={"format": "concise", "endpoint": {"uri": DEAD_END}})),
        (
            "application/json",
            spec_shaped(notification={"endpoint": {"uri": DEAD_END, "accept": "application/geo+json"}}),
        ),
        ("no attribute", spec_shaped(notification={"attributes": ["pm99"], "endpoint": {"uri": DEAD_END}})),
        ("Subscription", spec_shaped(type="Subscriptions")),
        ("id must be", spec_shaped(id="urn:ngsi-ld:Subscription:a/b")),
    ]
    for needle, body in refused:
        response = await subscribe(http, reader, body)
        assert response.status_code == 400, (needle, response.text)
        problem = response.json()
        assert problem["type"] == ERRORS + "BadRequestData", needle
        assert needle in problem["detail"], (needle, problem["detail"])
        assert (problem["status"], problem["title"]) == (400, "BadRequestData")

    gotham = await subscribe(http, reader, spec_shaped(), tenant="gotham")
    assert gotham.status_code == 404
    assert gotham.json()["type"] == ERRORS + "NonexistentTenant"
    form = await http.post("/ngsi-ld/v1/subscriptions", data={"type": "Subscription"}, headers=reader)
    assert form.status_code == 415
    assert form.json()["type"] == ERRORS + "UnsupportedMediaType"
    assert (await subscribe(http, reader, spec_shaped())).status_code == 201
    again = await subscribe(http, reader, spec_shaped())
    assert again.status_code == 409
    assert again.json()["type"] == ERRORS + "AlreadyExists"
    missing = await http.get("/ngsi-ld/v1/subscriptions/urn:ngsi-ld:Subscription:nothing", headers=reader)
    assert missing.status_code == 404
    assert missing.json()["type"] == ERRORS + "ResourceNotFound"


async def test_personal_fields_reach_only_the_owner_s_own_city_and_deletions_are_not_notified(
    http: httpx.AsyncClient, register: Any
) -> None:
    writer = await token(
        http,
        register,
        "service-requests:write",
        "service-requests:read",
        "service-requests:read-personal",
        cities=["astana", "almaty"],
    )
    reader = await token(http, register, "service-requests:read", "service-requests:read-personal", cities=["astana"])
    body = spec_shaped(
        entities=[{"type": "ServiceRequest"}],
        notification={"format": "keyValues", "endpoint": {"uri": DEAD_END}},
    )
    del body["id"], body["q"]
    created = await subscribe(http, reader, body)
    assert created.status_code == 201, created.text
    with ngsi_receiver(created.json()["secret"]) as (uri, got):
        await point_at(http, reader, created.headers["location"], uri)
        await write(http, writer, service_request("NG-1"), service_request("NG-2", city="almaty"))
        await eventually(lambda: len(got.entities()) >= 2)
        gone = service_request("NG-1")["id"]
        deleted = await http.delete(f"/api/v1/service-requests/{quote(gone, safe='')}", headers=writer)
        assert deleted.status_code == 204
        await write(http, writer, service_request("NG-3"))
        await eventually(lambda: len(got.entities()) >= 3)
    by_id = {entity["id"].rsplit(":", 1)[1]: entity for entity in got.entities()}
    assert list(by_id) == ["NG-1", "NG-2", "NG-3"], "the deletion of NG-1 is not notified"
    assert "contactPhone" in by_id["NG-1"], "read-personal in the owner's own city"
    assert "contactPhone" not in by_id["NG-2"], "never of another city's people"
    assert not {"contactName", "contactEmail"} & set(by_id["NG-2"])
    assert by_id["NG-2"]["description"] == service_request("NG-2")["description"]


async def test_is_active_false_stops_deliveries_and_true_catches_up(http: httpx.AsyncClient, register: Any) -> None:
    writer = await token(http, register, "air-quality-observed:write", "air-quality-observed:read")
    reader = await token(http, register, "air-quality-observed:read")
    body = spec_shaped(notification={"format": "keyValues", "endpoint": {"uri": DEAD_END}})
    del body["q"]
    created = await subscribe(http, reader, body)
    location = created.headers["location"]
    with ngsi_receiver(created.json()["secret"]) as (uri, got):
        await point_at(http, reader, location, uri)
        await write(http, writer, aq("astana-summer-good.json", "P-1"))
        await eventually(lambda: len(got.entities()) == 1)

        paused = await http.patch(location, json={"isActive": False}, headers=reader)
        assert paused.status_code == 204, paused.text
        shown = (await http.get(location, headers=reader)).json()
        assert (shown["isActive"], shown["status"]) == (False, "paused")
        await write(http, writer, aq("astana-summer-good.json", "P-2"))
        with pytest.raises(AssertionError, match="not reached"):
            await eventually(lambda: len(got.entities()) > 1, timeout=1.5)

        resumed = await http.patch(location, json={"isActive": True}, headers=reader)
        assert resumed.status_code == 204, resumed.text
        await eventually(lambda: len(got.entities()) == 2)
    assert [e["id"].rsplit(":", 1)[1] for e in got.entities()] == ["P-1", "P-2"], "nothing lost while paused"
    shown = (await http.get(location, headers=reader)).json()
    assert (shown["isActive"], shown["status"]) == (True, "active")


async def test_a_client_lists_reads_and_deletes_only_its_own(http: httpx.AsyncClient, register: Any) -> None:
    alice = await token(http, register, "air-quality-observed:read")
    bob = await token(http, register, "air-quality-observed:read")
    mine = await subscribe(http, alice, spec_shaped(id="urn:ngsi-ld:Subscription:alice-1"))
    in_almaty = copy.deepcopy(spec_shaped())
    del in_almaty["id"]
    mine_in_almaty = await subscribe(http, alice, in_almaty, tenant="almaty")
    theirs = await subscribe(http, bob, spec_shaped(id="urn:ngsi-ld:Subscription:bob-1"))
    assert {mine.status_code, mine_in_almaty.status_code, theirs.status_code} == {201}
    plain = await http.post(
        "/api/v1/subscriptions",
        json={"types": [AQ], "delivery": {"kind": "webhook", "url": DEAD_END}},
        headers=alice,
    )
    assert plain.status_code == 201, plain.text

    listed = await http.get("/ngsi-ld/v1/subscriptions", params={"count": "true"}, headers=alice)
    assert listed.status_code == 200, listed.text
    ids = [s["id"] for s in listed.json()]
    assert ids == ["urn:ngsi-ld:Subscription:alice-1", mine_in_almaty.json()["id"]], "own NGSI-LD ones only"
    assert listed.headers["NGSILD-Results-Count"] == "2"
    assert all(s["type"] == "Subscription" and "secret" not in s for s in listed.json())
    tenant = await http.get("/ngsi-ld/v1/subscriptions", headers={**alice, "NGSILD-Tenant": "almaty"})
    assert [s["id"] for s in tenant.json()] == [mine_in_almaty.json()["id"]]
    paged = await http.get("/ngsi-ld/v1/subscriptions", params={"limit": "1", "offset": "1"}, headers=alice)
    assert [s["id"] for s in paged.json()] == [mine_in_almaty.json()["id"]]
    ld = await http.get("/ngsi-ld/v1/subscriptions", headers={**alice, "Accept": "application/ld+json"})
    assert ld.headers["content-type"].startswith("application/ld+json")
    assert ld.json()[0]["@context"][0] == CONTEXT

    for method in ("GET", "PATCH", "DELETE"):
        other = await http.request(
            method, "/ngsi-ld/v1/subscriptions/urn:ngsi-ld:Subscription:bob-1", json={"isActive": False}, headers=alice
        )
        assert other.status_code == 404, (method, other.text)
        assert other.json()["type"] == ERRORS + "ResourceNotFound"
    plain_via_ngsi = await http.get(f"/ngsi-ld/v1/subscriptions/{plain.json()['id']}", headers=alice)
    assert plain_via_ngsi.status_code == 404
    wrong_tenant = await http.get(mine.headers["location"], headers={**alice, "NGSILD-Tenant": "almaty"})
    assert wrong_tenant.status_code == 404

    assert (await http.delete(mine.headers["location"], headers=alice)).status_code == 204
    assert (await http.get(mine.headers["location"], headers=alice)).status_code == 404
    assert (await http.get("/ngsi-ld/v1/subscriptions/urn:ngsi-ld:Subscription:bob-1", headers=bob)).status_code == 200


async def test_patch_checks_what_changes_and_keeps_what_ngsi_ld_cannot_say(
    http: httpx.AsyncClient, register: Any
) -> None:
    who = await register(scopes=["air-quality-observed:read", "service-requests:read"], cities=["astana"])
    full = bearer(await get_token(http, who))
    created = await subscribe(http, full, spec_shaped(), tenant="astana")
    location = created.headers["location"]
    box = [71.3, 51.0, 71.6, 51.3]
    through_api = await http.patch("/api/v1/subscriptions/smog-watch", json={"bbox": box}, headers=full)
    assert through_api.status_code == 200, through_api.text

    # A token of the same client without air-quality-observed:read may still pause it, not widen it
    narrow = bearer(await get_token(http, who, scope="service-requests:read"))
    paused = await http.patch(location, json={"isActive": False}, headers=narrow)
    assert paused.status_code == 204, paused.text
    widened = await http.patch(location, json={"q": 'airQualityLevel=="good"'}, headers=narrow)
    assert widened.status_code == 403
    assert widened.json()["type"] == ERRORS + "AccessDenied"
    renamed = await http.patch(location, json={"subscriptionName": "Smog", "status": "active"}, headers=full)
    assert renamed.status_code == 204, renamed.text
    moved = await http.patch(location, json={"id": "urn:ngsi-ld:Subscription:other"}, headers=full)
    assert moved.status_code == 400

    own = (await http.get("/api/v1/subscriptions/smog-watch", headers=full)).json()
    assert own["bbox"] == box, "the bounding box set through /api/v1 survives NGSI-LD patches"
    assert own["cities"] == ["astana"], "and so does the tenant"
    assert (own["state"], own["name"]) == ("paused", "Smog")
    assert own["filters"] == {"airQualityLevel": "veryUnhealthy"}
