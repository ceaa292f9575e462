"""The second set of CKAN actions and DataStore features, in process (ckanapi runs them in test_remote)."""

from __future__ import annotations

import csv
import io

import httpx

from catalogue.service import Catalogue

API = "/api/3/action"


async def _result(http: httpx.AsyncClient, action: str, **data: object) -> object:
    body = (await http.post(f"{API}/{action}", json=data)).json()
    assert body["success"] is True, body
    return body["result"]


async def _api_resource(http: httpx.AsyncClient, dataset: str) -> str:
    doc = await _result(http, "package_show", id=dataset)
    return next(r["id"] for r in doc["resources"] if r["format"] == "API")  # type: ignore[index]


async def test_datastore_id_records_formats_and_json_types(http: httpx.AsyncClient) -> None:
    rid = await _api_resource(http, "facilities-almaty")
    objects = await _result(http, "datastore_search", resource_id=rid)
    fields = {f["id"]: f["type"] for f in objects["fields"]}  # type: ignore[index]
    assert objects["fields"][0] == {"id": "_id", "type": "int"}  # type: ignore[index]
    assert fields["name"] == "json"
    assert fields["location"] == "json"
    assert fields["dateModified"] == "timestamp"
    assert fields["capacity"] == "int"
    assert [r["_id"] for r in objects["records"]] == [1, 2]  # type: ignore[index]
    lists = await _result(http, "datastore_search", resource_id=rid, records_format="lists")
    assert lists["records"][0][0] == 1  # type: ignore[index]
    text = await _result(http, "datastore_search", resource_id=rid, records_format="csv", fields=["id", "name"])
    assert isinstance(text, dict)
    rows = list(csv.reader(io.StringIO(text["records"])))
    assert rows[0][0] == "1"
    assert rows[0][1].startswith("urn:ngsi-ld:Facility:almaty:")
    assert '"kk"' in rows[0][2]  # a nested value stays JSON text in a CSV record
    tsv = await _result(http, "datastore_search", resource_id=rid, records_format="tsv", fields="id")
    assert "\t" in tsv["records"]  # type: ignore[index]
    bad = (await http.post(f"{API}/datastore_search", json={"resource_id": rid, "records_format": "xml"})).json()
    assert bad["error"]["__type"] == "Validation Error"
    by_id = await _result(http, "datastore_search", resource_id=rid, sort="_id desc")
    assert [r["_id"] for r in by_id["records"]] == [2, 1]  # type: ignore[index]


async def test_prefix_search_with_plain_false(http: httpx.AsyncClient) -> None:
    rid = await _api_resource(http, "service-requests-astana")
    prefix = await _result(http, "datastore_search", resource_id=rid, q="snow:*", plain=False)
    assert prefix["total"] == 1  # type: ignore[index]
    whole_word = await _result(http, "datastore_search", resource_id=rid, q="sno", plain=False)
    assert whole_word["total"] == 0  # type: ignore[index]
    either = await _result(http, "datastore_search", resource_id=rid, q="snow:* | pothole:*", plain=False)
    assert either["total"] == 2  # type: ignore[index]


async def test_datastore_info(http: httpx.AsyncClient) -> None:
    rid = await _api_resource(http, "air-quality-observed-astana")
    info = await _result(http, "datastore_info", id=rid)
    assert info["meta"]["count"] == 2  # type: ignore[index]
    assert info["fields"][0]["id"] == "_id"  # type: ignore[index]
    assert info["schema"]["pm25"] == "numeric"  # type: ignore[index]
    missing = (await http.post(f"{API}/datastore_info", json={"id": "nope"})).json()
    assert missing["error"]["__type"] == "Not Found Error"


async def test_tag_list_query_and_all_fields(http: httpx.AsyncClient) -> None:
    names = await _result(http, "tag_list", query="air")
    assert names == ["AirQualityObserved", "air-quality-observed"]
    full = await _result(http, "tag_list", query="air-quality", all_fields=True)
    assert full == [
        {
            "id": full[0]["id"],
            "name": "air-quality-observed",
            "display_name": "air-quality-observed",
            "vocabulary_id": None,
        }  # type: ignore[index]
    ]


async def test_help_license_autocomplete_and_resource_search(http: httpx.AsyncClient) -> None:
    helped = await _result(http, "help_show", name="tag_list")
    assert isinstance(helped, str)
    assert ":param query:" in helped
    assert "Search a DataStore resource" in str(await _result(http, "help_show", name="datastore_search"))
    licences = await _result(http, "license_list")
    assert {"CC-BY-4.0", "CC0-1.0"} <= {item["id"] for item in licences}  # type: ignore[union-attr]
    found = await _result(http, "package_autocomplete", q="air-qual")
    assert [item["name"] for item in found] == ["air-quality-observed-almaty", "air-quality-observed-astana"]  # type: ignore[union-attr]
    assert found[0]["match_field"] == "name"  # type: ignore[index]
    csvs = await _result(http, "resource_search", query="format:csv")
    assert csvs["count"] == 25  # type: ignore[index]
    both = await _result(http, "resource_search", query=["format:GeoJSON", "name:almaty"], limit=2)
    assert both["count"] > 2  # type: ignore[index]
    assert len(both["results"]) == 2  # type: ignore[index]
    assert all(r["format"] == "GeoJSON" for r in both["results"])  # type: ignore[index]


async def test_activity_streams(http: httpx.AsyncClient, catalogue: Catalogue, token: str) -> None:
    headers = {"Authorization": token}
    await http.post(f"{API}/package_create", json={"name": "bus-stops", "title": "Bus stops"}, headers=headers)
    await http.post(f"{API}/package_patch", json={"id": "bus-stops", "notes": "Every stop"}, headers=headers)
    stream = await _result(http, "package_activity_list", id="bus-stops")
    assert [a["activity_type"] for a in stream] == ["changed package", "new package"]  # type: ignore[index]
    assert stream[0]["data"]["package"]["notes"] == "Every stop"  # type: ignore[index]
    assert stream[0]["user_id"] == "tests"  # type: ignore[index]
    live = await _result(http, "package_activity_list", id="air-quality-observed-astana")
    assert live[0]["activity_type"] == "new package"  # type: ignore[index]
    recent = await _result(http, "recently_changed_packages_activity_list", limit=3)
    assert len(recent) == 3  # type: ignore[arg-type]
    assert recent[0]["data"]["package"]["name"] == "bus-stops"  # type: ignore[index]
    await http.post(f"{API}/package_delete", json={"id": "bus-stops"}, headers=headers)
    gone = await _result(http, "package_activity_list", id=stream[0]["object_id"])  # type: ignore[index]
    assert gone[0]["activity_type"] == "deleted package"  # type: ignore[index]
    missing = (await http.post(f"{API}/package_activity_list", json={"id": "nope"})).json()
    assert missing["error"]["__type"] == "Not Found Error"
