"""SIGKILL in the middle of a large batch loses nothing that was reported committed; a resend completes it."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import orjson
import pytest

from tests.gateway.exchange_fixtures import service_request
from tests.gateway.serving import HubProcess, register_client

TOTAL = 20_000
SCOPES = ["service-requests:read", "service-requests:write"]


@pytest.fixture
def hub(database_url: str) -> Iterator[HubProcess]:
    process = HubProcess(database_url)
    try:
        yield process
    finally:
        process.stop()


def token(hub: HubProcess, client_id: str, secret: str) -> dict[str, str]:
    response = httpx.post(
        f"{hub.base}/oauth/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret), timeout=10
    )
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def all_ids(hub: HubProcess, headers: dict[str, str]) -> list[str]:
    ids: list[str] = []
    url: str | None = f"{hub.base}/api/v1/service-requests?limit=1000"
    while url:
        page = httpx.get(url, headers=headers, timeout=30).json()
        ids += [item["id"] for item in page["items"]]
        url = page["next"]
    return ids


def test_sigkill_mid_batch_loses_nothing_reported_and_resend_completes(hub: HubProcess) -> None:
    client_id, secret = register_client(hub.database_url, SCOPES, ["astana"])
    body = b"".join(orjson.dumps(service_request(f"K-{i:05d}")) + b"\n" for i in range(TOTAL))
    hub.start()
    headers = {**token(hub, client_id, secret), "Content-Type": "application/x-ndjson"}

    reported: set[str] = set()
    with httpx.stream("POST", f"{hub.base}/api/v1/batch", content=body, headers=headers, timeout=120) as response:
        assert response.status_code == 200
        try:
            for line in response.iter_lines():
                result = orjson.loads(line)
                assert result["status"] == "created"
                reported.add(result["id"])
                if len(reported) >= 2_000:
                    hub.kill()
        except httpx.HTTPError:
            pass  # the connection died with the server, as it should
    assert 2_000 <= len(reported) < TOTAL, "the kill landed in the middle of the batch"

    hub.start()
    headers = {**token(hub, client_id, secret), "Content-Type": "application/x-ndjson"}
    stored = set(all_ids(hub, headers))
    assert reported <= stored, f"{len(reported - stored)} reported-committed entities were lost"

    resend = httpx.post(f"{hub.base}/api/v1/batch", content=body, headers=headers, timeout=300)
    statuses = [orjson.loads(line)["status"] for line in resend.text.splitlines()]
    assert len(statuses) == TOTAL
    assert set(statuses) <= {"created", "unchanged"}
    assert statuses.count("unchanged") >= len(reported)
    ids = all_ids(hub, headers)
    assert len(ids) == len(set(ids)) == TOTAL, "complete and without duplicates"
