"""DCAT-AP 3 of the catalogue, at the addresses ckanext-dcat publishes, valid against the official SHACL shapes.

GET /catalog.ttl | .jsonld | .rdf | .xml | .n3     the catalogue, 100 datasets a page (Hydra paging links)
GET /catalog                                       the same, in the format the ``Accept`` header asks for
GET /dataset/{name}.ttl | .jsonld | .rdf | ...     one dataset (``/dataset/{name}`` negotiates it too)

Every class carries DCAT-AP 3's mandatory properties and the recommended ones (contact point, publisher with its
type, spatial coverage with the city's centroid, temporal coverage with its start and end, themes, keywords,
distribution description, format, licence and availability). Licences, formats, themes, frequencies, languages,
availability and publisher types are URIs of the EU vocabularies; each value is typed with the class
``range.ttl`` expects, so ``pyshacl`` with ``catalogue/shapes/`` reports nothing (tests/catalogue/test_dcat_shacl.py).

    >>> graph = catalogue_graph(CatalogueSettings(), [], page=1, total=0)
    >>> (None, DCTERMS.title, None) in graph
    True
"""

from __future__ import annotations

import math
from typing import Any

from rdflib import BNode, Graph, Literal, Namespace, URIRef
from rdflib.namespace import DCAT, DCTERMS, FOAF, RDF, SKOS, XSD

from catalogue.i18n import LOCALES, MESSAGES, THEMES, city_name
from catalogue.service import CatalogueSettings
from schemas.cities import CityRegistry

JsonObject = dict[str, Any]
HYDRA = Namespace("http://www.w3.org/ns/hydra/core#")
VCARD = Namespace("http://www.w3.org/2006/vcard/ns#")
DCATAP = Namespace("http://data.europa.eu/r5r/")
GSP = Namespace("http://www.opengis.net/ont/geosparql#")
EU = "http://publications.europa.eu/resource/authority/"
EU_THEME = Namespace(EU + "data-theme/")
EU_FREQUENCY = Namespace(EU + "frequency/")
EU_FORMAT = Namespace(EU + "file-type/")
EU_LANGUAGE = Namespace(EU + "language/")
EU_LICENCE = Namespace(EU + "licence/")
EU_COUNTRY = Namespace(EU + "country/")
EU_AVAILABILITY = Namespace(EU + "planned-availability/")
PUBLISHER_TYPE = Namespace("http://purl.org/adms/publishertype/")
LICENCE_TYPE = Namespace("http://purl.org/adms/licencetype/")
IANA = "https://www.iana.org/assignments/media-types/"
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
LICENCES = {"CC-BY-4.0": "CC_BY_4_0", "CC0-1.0": "CC0", "CC-BY-SA-4.0": "CC_BYSA_4_0", "ODbL-1.0": "ODBL"}
PUBLISHER_LABELS = {
    "LocalAuthority": {"kk": "Жергілікті билік", "ru": "Местный орган власти", "en": "Local authority"},
    "NationalAuthority": {"kk": "Ұлттық орган", "ru": "Национальный орган", "en": "National authority"},
    "Company": {"kk": "Компания", "ru": "Компания", "en": "Company"},
}
ATTRIBUTION_LABELS = {"kk": "Авторын көрсету", "ru": "С указанием авторства", "en": "Attribution"}
AVAILABILITY_LABELS = {
    "AVAILABLE": {"kk": "Қолжетімді", "ru": "Доступно", "en": "Available"},
    "STABLE": {"kk": "Тұрақты", "ru": "Стабильно", "en": "Stable"},
}
MEDIA = {
    "ttl": ("turtle", "text/turtle; charset=utf-8"),
    "jsonld": ("json-ld", "application/ld+json"),
    "rdf": ("xml", "application/rdf+xml"),
    "xml": ("xml", "application/rdf+xml"),
    "n3": ("n3", "text/n3; charset=utf-8"),
}
ACCEPTED = {
    "text/turtle": "ttl",
    "application/ld+json": "jsonld",
    "application/rdf+xml": "rdf",
    "text/n3": "n3",
}


