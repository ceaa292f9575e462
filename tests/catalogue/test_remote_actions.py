"""Every action added in the second round, through ckanapi's RemoteCKAN and its command line, unmodified,
against a real uvicorn server: CKAN's response shapes as ckanapi decodes them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import ckanapi
import pytest

from tests.catalogue.conftest import Served

CKANAPI = Path(sys.executable).parent / "ckanapi"


def _cli(served: Served, *args: str) -> object:
    run = subprocess.run(
        [str(CKANAPI), "action", *args, "-r", served.url], capture_output=True, text=True, timeout=120, check=False
    )
    assert run.returncode == 0, run.stderr[-2000:]
    return json.loads(run.stdout)


def test_remote_ckan_runs_each_new_action(served: Served) -> None:
    site = ckanapi.RemoteCKAN(served.url)
    status = site.action.status_show()
    assert status["qala_version"]
    for name in (
        "tag_list",
        "help_show",
        "license_list",
        "package_autocomplete",
        "resource_search",
        "package_activity_list",
        "recently_changed_packages_activity_list",
        "datastore_info",
    ):
        assert name in status["actions"], name
    assert site.action.tag_list(query="astana") == ["astana"]
    assert site.action.tag_list(query="astana", all_fields=True)[0]["name"] == "astana"
    assert ":param q:" in site.action.help_show(name="package_autocomplete")
    assert any(item["id"] == "CC-BY-4.0" for item in site.action.license_list())
    assert site.action.package_autocomplete(q="incidents-al")[0]["name"] == "incidents-almaty"
    found = site.action.resource_search(query="format:API")
    assert found["count"] == 25
    api = next(r for r in found["results"] if r["package_id"] == site.action.package_show(id="incidents-almaty")["id"])
    activity = site.action.package_activity_list(id="incidents-almaty")
    assert activity[0]["activity_type"] == "new package"
    assert activity[0]["data"]["package"]["name"] == "incidents-almaty"
    assert len(site.action.recently_changed_packages_activity_list(limit=5)) == 5
    info = site.action.datastore_info(id=api["id"])
    assert info["meta"]["count"] == 2
    rows = site.action.datastore_search(resource_id=api["id"], records_format="lists", q="mudflow:*", plain=False)
    assert rows["total"] == 1
    assert rows["records"][0][0] >= 1  # _id first
    with_get = ckanapi.RemoteCKAN(served.url, get_only=True)
    assert with_get.action.tag_list(query="kz") == ["kz"]  # national data (the ministry)
    with pytest.raises(ckanapi.NotFound):
        site.action.datastore_info(id="nope")


def test_ckanapi_command_line_runs_each_new_action(served: Served) -> None:
    assert _cli(served, "tag_list", "query=almaty") == ["almaty"]
    assert "tag name query" in str(_cli(served, "help_show", "name=tag_list"))
    assert isinstance(_cli(served, "license_list"), list)
    assert _cli(served, "package_autocomplete", "q=kpi-values-as")[0]["name"] == "kpi-values-astana"  # type: ignore[index]
    assert _cli(served, "resource_search", "query=format:GeoJSON")["count"] > 0  # type: ignore[index]
    assert _cli(served, "package_activity_list", "id=kpi-values-astana")[0]["activity_type"] == "new package"  # type: ignore[index]
    assert len(_cli(served, "recently_changed_packages_activity_list", "limit=2")) == 2  # type: ignore[arg-type]
    resource = _cli(served, "resource_search", "query=format:API", "limit=1")["results"][0]  # type: ignore[index]
    assert _cli(served, "datastore_info", f"id={resource['id']}")["meta"]["count"] >= 1  # type: ignore[index]
    text = _cli(served, "datastore_search", f"resource_id={resource['id']}", "records_format=csv")
    assert isinstance(text["records"], str)  # type: ignore[index]
