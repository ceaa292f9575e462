"""Frictionless Data Packages and flat CSV downloads, checked by ``frictionless`` against a real server."""

from __future__ import annotations

import csv
import io
import subprocess
import sys

import httpx
import pytest

from tests.catalogue.conftest import Served

frictionless = pytest.importorskip("frictionless")


def test_every_datapackage_validates_with_frictionless(served: Served) -> None:
    names = httpx.get(f"{served.url}/api/3/action/package_list").json()["result"]
    assert len(names) >= 20
    for name in names:
        url = f"{served.url}/dataset/{name}/datapackage.json"
        descriptor = httpx.get(url).json()
        assert descriptor["resources"][0]["schema"]["fields"], name
        report = frictionless.validate(url)
        errors = [e["message"] for task in report.to_dict()["tasks"] for e in task.get("errors", [])]
        assert report.valid, (name, errors[:3])


def test_frictionless_cli_validates_a_datapackage(served: Served) -> None:
    url = f"{served.url}/dataset/air-quality-observed-almaty/datapackage.json"
    run = subprocess.run(
        [sys.executable, "-m", "frictionless", "validate", url],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-2000:]


def test_a_wrong_schema_is_caught(served: Served, tmp_path: object) -> None:
    """The validation can fail: declare ``pm25`` an integer and frictionless rejects 187.4."""
    descriptor = httpx.get(f"{served.url}/dataset/air-quality-observed-almaty/datapackage.json").json()
    for field in descriptor["resources"][0]["schema"]["fields"]:
        if field["name"] == "pm25":
            field["type"] = "integer"
    report = frictionless.Package(descriptor).validate()
    assert not report.valid


async def test_csv_download_has_flat_columns(http: httpx.AsyncClient) -> None:
    body = (await http.get("/dataset/facilities-almaty/download/facilities-almaty.csv")).text
    rows = list(csv.DictReader(io.StringIO(body.lstrip("\ufeff"))))
    assert "name.kk" in rows[0]
    assert "address.district" in rows[0]
    assert "urn:ngsi-ld:" in rows[0]["id"]  # the identifier stays whole for joins
    assert not any(value.startswith("{") and '"kk"' in value for row in rows for value in row.values())
    points = (await http.get("/dataset/air-quality-observed-astana/download/air-quality-observed-astana.csv")).text
    header = next(csv.reader(io.StringIO(points.lstrip("\ufeff"))))
    assert "location.latitude" in header
    assert "location" not in header
    whole = (await http.get("/dataset/facilities-almaty/download/facilities-almaty.json")).json()
    assert isinstance(whole[0]["name"], dict)  # JSON stays JSON


async def test_cors_for_open_reads_only(http: httpx.AsyncClient) -> None:
    for path in (
        "/api/3/action/package_list",
        "/api/3/action/nope",
        "/dataset/facilities-almaty/download/facilities-almaty.csv",
        "/dataset/facilities-almaty/datapackage.json",
        "/catalog.ttl",
    ):
        response = await http.get(path, headers={"Origin": "https://example.org"})
        assert response.headers.get("access-control-allow-origin") == "*", path
    preflight = await http.options(
        "/api/3/action/package_search",
        headers={"Origin": "https://example.org", "Access-Control-Request-Method": "POST"},
    )
    assert preflight.status_code == 204
    assert "POST" not in preflight.headers["access-control-allow-methods"]
    assert "authorization" not in preflight.headers["access-control-allow-headers"].lower()
    page = await http.get("/", headers={"Origin": "https://example.org"})
    assert "access-control-allow-origin" not in page.headers  # the HTML pages are not an API
