"""Open311 GeoReport v2 at /open311/v2, driven by a GeoReport client written from the specification, and
round-tripped through Qala's own open311 adapter."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import httpx

from adapters.records import Position, Record
from adapters.sources.open311 import Open311Adapter
from schemas.registry import MODELS_DIR
from tests.gateway.conftest import Registered, get_token
from tests.gateway.exchange_fixtures import bearer, ndjson_results

SAMPLE = Path(__file__).parents[2] / "examples" / "legacy" / "open311-shymkent"
SINCE = "2000-01-01T00:00:00Z"


@dataclass
class GeoReport:
    """A GeoReport v2 client as the spec describes one: form-encoded POST, api_key, jurisdiction_id, .json/.xml."""

    http: httpx.AsyncClient
    jurisdiction: str
    api_key: str | None = None
    base: str = "/open311/v2"

    def _params(self, **extra: Any) -> dict[str, Any]:
        params = {"jurisdiction_id": self.jurisdiction, **{k: v for k, v in extra.items() if v is not None}}
        if self.api_key:
            params["api_key"] = self.api_key
        return params

    async def get(self, path: str, **params: Any) -> httpx.Response:
        return await self.http.get(f"{self.base}/{path}", params=self._params(**params))

    async def post_request(self, **fields: Any) -> httpx.Response:
        return await self.http.post(f"{self.base}/requests.json", data=self._params(**fields))


async def writer_and_types(http: httpx.AsyncClient, register: Any) -> tuple[Registered, str]:
    """A 311 centre client of Astana, and Astana's service types published through the exchange API."""
    who = await register(
        scopes=["service-requests:read", "service-requests:write", "service-types:read", "service-types:write"],
        cities=["astana"],
    )
    token = await get_token(http, who)
    for name in ("astana-roads-pothole.json", "astana-snow-removal-blackbox.json"):
        entity = json.loads((MODELS_DIR / "ServiceType" / "examples" / name).read_text("utf-8"))
        created = await http.post("/api/v1/service-types", json=entity, headers=bearer(token))
        assert created.status_code == 201, created.text
    return who, token


async def test_services_list_and_definition_in_json_and_xml(http: httpx.AsyncClient, register: Any) -> None:
    await writer_and_types(http, register)
    client = GeoReport(http, "astana")
    services = (await client.get("services.json")).json()
    assert {s["service_code"] for s in services} == {"roads.pothole", "streets.snow-removal"}
    pothole = next(s for s in services if s["service_code"] == "roads.pothole")
    assert pothole["service_name"] == "Яма на дороге"
    assert pothole["metadata"] is True
    assert pothole["type"] == "realtime"
    assert pothole["group"] == "roads"

    definition = (await client.get("services/roads.pothole.json")).json()
    road_part = definition["attributes"][0]
    assert road_part["code"] == "road_part"
    assert road_part["datatype"] == "singlevaluelist"
    assert {v["key"] for v in road_part["values"]} == {"carriageway", "sidewalk", "courtyard"}

    xml = await client.get("services.xml")
    assert xml.headers["content-type"].startswith("text/xml")
    root = ET.fromstring(xml.content)
    assert root.tag == "services"
    assert sorted(e.findtext("service_code") or "" for e in root.iter("service")) == [
        "roads.pothole",
        "streets.snow-removal",
    ]
    english = (await client.get("services.json", locale="en")).json()
    assert "Pothole" in {s["service_name"] for s in english}


