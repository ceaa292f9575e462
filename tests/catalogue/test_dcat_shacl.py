"""DCAT-AP 3 against the official SEMIC shapes (``catalogue/shapes/``, offline), and ckanext-dcat's addresses."""

from __future__ import annotations

import json
from importlib.resources import files

import httpx
import pytest
from rdflib import Graph, URIRef
from rdflib.namespace import DCAT, DCTERMS, RDF
from rdflib.plugins.parsers.jsonld import to_rdf

from catalogue.dcat import EU_LICENCE, negotiate
from tests.catalogue.conftest import SITE

pyshacl = pytest.importorskip("pyshacl")
SHAPES = ("shapes.ttl", "shapes_recommended.ttl", "range.ttl")


def _shapes() -> Graph:
    graph = Graph()
    for name in SHAPES:
        graph.parse(str(files("catalogue").joinpath("shapes", name)), format="turtle")
    return graph


def _report(data: Graph) -> list[str]:
    """Every result, violations and warnings alike: a missing recommended property is a warning in SHACL."""
    _conforms, results, _text = pyshacl.validate(data, shacl_graph=_shapes(), inference="none", allow_warnings=False)
    query = (
        "SELECT ?focus ?path WHERE { ?r a sh:ValidationResult ; sh:focusNode ?focus . "
        "OPTIONAL { ?r sh:resultPath ?path } }"
    )
    return sorted(f"{row[0]} {row[1]}" for row in results.query(query, initNs={"sh": pyshacl.consts.SH}))


async def _graph(http: httpx.AsyncClient, path: str, fmt: str, **headers: str) -> Graph:
    response = await http.get(path, headers=headers)
    assert response.status_code == 200, path
    if fmt == "json-ld":  # Graph.parse warns here: it goes through the deprecated ConjunctiveGraph
        graph = Graph()
        to_rdf(json.loads(response.text), graph)
        return graph
    return Graph().parse(data=response.text, format=fmt)


async def test_catalogue_has_no_mandatory_or_recommended_gap(http: httpx.AsyncClient) -> None:
    graph = await _graph(http, "/catalog.ttl", "turtle")
    assert len(set(graph.subjects(RDF.type, DCAT.Dataset))) >= 20
    assert _report(graph) == []


async def test_a_gap_is_reported(http: httpx.AsyncClient) -> None:
    """The check can fail: drop one dataset's contact point and the recommended shape names it."""
    graph = await _graph(http, "/catalog.ttl", "turtle")
    dataset = URIRef(f"{SITE}/dataset/air-quality-observed-astana")
    graph.remove((dataset, DCAT.contactPoint, None))
    assert _report(graph) == [f"{dataset} {DCAT.contactPoint}"]


async def test_each_dataset_address_and_format(http: httpx.AsyncClient) -> None:
    for suffix, fmt in (("ttl", "turtle"), ("jsonld", "json-ld"), ("rdf", "xml"), ("xml", "xml"), ("n3", "turtle")):
        graph = await _graph(http, f"/dataset/facilities-almaty.{suffix}", fmt)
        dataset = URIRef(f"{SITE}/dataset/facilities-almaty")
        assert (dataset, RDF.type, DCAT.Dataset) in graph
        assert _report(graph) == [], suffix
    assert (await http.get("/dataset/nope.ttl")).status_code == 404
    for suffix, fmt in (("rdf", "xml"), ("n3", "turtle")):
        assert (await _graph(http, f"/catalog.{suffix}", fmt)).value(predicate=RDF.type, object=DCAT.Catalog)


async def test_eu_vocabularies_and_recommended_values(http: httpx.AsyncClient) -> None:
    graph = await _graph(http, "/dataset/air-quality-observed-astana.ttl", "turtle")
    dataset = URIRef(f"{SITE}/dataset/air-quality-observed-astana")
    themes = {str(t) for t in graph.objects(dataset, DCAT.theme)}
    assert themes == {"http://publications.europa.eu/resource/authority/data-theme/ENVI"}
    frequency = graph.value(dataset, DCTERMS.accrualPeriodicity)
    assert str(frequency) == "http://publications.europa.eu/resource/authority/frequency/CONT"
    period = graph.value(dataset, DCTERMS.temporal)
    assert str(graph.value(period, DCAT.startDate)).startswith("2024-07-02")  # the oldest observation
    assert str(graph.value(period, DCAT.endDate)).startswith("2025-02-14")
    distributions = list(graph.objects(dataset, DCAT.distribution))
    assert {graph.value(d, DCTERMS.license) for d in distributions} == {EU_LICENCE.CC_BY_4_0}
    assert all(graph.value(d, DCTERMS.description) for d in distributions)
    formats = {str(graph.value(d, DCTERMS["format"])).rsplit("/", 1)[-1] for d in distributions}
    assert formats == {"CSV", "JSON", "GEOJSON"}
    publisher = graph.value(dataset, DCTERMS.publisher)
    assert str(graph.value(publisher, DCTERMS.type)) == "http://purl.org/adms/publishertype/LocalAuthority"


async def test_content_negotiation(http: httpx.AsyncClient) -> None:
    assert negotiate("text/html,application/xhtml+xml,*/*;q=0.8") is None
    assert negotiate("application/ld+json") == "jsonld"
    assert negotiate("text/turtle;q=0.9, text/html;q=0.5") == "ttl"
    page = await http.get("/dataset/facilities-almaty", headers={"Accept": "text/turtle"})
    assert page.headers["content-type"].startswith("text/turtle")
    assert "dcat:Dataset" in page.text
    html = await http.get("/dataset/facilities-almaty", headers={"Accept": "text/html"})
    assert html.headers["content-type"].startswith("text/html")
    catalog = await http.get("/catalog", headers={"Accept": "application/ld+json"})
    assert catalog.headers["content-type"].startswith("application/ld+json")
    assert (await http.get("/catalog")).headers["content-type"].startswith("text/turtle")