def _texts(graph: Graph, subject: URIRef | BNode, predicate: URIRef, values: dict[str, str], fallback: str) -> None:
    written = False
    for locale in LOCALES:
        if values.get(locale):
            graph.add((subject, predicate, Literal(values[locale], lang=locale)))
            written = True
    if not written:
        graph.add((subject, predicate, Literal(fallback)))


def _typed(graph: Graph, node: URIRef, kind: URIRef) -> URIRef:
    graph.add((node, RDF.type, kind))
    return node


def _concept(graph: Graph, node: URIRef, labels: dict[str, str]) -> URIRef:
    """A SKOS concept from a controlled vocabulary, with the labels DCAT-AP requires of every concept."""
    graph.add((node, RDF.type, SKOS.Concept))
    _texts(graph, node, SKOS.prefLabel, labels, str(node).rsplit("/", 1)[-1])
    return node


def _agent(graph: Graph, uri: str, names: dict[str, str], fallback: str, kind: str) -> URIRef:
    agent = URIRef(uri)
    graph.add((agent, RDF.type, FOAF.Agent))
    _texts(graph, agent, FOAF.name, names, fallback)
    graph.add((agent, DCTERMS.type, _concept(graph, PUBLISHER_TYPE[kind], PUBLISHER_LABELS[kind])))
    return agent


def _contact(graph: Graph, url: str, names: dict[str, str], fallback: str) -> BNode:
    contact = BNode()
    graph.add((contact, RDF.type, VCARD.Kind))
    graph.add((contact, RDF.type, VCARD.Organization))
    _texts(graph, contact, VCARD.fn, names, fallback)
    graph.add((contact, VCARD.hasURL, URIRef(url)))
    return contact


def _licence(graph: Graph, doc: JsonObject) -> URIRef | None:
    code = LICENCES.get(str(doc.get("license_id")))
    uri = EU_LICENCE[code] if code else (URIRef(doc["license_url"]) if doc.get("license_url") else None)
    if uri is None:
        return None
    graph.add((uri, RDF.type, DCTERMS.LicenseDocument))
    if doc.get("isopen", code is not None):  # ADMS licence type: every open licence here asks for attribution
        graph.add((uri, DCTERMS.type, _concept(graph, LICENCE_TYPE.Attribution, ATTRIBUTION_LABELS)))
    return uri


def _spatial(graph: Graph, city: str) -> URIRef | BNode:
    cities = CityRegistry.load()
    if city == "kz" or not cities.is_known(city):
        country = _typed(graph, EU_COUNTRY.KAZ, DCTERMS.Location)
        _texts(graph, country, SKOS.prefLabel, city_name("kz"), "Kazakhstan")
        graph.add((country, DCAT.centroid, Literal("POINT(66.9 48.0)", datatype=GSP.wktLiteral)))
        graph.add((country, DCAT.bbox, _box(46.5, 40.6, 87.3, 55.4)))
        return country
    place = BNode()
    graph.add((place, RDF.type, DCTERMS.Location))
    entry = cities.get(city)
    _texts(graph, place, SKOS.prefLabel, dict(entry.name), city)
    if entry.location:
        lon, lat = entry.location
        graph.add((place, DCAT.centroid, Literal(f"POINT({lon} {lat})", datatype=GSP.wktLiteral)))
        # The registry has a centre, not a boundary: a box of about 50 km around it covers any city here.
        graph.add((place, DCAT.bbox, _box(lon - 0.35, lat - 0.25, lon + 0.35, lat + 0.25)))
    return place


def _box(west: float, south: float, east: float, north: float) -> Literal:
    ring = f"{west:.3f} {south:.3f}, {east:.3f} {south:.3f}, {east:.3f} {north:.3f}, {west:.3f} {north:.3f}"
    return Literal(f"POLYGON(({ring}, {west:.3f} {south:.3f}))", datatype=GSP.wktLiteral)


