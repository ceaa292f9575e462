"""Entities the KPI tests feed the engine: the shapes city systems send, with times chosen by the test."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

KZ = timezone(timedelta(hours=5))
BASE = datetime(2026, 11, 2, tzinfo=KZ)  # a Monday


def at(minutes: int) -> datetime:
    return BASE + timedelta(minutes=minutes)


def payment(local: str, minutes: int, amount: str = "1500.00", status: str = "ACSC", city: str = "astana") -> Any:
    return {
        "id": f"urn:ngsi-ld:PaymentTransaction:{city}:{local}",
        "type": "PaymentTransaction",
        "city": city,
        "dateModified": at(minutes).isoformat(),
        "amount": amount,
        "currency": "KZT",
        "status": status,
        "serviceCategory": "public-transport",
        "dateBooked": at(minutes).isoformat(),
        **({"statusReason": "AM04"} if status == "RJCT" else {}),
    }


def case(local: str, minutes: int, *, closed_after: int | None, fcr: bool | None, city: str = "astana") -> Any:
    entity: dict[str, Any] = {
        "id": f"urn:ngsi-ld:ServiceRequest:{city}:{local}",
        "type": "ServiceRequest",
        "city": city,
        "dateModified": at(minutes + (closed_after or 0)).isoformat(),
        "serviceCode": "roads" if len(local) % 2 else "lighting",
        "status": "open" if closed_after is None else "closed",
        "channel": "phone",
        "dateRequested": at(minutes).isoformat(),
    }
    if closed_after is not None:
        entity["dateClosed"] = at(minutes + closed_after).isoformat()
    if fcr is not None:
        entity["firstContactResolved"] = fcr
    return entity


def air(local: str, station: str, minutes: int, pm25: float, city: str = "astana") -> Any:
    return {
        "id": f"urn:ngsi-ld:AirQualityObserved:{city}:{local}",
        "type": "AirQualityObserved",
        "city": city,
        "dateModified": at(minutes).isoformat(),
        "dateObserved": at(minutes).isoformat(),
        "location": {"type": "Point", "coordinates": [71.43, 51.13]},
        "refDevice": f"urn:ngsi-ld:Device:{city}:{station}",
        "pm25": pm25,
    }


def vehicle(local: str, route: str, minutes: int, city: str = "astana") -> Any:
    return {
        "id": f"urn:ngsi-ld:VehiclePosition:{city}:{local}",
        "type": "VehiclePosition",
        "city": city,
        "dateModified": at(minutes).isoformat(),
        "dateObserved": at(minutes).isoformat(),
        "vehicleId": local,
        "routeId": route,
        "location": {"type": "Point", "coordinates": [71.43, 51.13]},
    }
