"""Live datasets: one per (collection, city) the hub holds, described from the store's summaries and read
through :class:`~catalogue.source.EntitySource` whenever someone downloads or queries it.

    >>> live_name("air-quality-observed", "astana")
    'air-quality-observed-astana'
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from catalogue.frozen import PeriodFreezer
from catalogue.i18n import LOCALES, city_name
from catalogue.privacy import AGGREGATED, AggregateSpec, public_fields, public_view
from catalogue.source import CollectionSummary, EntitySource
from catalogue.vocabulary import VOCABULARY
from schemas.cities import CityRegistry
from schemas.registry import SchemaRegistry, SchemaVersion

JsonObject = dict[str, Any]
NAMESPACE = uuid.UUID("6f1c2b0e-7d8a-4c1e-9a53-2d1f0f6b9c11")

TYPE_TITLES: dict[str, dict[str, str]] = {
    "ServiceRequest": {"kk": "Тұрғындардың өтініштері", "ru": "Обращения граждан", "en": "Service requests"},
    "ServiceType": {"kk": "Қызмет түрлері", "ru": "Виды услуг", "en": "Service types"},
    "Organization": {"kk": "Ұйымдар", "ru": "Организации", "en": "Organisations"},
    "Device": {"kk": "Құрылғылар мен датчиктер", "ru": "Устройства и датчики", "en": "Devices and sensors"},
    "MeterReading": {"kk": "Есептегіш көрсеткіштері", "ru": "Показания счётчиков", "en": "Meter readings"},
    "AirQualityObserved": {"kk": "Ауа сапасы", "ru": "Качество воздуха", "en": "Air quality"},
    "TrafficFlowObserved": {"kk": "Көлік ағыны", "ru": "Транспортный поток", "en": "Traffic flow"},
    "VehiclePosition": {
        "kk": "Қоғамдық көлік орны",
        "ru": "Положение общественного транспорта",
        "en": "Public transport positions",
    },
    "PaymentTransaction": {
        "kk": "Қалалық қызметтерге төлемдер (жиынтық)",
        "ru": "Платежи за городские услуги (агрегаты)",
        "en": "Payments for city services (aggregates)",
    },
    "Facility": {"kk": "Қалалық нысандар", "ru": "Городские объекты", "en": "City facilities"},
    "Incident": {"kk": "Оқиғалар", "ru": "Происшествия", "en": "Incidents"},
    "KPIValue": {"kk": "CityScore көрсеткіштері", "ru": "Показатели CityScore", "en": "CityScore indicators"},
}

THEME_OF_TYPE = {
    "ServiceRequest": "services",
    "ServiceType": "services",
    "Organization": "services",
    "Facility": "services",
    "KPIValue": "services",
    "Device": "utilities",
    "MeterReading": "utilities",
    "AirQualityObserved": "environment",
    "TrafficFlowObserved": "mobility",
    "VehiclePosition": "mobility",
    "PaymentTransaction": "finance",
    "Incident": "safety",
}

LIVE_NOTE = {
    "kk": "Qala хабы арқылы алмасатын деректерден тікелей жасалады.",
    "ru": "Формируется в реальном времени из данных, которыми обмениваются через хаб Qala.",
    "en": "Generated live from the data exchanged through the Qala hub.",
}

DOWNLOAD_FORMATS = ("csv", "json", "geojson")
LICENSE = {
    "license_id": "CC-BY-4.0",
    "license_title": "Creative Commons Attribution 4.0",
    "license_url": "https://creativecommons.org/licenses/by/4.0/",
    "isopen": True,
}


def live_name(collection: str, city: str) -> str:
    return f"{collection}-{city}"


def stable_id(*parts: str) -> str:
    """A UUID that stays the same for the same live dataset or resource across refreshes and hubs."""
    return str(uuid.uuid5(NAMESPACE, "/".join(parts)))


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


@dataclass(frozen=True)
class LiveDescriber:
    """Turns a :class:`CollectionSummary` into a CKAN package dictionary."""

    registry: SchemaRegistry
    site_url: str

    def version(self, collection: str) -> SchemaVersion | None:
        return self.registry.get(collection) if self.registry.has(collection) else None

    def describe(self, summary: CollectionSummary) -> JsonObject | None:
        version = self.version(summary.collection)
        if version is None or not CityRegistry.load().is_known(summary.city):
            return None  # an unknown city code never becomes a published dataset
        name = live_name(summary.collection, summary.city)
        city = city_name(summary.city)
        type_title = TYPE_TITLES.get(version.type_name, dict.fromkeys(LOCALES, version.title))
        aggregated = version.type_name in AGGREGATED
        titles = {loc: f"{type_title[loc]} — {city[loc]}" for loc in LOCALES}
        # Residents read the vocabulary's description; developers find the schema's in ``schema_description``.
        about = VOCABULARY.description(version.type_name) or {}
        notes = {loc: f"{about.get(loc, '')}\n\n{LIVE_NOTE[loc]}".strip() for loc in LOCALES}
        theme = THEME_OF_TYPE.get(version.type_name, "services")
        formats = (
            ("csv", "json")
            if aggregated or "location" not in version.document.get("properties", {})
            else (DOWNLOAD_FORMATS)
        )
        resources = [self._download(name, fmt, position) for position, fmt in enumerate(formats)]
        resources.append(self._api(name, len(resources)))
        freshness = {
            "last_update": _iso(summary.last_received),
            "last_modified": _iso(summary.last_modified),
            "median_latency_seconds": summary.median_latency_seconds,
            "records": None if aggregated else summary.count,
        }
        lineage = {"publishers": list(summary.publishers), "sources": list(summary.sources)}
        extras = {
            "live": "true",
            "collection": summary.collection,
            "city": summary.city,
            "schema": version.schema_id,
            "schema_description": version.description,
            "aggregated": "true" if aggregated else "false",
            "last_update": freshness["last_update"] or "",
            "median_latency_seconds": ""
            if summary.median_latency_seconds is None
            else (f"{summary.median_latency_seconds:.1f}"),
            "publishers": ", ".join(summary.publishers),
            "sources": ", ".join(summary.sources),
        }
        return {
            "id": stable_id("dataset", name),
            "name": name,
            "title_translated": titles,
            "notes_translated": notes,
            "owner_org": summary.city,
            "groups": [{"name": theme}],
            "tags": [{"name": t} for t in (summary.collection, version.type_name, summary.city, theme, "live")],
            "url": f"{self.site_url}/dataset/{name}",
            "version": version.version,
            "author": ", ".join(summary.publishers),
            "frequency": "continuous",
            "spatial": summary.city,
            "temporal_start": _iso(summary.first_modified),
            "temporal_end": _iso(summary.last_modified),
            "live": True,
            "collection": summary.collection,
            "city": summary.city,
            "aggregated": aggregated,
            "freshness": freshness,
            "lineage": lineage,
            "extras": [{"key": k, "value": v} for k, v in extras.items()],
            "resources": resources,
            "metadata_modified": _iso(summary.last_received),
            **LICENSE,
        }

    def _download(self, name: str, fmt: str, position: int) -> JsonObject:
        return {
            "id": stable_id("resource", name, fmt),
            "name": f"{name}.{fmt}",
            "format": fmt.upper() if fmt != "geojson" else "GeoJSON",
            "mimetype": {"csv": "text/csv", "json": "application/json", "geojson": "application/geo+json"}[fmt],
            "url": f"{self.site_url}/dataset/{name}/download/{name}.{fmt}",
            "url_type": "live",
            "position": position,
            "datastore_active": True,
        }

    def _api(self, name: str, position: int) -> JsonObject:
        resource_id = stable_id("resource", name, "api")
        return {
            "id": resource_id,
            "name": "API (datastore_search)",
            "format": "API",
            "mimetype": "application/json",
            "url": f"{self.site_url}/api/3/action/datastore_search?resource_id={resource_id}",
            "url_type": "live",
            "position": position,
            "datastore_active": True,
        }


@dataclass(frozen=True)
class LiveRows:
    """The public rows of one live dataset: records (public view) or, for aggregated types, the table."""

    version: SchemaVersion
    source: EntitySource
    collection: str
    city: str
    freezer: PeriodFreezer = field(default_factory=lambda: PeriodFreezer(None))
    """Publishes aggregated types by closed, frozen period (catalogue.frozen)."""

    @property
    def spec(self) -> AggregateSpec | None:
        return AGGREGATED.get(self.version.type_name)

    @property
    def columns(self) -> list[str]:
        spec = self.spec
        return spec.columns if spec else public_fields(self.version)

    @property
    def geometry(self) -> bool:
        return self.spec is None and "location" in self.version.document.get("properties", {})

    async def rows(self, limit: int | None = None) -> AsyncIterator[JsonObject]:
        spec = self.spec
        if spec is None:
            async for entity in self.source.entities(self.collection, self.city, limit=limit):
                yield public_view(self.version, entity)
            return
        entities = [e async for e in self.source.entities(self.collection, self.city)]
        for row in (await self.freezer.rows(live_name(self.collection, self.city), spec, entities))[:limit]:
            yield row
