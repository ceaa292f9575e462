"""Lists: pagination, limit bounds, updatedSince, equality filters and bbox, checked against the seeded data.

Every list query is narrowed to the run's data with ``updatedSince`` (see :mod:`conformance.seeding`), so a module
full of real records is tested just as precisely as an empty one: each returned item, on every page, must match
the query, every page must respect ``limit``, and each seeded item that matches must be returned. The seeds lie in
two cities and three UTC offsets, so an ignored ``city`` or an ``updatedSince`` compared as text is caught.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from conformance.checks.common import expect_problem, page, seeded_scope, walk
from conformance.checks.registry import check
from conformance.context import JsonObject, RunContext
from conformance.outcomes import CheckSkipped, expect
from conformance.seeding import OFFSETS, format_instant, parse_instant
from openapi.mandate import DEFAULT_LIMIT
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


@check("QM-LIST-007", "page-shape", params=lambda profile: ["1", "2", "1000"])
def page_shape(ctx: RunContext, param: str) -> str:
    """Every page, the last one included, is ``{items, next}``; the last one says ``next: null``."""
    items, pages = walk(ctx, {**seeded_scope(ctx), "limit": param}, ctx.token(), f"a walk with limit={param}")
    return f"{pages} pages of {len(items)} items, each with items and next"


@check("QM-LIST-001", "pagination", params=lambda profile: ["1", "2", "3"])
def pagination(ctx: RunContext, param: str) -> str:
    items, pages = walk(ctx, {**seeded_scope(ctx), "limit": param}, ctx.token(), f"a walk with limit={param}")
    counts = Counter(_ids(items))
    repeated = sorted(entity_id for entity_id, count in counts.items() if count > 1)
    expect(not repeated, f"items returned on more than one page: {', '.join(repeated)}", expected="each item once")
    missing = sorted({entity["id"] for entity in ctx.seeded()} - set(counts))
    expect(not missing, f"seeded items never returned: {', '.join(missing)}", expected="every item once")
    return f"{len(items)} items over {pages} pages, each once"


@check("QM-LIST-002", "limit-respected", params=lambda profile: ["1", "3"])
def limit_respected(ctx: RunContext, param: str) -> str:
    limit = int(param)
    first, _ = page(
        ctx.get(ctx.collection_path, token=ctx.token(), params={**seeded_scope(ctx), "limit": param}),
        f"a list with limit={limit}",
    )
    expect(len(first) <= limit, f"limit={limit} returned {len(first)} items", expected=f"at most {limit}")
    expect(
        len(first) == min(limit, len(ctx.seeded())),
        f"limit={limit} returned {len(first)} items",
        expected=f"{min(limit, len(ctx.seeded()))} items (a full page)",
    )
    _, pages = walk(ctx, {**seeded_scope(ctx), "limit": param}, ctx.token(), f"a walk with limit={limit}")
    return f"{pages} pages of at most {limit} items"


@check("QM-LIST-002", "default-limit")
def default_limit(ctx: RunContext, param: str) -> str:
    """Without ``limit`` the list answers with the mandate's default page size (100) at most."""
    items, _ = page(ctx.get(ctx.collection_path, token=ctx.token(), params=seeded_scope(ctx)), "a list without limit")
    expect(len(items) <= DEFAULT_LIMIT, f"a list without limit returned {len(items)} items", expected="at most 100")
    expect(len(items) >= min(len(ctx.seeded()), DEFAULT_LIMIT), "a list without limit misses seeded entities")
    return f"{len(items)} items without limit"


@check("QM-LIST-003", "limit-bounds", params=lambda profile: ["0", "1001", "-5"])
def limit_bounds(ctx: RunContext, param: str) -> str:
    response = ctx.get(ctx.collection_path, token=ctx.token(), params={"limit": param})
    expect_problem(response, 400, f"a list with limit={param}")
    return f"400 for limit={param}"


