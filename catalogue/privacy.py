"""What of an entity may be published: the public view, and aggregates with small-cell suppression.

Three rules, applied to every export (downloads, ``datastore_search``, previews):

1. fields the schema marks ``"x-personal": true`` never leave the hub (:func:`public_view`);
2. some fields are coarsened because they can point at a home (:data:`COARSENED`: a service request keeps the
   district of its address, and its location rounded to about 100 m);
3. a type whose records could identify people (:data:`AGGREGATED`: payments) is published only as counts per
   district x day x category, with cells below ``k = 10`` suppressed, plus secondary suppression: no line of the
   table (along any dimension) ever holds exactly one suppressed cell, so none can be recovered from a total.

    >>> table = aggregate_cells({("Есиль", "2025-01-01", "heat"): (12, 0), ("Есиль", "2025-01-01", "gas"): (3, 0),
    ...                          ("Есиль", "2025-01-01", "water"): (40, 0)})
    >>> sorted((key[2], cell.suppressed) for key, cell in table.items())
    [('all', False), ('gas', True), ('heat', True), ('water', False)]
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from schemas.registry import SchemaVersion

K_ANONYMITY = 10
ALL = "all"
LOCAL_TIME = ZoneInfo("Asia/Almaty")

JsonObject = dict[str, Any]
CellKey = tuple[str, ...]


def _coarsen_request(entity: JsonObject) -> JsonObject:
    out = dict(entity)
    address = out.get("address")
    if isinstance(address, dict):
        kept = {k: v for k, v in address.items() if k in ("district", "addressLocality", "addressRegion")}
        out["address"] = kept
    location = out.get("location")
    if isinstance(location, dict) and location.get("type") == "Point":
        lon, lat = location["coordinates"][:2]
        out["location"] = {"type": "Point", "coordinates": [round(lon, 3), round(lat, 3)]}
    return out


COARSENED: dict[str, Callable[[JsonObject], JsonObject]] = {"ServiceRequest": _coarsen_request}
"""Type -> a function that coarsens the fields that could point at a person's home."""


@dataclass(frozen=True)
class AggregateSpec:
    """How a type is published when its records could identify people."""

    dimensions: tuple[str, ...]
    """Entity fields grouped by; the pseudo-field ``day`` is the local date of the first of ``date_fields``."""
    date_fields: tuple[str, ...]
    amount_field: str | None = None

    @property
    def columns(self) -> list[str]:
        return [*self.dimensions, "count", "amount", "suppressed"]


AGGREGATED: dict[str, AggregateSpec] = {
    "PaymentTransaction": AggregateSpec(
        dimensions=("district", "day", "serviceCategory"),
        date_fields=("dateBooked", "dateInitiated", "dateModified"),
        amount_field="amount",
    ),
}
"""Type -> aggregate specification; these types never publish single records."""


def public_view(version: SchemaVersion, entity: JsonObject) -> JsonObject:
    """The entity without personal fields, coarsened where its type says so."""
    redacted = version.redact(entity)
    coarsen = COARSENED.get(version.type_name)
    return coarsen(redacted) if coarsen else redacted


def public_fields(version: SchemaVersion) -> list[str]:
    """The top-level fields a record export may carry, in schema order."""
    return [name for name in version.document.get("properties", {}) if name not in version.personal_fields]


@dataclass
class Cell:
    count: int
    amount: Decimal
    suppressed: bool = False


def _local_day(entity: JsonObject, fields: tuple[str, ...]) -> str:
    for name in fields:
        value = entity.get(name)
        if isinstance(value, str):
            try:
                moment = datetime.fromisoformat(value)
            except ValueError:
                continue
            if moment.tzinfo is not None:
                moment = moment.astimezone(LOCAL_TIME)
            return moment.date().isoformat()
    return "unknown"


def _amount(value: Any) -> Decimal:
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return Decimal(0)


def count_cells(spec: AggregateSpec, entities: Iterable[JsonObject]) -> dict[CellKey, tuple[int, Decimal]]:
    """Raw (count, amount) per cell, before any suppression."""
    raw: dict[CellKey, tuple[int, Decimal]] = {}
    for entity in entities:
        key = tuple(
            _local_day(entity, spec.date_fields) if dim == "day" else str(entity.get(dim) or "unknown")
            for dim in spec.dimensions
        )
        count, total = raw.get(key, (0, Decimal(0)))
        raw[key] = (count + 1, total + (_amount(entity.get(spec.amount_field)) if spec.amount_field else 0))
    return raw


def aggregate_cells(raw: dict[CellKey, tuple[int, Decimal | int]], k: int = K_ANONYMITY) -> dict[CellKey, Cell]:
    """Cells plus a total per line of the last dimension (key ending in ``"all"``), with suppression applied."""
    cells = {
        key: Cell(count, Decimal(amount), suppressed=count < k)
        for key, count_amount in raw.items()
        for count, amount in [count_amount]
    }
    margins: dict[CellKey, Cell] = {}
    for key, cell in cells.items():
        margin = margins.setdefault((*key[:-1], ALL), Cell(0, Decimal(0)))
        margin.count += cell.count
        margin.amount += cell.amount
    for margin in margins.values():
        margin.suppressed = margin.count < k
    width = len(next(iter(cells))) if cells else 0
    changed = True
    while changed:
        changed = False
        for axis in range(width):
            lines: dict[CellKey, list[Cell]] = defaultdict(list)
            for key, cell in cells.items():
                lines[key[:axis] + key[axis + 1 :]].append(cell)
            for line, members in lines.items():
                hidden = [c for c in members if c.suppressed]
                shown = [c for c in members if not c.suppressed]
                if len(hidden) != 1:
                    continue
                if shown:
                    min(shown, key=lambda c: c.count).suppressed = True
                    changed = True
                elif axis == width - 1 and not margins[(*line, ALL)].suppressed:
                    # the line's published total would equal the one hidden cell
                    margins[(*line, ALL)].suppressed = True
                    changed = True
    return {**cells, **margins}


def aggregate_rows(spec: AggregateSpec, entities: Iterable[JsonObject], k: int = K_ANONYMITY) -> list[JsonObject]:
    """The published table: one row per cell and per line total, suppressed values as ``None``."""
    return table_rows(spec, count_cells(spec, entities), k)


def table_rows(spec: AggregateSpec, raw: dict[CellKey, tuple[int, Decimal]], k: int = K_ANONYMITY) -> list[JsonObject]:
    """:func:`aggregate_rows` from raw cells (for one closed period, as :mod:`catalogue.frozen` publishes)."""
    table = aggregate_cells(raw, k)  # type: ignore[arg-type]
    rows = []
    for key in sorted(table, key=lambda key: (key[1:], key[0]) if len(key) > 1 else key):
        cell = table[key]
        row: JsonObject = dict(zip(spec.dimensions, key, strict=True))
        row["count"] = None if cell.suppressed else cell.count
        row["amount"] = None if cell.suppressed or not spec.amount_field else f"{cell.amount:.2f}"
        row["suppressed"] = cell.suppressed
        rows.append(row)
    return rows
