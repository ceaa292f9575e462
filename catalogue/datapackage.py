"""A Frictionless Data Package (``datapackage.json``) for every live dataset, its Table Schema derived from the
canonical schema through :mod:`catalogue.tabular`, the same columns the CSV download writes.

    GET /dataset/{name}/datapackage.json

``frictionless validate http://127.0.0.1:8000/dataset/air-quality-observed-astana/datapackage.json`` reads the
descriptor, downloads the CSV and checks every cell against the schema.
"""

from __future__ import annotations

from typing import Any

from catalogue.i18n import pick
from catalogue.privacy import AGGREGATED
from catalogue.tabular import Column

JsonObject = dict[str, Any]
PROFILE = "tabular-data-package"


def _field(column: Column) -> JsonObject:
    field: JsonObject = {"name": column.name, "type": column.type}
    if column.description:
        field["description"] = column.description
    return field


def descriptor(doc: JsonObject, columns: list[Column], type_name: str, locale: str = "en") -> JsonObject:
    """The Data Package descriptor of one live dataset (``doc`` is its ``package_show`` dictionary)."""
    csv = next(r for r in doc["resources"] if r.get("format") == "CSV")
    schema: JsonObject = {"fields": [_field(c) for c in columns], "missingValues": [""]}
    if type_name not in AGGREGATED and any(c.name == "id" for c in columns):
        schema["primaryKey"] = ["id"]
    return {
        "profile": PROFILE,
        "name": doc["name"],
        "id": doc["id"],
        "title": pick(doc.get("title_translated"), locale) or doc.get("title") or doc["name"],
        "description": pick(doc.get("notes_translated"), locale) or doc.get("notes") or "",
        "homepage": doc.get("url") or "",
        "version": doc.get("version") or "",
        "created": doc.get("metadata_created", "") + "Z",
        "keywords": [t["name"] for t in doc.get("tags", [])],
        "licenses": [{"name": doc["license_id"], "path": doc["license_url"], "title": doc["license_title"]}],
        "sources": [{"title": name} for name in (doc.get("lineage") or {}).get("sources", [])],
        "resources": [
            {
                "name": doc["name"],
                "path": csv["url"],
                "profile": "tabular-data-resource",
                "format": "csv",
                "mediatype": "text/csv",
                "encoding": "utf-8-sig",
                "schema": schema,
            }
        ],
    }
