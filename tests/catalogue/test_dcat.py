"""DCAT-AP 3: both serialisations parse, every class has its mandatory properties, pages link with Hydra."""

from __future__ import annotations

import json

import httpx
from rdflib import Graph, Literal, URIRef
from rdflib.namespace import DCAT, DCTERMS, FOAF, RDF
from rdflib.plugins.parsers.jsonld import to_rdf

from catalogue.dcat import HYDRA
from catalogue.service import Catalogue
from tests.catalogue.conftest import SITE

MANDATORY = {
    DCAT.Catalog: (DCTERMS.title, DCTERMS.description, DCTERMS.publisher),
    DCAT.Dataset: (DCTERMS.title, DCTERMS.description),
    DCAT.Distribution: (DCAT.accessURL,),
    DCAT.DataService: (DCTERMS.title, DCAT.endpointURL),
    FOAF.Agent: (FOAF.name,),
}


async def _graph(http: httpx.AsyncClient, path: str, fmt: str) -> Graph:
    response = await http.get(path)
    assert response.status_code == 200
    if fmt == "json-ld":
        assert response.headers["content-type"].startswith("application/ld+json")
        graph = Graph()
        to_rdf(json.loads(response.text), graph)  # Graph.parse warns: it goes through deprecated ConjunctiveGraph
        return graph
    assert response.headers["content-type"].startswith("text/turtle")
    return Graph().parse(data=response.text, format=fmt)


def _check_mandatory(graph: Graph) -> None:
    for cls, properties in MANDATORY.items():
        subjects = set(graph.subjects(RDF.type, cls))
        assert subjects, cls
        for subject in subjects:
            for prop in properties:
                assert graph.value(subject, prop) is not None, (subject, prop)


async def test_both_serialisations_carry_the_mandatory_properties(http: httpx.AsyncClient) -> None:
    turtle = await _graph(http, "/catalog.ttl", "turtle")
    jsonld = await _graph(http, "/catalog.jsonld", "json-ld")
    assert len(turtle) == len(jsonld) > 500
    for graph in (turtle, jsonld):
        _check_mandatory(graph)
        assert len(set(graph.subjects(RDF.type, DCAT.Dataset))) == 25


async def test_live_dataset_distributions_point_at_downloads_and_the_api(http: httpx.AsyncClient) -> None:
    graph = await _graph(http, "/catalog.ttl", "turtle")
    dataset = URIRef(f"{SITE}/dataset/facilities-astana")
    assert (dataset, DCTERMS.title, Literal("Қалалық нысандар — Астана", lang="kk")) in graph
    assert (
        dataset,
        DCTERMS.accrualPeriodicity,
        URIRef("http://publications.europa.eu/resource/authority/frequency/CONT"),
    ) in graph
    urls = {str(graph.value(d, DCAT.accessURL)) for d in graph.objects(dataset, DCAT.distribution)}
    assert f"{SITE}/dataset/facilities-astana/download/facilities-astana.csv" in urls
    services = [graph.value(d, DCAT.accessService) for d in graph.objects(dataset, DCAT.distribution)]
    endpoint = next(graph.value(s, DCAT.endpointURL) for s in services if s is not None)
    assert str(endpoint) == f"{SITE}/api/3/action/datastore_search"
    assert graph.value(dataset, DCTERMS.provenance) is not None


async def test_pages_of_one_hundred_with_hydra_links(http: httpx.AsyncClient, catalogue: Catalogue) -> None:
    for n in range(90):
        await catalogue.save_package({"name": f"report-{n:03d}", "title": f"Report {n}"}, actor="t", create=True)
    first = await _graph(http, "/catalog.ttl", "turtle")
    second = await _graph(http, "/catalog.ttl?page=2", "turtle")
    assert len(set(first.subjects(RDF.type, DCAT.Dataset))) == 100
    assert len(set(second.subjects(RDF.type, DCAT.Dataset))) == 15
    paging = next(first.subjects(RDF.type, HYDRA.PagedCollection))
    assert int(first.value(paging, HYDRA.totalItems)) == 115
    assert str(first.value(paging, HYDRA.nextPage)) == f"{SITE}/catalog.ttl?page=2"
    assert first.value(paging, HYDRA.previousPage) is None
    assert str(second.value(next(second.subjects(RDF.type, HYDRA.PagedCollection)), HYDRA.previousPage)) == (
        f"{SITE}/catalog.ttl?page=1"
    )
    assert (await http.get("/catalog.ttl?page=3")).status_code == 404
    assert (await http.get("/catalog.ttl?page=zero")).status_code == 400
