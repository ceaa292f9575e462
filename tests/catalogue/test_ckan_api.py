"""The CKAN Action API in process: envelopes, every error path, GET/POST/form input, writes with a token."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from catalogue.service import Catalogue
from tests.catalogue.conftest import SITE

ERROR_KEYS = {"help", "success", "error"}


def _error(response: httpx.Response, status: int, kind: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == ERROR_KEYS
    assert body["success"] is False
    assert body["error"]["__type"] == kind
    assert isinstance(body["error"]["message"], str)
    assert body["help"].startswith(f"{SITE}/api/3/action/help_show?name=")
    return dict(body["error"])


async def test_success_envelope_on_both_prefixes(http: httpx.AsyncClient) -> None:
    for prefix in ("/api/3/action", "/api/action"):
        response = await http.get(f"{prefix}/status_show")
        assert response.status_code == 200
        body = response.json()
        assert set(body) == {"help", "success", "result"}
        assert body["success"] is True
        assert body["result"]["site_url"] == SITE
        assert "ckan_version" not in body["result"]  # Qala does not claim a CKAN release it is not
        assert body["result"]["qala_version"]
        assert "datastore_info" in body["result"]["actions"]


async def test_unknown_action_is_a_bare_string_400(http: httpx.AsyncClient) -> None:
    response = await http.post("/api/3/action/no_such_thing", json={})
    assert response.status_code == 400
    assert response.json() == "Bad request: Action name not known: no_such_thing"


async def test_get_on_a_write_action_asks_for_post(http: httpx.AsyncClient) -> None:
    response = await http.get("/api/3/action/package_create?name=x")
    assert response.status_code == 400
    assert "Please use POST" in response.json()


async def test_broken_json_body_is_a_bare_string_400(http: httpx.AsyncClient) -> None:
    response = await http.post(
        "/api/3/action/package_search", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json().startswith("Bad request: JSON Error")
    response = await http.post(
        "/api/3/action/package_search", content=b"[1, 2]", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400


async def test_not_found_errors(http: httpx.AsyncClient) -> None:
    _error(await http.post("/api/3/action/package_show", json={"id": "nope"}), 404, "Not Found Error")
    _error(await http.post("/api/3/action/organization_show", json={"id": "nope"}), 404, "Not Found Error")
    _error(await http.post("/api/3/action/group_show", json={"id": "nope"}), 404, "Not Found Error")
    _error(await http.post("/api/3/action/resource_show", json={"id": "nope"}), 404, "Not Found Error")
    _error(await http.post("/api/3/action/datastore_search", json={"resource_id": "nope"}), 404, "Not Found Error")


async def test_validation_errors_carry_the_field(http: httpx.AsyncClient, token: str) -> None:
    error = _error(await http.post("/api/3/action/package_show", json={}), 409, "Validation Error")
    assert error["id"] == ["Missing value"]
    error = _error(await http.post("/api/3/action/package_search", json={"rows": "many"}), 409, "Validation Error")
    assert "rows" in error
    error = _error(
        await http.post("/api/3/action/package_create", json={"name": "Bad Name"}, headers={"Authorization": token}),
        409,
        "Validation Error",
    )
    assert "name" in error
    error = _error(
        await http.post(
            "/api/3/action/package_create",
            json={"name": "ok-name", "owner_org": "ghost"},
            headers={"Authorization": token},
        ),
        409,
        "Validation Error",
    )
    assert error["owner_org"] == ["Organization does not exist"]


async def test_search_query_errors(http: httpx.AsyncClient) -> None:
    _error(await http.post("/api/3/action/package_search", json={"sort": "colour desc"}), 400, "Search Query Error")
    _error(await http.post("/api/3/action/package_search", json={"fq": "colour:red"}), 400, "Search Query Error")


async def test_writes_need_a_valid_token(http: httpx.AsyncClient) -> None:
    _error(await http.post("/api/3/action/package_create", json={"name": "bus-stops"}), 403, "Authorization Error")
    _error(
        await http.post(
            "/api/3/action/package_create", json={"name": "bus-stops"}, headers={"Authorization": "qala_forged"}
        ),
        403,
        "Authorization Error",
    )
    _error(
        await http.post("/api/3/action/package_search", json={}, headers={"X-CKAN-API-Key": "forged"}),
        403,
        "Authorization Error",
    )


async def test_live_datasets_cannot_be_edited(http: httpx.AsyncClient, token: str) -> None:
    headers = {"Authorization": token}
    _error(
        await http.post("/api/3/action/package_patch", json={"id": "devices-astana", "title": "x"}, headers=headers),
        403,
        "Authorization Error",
    )
    _error(
        await http.post("/api/3/action/package_delete", json={"id": "devices-astana"}, headers=headers),
        403,
        "Authorization Error",
    )


async def test_get_parameters_json_facets_and_repeated_keys(http: httpx.AsyncClient) -> None:
    as_json = (await http.get("/api/3/action/package_search", params={"facet.field": '["organization"]'})).json()
    repeated = (await http.get("/api/3/action/package_search?facet.field=organization&facet.field=groups")).json()
    assert as_json["result"]["facets"]["organization"] == {"almaty": 12, "astana": 12, "kz": 1}
    assert set(repeated["result"]["facets"]) == {"organization", "groups"}
    assert repeated["result"]["search_facets"]["groups"]["items"][0]["count"] >= 1


async def test_package_list_is_unlimited_without_limit(http: httpx.AsyncClient) -> None:
    names = (await http.post("/api/3/action/package_list", json={})).json()["result"]
    assert len(names) == 25
    assert names == sorted(names)
    page = (await http.post("/api/3/action/package_list", json={"limit": 5, "offset": 5})).json()["result"]
    assert page == names[5:10]


async def test_create_update_patch_delete_with_token(http: httpx.AsyncClient, token: str, catalogue: Catalogue) -> None:
    headers = {"X-CKAN-API-Key": token}
    created = (
        await http.post(
            "/api/3/action/package_create",
            headers=headers,
            json={
                "name": "bus-stops",
                "title_translated": {"kk": "Аялдамалар", "ru": "Остановки", "en": "Bus stops"},
                "owner_org": "astana",
                "groups": [{"name": "mobility"}],
                "tags": [{"name": "transport"}],
                "resources": [{"url": "https://data.astana.kz/stops.csv", "name": "stops"}],
            },
        )
    ).json()["result"]
    assert created["license_id"] == "CC-BY-4.0"
    assert created["organization"]["name"] == "astana"
    assert created["resources"][0]["format"] == "CSV"
    assert created["resources"][0]["datastore_active"] is False
    _error(
        await http.post("/api/3/action/package_create", headers=headers, json={"name": "bus-stops"}),
        409,
        "Validation Error",
    )
    patched = (
        await http.post(
            "/api/3/action/package_patch",
            headers={"Authorization": token},
            json={"id": "bus-stops", "notes": "Every stop"},
        )
    ).json()["result"]
    assert patched["notes"] == "Every stop"
    assert patched["resources"][0]["url"] == "https://data.astana.kz/stops.csv"
    found = (await http.get("/api/3/action/package_search?q=Аялдамалар")).json()["result"]
    assert [r["name"] for r in found["results"]] == ["bus-stops"]
    updated = (
        await http.post(
            "/api/3/action/package_update",
            headers=headers,
            json={"id": created["id"], "name": "bus-stops", "title": "Stops", "resources": []},
        )
    ).json()["result"]
    assert updated["num_resources"] == 0
    assert updated["metadata_created"] == created["metadata_created"]
    assert (await http.post("/api/3/action/package_delete", headers=headers, json={"id": "bus-stops"})).json()[
        "success"
    ] is True
    _error(await http.post("/api/3/action/package_show", json={"id": "bus-stops"}), 404, "Not Found Error")
    assert (await catalogue.package_search({"q": "Stops"}))["count"] == 0


async def test_resource_create_with_upload_and_form_post(http: httpx.AsyncClient, token: str) -> None:
    headers = {"Authorization": token}
    await http.post("/api/3/action/package_create", headers=headers, data={"name": "budget", "title": "Budget"})
    content = b"year,amount\n2025,100\n"
    response = await http.post(
        "/api/3/action/resource_create",
        headers=headers,
        data={"package_id": "budget", "name": "Budget 2025", "format": "CSV"},
        files={"upload": ("budget.csv", content, "text/csv")},
    )
    resource = response.json()["result"]
    assert resource["url_type"] == "upload"
    assert resource["url"].endswith("/download/budget.csv")
    downloaded = await http.get(resource["url"].removeprefix(SITE))
    assert downloaded.status_code == 200
    assert downloaded.content == content
    shown = (await http.get(f"/api/3/action/resource_show?id={resource['id']}")).json()["result"]
    assert shown["size"] == len(content)
    _error(
        await http.post("/api/3/action/resource_create", headers=headers, json={"package_id": "budget"}),
        409,
        "Validation Error",
    )


async def test_organizations_groups_and_tags(http: httpx.AsyncClient) -> None:
    assert (await http.get("/api/3/action/organization_list")).json()["result"] == ["almaty", "astana", "kz"]
    full = (await http.get("/api/3/action/organization_list?all_fields=true")).json()["result"]
    assert {o["name"]: o["package_count"] for o in full} == {"almaty": 12, "astana": 12, "kz": 1}
    shown = (await http.get("/api/3/action/organization_show?id=astana&include_datasets=true")).json()["result"]
    assert shown["is_organization"] is True
    assert shown["title_translated"]["kk"] == "Астана"
    assert len(shown["packages"]) == 10
    groups = (await http.get("/api/3/action/group_list")).json()["result"]
    assert groups == sorted(["environment", "finance", "mobility", "safety", "services", "utilities"])
    group = (await http.get("/api/3/action/group_show?id=environment")).json()["result"]
    assert group["package_count"] == 2
    tags = (await http.get("/api/3/action/tag_list")).json()["result"]
    assert {"live", "air-quality-observed", "astana"} <= set(tags)


async def test_help_show_and_site_read(http: httpx.AsyncClient) -> None:
    assert (await http.get("/api/3/action/site_read")).json()["result"] is True
    assert "datastore" not in (await http.get("/api/3/action/help_show?name=package_list")).json()["result"]


@pytest.mark.parametrize("body", [{"q": "air quality"}, {"q": "air quality", "rows": 5000}])
async def test_ranked_full_text_with_rows_above_the_cap(http: httpx.AsyncClient, body: dict[str, Any]) -> None:
    result = (
        await http.post(
            "/api/3/action/package_search", content=json.dumps(body), headers={"Content-Type": "application/json"}
        )
    ).json()["result"]
    assert result["count"] >= 2
    assert {r["name"] for r in result["results"][:2]} == {"air-quality-observed-astana", "air-quality-observed-almaty"}