def _publisher(graph: Graph, site: str, settings: CatalogueSettings, doc: JsonObject) -> URIRef:
    organization = doc.get("organization")
    if organization:
        local = CityRegistry.load().is_known(organization["name"])
        return _agent(
            graph,
            f"{site}/organization/{organization['name']}",
            organization.get("title_translated") or {},
            organization.get("title") or organization["name"],
            "LocalAuthority" if local else "Company",
        )
    return _agent(graph, f"{site}/#publisher", MESSAGES["site_name"], settings.publisher, "NationalAuthority")


def _dataset(graph: Graph, site: str, settings: CatalogueSettings, doc: JsonObject) -> URIRef:
    subject = URIRef(f"{site}/dataset/{doc['name']}")
    graph.add((subject, RDF.type, DCAT.Dataset))
    title = doc.get("title") or doc["name"]
    _texts(graph, subject, DCTERMS.title, doc.get("title_translated") or {}, title)
    _texts(graph, subject, DCTERMS.description, doc.get("notes_translated") or {}, doc.get("notes") or title)
    graph.add((subject, DCTERMS.identifier, Literal(doc["id"])))
    graph.add((subject, DCAT.landingPage, _typed(graph, URIRef(f"{site}/dataset/{doc['name']}"), FOAF.Document)))
    graph.add((subject, DCTERMS.issued, Literal(doc["metadata_created"], datatype=XSD.dateTime)))
    graph.add((subject, DCTERMS.modified, Literal(doc["metadata_modified"], datatype=XSD.dateTime)))
    for tag in doc.get("tags", []):
        graph.add((subject, DCAT.keyword, Literal(tag["name"])))
    for group in doc.get("groups", []):
        if group.get("name") in THEME_MAP:
            theme = EU_THEME[THEME_MAP[group["name"]]]
            graph.add((subject, DCAT.theme, _concept(graph, theme, THEMES[group["name"]])))
    publisher = _publisher(graph, site, settings, doc)
    graph.add((subject, DCTERMS.publisher, publisher))
    organization = doc.get("organization") or {}
    graph.add(
        (
            subject,
            DCAT.contactPoint,
            _contact(
                graph,
                f"{site}/organization/{organization['name']}" if organization else f"{site}/",
                organization.get("title_translated") or MESSAGES["site_name"],
                organization.get("title") or settings.publisher,
            ),
        )
    )
    graph.add((subject, DCTERMS.spatial, _spatial(graph, str(doc.get("spatial") or doc.get("city") or "kz"))))
    if doc.get("live"):
        graph.add((subject, DCTERMS.accrualPeriodicity, _typed(graph, EU_FREQUENCY.CONT, DCTERMS.Frequency)))
        lineage = doc.get("lineage") or {}
        provenance = "Generated live by the Qala hub from: " + ", ".join(
            [*lineage.get("sources", []), *lineage.get("publishers", [])] or ["exchanged entities"]
        )
        statement = BNode()
        graph.add((statement, RDF.type, DCTERMS.ProvenanceStatement))
        graph.add((statement, DCTERMS.description, Literal(provenance)))
        graph.add((subject, DCTERMS.provenance, statement))
    period = BNode()
    graph.add((period, RDF.type, DCTERMS.PeriodOfTime))
    start = doc.get("temporal_start") or doc["metadata_created"]
    graph.add((period, DCAT.startDate, Literal(start, datatype=XSD.dateTime)))
    if doc.get("temporal_end"):
        graph.add((period, DCAT.endDate, Literal(doc["temporal_end"], datatype=XSD.dateTime)))
    graph.add((subject, DCTERMS.temporal, period))
    for resource in doc.get("resources", []):
        graph.add((subject, DCAT.distribution, _distribution(graph, site, doc, resource, publisher=publisher)))
    return subject


