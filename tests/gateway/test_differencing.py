"""The differencing attack of issue 15 replayed against the hub: post one payment into a published cell and
download the open-data table again; nothing may change, and no open period is published at all."""

from __future__ import annotations

import copy
import csv
import io
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
from fastapi import FastAPI

from catalogue.frozen import PeriodFreezer, is_closed
from catalogue.privacy import AGGREGATED
from tests.catalogue.conftest import generated_payments
from tests.gateway.conftest import get_token
from tests.gateway.exchange_fixtures import bearer, ndjson_results

NAME = "payment-transactions-astana"
CSV_URL = f"/dataset/{NAME}/download/{NAME}.csv"
SCOPES = ["payment-transactions:read", "payment-transactions:write"]


async def post(http: httpx.AsyncClient, headers: dict[str, str], payments: list[dict[str, Any]]) -> None:
    body = b"\n".join(orjson.dumps(p) for p in payments)
    response = await http.post(
        "/api/v1/batch", content=body, headers=headers | {"Content-Type": "application/x-ndjson"}
    )
    assert {r["status"] for r in await ndjson_results(response)} == {"created"}


async def download(http: httpx.AsyncClient, app: FastAPI) -> tuple[bytes, list[dict[str, str]]]:
    await app.state.catalogue.refresh()
    response = await http.get(CSV_URL)
    assert response.status_code == 200, response.text
    return response.content, list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))


def newcomer(template: dict[str, Any], local: str, booked: datetime) -> dict[str, Any]:
    payment = copy.deepcopy(template)
    payment["id"] = f"urn:ngsi-ld:PaymentTransaction:astana:{local}"
    payment["amount"] = "777.77"
    for field in ("dateModified", "dateInitiated", "dateBooked"):
        payment[field] = booked.isoformat()
    return payment


async def test_one_payment_posted_into_a_published_cell_changes_no_download(
    app: FastAPI, http: httpx.AsyncClient, register: Any
) -> None:
    headers = bearer(await get_token(http, await register(scopes=SCOPES, cities=["astana"])))
    payments = generated_payments(400)
    await post(http, headers, payments)
    before, rows = await download(http, app)
    published = [r for r in rows if r["suppressed"] == "false" and r["serviceCategory"] != "all"]
    assert published, "the attack needs a published cell"
    target = max(published, key=lambda r: int(r["count"]))
    template = next(
        p
        for p in payments
        if p["district"] == target["district"]
        and p["serviceCategory"] == target["serviceCategory"]
        and p["dateBooked"].startswith(target["day"])
    )
    # the attack: one more payment in the published cell (same district, day and category)
    await post(http, headers, [newcomer(template, "ATTACK-1", datetime.fromisoformat(template["dateBooked"]))])
    after, _ = await download(http, app)
    assert after == before  # the cell is frozen: 30 -> 31 and 30,000.00 -> 30,777.77 can no longer be seen

    # a payment made now lands in an open period, which is not published at all
    await post(http, headers, [newcomer(template, "ATTACK-2", datetime.now(UTC))])
    now_rows = (await download(http, app))[1]
    assert (await download(http, app))[0] == before
    assert not [r for r in now_rows if not is_closed(r["day"], datetime.now(UTC))]
    shown = (await http.get("/api/3/action/package_show", params={"id": NAME})).json()["result"]
    api = next(r for r in shown["resources"] if r["url"].count("datastore_search"))
    datastore = await http.get("/api/3/action/datastore_search", params={"resource_id": api["id"], "limit": 1000})
    assert datastore.status_code == 200, datastore.text
    assert Counter(r["day"] for r in datastore.json()["result"]["records"]) == Counter(r["day"] for r in rows)


SPEC = AGGREGATED["PaymentTransaction"]


async def test_a_period_is_published_only_once_closed_and_then_never_revised(app: FastAPI) -> None:
    clock = [datetime(2025, 3, 2, 12, tzinfo=UTC)]
    freezer = PeriodFreezer(app.state.services.engine, clock=lambda: clock[0])
    day_one = generated_payments(300)
    day_one = [p for p in day_one if p["dateBooked"].startswith("2025-03-01")]
    assert len(day_one) > 50
    assert await freezer.rows("t", SPEC, day_one) == []  # 1 March closes at 00:00 on 3 March, Astana time
    clock[0] = datetime(2025, 3, 3, 12, tzinfo=UTC)
    first = await freezer.rows("t", SPEC, day_one)
    assert first
    assert {row["day"] for row in first} == {"2025-03-01"}
    late = [newcomer(day_one[0], f"LATE-{n}", datetime(2025, 3, 1, 10, tzinfo=UTC)) for n in range(15)]
    clock[0] += timedelta(days=30)
    assert await freezer.rows("t", SPEC, day_one + late) == first
    again = PeriodFreezer(app.state.services.engine, clock=lambda: clock[0])  # another worker, same store
    assert await again.rows("t", SPEC, day_one + late) == first
