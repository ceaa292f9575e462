"""Lists: pagination, limit bounds, updatedSince, equality filters and bbox, checked against the seeded data.

Every list query is narrowed to the run's data with ``city`` and ``updatedSince`` (see
:mod:`conformance.seeding`), so a module full of real records is tested just as precisely as an empty one:
each returned item must match the query, and each seeded item that matches must be returned.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from conformance.checks.common import expect_problem, page, seeded_scope, walk
from conformance.checks.registry import check
from conformance.context import JsonObject, RunContext
from conformance.outcomes import CheckOmitted, expect
from conformance.seeding import format_instant, parse_instant
from schemas import SchemaVersion


def filter_fields(profile: SchemaVersion) -> list[str]:
    return [name for name in profile.filterable_fields if name != "city"] + ["city"]


def _ids(items: list[JsonObject]) -> list[str]:
    return [str(item.get("id")) for item in items if isinstance(item, dict)]


def _exact(ctx: RunContext, items: list[JsonObject], wanted: set[str], what: str) -> None:
    returned = set(_ids(items))
    seeded = {entity["id"] for entity in ctx.seeded()}
    missing = sorted(wanted - returned)
    extra = sorted((returned & seeded) - wanted)
    expect(not missing, f"{what}: matching entities missing: {', '.join(missing)}", expected="every match")
    expect(not extra, f"{what}: non-matching entities returned: {', '.join(extra)}", expected="only matches")


@check("QM-LIST-007", "page-shape")
def page_shape(ctx: RunContext, param: str) -> str:
    items, _ = page(ctx.get(ctx.collection_path, token=ctx.token(), params={"limit": "2"}), "a list request")
    return f"a page of {len(items)} items with a next member"


@check("QM-LIST-001", "pagination")
def pagination(ctx: RunContext, param: str) -> str:
    items, pages = walk(ctx, {**seeded_scope(ctx), "limit": "2"}, ctx.token(), "a walk with limit=2")
    counts = Counter(_ids(items))
    repeated = sorted(entity_id for entity_id, count in counts.items() if count > 1)
    expect(not repeated, f"items returned on more than one page: {', '.join(repeated)}", expected="each item once")
    missing = sorted({entity["id"] for entity in ctx.seeded()} - set(counts))
    expect(not missing, f"seeded items never returned: {', '.join(missing)}", expected="every item once")
    return f"{len(items)} items over {pages} pages, each once"


@check("QM-LIST-002", "limit-respected")
def limit_respected(ctx: RunContext, param: str) -> str:
    for limit in (1, 3):
        items, _ = page(
            ctx.get(ctx.collection_path, token=ctx.token(), params={**seeded_scope(ctx), "limit": str(limit)}),
            f"a list with limit={limit}",
        )
        expect(len(items) <= limit, f"limit={limit} returned {len(items)} items", expected=f"at most {limit}")
        expect(
            len(items) == min(limit, len(ctx.seeded())),
            f"limit={limit} returned {len(items)} items",
            expected=f"{min(limit, len(ctx.seeded()))} items (a full page)",
        )
    return "pages hold at most limit items"


@check("QM-LIST-003", "limit-bounds", params=lambda profile: ["0", "1001", "-5"])
def limit_bounds(ctx: RunContext, param: str) -> str:
    response = ctx.get(ctx.collection_path, token=ctx.token(), params={"limit": param})
    expect_problem(response, 400, f"a list with limit={param}")
    return f"400 for limit={param}"


@check("QM-LIST-004", "updated-since")
def updated_since(ctx: RunContext, param: str) -> str:
    seeded = ctx.seeded()
    instants = sorted({instant for e in seeded if (instant := parse_instant(e.get("dateModified")))})
    if len(instants) < 2:
        raise CheckOmitted("the seeded entities do not have distinct dateModified values to split on")
    threshold = instants[len(instants) // 2]
    wanted = {e["id"] for e in seeded if (i := parse_instant(e.get("dateModified"))) is not None and i >= threshold}
    since = format_instant(threshold) if threshold.microsecond == 0 else threshold.isoformat()
    items, _ = walk(ctx, {"city": ctx.city, "updatedSince": since, "limit": "100"}, ctx.token(), "updatedSince")
    for item in items:
        modified = parse_instant(item.get("dateModified"))
        expect(
            modified is not None and modified >= threshold,
            f"updatedSince={since} returned {item.get('id')} modified {item.get('dateModified')}",
            expected=f"only entities with dateModified >= {since}",
        )
    _exact(ctx, items, wanted, f"updatedSince={since}")
    return f"updatedSince={since} returned exactly the {len(wanted)} later entities"


@check("QM-LIST-005", "filter", params=filter_fields)
def equality_filter(ctx: RunContext, param: str) -> str:
    seeded = ctx.seeded()
    values = sorted({str(e[param]) for e in seeded if param in e and isinstance(e[param], str | int)})
    if not values:
        raise CheckOmitted(f"no seeded entity carries {param}")
    # the rarest value splits the data best; ties break on the value, so the query is the same every run
    counts = Counter(str(e.get(param)) for e in seeded)
    value = min(values, key=lambda v: (counts[v], v))
    wanted = {e["id"] for e in seeded if str(e.get(param)) == value and param in e}
    scope = seeded_scope(ctx) if param != "city" else {"updatedSince": seeded_scope(ctx).get("updatedSince", "")}
    items, _ = walk(ctx, {**scope, param: value, "limit": "100"}, ctx.token(), f"{param}={value}")
    wrong = sorted(str(item.get("id")) for item in items if str(item.get(param)) != value)
    expect(
        not wrong,
        f"{param}={value} returned entities with another {param}: {', '.join(wrong)}",
        expected=f"only entities whose {param} is {value}",
    )
    _exact(ctx, items, wanted, f"{param}={value}")
    return f"{param}={value} returned exactly {len(wanted)} seeded entities"


def _positions(node: Any) -> list[tuple[float, float]]:
    if isinstance(node, list) and len(node) >= 2 and all(isinstance(v, int | float) for v in node[:2]):
        return [(float(node[0]), float(node[1]))]
    if isinstance(node, list):
        return [position for item in node for position in _positions(item)]
    return []


def _inside(entity: JsonObject, box: tuple[float, float, float, float]) -> bool:
    """The mandate's bbox rule: the bounding box of the entity's location intersects ``box``."""
    location = entity.get("location")
    positions = _positions(location.get("coordinates")) if isinstance(location, dict) else []
    if not positions:
        return False
    lons, lats = [p[0] for p in positions], [p[1] for p in positions]
    return bool(min(lons) <= box[2] and max(lons) >= box[0] and min(lats) <= box[3] and max(lats) >= box[1])


@check("QM-LIST-006", "bbox")
def bbox(ctx: RunContext, param: str) -> str:
    located = [e for e in ctx.seeded() if isinstance(e.get("location"), dict)]
    if len(located) < 2:
        raise CheckOmitted("fewer than two seeded entities have a location")
    points = sorted(_positions(e["location"].get("coordinates"))[0] for e in located)
    (lon0, lat0), (lon1, lat1) = points[0], points[len(points) // 2]
    box = (min(lon0, lon1) - 0.001, min(lat0, lat1) - 0.001, max(lon0, lon1) + 0.001, max(lat0, lat1) + 0.001)
    wanted = {e["id"] for e in located if _inside(e, box)}
    text = ",".join(f"{value:.6f}" for value in box)
    items, _ = walk(ctx, {**seeded_scope(ctx), "bbox": text, "limit": "100"}, ctx.token(), f"bbox={text}")
    outside = sorted(str(item.get("id")) for item in items if not _inside(item, box))
    expect(not outside, f"bbox={text} returned entities outside it: {', '.join(outside)}", expected="only inside")
    _exact(ctx, items, wanted, f"bbox={text}")
    return f"bbox returned exactly {len(wanted)} of {len(located)} located entities"
