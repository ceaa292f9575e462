"""An independent recomputation of the CityScore-KZ KPIs from a hub's public change feed.

It shares no code with :mod:`cityscore`: it reads ``GET /api/v1/changes`` over HTTP, keeps the latest state of
every entity, and computes each KPI of book 1.0.0 with plain Python (statistics, Decimal, sets), as a city
official with the book's definitions in hand would. Run as a script it prints the differences it finds:

    python tests/qala/recompute_kpis.py http://127.0.0.1:8000 CLIENT_ID CLIENT_SECRET
"""

from __future__ import annotations

import json
import math
import statistics
import sys
from collections import defaultdict
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx

CITIES = {
    c["code"]: ZoneInfo(c["timeZone"])
    for c in json.loads((Path(__file__).resolve().parents[2] / "schemas" / "cities.json").read_text(encoding="utf-8"))[
        "cities"
    ]
}
OBSERVED = [
    "ServiceRequest",
    "PaymentTransaction",
    "AirQualityObserved",
    "TrafficFlowObserved",
    "VehiclePosition",
    "MeterReading",
    "Incident",
]
PUBLISHED = [*OBSERVED, "Facility", "Organization", "Device", "ServiceType"]
MS = timedelta(milliseconds=1)


def read_feed(hub: str, client_id: str, secret: str) -> list[dict[str, Any]]:
    """Every change, latest per entity, in feed order."""
    with httpx.Client(base_url=hub, timeout=30) as http:
        token = http.post("/oauth/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret))
        http.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
        latest: dict[str, dict[str, Any]] = {}
        url: str | None = "/api/v1/changes?limit=1000"
        while url:
            page = http.get(url).json()
            for item in page["changes"]:
                latest[item["id"]] = item
            url = page["next"]
    return sorted(latest.values(), key=lambda item: item["seq"])


def _periods(moment: datetime, zone: ZoneInfo) -> list[tuple[str, date]]:
    day = moment.astimezone(zone).date()
    return [("day", day), ("week", day - timedelta(days=day.weekday())), ("month", day.replace(day=1))]


def _period_begin(start: date, zone: ZoneInfo) -> datetime:
    return datetime(start.year, start.month, start.day, tzinfo=zone)


def _when(entity: dict[str, Any], *names: str) -> datetime | None:
    for name in names:
        if entity.get(name):
            return datetime.fromisoformat(entity[name])
    return None


def recompute(changes: list[dict[str, Any]]) -> dict[tuple[Any, ...], dict[str, Any]]:
    """(kpiCode, city, period, periodStart, groupKey or None) -> {value, numerator, denominator}."""
    buckets: dict[tuple[Any, ...], list[Any]] = defaultdict(list)

    def add(code: str, city: str, moment: datetime, item: Any, group: str | None = None) -> None:
        for kind, start in _periods(moment, CITIES[city]):
            buckets[code, city, kind, start, None].append(item)
            if group is not None:
                buckets[code, city, kind, start, group].append(item)

    for change in changes:
        entity, kind, city = change["entity"], change["type"], change["city"]
        if entity is None or city not in CITIES:
            continue
        received = datetime.fromisoformat(change["receivedAt"])
        if kind in OBSERVED:
            observed = _when(entity, "dateObserved", "dateModified")
            if observed is not None:
                for code in ("data.latency-median", "data.latency-p95"):
                    add(code, city, observed, (received - observed) // MS, change["collection"])
        if kind in PUBLISHED:
            add("open-data.freshness", city, received, (change["collection"], math.floor(received.timestamp() // 3600)))
        if kind == "ServiceRequest":
            if "firstContactResolved" in entity:
                add(
                    "contact-centre.first-contact-resolution",
                    city,
                    _when(entity, "dateRequested"),
                    entity["firstContactResolved"] is True,
                )
            if entity.get("status") == "closed" and entity.get("dateClosed"):
                closed, opened = _when(entity, "dateClosed"), _when(entity, "dateRequested")
                add("service-requests.resolution-hours", city, closed, (closed - opened) // MS, entity["serviceCode"])
        if kind == "PaymentTransaction" and entity.get("status") == "ACSC":
            booked = _when(entity, "dateBooked", "dateModified")
            add("payments.count", city, booked, 1)
            add("payments.amount", city, booked, Decimal(entity["amount"]))
        if kind == "AirQualityObserved" and (entity.get("pm25") or 0) > 35 and entity.get("refDevice"):
            observed = _when(entity, "dateObserved")
            add("air.pm25-exceedance-hours", city, observed, (entity["refDevice"], int(observed.timestamp()) // 3600))
        if kind == "VehiclePosition" and entity.get("routeId"):
            observed = _when(entity, "dateObserved")
            add("transport.route-hours", city, observed, (entity["routeId"], int(observed.timestamp()) // 3600))

    out: dict[tuple[Any, ...], dict[str, Any]] = {}
    for key, items in buckets.items():
        code, city, _, start, _ = key
        n = len(items)
        figure: dict[str, Any]
        if code == "data.latency-median":
            figure = {"value": round(statistics.median(items) / 1000, 6)}
        elif code == "data.latency-p95":
            figure = {"value": round(sorted(items)[math.ceil(n * 95 / 100) - 1] / 1000, 6)}
        elif code == "service-requests.resolution-hours":
            figure = {"value": round(statistics.median(items) / 3_600_000, 6)}
        elif code == "contact-centre.first-contact-resolution":
            hits = sum(1 for item in items if item)
            figure = {"value": round(hits / n, 6), "numerator": hits, "denominator": n}
        elif code == "payments.count":
            figure = {"value": n}
        elif code == "payments.amount":
            figure = {"value": round(float(sum(items, Decimal(0))), 6)}
        elif code in ("air.pm25-exceedance-hours", "transport.route-hours"):
            figure = {"value": len(set(items))}
        else:  # open-data.freshness
            keys = set(items)
            first_hour = int(_period_begin(start, CITIES[city]).timestamp()) // 3600
            hours = max(hour for _, hour in keys) - first_hour + 1
            denominator = len({feed for feed, _ in keys}) * hours
            figure = {"value": round(len(keys) / denominator, 6), "numerator": len(keys), "denominator": denominator}
        out[key] = figure
    return out


def published(changes: list[dict[str, Any]]) -> dict[tuple[Any, ...], dict[str, Any]]:
    """The KPIValues the hub's engine published, keyed as :func:`recompute` keys its figures."""
    out = {}
    for change in changes:
        entity = change["entity"]
        if change["type"] != "KPIValue" or entity is None or entity["kpiCode"] == "cityscore":
            continue
        if not str(entity.get("source", "")).startswith("Qala KPI book"):
            continue
        key = (
            entity["kpiCode"],
            entity["city"],
            entity["period"],
            date.fromisoformat(entity["periodStart"]),
            entity.get("groupKey"),
        )
        out[key] = {name: entity[name] for name in ("value", "numerator", "denominator") if name in entity}
    return out


def differences(changes: list[dict[str, Any]]) -> list[str]:
    expected, actual = recompute(changes), published(changes)
    lines = [f"missing {key}: expected {expected[key]}" for key in sorted(set(expected) - set(actual), key=str)]
    for key in sorted(set(expected) & set(actual), key=str):
        if expected[key] != actual[key]:
            lines.append(f"differs {key}: recomputed {expected[key]}, published {actual[key]}")
    lines += [
        f"unexpected {key}: {actual[key]}"
        for key in sorted(set(actual) - set(expected), key=str)
        if actual[key].get("value") not in (None, 0)
    ]
    return lines


if __name__ == "__main__":
    found = differences(read_feed(*sys.argv[1:4]))
    print("\n".join(found) or "every published KPI equals the recomputation")
    sys.exit(1 if found else 0)
