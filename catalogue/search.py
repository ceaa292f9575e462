"""``package_search``: CKAN's parameters parsed and checked, run as ranked full text plus facet counts.

Full text is SQLite FTS5 (``bm25`` rank) or PostgreSQL ``to_tsvector('simple', ...)`` (``ts_rank``), every term
matched as a prefix. ``fq`` (and ``field:value`` terms inside ``q``) filter on the facet fields.

    >>> [(f.field, f.value, f.negate) for f in parse_filters('organization:astana +tags:"air q" -res_format:CSV')]
    [('organization', 'astana', False), ('tags', 'air q', False), ('res_format', 'CSV', True)]
    >>> parse_params({"q": "air", "rows": "5", "facet.field": '["tags"]'}).facet_fields
    ['tags']
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Float, Integer, and_, func, literal_column, not_, select, text, true
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import ColumnElement, Select

from catalogue.errors import SearchQueryError, ValidationFailed
from catalogue.tables import PG_VECTOR, datasets, documents, facets

JsonObject = dict[str, Any]
FACET_FIELDS = ("organization", "city", "groups", "tags", "res_format", "license_id")
FILTER_FIELDS = (*FACET_FIELDS, "name", "id")
ROWS_MAX = 1000
SMALL_MATCH = 2000
"""Below this many matches facets are counted match by match, above it by one scan of the facet index."""
SORTS = {
    "score": "score",
    "metadata_modified": "metadata_modified",
    "metadata_created": "metadata_created",
    "name": "name",
    "title_string": "title",
    "title": "title",
}
_FILTER = re.compile(r'(?P<sign>[+-]?)(?P<field>[A-Za-z_]+):(?:"(?P<quoted>[^"]*)"|(?P<bare>[^\s"]+))')
_TERM = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True)
class Filter:
    field: str
    value: str
    negate: bool = False


@dataclass
class SearchParams:
    terms: list[str] = field(default_factory=list)
    filters: list[Filter] = field(default_factory=list)
    rows: int = 10
    start: int = 0
    sort: list[tuple[str, bool]] = field(default_factory=lambda: [("score", True), ("metadata_modified", True)])
    facet_fields: list[str] = field(default_factory=list)
    facet_limit: int = 50
    facet_mincount: int = 1
    sort_text: str = "score desc, metadata_modified desc"


def parse_filters(query: str) -> list[Filter]:
    """``field:value`` clauses (``AND`` between them is implied); a leading ``-`` negates."""
    out = []
    rest = _FILTER.sub(" ", query).replace(" AND ", " ").strip()
    if rest:
        raise SearchQueryError(f'Cannot parse fq: {query!r} (use field:value or field:"value")')
    for match in _FILTER.finditer(query):
        name = match["field"]
        if name not in FILTER_FIELDS:
            raise SearchQueryError(f"undefined field {name}")
        value = match["quoted"] if match["quoted"] is not None else match["bare"]
        out.append(Filter(name, value, negate=match["sign"] == "-"))
    return out


MAX_INT = 2**31 - 1
"""Largest integer a search parameter takes: an offset past it is a mistake, and past 2**63 SQL overflows."""


def _int(data: JsonObject, key: str, default: int, minimum: int = 0) -> int:
    value = data.get(key, default)
    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError):
        raise ValidationFailed({key: ["Invalid integer"]}) from None
    if number < minimum:
        raise ValidationFailed({key: [f"Must be a natural number >= {minimum}"]})
    if number > MAX_INT:
        raise ValidationFailed({key: [f"Must be at most {MAX_INT}"]})
    return number


def _text_param(data: JsonObject, key: str) -> str:
    value = data.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValidationFailed({key: ["Must be a string"]})
    return value


def _list_param(value: Any, key: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.lstrip().startswith("[") else [value]
        except json.JSONDecodeError:
            raise ValidationFailed({key: ["Could not parse as valid JSON"]}) from None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValidationFailed({key: ["Not a list of strings"]})
    return value


def _parse_sort(text_value: str) -> list[tuple[str, bool]]:
    out = []
    for clause in text_value.split(","):
        parts = clause.split()
        if not parts:
            continue
        if len(parts) > 2 or parts[0] not in SORTS or (len(parts) == 2 and parts[1] not in ("asc", "desc")):
            raise SearchQueryError(f"Can't determine a valid sort from {clause.strip()!r}")
        out.append((SORTS[parts[0]], len(parts) == 2 and parts[1] == "desc"))
    return out or [("score", True)]


def parse_params(data: JsonObject) -> SearchParams:
    """Check and convert ``package_search`` input; ``rows`` above 1000 is clamped as CKAN does."""
    q = _text_param(data, "q").strip()
    filters = []
    for fq in [_text_param(data, "fq"), *_list_param(data.get("fq_list"), "fq_list")]:
        if fq.strip():
            filters += parse_filters(fq)
    if q in ("*:*", "*"):
        q = ""
    q_filters = [m.group(0) for m in _FILTER.finditer(q)]
    if q_filters:
        filters += parse_filters(" ".join(q_filters))
        q = _FILTER.sub(" ", q)
    sort_text = str(data.get("sort") or "score desc, metadata_modified desc")
    return SearchParams(
        terms=[t.lower() for t in _TERM.findall(q) if t.upper() not in ("AND", "OR")][:20],
        filters=filters,
        rows=min(_int(data, "rows", 10), ROWS_MAX),
        start=_int(data, "start", 0),
        sort=_parse_sort(sort_text),
        facet_fields=_list_param(data.get("facet.field"), "facet.field"),
        facet_limit=_int(data, "facet.limit", 50, minimum=-1),
        facet_mincount=_int(data, "facet.mincount", 1),
        sort_text=sort_text,
    )


def _filter_clause(item: Filter) -> ColumnElement[bool]:
    if item.field == "name":
        clause: ColumnElement[bool] = datasets.c.name == item.value
    elif item.field == "id":
        clause = datasets.c.id == item.value
    else:
        clause = datasets.c.key.in_(
            select(facets.c.dataset_key).where(facets.c.field == item.field, facets.c.value == item.value)
        )
    return not_(clause) if item.negate else clause


def _matching(params: SearchParams, dialect: str) -> tuple[Select[Any], ColumnElement[Any]]:
    """The keys of matching datasets with their score (higher is better)."""
    conditions: list[ColumnElement[bool]] = [_filter_clause(f) for f in params.filters]
    score: ColumnElement[Any] = literal_column("0.0", Float)
    query = select(datasets.c.key)
    if params.terms and dialect == "sqlite":
        expression = " ".join('"' + t.replace('"', "") + '"*' for t in params.terms)
        fts = (
            text(
                "SELECT rowid AS key, bm25(catalogue_fts, 10.0, 1.0) AS rank FROM catalogue_fts "
                "WHERE catalogue_fts MATCH :m"
            )
            .bindparams(m=expression)
            .columns(key=Integer, rank=Float)
            .subquery("fts")
        )
        query = query.join(fts, fts.c.key == datasets.c.key)
        score = -fts.c.rank
    elif params.terms:
        tsquery = func.to_tsquery("simple", " & ".join(t.replace("'", "") + ":*" for t in params.terms))
        vector: ColumnElement[Any] = literal_column(PG_VECTOR)
        query = query.join(documents, documents.c.dataset_key == datasets.c.key)
        conditions.append(vector.op("@@")(tsquery))
        score = func.ts_rank(vector, tsquery)
    return query.where(and_(true(), *conditions)), score


async def search(connection: AsyncConnection, params: SearchParams) -> tuple[int, list[JsonObject], JsonObject]:
    """(count, package dicts of the page, facet counts ``{field: {value: count}}``).

    Three statements over narrow rows (count, the keys of one page, facet counts), then the page's documents.
    """
    keys, score = _matching(params, connection.dialect.name)
    everything = not params.terms and not params.filters
    count_query = select(func.count()).select_from(datasets if everything else keys.subquery())
    count = (await connection.execute(count_query)).scalar_one()
    order = []
    for name, descending in params.sort:
        if name == "score" and not params.terms:
            continue  # every score is equal without terms; PostgreSQL refuses to order by a constant
        column = score if name == "score" else datasets.c[name]
        order.append(column.desc() if descending else column.asc())
    page = keys.order_by(*order, datasets.c.name).limit(params.rows).offset(params.start)
    page_keys = [row.key for row in await connection.execute(page)] if params.rows else []
    docs = await _documents(connection, page_keys)
    counts: JsonObject = {name: {} for name in params.facet_fields}
    wanted = [f for f in params.facet_fields if f in FACET_FIELDS]
    if wanted:
        facet_query = select(facets.c.field, facets.c.value, func.count().label("n")).where(facets.c.field.in_(wanted))
        if not everything and count <= SMALL_MATCH:
            # few matches: walk them and look their facets up by key
            matched = keys.subquery("matched")
            facet_query = facet_query.select_from(matched).join(facets, facets.c.dataset_key == matched.c.key)
        elif not everything:
            # many matches: scan the facet index once, testing membership
            facet_query = facet_query.where(facets.c.dataset_key.in_(keys))
        facet_query = facet_query.group_by(facets.c.field, facets.c.value).having(func.count() >= params.facet_mincount)
        rows = sorted(await connection.execute(facet_query), key=lambda r: (-r.n, r.value))
        for row in rows:
            bucket = counts[row.field]
            if params.facet_limit < 0 or len(bucket) < params.facet_limit:
                bucket[row.value] = row.n
    return count, docs, counts


async def _documents(connection: AsyncConnection, keys: list[int]) -> list[JsonObject]:
    if not keys:
        return []
    rows = await connection.execute(
        select(documents.c.dataset_key, documents.c.doc).where(documents.c.dataset_key.in_(keys))
    )
    found = {row.dataset_key: row.doc for row in rows}
    return [found[key] for key in keys if key in found]
