"""Webhook delivery by the in-process worker: filtered, redacted, signed, ordered, retried, logged, audited."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote

import httpx
import orjson
import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from gateway.services import Services
from gateway.settings import Settings
from gateway.subscriptions.signing import new_secret, signed_headers
from tests.gateway.conftest import get_token
from tests.gateway.exchange_fixtures import bearer, service_request
from tests.gateway.subscription_fixtures import eventually, kept, quick_settings, receiver

WRITER = ["service-requests:read", "service-requests:write", "service-requests:read-personal"]
NDJSON = {"Content-Type": "application/x-ndjson"}


@pytest.fixture
def settings(database_url: str) -> Settings:
    return quick_settings(database_url)


async def tokens(http: httpx.AsyncClient, register: Any, subscriber: list[str]) -> tuple[dict[str, str], Any, Any]:
    writer = bearer(await get_token(http, await register(scopes=WRITER, cities=["astana", "almaty"])))
    who = await register(scopes=subscriber, cities=["astana"])
    return writer, who, bearer(await get_token(http, who))


async def subscribe(http: httpx.AsyncClient, headers: dict[str, str], url: str, **selection: Any) -> dict[str, Any]:
    body = {"types": ["ServiceRequest"], **selection, "delivery": {"kind": "webhook", "url": url}}
    response = await http.post("/api/v1/subscriptions", json=body, headers=headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def write(http: httpx.AsyncClient, writer: dict[str, str], names: list[str], city: str = "astana") -> None:
    """Half through the batch API, half one by one, as city systems do."""
    half = len(names) // 2
    body = b"".join(orjson.dumps(service_request(n, city=city)) + b"\n" for n in names[:half])
    response = await http.post("/api/v1/batch", content=body, headers={**writer, **NDJSON})
    assert response.status_code in (200, 207), response.text
    for name in names[half:]:
        entity = service_request(name, city=city)
        assert (await http.post("/api/v1/service-requests", json=entity, headers=writer)).status_code == 201


def local_ids(changes: list[dict[str, Any]]) -> list[str]:
    return [c["id"].rsplit(":", 1)[1] for c in changes]


async def test_every_matching_change_arrives_once_in_order_redacted_and_signed(
    http: httpx.AsyncClient, register: Any, services: Services
) -> None:
    writer, _, subscriber = await tokens(http, register, ["service-requests:read"])
    # A receiver needs its secret before it starts: subscribe first, then point the subscription at it.
    created = await subscribe(http, subscriber, "http://127.0.0.1:1/webhook", cities=["astana"])
    with receiver(created["secret"]) as url:
        patched = await http.patch(
            f"/api/v1/subscriptions/{created['id']}",
            json={"delivery": {"kind": "webhook", "url": url}},
            headers=subscriber,
        )
        assert patched.status_code == 200, patched.text
        names = [f"D-{i:03d}" for i in range(40)]
        await write(http, writer, names)
        await write(http, writer, ["ALM-1", "ALM-2"], city="almaty")  # another city: not selected
        await eventually(lambda: _upto(url, 40))
        gone = service_request("D-005")["id"]
        assert (
            await http.delete(f"/api/v1/service-requests/{quote(gone, safe='')}", headers=writer)
        ).status_code == 204

        got = await eventually(lambda: _upto(url, 41))
        changes = got["changes"]
        assert got["rejected"] == 0, "every delivery verified with the standardwebhooks library"
        assert [c["seq"] for c in changes] == sorted(c["seq"] for c in changes)
        assert local_ids(changes) == [*names, "D-005"]
        assert changes[-1]["op"] == "delete"
        assert changes[-1]["entity"] is None
        assert all("contactPhone" not in (c["entity"] or {}) for c in changes), "no read-personal, no personal data"
        assert all("ALM" not in c["id"] for c in changes)

    log = (await http.get(f"/api/v1/subscriptions/{created['id']}/deliveries", headers=subscriber)).json()["items"]
    delivered = [entry for entry in log if entry["status"] and entry["status"] < 300]
    assert sum(entry["events"] for entry in delivered) == 41
    assert all(entry["latencyMs"] is not None for entry in delivered)
    records = await services.audit.last(500)
    audited = {r["detail"]["webhookId"] for r in records if r["action"] == "subscription.delivered"}
    assert audited == {entry["webhookId"] for entry in delivered}
    state = (await http.get(f"/api/v1/subscriptions/{created['id']}", headers=subscriber)).json()
    assert state["delivered"] == 41
    assert state["pending"] is None


async def _upto(url: str, count: int) -> dict[str, Any] | None:
    got = await kept(url)
    return got if len(got["changes"]) >= count else None


async def test_a_subscriber_with_read_personal_gets_personal_fields(http: httpx.AsyncClient, register: Any) -> None:
    writer, _, subscriber = await tokens(http, register, ["service-requests:read", "service-requests:read-personal"])
    created = await subscribe(http, subscriber, "http://127.0.0.1:1/webhook")
    with receiver(created["secret"]) as url:
        await http.patch(
            f"/api/v1/subscriptions/{created['id']}",
            json={"delivery": {"kind": "webhook", "url": url}},
            headers=subscriber,
        )
        await write(http, writer, ["P-1", "P-2"])
        await write(http, writer, ["ALM-1", "ALM-2"], city="almaty")
        got = await eventually(lambda: _upto(url, 4))
    by_city = {c["city"]: c["entity"] for c in got["changes"]}
    assert all("contactPhone" in c["entity"] for c in got["changes"] if c["city"] == "astana")
    # read-personal reaches only the subscriber's own cities (astana), as on every read of the hub
    assert "contactPhone" not in by_city["almaty"]
    assert [c["city"] for c in got["changes"]] == ["astana", "astana", "almaty", "almaty"]


async def test_a_client_narrowed_to_its_cities_receives_nothing_of_the_others(
    http: httpx.AsyncClient, register: Any, services: Services
) -> None:
    writer, who, subscriber = await tokens(http, register, ["service-requests:read"])
    created = await subscribe(http, subscriber, "http://127.0.0.1:1/webhook")
    with receiver(created["secret"]) as url:
        await http.patch(
            f"/api/v1/subscriptions/{created['id']}",
            json={"delivery": {"kind": "webhook", "url": url}},
            headers=subscriber,
        )
        await write(http, writer, ["N-1", "N-2"])
        await eventually(lambda: _upto(url, 2))
        await services.directory.set_read_cities(who.client.client_id, ["astana"])  # narrowed after subscribing
        await write(http, writer, ["ALM-1", "ALM-2"], city="almaty")
        await write(http, writer, ["N-3", "N-4"])
        got = await eventually(lambda: _upto(url, 4))
    assert local_ids(got["changes"]) == ["N-1", "N-2", "N-3", "N-4"]


async def test_a_flaky_receiver_still_gets_everything_once_after_de_duplication(
    http: httpx.AsyncClient, register: Any
) -> None:
    writer, _, subscriber = await tokens(http, register, ["service-requests:read"])
    created = await subscribe(http, subscriber, "http://127.0.0.1:1/webhook")
    with receiver(created["secret"], fail_ratio=0.5, slow_seconds=1.5) as url:
        await http.patch(
            f"/api/v1/subscriptions/{created['id']}",
            json={"delivery": {"kind": "webhook", "url": url}},
            headers=subscriber,
        )
        names = [f"F-{i:03d}" for i in range(60)]
        for start in range(0, 60, 10):  # several commits, so several batches
            await write(http, writer, names[start : start + 10])
        got = await eventually(lambda: _upto(url, 60), timeout=60)
    assert local_ids(got["changes"]) == names
    log = (await http.get(f"/api/v1/subscriptions/{created['id']}/deliveries", headers=subscriber)).json()["items"]
    failures = [entry for entry in log if entry["status"] is None or entry["status"] >= 300]
    assert failures, "the receiver failed half the time: the log shows it"
    assert any(entry["attempt"] > 1 and entry["status"] == 204 for entry in log), "a retry succeeded"
    retried = {entry["webhookId"] for entry in failures}
    assert retried <= {entry["webhookId"] for entry in log if entry["status"] == 204}, "retries keep their webhook-id"


async def test_410_stops_and_a_dead_receiver_fails_after_the_window(
    http: httpx.AsyncClient, register: Any, services: Services
) -> None:
    writer, _, subscriber = await tokens(http, register, ["service-requests:read"])
    created = await subscribe(http, subscriber, "http://127.0.0.1:1/webhook")
    with receiver(created["secret"], gone=True) as url:
        await http.patch(
            f"/api/v1/subscriptions/{created['id']}",
            json={"delivery": {"kind": "webhook", "url": url}},
            headers=subscriber,
        )
        await write(http, writer, ["G-1", "G-2"])
        state = await eventually(lambda: _state(http, subscriber, created["id"], "failed"))
    assert "410" in state["lastError"]
    log = (await http.get(f"/api/v1/subscriptions/{created['id']}/deliveries", headers=subscriber)).json()["items"]
    assert len(log) == 1, "no retry after 410 Gone"


async def _state(http: httpx.AsyncClient, headers: dict[str, str], sid: str, wanted: str) -> dict[str, Any] | None:
    found: dict[str, Any] = (await http.get(f"/api/v1/subscriptions/{sid}", headers=headers)).json()
    return found if found["state"] == wanted else None


async def test_pause_replay_and_a_disabled_owner(http: httpx.AsyncClient, register: Any, services: Services) -> None:
    writer, who, subscriber = await tokens(http, register, ["service-requests:read"])
    created = await subscribe(http, subscriber, "http://127.0.0.1:1/webhook")
    sid = created["id"]
    with receiver(created["secret"]) as url:
        await http.patch(
            f"/api/v1/subscriptions/{sid}", json={"delivery": {"kind": "webhook", "url": url}}, headers=subscriber
        )
        await http.post(f"/api/v1/subscriptions/{sid}/pause", headers=subscriber)
        await write(http, writer, ["R-1", "R-2"])
        time.sleep(0.5)
        assert (await kept(url))["changes"] == [], "paused: nothing delivered"
        await http.post(f"/api/v1/subscriptions/{sid}/resume", headers=subscriber)
        first = await eventually(lambda: _upto(url, 2))
        assert local_ids(first["changes"]) == ["R-1", "R-2"]

        await http.post(f"/api/v1/subscriptions/{sid}/replay", json={"since": created["cursor"]}, headers=subscriber)
        again = await eventually(lambda: _upto(url, 4))
        assert local_ids(again["changes"]) == ["R-1", "R-2", "R-1", "R-2"], "a replay is new messages"

        await services.directory.set_enabled(who.client_id, False)
        await write(http, writer, ["R-3"])
        time.sleep(0.5)
        assert len((await kept(url))["changes"]) == 4, "a disabled client's subscription stops"
        await services.directory.set_enabled(who.client_id, True)
        await eventually(lambda: _upto(url, 5))


def test_signatures_fail_on_a_tampered_body_an_old_timestamp_or_another_secret() -> None:
    secret = new_secret()
    body = b'{"changes": []}'
    headers = signed_headers("msg_1", body, [secret], time.time())
    assert Webhook(secret).verify(body, headers) == {"changes": []}
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(b'{"changes": [1]}', headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body, signed_headers("msg_1", body, [secret], time.time() - 600))
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(body, headers)
    rotated = new_secret()
    both = signed_headers("msg_1", body, [rotated, secret], time.time())
    assert Webhook(secret).verify(body, both) == Webhook(rotated).verify(body, both), "either secret verifies"
