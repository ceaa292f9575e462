"""``datastore_search`` over a live dataset: filters, q, fields, sort, limit/offset and paging links.

Rows come from :class:`~catalogue.live.LiveRows` (already the public view), so a query can never reach a
personal field. Without ``sort`` rows stream and only the requested page is kept in memory.

    >>> matches({"city": "astana", "pm25": 12}, {"city": "astana"}, "")
    True
    >>> matches({"city": "astana", "pm25": 12}, {}, "almaty")
    False
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from catalogue.errors import NotFound, ValidationFailed
from catalogue.exports import flatten
from catalogue.privacy import AGGREGATED
from catalogue.search import MAX_INT
from catalogue.service import Catalogue

JsonObject = dict[str, Any]
LIMIT_DEFAULT = 100
LIMIT_MAX = 32000
_TYPES = {"integer": "int", "number": "numeric", "boolean": "bool", "object": "json", "array": "json"}


def matches(row: JsonObject, filters: JsonObject, q: str | JsonObject) -> bool:
    flat = flatten(row)
    for key, wanted in filters.items():
        options = wanted if isinstance(wanted, list) else [wanted]
        if flat.get(key) not in [flatten({"v": o})["v"] for o in options]:
            return False
    if isinstance(q, dict):
        return all(str(v).lower() in flat.get(k, "").lower() for k, v in q.items())
    return not q or all(term in " ".join(flat.values()).lower() for term in q.lower().split())


def _field_type(spec: JsonObject) -> str:
    if spec.get("format") == "date-time" or "DateTime" in str(spec.get("$ref", "")):
        return "timestamp"
    return _TYPES.get(str(spec.get("type")), "text")


def _as_list(value: Any, key: str) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    raise ValidationFailed({key: ["Must be a list of field names or a comma-separated string"]})


def _number(data: JsonObject, key: str, default: int) -> int:
    try:
        value = int(data.get(key, default))
    except (TypeError, ValueError, OverflowError):
        raise ValidationFailed({key: ["Invalid integer"]}) from None
    if value < 0:
        raise ValidationFailed({key: ["Must be a natural number"]})
    if value > MAX_INT:
        raise ValidationFailed({key: [f"Must be at most {MAX_INT}"]})
    return value


def _filters(value: Any) -> JsonObject:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise ValidationFailed({"filters": ["Could not parse as valid JSON"]}) from None
    if not isinstance(value or {}, dict):
        raise ValidationFailed({"filters": ["Must be an object"]})
    return dict(value or {})


async def datastore_search(catalogue: Catalogue, data: JsonObject, action_url: str) -> JsonObject:
    """CKAN's ``datastore_search`` result for one resource of a live dataset."""
    resource_id = data.get("resource_id") or data.get("id")
    if not isinstance(resource_id, str):
        raise ValidationFailed({"resource_id": ["Missing value"]})
    dataset = await catalogue.store.dataset_of_resource(resource_id)
    if dataset is None or not dataset.get("live"):
        raise NotFound(f'Resource "{resource_id}" was not found.')
    live = catalogue.live_rows(dataset)
    limit = min(_number(data, "limit", LIMIT_DEFAULT), LIMIT_MAX)
    offset = _number(data, "offset", 0)
    filters = _filters(data.get("filters"))
    q = data.get("q") or ""
    if not isinstance(q, str | dict):
        raise ValidationFailed({"q": ["Must be a string or an object of field: text"]})
    columns = live.columns
    wanted = _as_list(data.get("fields"), "fields") or columns
    unknown = [f for f in [*wanted, *filters] if f not in columns]
    if unknown:
        raise ValidationFailed({"fields": [f'field "{unknown[0]}" not in table']})
    sort = str(data.get("sort") or "").strip()
    total = 0
    page: list[JsonObject] = []
    if sort:
        name, _, direction = sort.partition(" ")
        if name not in columns or direction.strip() not in ("", "asc", "desc"):
            raise ValidationFailed({"sort": [f'field "{name}" not in table']})
        everything = [row async for row in live.rows() if matches(row, filters, q)]
        everything.sort(key=lambda r: flatten(r).get(name, ""), reverse=direction.strip() == "desc")
        total, page = len(everything), everything[offset : offset + limit]
    else:
        async for row in live.rows():
            if matches(row, filters, q):
                if offset <= total < offset + limit:
                    page.append(row)
                total += 1
    properties = live.version.document.get("properties", {})
    fields = [
        {
            "id": name,
            "type": _field_type(properties.get(name, {}))
            if live.spec is None
            else ("int" if name == "count" else "text"),
        }
        for name in wanted
    ]
    records_format = data.get("records_format", "objects")
    records: Any = [{k: row.get(k) for k in wanted} for row in page]
    if records_format == "lists":
        records = [[row.get(k) for k in wanted] for row in page]
    base = {"resource_id": resource_id, "limit": limit}
    links = {
        "start": f"{action_url}?{urlencode(base)}",
        "next": f"{action_url}?{urlencode(base | {'offset': offset + limit})}",
    }
    result: JsonObject = {
        "resource_id": resource_id,
        "fields": fields,
        "records": records,
        "total": total,
        "total_was_estimated": False,
        "limit": limit,
        "offset": offset,
        "filters": filters,
        "records_format": records_format,
        "_links": links,
        "aggregated": live.version.type_name in AGGREGATED,
    }
    if offset + limit < total:
        result["next_page"] = links["next"]
    return result
