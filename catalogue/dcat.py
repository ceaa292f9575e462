"""DCAT-AP 3 at ``/catalog.ttl`` and ``/catalog.jsonld``, 100 datasets a page with Hydra paging links.

Every class carries the DCAT-AP 3 mandatory properties: Catalog title, description and publisher; Dataset
title and description; Distribution accessURL; DataService title and endpointURL; Agent foaf:name. Live
datasets also say how they are made (``dct:provenance``) and are continuously updated.

    >>> graph = catalogue_graph(CatalogueSettings(), [], page=1, total=0)
    >>> (None, DCTERMS.title, None) in graph
    True
"""

from __future__ import annotations

import math
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response
from rdflib import BNode, Graph, Literal, Namespace, URIRef
from rdflib.namespace import DCAT, DCTERMS, FOAF, RDF, XSD

from catalogue.i18n import LOCALES
from catalogue.service import Catalogue, CatalogueSettings

JsonObject = dict[str, Any]
HYDRA = Namespace("http://www.w3.org/ns/hydra/core#")
DCATAP = Namespace("http://data.europa.eu/r5r/")
EU_THEME = Namespace("http://publications.europa.eu/resource/authority/data-theme/")
EU_FREQUENCY = Namespace("http://publications.europa.eu/resource/authority/frequency/")
EU_FORMAT = Namespace("http://publications.europa.eu/resource/authority/file-type/")
EU_LANGUAGE = Namespace("http://publications.europa.eu/resource/authority/language/")
PER_PAGE = 100
THEME_MAP = {
    "mobility": "TRAN",
    "environment": "ENVI",
    "utilities": "ENER",
    "safety": "JUST",
    "services": "GOVE",
    "finance": "ECON",
}
LANGUAGE_MAP = {"kk": "KAZ", "ru": "RUS", "en": "ENG"}
FORMATS = {"CSV": "CSV", "JSON": "JSON", "GEOJSON": "GEOJSON", "API": "JSON", "XLSX": "XLSX", "PDF": "PDF"}
MEDIA = {"ttl": ("turtle", "text/turtle; charset=utf-8"), "jsonld": ("json-ld", "application/ld+json")}


def _texts(graph: Graph, subject: URIRef, predicate: URIRef, values: dict[str, str], fallback: str) -> None:
    written = False
    for locale in LOCALES:
        if values.get(locale):
            graph.add((subject, predicate, Literal(values[locale], lang=locale)))
            written = True
    if not written:
        graph.add((subject, predicate, Literal(fallback)))


def _agent(graph: Graph, uri: str, name: str) -> URIRef:
    agent = URIRef(uri)
    graph.add((agent, RDF.type, FOAF.Agent))
    graph.add((agent, FOAF.name, Literal(name)))
    return agent


def _dataset(graph: Graph, site: str, doc: JsonObject) -> URIRef:
    subject = URIRef(f"{site}/dataset/{doc['name']}")
    graph.add((subject, RDF.type, DCAT.Dataset))
    _texts(graph, subject, DCTERMS.title, doc.get("title_translated") or {}, doc.get("title") or doc["name"])
    _texts(
        graph,
        subject,
        DCTERMS.description,
        doc.get("notes_translated") or {},
        doc.get("notes") or doc.get("title") or doc["name"],
    )
    graph.add((subject, DCTERMS.identifier, Literal(doc["id"])))
    graph.add((subject, DCAT.landingPage, URIRef(f"{site}/dataset/{doc['name']}")))
    graph.add((subject, DCTERMS.issued, Literal(doc["metadata_created"], datatype=XSD.dateTime)))
    graph.add((subject, DCTERMS.modified, Literal(doc["metadata_modified"], datatype=XSD.dateTime)))
    if doc.get("license_url"):
        graph.add((subject, DCTERMS.license, URIRef(doc["license_url"])))
    for tag in doc.get("tags", []):
        graph.add((subject, DCAT.keyword, Literal(tag["name"])))
    for group in doc.get("groups", []):
        if group.get("name") in THEME_MAP:
            graph.add((subject, DCAT.theme, EU_THEME[THEME_MAP[group["name"]]]))
    organization = doc.get("organization")
    if organization:
        graph.add(
            (
                subject,
                DCTERMS.publisher,
                _agent(graph, f"{site}/organization/{organization['name']}", organization["title"]),
            )
        )
    if doc.get("live"):
        graph.add((subject, DCTERMS.accrualPeriodicity, EU_FREQUENCY.CONT))
        lineage = doc.get("lineage") or {}
        provenance = "Generated live by the Qala hub from: " + ", ".join(
            [*lineage.get("sources", []), *lineage.get("publishers", [])] or ["exchanged entities"]
        )
        statement = BNode()
        graph.add((statement, RDF.type, DCTERMS.ProvenanceStatement))
        graph.add((statement, DCTERMS.description, Literal(provenance)))
        graph.add((subject, DCTERMS.provenance, statement))
    if doc.get("temporal_end"):
        period = BNode()
        graph.add((period, RDF.type, DCTERMS.PeriodOfTime))
        graph.add((period, DCAT.endDate, Literal(doc["temporal_end"], datatype=XSD.dateTime)))
        graph.add((subject, DCTERMS.temporal, period))
    for resource in doc.get("resources", []):
        graph.add((subject, DCAT.distribution, _distribution(graph, site, doc, resource)))
    return subject


