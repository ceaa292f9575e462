"""Canonical entities in NGSI-LD's representations (ETSI GS CIM 009 §4.5), and back.

Qala's entities already carry NGSI-LD identifiers and Smart Data Models field names, so a representation only
changes shape: **keyValues** is the canonical entity itself; **normalized** wraps each attribute as a
``Property``, a ``GeoProperty`` (``location``), a ``Relationship`` (``ref...`` URNs) or a ``LanguageProperty``
(kk/ru/en names). The NGSI-LD facade answers queries with these, and subscription deliveries render NGSI-LD
notifications with them, so both live here, below either.

    >>> from schemas import SchemaRegistry
    >>> schema = SchemaRegistry.load().get("AirQualityObserved")
    >>> represent(schema, {"id": "urn:ngsi-ld:AirQualityObserved:astana:1", "type": "AirQualityObserved",
    ...                    "pm25": 12}, "normalized")["pm25"]
    {'type': 'Property', 'value': 12}
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from schemas.registry import SchemaVersion

CORE_CONTEXT = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld"
SYSTEM_KEYS = frozenset({"id", "type", "@context"})
QALA_TERMS = "https://schemas.qala.kz/terms/"
CONTEXT_PATH = "/ngsi-ld/v1/jsonldContexts/qala.jsonld"
"""Where a hub serves :func:`context_document`, below its base URL."""
# Smart Data Models subject of each type that has a counterpart there; the others keep Qala's own namespace.
SUBJECTS = {
    "AirQualityObserved": "dataModel.Environment",
    "TrafficFlowObserved": "dataModel.Transportation",
    "Device": "dataModel.Device",
    "ServiceRequest": "dataModel.IssueTracking",
    "Facility": "dataModel.PointOfInterest",
    "Incident": "dataModel.Alert",
    "KPIValue": "dataModel.KeyPerformanceIndicator",
    "MeterReading": "dataModel.Energy",
    "VehiclePosition": "dataModel.Transportation",
    "Organization": "dataModel.Organization",
}

Format = Literal["normalized", "keyValues"]
FORMATS: tuple[Format, ...] = ("normalized", "keyValues")


def _localized_fields(schema: SchemaVersion) -> frozenset[str]:
    properties = schema.source.get("properties", {})
    return frozenset(
        name for name, spec in properties.items() if str(spec.get("$ref", "")).endswith("/$defs/LocalizedText")
    )


def _date_fields(schema: SchemaVersion) -> frozenset[str]:
    properties = schema.source.get("properties", {})
    return frozenset(name for name, spec in properties.items() if str(spec.get("$ref", "")).endswith("/DateTime"))


def normalized(schema: SchemaVersion, entity: Mapping[str, Any]) -> dict[str, Any]:
    """The canonical entity in NGSI-LD's normalized form."""
    localized, dates = _localized_fields(schema), _date_fields(schema)
    result: dict[str, Any] = {"id": entity["id"], "type": entity["type"]}
    for key, value in entity.items():
        if key in SYSTEM_KEYS:
            continue
        if key == "location" and isinstance(value, dict):
            result[key] = {"type": "GeoProperty", "value": value}
        elif key.startswith("ref") and isinstance(value, str) and value.startswith("urn:"):
            result[key] = {"type": "Relationship", "object": value}
        elif key in localized and isinstance(value, dict):
            result[key] = {"type": "LanguageProperty", "languageMap": value}
        elif key in dates:
            result[key] = {"type": "Property", "value": {"@type": "DateTime", "@value": value}}
        else:
            result[key] = {"type": "Property", "value": value}
    return result


def represent(
    schema: SchemaVersion, entity: Mapping[str, Any], form: Format, attributes: Sequence[str] | None = None
) -> dict[str, Any]:
    """``entity`` in ``form``, keeping only ``attributes`` (besides ``id`` and ``type``) when they are given.

    The entity is taken as it is: redact it for its reader before it comes here.
    """
    if attributes is not None:
        wanted = set(attributes)
        entity = {key: value for key, value in entity.items() if key in SYSTEM_KEYS or key in wanted}
    return normalized(schema, entity) if form == "normalized" else dict(entity)


def canonical(body: Mapping[str, Any]) -> dict[str, Any]:
    """An NGSI-LD entity (normalized, concise or keyValues) back in the canonical form."""
    entity: dict[str, Any] = {}
    for key, value in body.items():
        if key == "@context":
            continue
        entity[key] = _attribute_value(value) if key not in ("id", "type") else value
    return entity


def _attribute_value(value: Any) -> Any:
    if not isinstance(value, dict) or "type" not in value:
        return value
    kind = value["type"]
    if kind == "Relationship":
        return value.get("object")
    if kind == "LanguageProperty":
        return value.get("languageMap")
    if kind in ("Property", "GeoProperty"):
        inner = value.get("value")
        if isinstance(inner, dict) and inner.get("@type") == "DateTime":
            return inner.get("@value")
        return inner
    return value  # a GeoJSON object in concise form ({"type": "Point", ...}) stays as it is


def term_base(type_name: str) -> str:
    """The namespace of a type's terms: its Smart Data Models subject, or Qala's own."""
    subject = SUBJECTS.get(type_name)
    return f"https://smartdatamodels.org/{subject}/" if subject else QALA_TERMS


def context_document(registry_types: Iterable[SchemaVersion]) -> dict[str, Any]:
    """The ``@context`` for Qala's types: terms to Smart Data Models URIs where the type has a counterpart."""
    terms: dict[str, str] = {}
    for schema in registry_types:
        base = term_base(schema.type_name)
        terms[schema.type_name] = base + schema.type_name
        for name in schema.source.get("properties", {}):
            if name not in SYSTEM_KEYS and name not in terms:
                terms[name] = base + name
    return {"@context": [terms, CORE_CONTEXT]}


def context_link(base_url: str) -> str:
    """The ``Link`` header that gives a plain-JSON NGSI-LD body the hub's ``@context`` (§6.3.5)."""
    return f'<{base_url}{CONTEXT_PATH}>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'


def short_type(term: str) -> str:
    """A type given as the full IRI of Qala's ``@context`` in its short name; any other term as it is.

    >>> short_type("https://smartdatamodels.org/dataModel.Environment/AirQualityObserved")
    'AirQualityObserved'
    """
    name = term.rsplit("/", 1)[-1]
    return name if "/" in term and term == term_base(name) + name else term