def _threshold(ctx: RunContext) -> tuple[Any, set[str]]:
    seeded = ctx.seeded()
    instants = sorted({instant for e in seeded if (instant := parse_instant(e.get("dateModified")))})
    if len(instants) < 2:
        # the runner spreads the seeds over two ticks of the module's clock; if that failed, nothing splits them
        raise CheckSkipped("the seeded entities do not have distinct dateModified values to split on")
    threshold = instants[len(instants) // 2]
    wanted = {e["id"] for e in seeded if (i := parse_instant(e.get("dateModified"))) is not None and i >= threshold}
    return threshold, wanted


@check("QM-LIST-004", "updated-since", params=lambda profile: ["Z", "+05:00", "+06:00"])
def updated_since(ctx: RunContext, param: str) -> str:
    """The same instant, written in each offset, selects the same entities (compared as instants, not text)."""
    threshold, wanted = _threshold(ctx)
    offset = OFFSETS[["Z", "+05:00", "+06:00"].index(param)]
    since = format_instant(threshold, offset)

    def later(item: JsonObject) -> bool:
        modified = parse_instant(item.get("dateModified"))
        return modified is not None and modified >= threshold

    items, _ = walk(ctx, {"updatedSince": since, "limit": "2"}, ctx.token(), f"updatedSince={since}", matches=later)
    _exact(ctx, items, wanted, f"updatedSince={since}")
    return f"updatedSince={since} returned exactly the {len(wanted)} later entities"


@check("QM-LIST-005", "filter", params=filter_fields)
def equality_filter(ctx: RunContext, param: str) -> str:
    seeded = ctx.seeded()
    values = sorted({str(e[param]) for e in seeded if param in e and isinstance(e[param], str | int)})
    if not values:
        raise CheckSkipped(f"no seeded entity carries {param}")
    # the rarest value splits the data best; ties break on the value, so the query is the same every run
    counts = Counter(str(e.get(param)) for e in seeded)
    value = min(values, key=lambda v: (counts[v], v))
    wanted = {e["id"] for e in seeded if str(e.get(param)) == value and param in e}

    def equal(item: JsonObject) -> bool:
        return param in item and str(item.get(param)) == value

    items, _ = walk(
        ctx, {**seeded_scope(ctx), param: value, "limit": "1"}, ctx.token(), f"{param}={value}", matches=equal
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
    """The mandate's bbox rule: the bounding box of the entity's location intersects ``box`` (edges included)."""
    location = entity.get("location")
    positions = _positions(location.get("coordinates")) if isinstance(location, dict) else []
    if not positions:
        return False
    lons, lats = [p[0] for p in positions], [p[1] for p in positions]
    return bool(min(lons) <= box[2] and max(lons) >= box[0] and min(lats) <= box[3] and max(lats) >= box[1])


def _box(ctx: RunContext, param: str) -> tuple[float, float, float, float]:
    located = [e for e in ctx.seeded() if isinstance(e.get("location"), dict)]
    points = sorted(p for e in located for p in _positions(e["location"].get("coordinates"))[:1])
    if len(points) < 2:
        raise CheckSkipped("fewer than two seeded entities have a location")
    (lon0, lat0), (lon1, lat1) = points[0], points[len(points) // 2]
    if param == "east":
        # every latitude, but west only to halfway between the two westernmost points: the westernmost lies
        # outside by its longitude alone (a module that compares it with the wrong bound lets it in)
        lats = [lat for _, lat in points]
        west = (points[0][0] + points[1][0]) / 2
        return (west, min(lats) - 0.001, points[-1][0] + 0.001, max(lats) + 0.001)
    if param == "edges":
        # the box's edges run exactly through two seeded points: they lie inside ("intersects" includes edges)
        return (min(lon0, lon1), min(lat0, lat1), max(lon0, lon1), max(lat0, lat1))
    margin = 0.001
    return (min(lon0, lon1) - margin, min(lat0, lat1) - margin, max(lon0, lon1) + margin, max(lat0, lat1) + margin)


@check("QM-LIST-006", "bbox", params=lambda profile: ["inside", "east", "edges"])
def bbox(ctx: RunContext, param: str) -> str:
    box = _box(ctx, param)
    located = [e for e in ctx.seeded() if isinstance(e.get("location"), dict)]
    wanted = {e["id"] for e in located if _inside(e, box)}
    text = ",".join(repr(value) for value in box)
    items, _ = walk(
        ctx,
        {**seeded_scope(ctx), "bbox": text, "limit": "1"},
        ctx.token(),
        f"bbox={text}",
        matches=lambda item: _inside(item, box),
    )
    _exact(ctx, items, wanted, f"bbox={text}")
    return f"bbox returned exactly {len(wanted)} of {len(located)} located entities"