def _distribution(graph: Graph, site: str, doc: JsonObject, resource: JsonObject) -> URIRef:
    subject = URIRef(f"{site}/dataset/{doc['name']}/resource/{resource['id']}")
    url = URIRef(resource.get("url") or f"{site}/dataset/{doc['name']}")
    graph.add((subject, RDF.type, DCAT.Distribution))
    graph.add((subject, DCAT.accessURL, url))
    graph.add((subject, DCTERMS.title, Literal(resource.get("name") or resource["id"])))
    fmt = str(resource.get("format") or "").upper()
    if fmt in FORMATS:
        graph.add((subject, DCTERMS["format"], EU_FORMAT[FORMATS[fmt]]))
    if resource.get("mimetype"):
        graph.add(
            (subject, DCAT.mediaType, URIRef(f"https://www.iana.org/assignments/media-types/{resource['mimetype']}"))
        )
    if doc.get("license_url"):
        graph.add((subject, DCTERMS.license, URIRef(doc["license_url"])))
    if fmt == "API":
        service = URIRef(f"{site}/api/3/action/datastore_search#{resource['id']}")
        graph.add((service, RDF.type, DCAT.DataService))
        graph.add((service, DCTERMS.title, Literal(f"{doc.get('title') or doc['name']} — datastore_search API")))
        graph.add((service, DCAT.endpointURL, URIRef(f"{site}/api/3/action/datastore_search")))
        graph.add((service, DCAT.servesDataset, URIRef(f"{site}/dataset/{doc['name']}")))
        graph.add((subject, DCAT.accessService, service))
    elif resource.get("url"):
        graph.add((subject, DCAT.downloadURL, url))
    return subject


def catalogue_graph(
    settings: CatalogueSettings, docs: list[JsonObject], *, page: int, total: int, page_url: str = "/catalog.ttl"
) -> Graph:
    """One page of the catalogue as an RDF graph."""
    site = settings.site_url.rstrip("/")
    graph = Graph()
    for prefix, namespace in (("dcat", DCAT), ("dct", DCTERMS), ("foaf", FOAF), ("hydra", HYDRA), ("dcatap", DCATAP)):
        graph.bind(prefix, namespace)
    root = URIRef(f"{site}/catalog")
    graph.add((root, RDF.type, DCAT.Catalog))
    graph.add((root, DCTERMS.title, Literal(settings.title)))
    graph.add((root, DCTERMS.description, Literal(settings.description)))
    graph.add((root, DCTERMS.publisher, _agent(graph, f"{site}/#publisher", settings.publisher)))
    graph.add((root, FOAF.homepage, URIRef(f"{site}/")))
    graph.add((root, DCTERMS.license, URIRef("https://creativecommons.org/licenses/by/4.0/")))
    graph.add((root, DCAT.themeTaxonomy, URIRef("http://publications.europa.eu/resource/authority/data-theme")))
    for code in LANGUAGE_MAP.values():
        graph.add((root, DCTERMS.language, EU_LANGUAGE[code]))
    api = URIRef(f"{site}/api/3/action/")
    graph.add((api, RDF.type, DCAT.DataService))
    graph.add((api, DCTERMS.title, Literal(f"{settings.title} — CKAN Action API")))
    graph.add((api, DCAT.endpointURL, api))
    graph.add((api, DCAT.endpointDescription, URIRef(f"{site}/api-docs")))
    graph.add((root, DCAT.service, api))
    for doc in docs:
        dataset = _dataset(graph, site, doc)
        graph.add((root, DCAT.dataset, dataset))
        graph.add((api, DCAT.servesDataset, dataset))
    last = max(1, math.ceil(total / PER_PAGE))
    paging = URIRef(f"{site}{page_url}?page={page}")
    graph.add((paging, RDF.type, HYDRA.PagedCollection))
    graph.add((paging, HYDRA.totalItems, Literal(total, datatype=XSD.integer)))
    graph.add((paging, HYDRA.itemsPerPage, Literal(PER_PAGE, datatype=XSD.integer)))
    graph.add((paging, HYDRA.firstPage, Literal(f"{site}{page_url}?page=1")))
    graph.add((paging, HYDRA.lastPage, Literal(f"{site}{page_url}?page={last}")))
    if page < last:
        graph.add((paging, HYDRA.nextPage, Literal(f"{site}{page_url}?page={page + 1}")))
    if page > 1:
        graph.add((paging, HYDRA.previousPage, Literal(f"{site}{page_url}?page={page - 1}")))
    return graph


def router() -> APIRouter:
    api = APIRouter(tags=["DCAT-AP"])

    async def catalog(request: Request, fmt: str) -> Response:
        catalogue: Catalogue = request.app.state.catalogue
        try:
            page = int(request.query_params.get("page", "1"))
        except ValueError:
            raise HTTPException(400, "page must be a positive integer") from None
        if not 1 <= page <= 2**31 - 1:
            raise HTTPException(400, "page must be a positive integer")
        found = await catalogue.package_search(
            {
                "q": request.query_params.get("q", ""),
                "fq": request.query_params.get("fq", ""),
                "rows": PER_PAGE,
                "start": (page - 1) * PER_PAGE,
                "sort": "name asc",
            }
        )
        if page > 1 and not found["results"]:
            raise HTTPException(404, "Page not found")
        graph = catalogue_graph(
            catalogue.settings, found["results"], page=page, total=found["count"], page_url=f"/catalog.{fmt}"
        )
        rdf_format, media_type = MEDIA[fmt]
        return Response(graph.serialize(format=rdf_format), media_type=media_type)

    @api.get("/catalog.ttl", include_in_schema=False)
    async def turtle(request: Request) -> Response:
        return await catalog(request, "ttl")

    @api.get("/catalog.jsonld", include_in_schema=False)
    async def jsonld(request: Request) -> Response:
        return await catalog(request, "jsonld")

    return api
