"""ckanapi, unmodified, against a real uvicorn server: the RemoteCKAN actions, the ``ckanapi dump`` CLI,
and two catalogues that harvest from and push to each other through ``qala catalogue``."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import ckanapi
import pytest

from catalogue.errors import HarvestError
from catalogue.harvest import push
from catalogue.service import Catalogue
from catalogue.source import MemorySource
from gateway.db import make_engine
from schemas.registry import SchemaRegistry
from tests.catalogue.conftest import Served, serve

BIN = Path(sys.executable).parent
# ckanapi's dump starts its workers as "ckanapi" from PATH, as in an activated virtual environment
CKANAPI_ENV = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}


def _qala(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "qala"), "catalogue", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "QALA_CATALOGUE_SITE_URL": "http://127.0.0.1:9"},
        check=False,
    )


def test_remote_ckan_reads(served: Served) -> None:
    site = ckanapi.RemoteCKAN(served.url)
    found = site.action.package_search(q="air quality", facet_field=None, rows=1000)
    assert found["count"] >= 2
    assert {"facets", "search_facets", "results"} <= set(found)
    faceted = site.call_action("package_search", {"fq": "organization:astana", "facet.field": ["groups"]})
    assert faceted["count"] == 12
    assert faceted["facets"]["groups"]["finance"] == 1
    dataset = site.action.package_show(id="air-quality-observed-astana")
    assert dataset["organization"]["name"] == "astana"
    assert dataset["resources"][0]["url"].startswith(served.url)
    assert site.action.organization_list() == ["almaty", "astana", "kz"]
    api = next(r for r in dataset["resources"] if r["format"] == "API")
    rows = site.action.datastore_search(resource_id=api["id"], limit=1)
    assert rows["total"] == 2
    assert len(rows["records"]) == 1
    assert rows["next_page"].startswith(f"{served.url}/api/3/action/datastore_search")
    assert {f["id"] for f in rows["fields"]} >= {"pm25", "dateObserved"}
    with pytest.raises(ckanapi.NotFound):
        site.action.package_show(id="does-not-exist")
    with pytest.raises(ckanapi.NotAuthorized):
        site.action.package_create(name="sneaky")
    with pytest.raises(ckanapi.SearchQueryError):
        site.action.package_search(sort="colour desc")


def test_remote_ckan_get_only(served: Served) -> None:
    site = ckanapi.RemoteCKAN(served.url, get_only=True)
    assert len(site.action.package_list()) == 25
    assert site.action.package_search(q="payments")["count"] >= 2


def test_ckanapi_dump_datasets_cli(served: Served, tmp_path: Path) -> None:
    output = tmp_path / "datasets.jsonl"
    result = subprocess.run(
        [str(BIN / "ckanapi"), "dump", "datasets", "--all", "-r", served.url, "-O", str(output), "-q"],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        env=CKANAPI_ENV,
    )
    assert result.returncode == 0, result.stderr
    dumped = [json.loads(line) for line in output.read_text().splitlines()]
    assert sorted(d["name"] for d in dumped) == sorted(ckanapi.RemoteCKAN(served.url).action.package_list())
    assert all(d["resources"] for d in dumped)


def test_ckanapi_search_datasets_cli(served: Served) -> None:
    result = subprocess.run(
        [str(BIN / "ckanapi"), "search", "datasets", "q=astana", "-r", served.url],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=CKANAPI_ENV,
    )
    assert result.returncode == 0, result.stderr
    names = {json.loads(line)["name"] for line in result.stdout.splitlines()}
    assert "air-quality-observed-astana" in names


def test_one_catalogue_harvests_another(served: Served, tmp_path: Path, registry: SchemaRegistry) -> None:
    other_db = f"sqlite:///{tmp_path / 'other.db'}"
    other = serve(other_db, MemorySource(), registry)
    try:
        result = _qala("harvest", served.url, "--database-url", other_db)
        assert result.returncode == 0, result.stderr
        assert "25 created, 0 updated, 0 skipped, 0 failed" in result.stdout
        source, copy = ckanapi.RemoteCKAN(served.url), ckanapi.RemoteCKAN(other.url)
        assert copy.action.package_list() == source.action.package_list()
        original = source.action.package_show(id="facilities-astana")
        harvested = copy.action.package_show(id="facilities-astana")
        assert harvested["title_translated"] == original["title_translated"]
        assert [r["url"] for r in harvested["resources"]] == [r["url"] for r in original["resources"]]
        assert {"key": "harvest_source", "value": served.url} in harvested["extras"]
        assert copy.action.organization_list() == ["almaty", "astana", "kz"]
        again = _qala("harvest", served.url, "--database-url", other_db)
        assert "0 created, 25 updated" in again.stdout
    finally:
        other.stop()


async def _push_with(database_url: str, url: str, token: str) -> None:
    engine = make_engine(database_url)
    try:
        await push(Catalogue(engine, MemorySource(), SchemaRegistry.load()), url, token)
    finally:
        await engine.dispose()


def test_push_publishes_to_another_catalogue(
    served: Served, tmp_path: Path, registry: SchemaRegistry, database_url: str
) -> None:
    target_db = f"sqlite:///{tmp_path / 'target.db'}"
    target = serve(target_db, MemorySource(), registry)
    try:
        created = _qala("token", "create", "pusher", "--database-url", target_db)
        assert created.returncode == 0, created.stderr
        token = created.stdout.strip()
        with pytest.raises(HarvestError, match="Authorization"):
            asyncio.run(_push_with(database_url, target.url, "wrong-token"))
        result = _qala("push", target.url, "--token", token, "--database-url", database_url)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "25 created" in result.stdout
        remote = ckanapi.RemoteCKAN(target.url)
        assert len(remote.action.package_list()) == 25
        pushed = remote.action.package_show(id="payment-transactions-astana")
        assert pushed["organization"]["name"] == "astana"
        assert {r["format"] for r in pushed["resources"]} == {"CSV", "JSON", "API"}
    finally:
        target.stop()


def test_harvest_of_an_unreachable_catalogue_is_one_line(tmp_path: Path) -> None:
    result = _qala("harvest", "http://127.0.0.1:9", "--database-url", f"sqlite:///{tmp_path / 'x.db'}")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("qala: error: package_list on http://127.0.0.1:9 failed")
