"""Web surface of the catalogue (issue 15, part 5): web links only, CSV cells inert in spreadsheets."""

from __future__ import annotations

import httpx
import pytest

from catalogue.exports import neutralise
from catalogue.harvest import remote_resource

BAD_LINKS = [
    "javascript:alert(document.cookie)",
    " JavaScript:alert(1)",
    "java\tscript:alert(1)",
    "data:text/html,x",
    "vbscript:x",
    "JAVASCRIPT%3Aalert(1)".replace("%3A", ":"),
]


@pytest.mark.parametrize("url", BAD_LINKS)
async def test_a_resource_url_must_be_http_or_https(http: httpx.AsyncClient, token: str, url: str) -> None:
    headers = {"Authorization": token}
    created = await http.post(
        "/api/3/action/package_create",
        json={"name": "bus-stops", "title": "Bus stops", "resources": [{"url": "https://x.kz/a.csv"}]},
        headers=headers,
    )
    assert created.status_code == 200, created.text
    response = await http.post(
        "/api/3/action/resource_create", json={"package_id": "bus-stops", "url": url}, headers=headers
    )
    assert response.status_code == 409, response.text
    assert response.json()["error"]["__type"] == "Validation Error"
    assert "http" in response.json()["error"]["url"][0]
    response = await http.post(
        "/api/3/action/package_create", json={"name": "trams", "resources": [{"url": url}]}, headers=headers
    )
    assert response.status_code == 409, response.text
    response = await http.post("/api/3/action/package_create", json={"name": "trams", "url": url}, headers=headers)
    assert response.status_code == 409, response.text
    shown = await http.get("/api/3/action/package_show", params={"id": "bus-stops"})
    assert [r["url"] for r in shown.json()["result"]["resources"]] == ["https://x.kz/a.csv"]


async def test_web_links_and_relative_links_are_kept(http: httpx.AsyncClient, token: str) -> None:
    resources = [{"url": "http://x.kz/a.csv"}, {"url": "https://x.kz/b.csv"}, {"url": "/dataset/x/c.csv"}]
    response = await http.post(
        "/api/3/action/package_create", json={"name": "kept", "resources": resources}, headers={"Authorization": token}
    )
    assert response.status_code == 200, response.text
    assert [r["url"] for r in response.json()["result"]["resources"]] == [r["url"] for r in resources]


def test_a_harvested_javascript_link_is_dropped() -> None:
    assert remote_resource({"id": "r", "url": "javascript:alert(1)"}, "https://remote")["url"] == ""
    assert (
        remote_resource({"id": "r", "url": "https://remote/a.csv"}, "https://remote")["url"] == "https://remote/a.csv"
    )


@pytest.mark.parametrize(
    "cell",
    [
        "=1+1",
        " =1+1",
        "\n=1+1",
        "\t=cmd",
        "\r\n+1",
        "  @SUM(A1)",
        '\uff1dHYPERLINK("x")',
        "\uff0b1",
        "\uff0d1",
        "\uff20x",
        " \uff1d1",
        "\u3000=1",
        "-1",
    ],
)
def test_formula_cells_are_neutralised_behind_blanks_and_full_width_signs(cell: str) -> None:
    assert neutralise(cell) == "'" + cell


@pytest.mark.parametrize("cell", ["plain", "a=b", "1", "Есиль", ""])
def test_ordinary_cells_are_left_alone(cell: str) -> None:
    assert neutralise(cell) == cell


async def test_the_catalogue_alone_refuses_nul_as_well(http: httpx.AsyncClient) -> None:
    response = await http.get("/api/3/action/package_search", params={"q": "air\x00"})
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/problem+json")
