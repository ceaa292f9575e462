"""package_search on both databases: parameters, ranking, filters, facets, sort and paging."""

from __future__ import annotations

import pytest

from catalogue.errors import SearchQueryError, ValidationFailed
from catalogue.search import ROWS_MAX, parse_params
from catalogue.service import Catalogue


def test_parameters_are_checked_and_rows_capped() -> None:
    assert parse_params({"rows": 5000}).rows == ROWS_MAX
    assert parse_params({"facet.field": ["tags", "groups"]}).facet_fields == ["tags", "groups"]
    assert parse_params({"facet.field": "tags"}).facet_fields == ["tags"]
    assert parse_params({"q": "organization:astana air"}).filters[0].value == "astana"
    with pytest.raises(ValidationFailed):
        parse_params({"start": -1})
    with pytest.raises(ValidationFailed):
        parse_params({"facet.field": "[not json"})
    with pytest.raises(SearchQueryError):
        parse_params({"fq": "organization:astana )("})
    with pytest.raises(SearchQueryError):
        parse_params({"sort": "name sideways"})


async def _static(catalogue: Catalogue, name: str, title: str, notes: str = "", **extra: object) -> None:
    await catalogue.save_package({"name": name, "title": title, "notes": notes, **extra}, actor="t", create=True)


async def test_title_matches_rank_above_description_matches(catalogue: Catalogue) -> None:
    await _static(catalogue, "bike-lanes", "Велосипед жолдары", "Map of lanes")
    await _static(
        catalogue, "road-repairs", "Road repairs", "Includes велосипед lanes and велосипед parking, велосипед"
    )
    await _static(catalogue, "cycling-velosiped", "Велосипед велосипед прокат")
    found = await catalogue.package_search({"q": "велосипед"})
    assert found["count"] == 3
    assert [r["name"] for r in found["results"]] == ["cycling-velosiped", "bike-lanes", "road-repairs"]
    prefix = await catalogue.package_search({"q": "велосип"})
    assert prefix["count"] == 3
    both = await catalogue.package_search({"q": "велосипед lanes"})
    assert {r["name"] for r in both["results"]} == {"bike-lanes", "road-repairs"}


async def test_filters_negation_and_facets(catalogue: Catalogue) -> None:
    astana = await catalogue.package_search({"fq": "organization:astana", "facet.field": ["groups", "res_format"]})
    assert astana["count"] == 12
    assert sum(astana["facets"]["groups"].values()) == 12
    assert astana["facets"]["res_format"]["CSV"] == 12
    not_astana = await catalogue.package_search({"fq": "-organization:astana"})
    assert not_astana["count"] == 25 - 12
    both = await catalogue.package_search({"fq": 'organization:astana +groups:"mobility"'})
    assert {r["name"] for r in both["results"]} == {"traffic-flow-observed-astana", "vehicle-positions-astana"}
    limited = await catalogue.package_search({"facet.field": ["tags"], "facet.limit": 3})
    assert len(limited["facets"]["tags"]) == 3
    assert list(limited["facets"]["tags"].values()) == sorted(limited["facets"]["tags"].values(), reverse=True)
    assert limited["facets"]["tags"]["live"] == 25


async def test_sort_and_paging_cover_every_dataset_once(catalogue: Catalogue) -> None:
    seen = []
    for start in range(0, 30, 7):
        page = await catalogue.package_search({"rows": 7, "start": start, "sort": "name asc"})
        assert page["count"] == 25
        seen += [r["name"] for r in page["results"]]
    assert seen == sorted(seen)
    assert len(set(seen)) == 25
    newest = await catalogue.package_search({"rows": 1, "sort": "metadata_modified desc"})
    assert newest["results"][0]["metadata_modified"] == max(
        r["metadata_modified"] for r in (await catalogue.package_search({"rows": 100}))["results"]
    )