def _distribution(graph: Graph, site: str, doc: JsonObject, resource: JsonObject, *, publisher: URIRef) -> URIRef:
    subject = URIRef(f"{site}/dataset/{doc['name']}/resource/{resource['id']}")
    url = URIRef(resource.get("url") or f"{site}/dataset/{doc['name']}")
    graph.add((subject, RDF.type, DCAT.Distribution))
    graph.add((subject, DCAT.accessURL, url))
    graph.add((subject, DCTERMS.title, Literal(resource.get("name") or resource["id"])))
    fmt = str(resource.get("format") or "").upper()
    described = {
        loc: f"{MESSAGES.get(f'format_{fmt.lower()}', {}).get(loc, fmt)} ({fmt}): {title}"
        for loc, title in (doc.get("title_translated") or {}).items()
    }
    _texts(graph, subject, DCTERMS.description, resource.get("description_translated") or described, fmt or "file")
    if resource.get("description"):
        graph.add((subject, DCTERMS.description, Literal(resource["description"])))
    if fmt in FORMATS:
        graph.add((subject, DCTERMS["format"], _typed(graph, EU_FORMAT[FORMATS[fmt]], DCTERMS.MediaTypeOrExtent)))
    if resource.get("mimetype"):
        graph.add((subject, DCAT.mediaType, _typed(graph, URIRef(IANA + resource["mimetype"]), DCTERMS.MediaType)))
    licence = _licence(graph, doc)
    if licence is not None:
        graph.add((subject, DCTERMS.license, licence))
    availability = EU_AVAILABILITY.AVAILABLE if doc.get("live") else EU_AVAILABILITY.STABLE
    graph.add(
        (
            subject,
            DCATAP.availability,
            _concept(graph, availability, AVAILABILITY_LABELS[str(availability).rsplit("/", 1)[-1]]),
        )
    )
    if fmt == "API":
        service = URIRef(f"{site}/api/3/action/datastore_search#{resource['id']}")
        graph.add((service, RDF.type, DCAT.DataService))
        graph.add((service, DCTERMS.title, Literal(f"{doc.get('title') or doc['name']} — datastore_search API")))
        _describe_service(graph, site, service, f"{site}/api/3/action/datastore_search", publisher=publisher, doc=doc)
        graph.add((service, DCAT.servesDataset, URIRef(f"{site}/dataset/{doc['name']}")))
        graph.add((subject, DCAT.accessService, service))
    elif resource.get("url"):
        graph.add((subject, DCAT.downloadURL, url))
    return subject


def _describe_service(
    graph: Graph, site: str, service: URIRef, endpoint: str, *, publisher: URIRef, doc: JsonObject | None
) -> None:
    graph.add((service, DCAT.endpointURL, URIRef(endpoint)))
    graph.add((service, DCAT.endpointDescription, _typed(graph, URIRef(f"{site}/api-docs"), FOAF.Document)))
    graph.add((service, DCTERMS.publisher, publisher))
    graph.add((service, DCAT.contactPoint, _contact(graph, f"{site}/api-docs", MESSAGES["site_name"], "Qala")))
    graph.add(
        (service, DCTERMS.conformsTo, _typed(graph, URIRef("https://docs.ckan.org/en/latest/api/"), DCTERMS.Standard))
    )
    for keyword in ("CKAN", "API", "open data"):
        graph.add((service, DCAT.keyword, Literal(keyword)))
    themes = [g["name"] for g in (doc or {}).get("groups", []) if g.get("name") in THEME_MAP] or list(THEME_MAP)
    for theme in themes:
        graph.add((service, DCAT.theme, _concept(graph, EU_THEME[THEME_MAP[theme]], THEMES[theme])))
    licence = _licence(graph, doc or {"license_id": "CC-BY-4.0"})
    if licence is not None:
        graph.add((service, DCTERMS.license, licence))