async def test_a_resident_app_files_a_request_and_reads_it_back(http: httpx.AsyncClient, register: Any) -> None:
    _, token = await writer_and_types(http, register)
    app = GeoReport(http, "astana", api_key=token)
    filed = await app.post_request(
        service_code="roads.pothole",
        lat="51.1282",
        long="71.4304",
        address_string="проспект Мангилик Ел, 8",
        description="Глубокая яма у остановки",
        first_name="Айгерим",
        last_name="Садыкова",
        phone="+77011234567",
        email="aigerim@example.kz",
    )
    assert filed.status_code == 201, filed.text
    (answer,) = filed.json()
    request_id = answer["service_request_id"]
    assert "token" not in answer or answer["token"] is None

    (record,) = (await app.get(f"requests/{request_id}.json")).json()
    assert record["status"] == "open"
    assert record["service_code"] == "roads.pothole"
    assert record["description"] == "Глубокая яма у остановки"
    assert (record["lat"], record["long"]) == (51.1282, 71.4304)
    assert record["address"] == "проспект Мангилик Ел, 8"
    assert record["requested_datetime"].endswith("Z")
    assert not {"first_name", "last_name", "phone", "email"} & set(record), "GeoReport records carry no contacts"

    # The request is an ordinary ServiceRequest: a reader with read-personal sees the contact, as in /api/v1.
    personal = await register(scopes=["service-requests:read", "service-requests:read-personal"], cities=["astana"])
    stored = await http.get(
        f"/api/v1/service-requests/urn:ngsi-ld:ServiceRequest:astana:{request_id}",
        headers=bearer(await get_token(http, personal)),
    )
    assert stored.status_code == 200, stored.text
    assert stored.json()["contactName"] == "Айгерим Садыкова"
    assert stored.json()["channel"] == "app"

    # An anonymous reader gets the open-data view: the place rounded to about 100 m, no street address.
    (public,) = (await GeoReport(http, "astana").get(f"requests/{request_id}.json")).json()
    assert (public["lat"], public["long"]) == (51.128, 71.43)
    assert public["address"] is None
    assert public["description"] == record["description"]

    token_answer = (await app.get(f"tokens/{request_id}.json")).json()
    assert token_answer == [{"service_request_id": request_id, "token": request_id}]
    listed = (await app.get("requests.json", status="open", service_code="roads.pothole")).json()
    assert [r["service_request_id"] for r in listed] == [request_id]
    assert (await app.get("requests.json", status="closed")).json() == []


async def test_errors_are_the_specs_error_list(http: httpx.AsyncClient, register: Any) -> None:
    _, token = await writer_and_types(http, register)
    anonymous = await GeoReport(http, "astana").post_request(service_code="roads.pothole", lat="51.1", long="71.4")
    assert anonymous.status_code == 403
    assert anonymous.json()[0]["code"] == 403
    assert "api_key" in anonymous.json()[0]["description"]

    forged = await GeoReport(http, "astana", api_key="not-a-token").post_request(service_code="roads.pothole")
    assert forged.status_code == 403

    unknown_service = await GeoReport(http, "astana", api_key=token).post_request(
        service_code="no.such.service", lat="51.1", long="71.4"
    )
    assert unknown_service.status_code == 400
    no_place = await GeoReport(http, "astana", api_key=token).post_request(service_code="roads.pothole")
    assert no_place.status_code == 400
    assert "location" in no_place.json()[0]["description"]

    other_city = await GeoReport(http, "almaty", api_key=token).post_request(
        service_code="roads.pothole", lat="43.2", long="76.9"
    )
    assert other_city.status_code in (400, 403)
    gotham = await GeoReport(http, "gotham").get("services.json")
    assert gotham.status_code == 404
    missing = await GeoReport(http, "astana").get("requests/NOPE-1.xml")
    assert missing.status_code == 404
    root = ET.fromstring(missing.content)
    assert root.tag == "errors"
    assert root.findtext("error/code") == "404"
    assert (await GeoReport(http, "astana").get("requests.json", start_date="yesterday")).status_code == 400


async def test_round_trip_through_qalas_own_open311_adapter(http: httpx.AsyncClient, register: Any) -> None:
    """Import the Shymkent sample with the adapter, publish it, serve it as GeoReport, import that again."""
    adapter = Open311Adapter(str(SAMPLE), options={"city": "shymkent"})
    imported = [adapter.map(record) for record in adapter.records()]
    entities = [e for e in imported if isinstance(e, dict)]
    assert len(imported) == 25
    assert len(entities) == 24, "the sample holds one request without a time-zone offset, which is quarantined"

    who = await register(scopes=["service-requests:read", "service-requests:write"], cities=["shymkent"])
    token = await get_token(http, who)
    body = "\n".join(json.dumps(e, ensure_ascii=False) for e in entities).encode()
    response = await http.post(
        "/api/v1/batch", content=body, headers={**bearer(token), "Content-Type": "application/x-ndjson"}
    )
    assert {r["status"] for r in await ndjson_results(response)} == {"created"}

    served = (await GeoReport(http, "shymkent", api_key=token).get("requests.json", start_date=SINCE)).json()
    assert len(served) == len(entities)
    again = Open311Adapter(str(SAMPLE), options={"city": "shymkent"})
    reimported = {}
    for number, item in enumerate(served):
        entity = again.map(Record(Position("hub", record=number), item, item))
        assert isinstance(entity, dict), entity
        reimported[entity["id"]] = entity
    for original in entities:
        back = reimported[original["id"]]
        assert {k: v for k, v in back.items() if k != "source"} == {
            k: v for k, v in original.items() if k != "source"
        }, original["id"]
