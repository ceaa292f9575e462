"""The NGSI-LD facade, driven with requests shaped as the NGSI-LD specification's examples (ETSI GS CIM 009) and
compared with FIWARE Smart Data Models' own example payload."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from gateway.services import Services
from schemas.registry import MODELS_DIR
from tests.gateway.conftest import get_token
from tests.gateway.exchange_fixtures import bearer

DATA = Path(__file__).parent / "data"
AQ_EXAMPLES = MODELS_DIR / "AirQualityObserved" / "examples"
LD = "application/ld+json"


def example(name: str) -> dict[str, Any]:
    entity: dict[str, Any] = json.loads((AQ_EXAMPLES / name).read_text("utf-8"))
    return entity


async def token_for(http: httpx.AsyncClient, register: Any, *scopes: str, cities: list[str] | None = None) -> str:
    who = await register(scopes=list(scopes), cities=cities or ["astana", "almaty"])
    return await get_token(http, who)


async def seed(http: httpx.AsyncClient, register: Any) -> str:
    writer = await token_for(http, register, "air-quality-observed:write", "air-quality-observed:read")
    for name in ("almaty-winter-smog.json", "astana-summer-good.json", "astana-low-cost-sensor.json"):
        response = await http.post("/api/v1/air-quality-observed", json=example(name), headers=bearer(writer))
        assert response.status_code == 201, response.text
    return writer


async def test_query_by_type_in_normalized_form_with_tenant_and_count(http: httpx.AsyncClient, register: Any) -> None:
    reader = await seed(http, register)
    response = await http.get(
        "/ngsi-ld/v1/entities",
        params={"type": "AirQualityObserved", "count": "true"},
        headers={**bearer(reader), "NGSILD-Tenant": "astana"},
    )
    assert response.status_code == 200, response.text
    assert response.headers["NGSILD-Results-Count"] == "2"
    assert 'rel="http://www.w3.org/ns/json-ld#context"' in response.headers["link"]
    entities = response.json()
    assert {e["id"].split(":")[3] for e in entities} == {"astana"}
    entity = entities[0]
    assert entity["type"] == "AirQualityObserved"
    assert entity["location"]["type"] == "GeoProperty"
    assert entity["location"]["value"]["type"] == "Point"
    assert entity["pm25"] == {"type": "Property", "value": entity["pm25"]["value"]}
    assert entity["dateObserved"]["value"]["@type"] == "DateTime"
    if "refDevice" in entity:
        assert entity["refDevice"]["type"] == "Relationship"
        assert entity["refDevice"]["object"].startswith("urn:ngsi-ld:Device:")


async def test_q_georel_limit_offset_and_key_values(http: httpx.AsyncClient, register: Any) -> None:
    reader = await seed(http, register)
    headers = bearer(reader)
    smog = example("almaty-winter-smog.json")
    lon, lat = smog["location"]["coordinates"]
    near = await http.get(
        "/ngsi-ld/v1/entities",
        params={
            "type": "AirQualityObserved",
            "georel": "near;maxDistance==2000",
            "geometry": "Point",
            "coordinates": json.dumps([lon + 0.01, lat]),  # about 800 m east of the station
            "options": "keyValues",
        },
        headers=headers,
    )
    assert near.status_code == 200, near.text
    assert [e["id"] for e in near.json()] == [smog["id"]]
    assert near.json()[0]["pm25"] == smog["pm25"], "keyValues is the canonical entity"
    far = await http.get(
        "/ngsi-ld/v1/entities",
        params={
            "type": "AirQualityObserved",
            "georel": "near;maxDistance==500",
            "geometry": "Point",
            "coordinates": json.dumps([lon + 0.01, lat]),
        },
        headers=headers,
    )
    assert far.json() == []

    by_level = await http.get(
        "/ngsi-ld/v1/entities",
        params={"type": "AirQualityObserved", "q": 'airQualityLevel=="veryUnhealthy"'},
        headers=headers,
    )
    assert [e["id"] for e in by_level.json()] == [smog["id"]]

    pages = []
    for offset in range(3):
        page = await http.get(
            "/ngsi-ld/v1/entities",
            params={"type": "AirQualityObserved", "limit": "1", "offset": str(offset)},
            headers=headers,
        )
        pages += [e["id"] for e in page.json()]
    assert len(set(pages)) == 3

    unsupported = await http.get(
        "/ngsi-ld/v1/entities", params={"type": "AirQualityObserved", "q": "pm25>100"}, headers=headers
    )
    assert unsupported.status_code == 400
    assert unsupported.json()["type"] == "https://uri.etsi.org/ngsi-ld/errors/BadRequestData"


async def test_create_in_normalized_json_ld_and_patch_attributes(http: httpx.AsyncClient, register: Any) -> None:
    writer = await token_for(http, register, "air-quality-observed:write", "air-quality-observed:read")
    entity = example("astana-summer-good.json")
    entity["id"] = "urn:ngsi-ld:AirQualityObserved:astana:ngsi-ld-1"
    body = {
        "id": entity["id"],
        "type": "AirQualityObserved",
        **{
            key: (
                {"type": "GeoProperty", "value": value}
                if key == "location"
                else {"type": "Relationship", "object": value}
                if key.startswith("ref")
                else {"type": "Property", "value": value}
            )
            for key, value in entity.items()
            if key not in ("id", "type")
        },
        "@context": ["http://testserver/ngsi-ld/v1/jsonldContexts/qala.jsonld"],
    }
    created = await http.post(
        "/ngsi-ld/v1/entities", content=json.dumps(body), headers={**bearer(writer), "Content-Type": LD}
    )
    assert created.status_code == 201, created.text
    assert created.headers["location"] == f"/ngsi-ld/v1/entities/{entity['id']}"

    stored = await http.get(f"/api/v1/air-quality-observed/{entity['id']}", headers=bearer(writer))
    assert stored.json()["pm25"] == entity["pm25"], "the canonical entity holds plain values"

    patched = await http.patch(
        f"/ngsi-ld/v1/entities/{entity['id']}/attrs",
        content=json.dumps({"pm25": {"type": "Property", "value": 55.5}}),
        headers={**bearer(writer), "Content-Type": "application/json"},
    )
    assert patched.status_code == 204, patched.text
    read = await http.get(f"/ngsi-ld/v1/entities/{entity['id']}", headers={**bearer(writer), "Accept": LD})
    assert read.headers["content-type"].startswith(LD)
    assert read.json()["pm25"] == {"type": "Property", "value": 55.5}
    assert read.json()["@context"][0].endswith("/ngsi-ld/v1/jsonldContexts/qala.jsonld")

    invalid = await http.patch(
        f"/ngsi-ld/v1/entities/{entity['id']}/attrs",
        content=json.dumps({"pm25": {"type": "Property", "value": "a lot"}}),
        headers={**bearer(writer), "Content-Type": "application/json"},
    )
    assert invalid.status_code in (400, 422)
    assert invalid.json()["type"] == "https://uri.etsi.org/ngsi-ld/errors/BadRequestData"
    again = await http.post(
        "/ngsi-ld/v1/entities", content=json.dumps(body), headers={**bearer(writer), "Content-Type": LD}
    )
    assert again.status_code == 409
    assert again.json()["type"].endswith("/AlreadyExists")


async def test_scopes_cities_tenants_and_redaction(http: httpx.AsyncClient, register: Any) -> None:
    await seed(http, register)
    no_scope = await token_for(http, register, "service-requests:read")
    denied = await http.get("/ngsi-ld/v1/entities", params={"type": "AirQualityObserved"}, headers=bearer(no_scope))
    assert denied.status_code == 403
    assert denied.json()["type"].endswith("/AccessDenied")
    anonymous = await http.get("/ngsi-ld/v1/entities", params={"type": "AirQualityObserved"})
    assert anonymous.status_code == 401

    reader = await token_for(http, register, "air-quality-observed:read")
    gotham = await http.get(
        "/ngsi-ld/v1/entities",
        params={"type": "AirQualityObserved"},
        headers={**bearer(reader), "NGSILD-Tenant": "gotham"},
    )
    assert gotham.status_code == 404
    assert gotham.json()["type"].endswith("/NonexistentTenant")

    astana_writer = await token_for(
        http, register, "air-quality-observed:write", "air-quality-observed:read", cities=["astana"]
    )
    elsewhere = example("almaty-winter-smog.json")
    elsewhere["id"] = "urn:ngsi-ld:AirQualityObserved:almaty:not-mine"
    refused = await http.post(
        "/ngsi-ld/v1/entities", content=json.dumps(elsewhere), headers={**bearer(astana_writer), "Content-Type": LD}
    )
    assert refused.status_code == 403

    # Personal fields: a ServiceRequest's contact never reaches a reader without read-personal.
    sr = json.loads((MODELS_DIR / "ServiceRequest" / "examples" / "astana-pothole-phone.json").read_text("utf-8"))
    assert "contactPhone" in sr
    sr_writer = await token_for(http, register, "service-requests:write", cities=["astana"])
    assert (await http.post("/api/v1/service-requests", json=sr, headers=bearer(sr_writer))).status_code == 201
    sr_reader = await token_for(http, register, "service-requests:read")
    seen = await http.get(f"/ngsi-ld/v1/entities/{sr['id']}", headers=bearer(sr_reader))
    assert seen.status_code == 200
    assert "contactPhone" not in seen.json()
    assert seen.json()["description"]["type"] == "Property"


async def test_types_context_and_smart_data_models_alignment(http: httpx.AsyncClient, register: Any) -> None:
    reader = await seed(http, register)
    types = (await http.get("/ngsi-ld/v1/types", headers=bearer(reader))).json()
    assert types["type"] == "EntityTypeList"
    assert "AirQualityObserved" in types["typeList"]

    context = (await http.get("/ngsi-ld/v1/jsonldContexts/qala.jsonld")).json()["@context"]
    terms = context[0]
    assert terms["AirQualityObserved"] == "https://smartdatamodels.org/dataModel.Environment/AirQualityObserved"
    assert terms["pm25"] == "https://smartdatamodels.org/dataModel.Environment/pm25"

    sdm = json.loads((DATA / "sdm-AirQualityObserved-example.jsonld").read_text("utf-8"))
    ours = (
        await http.get(
            "/ngsi-ld/v1/entities",
            params={"type": "AirQualityObserved", "options": "keyValues", "q": 'airQualityLevel=="veryUnhealthy"'},
            headers=bearer(reader),
        )
    ).json()[0]
    shared = set(sdm) & set(ours) - {"@context"}
    # The attributes both carry have the same names and JSON shapes as the Smart Data Model's own example.
    assert {"id", "type", "location", "airQualityIndex", "airQualityLevel", "relativeHumidity", "temperature"} <= shared
    for name in shared - {"id", "address"}:
        assert type(ours[name]) is type(sdm[name]) or {type(ours[name]), type(sdm[name])} <= {int, float}, name
    assert sdm["location"]["type"] == ours["location"]["type"] == "Point"


async def test_a_client_narrowed_to_its_cities_reads_no_other_city(
    http: httpx.AsyncClient, register: Any, services: Services
) -> None:
    await seed(http, register)
    who = await register(scopes=["air-quality-observed:read"], cities=["astana"])
    await services.directory.set_read_cities(who.client_id, ["astana"])
    narrowed = bearer(await get_token(http, who))
    listed = await http.get("/ngsi-ld/v1/entities", params={"type": "AirQualityObserved"}, headers=narrowed)
    assert listed.status_code == 200, listed.text
    assert {e["id"].split(":")[3] for e in listed.json()} == {"astana"}, "as GET /api/v1/... lists them"
    almaty = await http.get(
        "/ngsi-ld/v1/entities",
        params={"type": "AirQualityObserved"},
        headers={**narrowed, "NGSILD-Tenant": "almaty"},
    )
    assert almaty.status_code == 403
    assert almaty.json()["type"].endswith("/AccessDenied")
    smog = example("almaty-winter-smog.json")["id"]
    one = await http.get(f"/ngsi-ld/v1/entities/{smog}", headers=narrowed)
    assert one.status_code == 403
    assert one.json()["type"].endswith("/AccessDenied")