def _graph() -> Graph:
    graph = Graph()
    for prefix, namespace in (
        ("dcat", DCAT),
        ("dct", DCTERMS),
        ("foaf", FOAF),
        ("hydra", HYDRA),
        ("dcatap", DCATAP),
        ("vcard", VCARD),
        ("skos", SKOS),
        ("gsp", GSP),
    ):
        graph.bind(prefix, namespace)
    return graph


def dataset_graph(settings: CatalogueSettings, doc: JsonObject) -> Graph:
    """One dataset with its distributions (``/dataset/{name}.ttl``)."""
    graph = _graph()
    _dataset(graph, settings.site_url.rstrip("/"), settings, doc)
    return graph


def catalogue_graph(
    settings: CatalogueSettings,
    docs: list[JsonObject],
    *,
    page: int,
    total: int,
    page_url: str = "/catalog.ttl",
    modified: str | None = None,
) -> Graph:
    """One page of the catalogue as an RDF graph."""
    site = settings.site_url.rstrip("/")
    graph = _graph()
    root = URIRef(f"{site}/catalog")
    graph.add((root, RDF.type, DCAT.Catalog))
    _texts(graph, root, DCTERMS.title, MESSAGES["site_name"], settings.title)
    _texts(graph, root, DCTERMS.description, MESSAGES["site_description"], settings.description)
    publisher = _agent(graph, f"{site}/#publisher", MESSAGES["site_name"], settings.publisher, "NationalAuthority")
    graph.add((root, DCTERMS.publisher, publisher))
    graph.add((root, FOAF.homepage, _typed(graph, URIRef(f"{site}/"), FOAF.Document)))
    graph.add((root, DCTERMS.license, _licence(graph, {"license_id": "CC-BY-4.0"}) or EU_LICENCE.CC_BY_4_0))
    graph.add((root, DCTERMS.spatial, _typed(graph, EU_COUNTRY.KAZ, DCTERMS.Location)))
    taxonomy = _typed(graph, URIRef(EU + "data-theme"), SKOS.ConceptScheme)
    graph.add((taxonomy, DCTERMS.title, Literal("Data theme", lang="en")))
    graph.add((root, DCAT.themeTaxonomy, taxonomy))
    for theme in THEMES:
        if theme in THEME_MAP:
            graph.add((EU_THEME[THEME_MAP[theme]], SKOS.inScheme, taxonomy))
    for code in LANGUAGE_MAP.values():
        graph.add((root, DCTERMS.language, _typed(graph, EU_LANGUAGE[code], DCTERMS.LinguisticSystem)))
    dates = [d["metadata_created"] for d in docs]
    if dates:
        graph.add((root, DCTERMS.issued, Literal(min(dates), datatype=XSD.dateTime)))
    latest = modified or max((d["metadata_modified"] for d in docs), default=None)
    if latest:
        graph.add((root, DCTERMS.modified, Literal(latest, datatype=XSD.dateTime)))
    api = URIRef(f"{site}/api/3/action/")
    graph.add((api, RDF.type, DCAT.DataService))
    graph.add((api, DCTERMS.title, Literal(f"{settings.title} — CKAN Action API")))
    _describe_service(graph, site, api, str(api), publisher=publisher, doc=None)
    graph.add((root, DCAT.service, api))
    for doc in docs:
        dataset = _dataset(graph, site, settings, doc)
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


def negotiate(accept: str | None) -> str | None:
    """The RDF format an ``Accept`` header prefers over HTML, or ``None`` (then a page is served)."""
    best: tuple[float, str | None] = (0.0, None)
    for order, part in enumerate((accept or "").split(",")):
        media, *params = (p.strip() for p in part.split(";"))
        quality = next((float(p[2:]) for p in params if p.startswith("q=") and _number(p[2:])), 1.0)
        score = quality - order * 1e-6  # equal weights: the first listed wins
        if media in ("text/html", "application/xhtml+xml", "*/*") and score > best[0]:
            best = (score, None)
        elif media in ACCEPTED and score > best[0]:
            best = (score, ACCEPTED[media])
    return best[1]


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
