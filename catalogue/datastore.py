"""``datastore_search`` over a live dataset: filters, q, fields, sort, limit/offset and paging links.

Rows come from :class:`~catalogue.live.LiveRows` (already the public view), so a query can never reach a
personal field. Without ``sort`` rows stream and only the requested page is kept in memory.

    >>> matches({"city": "astana", "pm25": 12}, {"city": "astana"}, "")
    True
    >>> matches({"city": "astana", "pm25": 12}, {}, "almaty")
    False
    >>> matches({"serviceName": "Snow removal"}, {}, "snow:*", plain=False), matches({"s": "Snowfall"}, {}, "snow")
    (True, True)
    >>> matches({"s": "Snowfall"}, {}, "snow", plain=False)
    False
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from catalogue.errors import NotFound, ValidationFailed
from catalogue.exports import flatten
from catalogue.live import LiveRows
from catalogue.privacy import AGGREGATED
from catalogue.search import MAX_INT
from catalogue.service import Catalogue
from catalogue.tabular import table_columns, top_level_types

JsonObject = dict[str, Any]
LIMIT_DEFAULT = 100
LIMIT_MAX = 32000
_TYPES = {
    "integer": "int",
    "number": "numeric",
    "boolean": "bool",
    "object": "json",
    "array": "json",
    "datetime": "timestamp",
    "date": "date",
    "string": "text",
}
RECORD_FORMATS = ("objects", "lists", "csv", "tsv")


_WORD = re.compile(r"\w+")


def _query_matches(text: str, q: str, plain: bool) -> bool:
    """Plain: every word of ``q`` occurs in the text. Not plain (PostgreSQL ``to_tsquery`` style, as CKAN passes
    it on): ``term:*`` matches words starting with ``term``, ``&`` or a blank joins terms that must all match,
    ``|`` offers alternatives, ``!term`` excludes."""
    text = text.lower()
    if plain:
        return all(term in text for term in q.lower().split())
    words = _WORD.findall(text)

    def one(term: str) -> bool:
        negate = term.startswith("!")
        term = term.lstrip("!").strip("()'\"")
        if not term:
            return True
        hit = any(w.startswith(term[:-2]) for w in words) if term.endswith(":*") else term in words
        return hit != negate

    return any(
        all(one(term) for term in re.split(r"[&\s]+", alternative.strip()) if term)
        for alternative in q.lower().split("|")
    )


def matches(row: JsonObject, filters: JsonObject, q: str | JsonObject, plain: bool = True) -> bool:
    flat = flatten(row)
    for key, wanted in filters.items():
        options = wanted if isinstance(wanted, list) else [wanted]
        if flat.get(key) not in [flatten({"v": o})["v"] for o in options]:
            return False
    if isinstance(q, dict):
        return all(_query_matches(flat.get(k, ""), str(v), plain) for k, v in q.items())
    return not q or _query_matches(" ".join(flat.values()), q, plain)


def fields_of(catalogue: Catalogue, live: LiveRows, wanted: list[str]) -> list[JsonObject]:
    """CKAN's field list: ``_id`` first, then each column with its DataStore type (``json`` for nested values)."""
    if live.spec is not None:
        kinds = {c.name: _TYPES[c.type] for c in table_columns(catalogue.registry, live.version)}
    else:
        kinds = {k: _TYPES.get(v, "text") for k, v in top_level_types(catalogue.registry, live.version).items()}
    return [{"id": "_id", "type": "int"}] + [{"id": name, "type": kinds.get(name, "text")} for name in wanted]


def _encode(records: list[list[Any]], delimiter: str) -> str:
    """CKAN's ``records_format=csv|tsv``: the rows as one string, no header, nested values as JSON text."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\n")
    for record in records:
        writer.writerow(
            [
                "" if v is None else (json.dumps(v, ensure_ascii=False) if isinstance(v, dict | list) else v)
                for v in record
            ]
        )
    return buffer.getvalue()


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


@dataclass(frozen=True)
class Query:
    filters: JsonObject
    q: str | JsonObject
    plain: bool


async def _scan(
    live: LiveRows, query: Query, sort: str, columns: list[str], *, offset: int, limit: int
) -> tuple[int, list[JsonObject]]:
    """The matching rows' total and the requested page, each row with its ``_id``."""
    filters, q, plain = query.filters, query.q, query.plain
    total = 0
    page: list[JsonObject] = []
    position = 0
    if sort:
        name, _, direction = sort.partition(" ")
        if name not in [*columns, "_id"] or direction.strip() not in ("", "asc", "desc"):
            raise ValidationFailed({"sort": [f'field "{name}" not in table']})
        everything = []
        async for row in live.rows():
            position += 1  # _id: the row's place in the table's stable order, as CKAN numbers its rows
            if matches(row, filters, q, plain):
                everything.append({"_id": position, **row})
        if name == "_id":
            everything.sort(key=lambda r: int(r["_id"]), reverse=direction.strip() == "desc")
        else:
            everything.sort(key=lambda r: flatten(r).get(name, ""), reverse=direction.strip() == "desc")
        total, page = len(everything), everything[offset : offset + limit]
    else:
        async for row in live.rows():
            position += 1
            if matches(row, filters, q, plain):
                if offset <= total < offset + limit:
                    page.append({"_id": position, **row})
                total += 1
    return total, page


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
    wanted = [f for f in _as_list(data.get("fields"), "fields") or columns if f != "_id"]  # _id always comes
    unknown = [f for f in [*wanted, *filters] if f not in columns]
    if unknown:
        raise ValidationFailed({"fields": [f'field "{unknown[0]}" not in table']})
    sort = str(data.get("sort") or "").strip()
    plain = data.get("plain", True) not in (False, "false", "False", "0", 0)
    records_format = data.get("records_format", "objects")
    if records_format not in RECORD_FORMATS:
        raise ValidationFailed({"records_format": [f"Must be one of: {', '.join(RECORD_FORMATS)}"]})
    total, page = await _scan(live, Query(filters, q, plain), sort, columns, offset=offset, limit=limit)
    fields = fields_of(catalogue, live, wanted)
    keys = ["_id", *wanted]
    records: Any = [{k: row.get(k) for k in keys} for row in page]
    if records_format == "lists":
        records = [[row.get(k) for k in keys] for row in page]
    elif records_format in ("csv", "tsv"):
        records = _encode([[row.get(k) for k in keys] for row in page], "," if records_format == "csv" else "\t")
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


async def datastore_info(catalogue: Catalogue, data: JsonObject) -> JsonObject:
    """CKAN's ``datastore_info``: the resource's row count and its fields with their types."""
    resource_id = data.get("id") or data.get("resource_id")
    if not isinstance(resource_id, str):
        raise ValidationFailed({"id": ["Missing value"]})
    dataset = await catalogue.store.dataset_of_resource(resource_id)
    if dataset is None or not dataset.get("live"):
        raise NotFound(f'Resource "{resource_id}" was not found.')
    live = catalogue.live_rows(dataset)
    count = 0
    async for _row in live.rows():
        count += 1
    fields = fields_of(catalogue, live, live.columns)
    return {
        "meta": {"id": resource_id, "count": count, "table_type": "BASE TABLE", "aliases": []},
        "fields": [{**f, "schema": {"native_type": f["type"], "is_index": f["id"] == "_id"}} for f in fields],
        "schema": {f["id"]: f["type"] for f in fields},  # the shape CKAN before 2.10 returned
    }
