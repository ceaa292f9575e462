"""The simulated cities behind ``qala simulate``: what each city system would send, step by step.

Everything here is deterministic: a :class:`CitySim` made with the same seed, character and start time yields
the same entities for the same step, whatever the wall clock says. The runner (:mod:`qala.simulate`) only
decides when to send them.

    >>> sim = CitySim(CHARACTERS["almaty"], seed=7, start=1_800_000_000.0)
    >>> first = sim.step(0)
    >>> first == CitySim(CHARACTERS["almaty"], seed=7, start=1_800_000_000.0).step(0)
    True

Each city has a character: Astana's systems are fast and its contact centre resolves most calls at once;
Almaty's air is the worst in winter and its stations send in batches of five minutes; Shymkent's systems are
slower, a station now and then uploads yesterday's readings late (which revises a closed day), and its cases
are reopened more often.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

JsonObject = dict[str, Any]
STEP_SECONDS = 1.0
MONTH_SECONDS = 30 * 86_400
CASE_BOOST = 20
"""The simulated 109 centres are this many times busier than life, so a few minutes give enough cases to measure."""
ZONE = ZoneInfo("Asia/Almaty")
SERVICE_CODES = ("roads", "lighting", "waste", "heating", "water", "transport", "parks")
CHANNELS_109 = ("phone", "phone", "phone", "web", "app", "telegram", "chatbot")
PAY_CATEGORIES = (
    ("electricity", 9000),
    ("water", 4000),
    ("heat", 12000),
    ("public-transport", 120),
    ("parking", 300),
    ("traffic-fine", 15000),
    ("waste-collection", 1200),
)
PAY_CHANNELS = ("mobile-app", "mobile-app", "mobile-app", "web", "payment-terminal", "transit-validator", "egov")


@dataclass(frozen=True)
class Character:
    code: str
    centre: tuple[float, float]
    districts: tuple[str, ...]
    payments_per_month: int
    cases_per_day: int
    first_contact: float
    reopen: float
    stations: int
    pm25_base: float
    air_delay: tuple[float, float]
    air_batch: int
    late_share: float
    payment_delay: tuple[float, float]
    case_delay: tuple[float, float]
    routes: int
    meters: int


CHARACTERS: dict[str, Character] = {
    "astana": Character(
        "astana",
        (71.4304, 51.1282),
        ("Алматы", "Байқоңыр", "Есіл", "Сарыарқа", "Нұра"),
        payments_per_month=1_000_000,
        cases_per_day=2_400,
        first_contact=0.88,
        reopen=0.02,
        stations=8,
        pm25_base=18.0,
        air_delay=(1.0, 6.0),
        air_batch=1,
        late_share=0.0,
        payment_delay=(0.5, 3.0),
        case_delay=(1.0, 5.0),
        routes=60,
        meters=20,
    ),
    "almaty": Character(
        "almaty",
        (76.9286, 43.2567),
        ("Алмалинский", "Ауэзовский", "Бостандыкский", "Медеуский", "Турксибский"),
        payments_per_month=1_100_000,
        cases_per_day=3_000,
        first_contact=0.82,
        reopen=0.03,
        stations=12,
        pm25_base=42.0,
        air_delay=(2.0, 10.0),
        air_batch=5,
        late_share=0.0,
        payment_delay=(1.0, 5.0),
        case_delay=(2.0, 20.0),
        routes=80,
        meters=20,
    ),
    "shymkent": Character(
        "shymkent",
        (69.5901, 42.3417),
        ("Абай", "Әл-Фараби", "Еңбекші", "Қаратау", "Тұран"),
        payments_per_month=600_000,
        cases_per_day=1_200,
        first_contact=0.74,
        reopen=0.06,
        stations=6,
        pm25_base=28.0,
        air_delay=(20.0, 120.0),
        air_batch=1,
        late_share=0.02,
        payment_delay=(5.0, 40.0),
        case_delay=(30.0, 180.0),
        routes=30,
        meters=20,
    ),
}


@dataclass
class Step:
    """What the city's systems send in one step of the simulation."""

    cases: list[JsonObject] = field(default_factory=list)
    payments: list[JsonObject] = field(default_factory=list)
    air: list[JsonObject] = field(default_factory=list)
    vehicles: list[tuple[str, str, float, float, float, int]] = field(default_factory=list)
    """(vehicle id, route id, lon, lat, bearing, POSIX seconds observed): one GTFS-Realtime feed."""
    meters: list[tuple[str, list[JsonObject]]] = field(default_factory=list)
    """(MQTT topic, SenML pack)."""

    def __len__(self) -> int:
        return len(self.cases) + len(self.payments) + len(self.air) + len(self.vehicles) + len(self.meters)


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(round(seconds), UTC).astimezone(ZONE).isoformat()


@dataclass
class _Case:
    entity: JsonObject
    opened: float
    resolve_at: float
    assigned: bool = False


class CitySim:
    """One city's systems; ``rate`` multiplies how much happens per second (1 = the methodology's scale)."""

    def __init__(self, character: Character, *, seed: int, start: float, rate: float = 1.0) -> None:
        self.c = character
        self.start = start
        self.seed = seed
        self.rate = rate
        self.rng = random.Random(f"{seed}:{character.code}")  # noqa: S311 -- a simulation, not a secret
        self.open_cases: dict[str, _Case] = {}
        self.closed: list[JsonObject] = []
        self._buffer: list[JsonObject] = []
        self._serial = 0
        self.backlog = self._backlog()

    # -- helpers ----------------------------------------------------------------------------------

    def _poisson(self, mean: float) -> int:
        if mean > 30:  # normal approximation, deterministic as well
            return max(0, round(self.rng.gauss(mean, math.sqrt(mean))))
        limit, k, p = math.exp(-mean), 0, 1.0
        while True:
            p *= self.rng.random()
            if p <= limit:
                return k
            k += 1

    def _next(self, prefix: str) -> str:
        """An id unique to this run (seed and start), so two simulations never overwrite each other's cases."""
        self._serial += 1
        return f"{prefix}{self.seed}-{int(self.start):x}-{self._serial:07d}"

    def _point(self, spread: float = 0.08) -> JsonObject:
        lon, lat = self.c.centre
        return {
            "type": "Point",
            "coordinates": [
                round(lon + self.rng.uniform(-spread, spread), 6),
                round(lat + self.rng.uniform(-spread, spread), 6),
            ],
        }

    # -- 109 cases --------------------------------------------------------------------------------

    def _case(self, opened: float, modified: float) -> _Case:
        local = self._next("sr")
        fcr = self.rng.random() < self.c.first_contact
        entity: JsonObject = {
            "id": f"urn:ngsi-ld:ServiceRequest:{self.c.code}:{local}",
            "type": "ServiceRequest",
            "city": self.c.code,
            "dateModified": _iso(modified),
            "source": f"109 {self.c.code}",
            "serviceRequestId": local,
            "serviceCode": self.rng.choice(SERVICE_CODES),
            "status": "open",
            "statusDetail": "received",
            "channel": self.rng.choice(CHANNELS_109),
            "location": self._point(),
            "agencyResponsible": f"{self.c.code} akimat",
            "dateRequested": _iso(opened),
            "firstContactResolved": fcr,
        }
        hours = 0.05 if fcr else self.rng.lognormvariate(math.log(20 if self.c.code != "shymkent" else 40), 0.8)
        return _Case(entity, opened, opened + hours * 3600)

    def _close(self, case: _Case, when: float) -> JsonObject:
        entity = dict(case.entity)
        entity.update(status="closed", statusDetail="resolved", dateClosed=_iso(when), dateModified=_iso(when))
        return entity

    def _backlog(self) -> list[JsonObject]:
        """Cases opened over the last two days, as the contact centre's system holds them when the run starts."""
        out = []
        for _ in range(int(self.c.cases_per_day * 2 * min(self.rate, 1.0) / CASE_BOOST)):
            opened = self.start - self.rng.uniform(600, 2 * 86_400)
            case = self._case(opened, self.start)
            if case.resolve_at < self.start:
                out.append(self._close(case, case.resolve_at) | {"dateModified": _iso(self.start)})
            else:
                case.entity["statusDetail"] = "in_progress"
                case.entity["dateModified"] = _iso(self.start)
                self.open_cases[case.entity["id"]] = case
                out.append(dict(case.entity))
        return out

    # -- one step ---------------------------------------------------------------------------------

    def step(self, index: int) -> Step:
        now = self.start + index * STEP_SECONDS
        out = Step()
        self._cases(now, out)
        self._payments(now, out)
        self._air(index, now, out)
        if index % max(1, round(15 / self.rate)) == 0:  # a GTFS-Realtime feed every 15 s (at rate 1)
            self._vehicles(now, out)
        if self.meters_due(index):
            self._meters(now, out)
        return out

    def meters_due(self, index: int) -> bool:
        """Whether the meters report in step ``index`` (once a minute at rate 1, half a period in)."""
        every = max(1, round(60 / self.rate))
        return index % every == every // 2

    def _cases(self, now: float, out: Step) -> None:
        for _ in range(self._poisson(self.c.cases_per_day / 86_400 * self.rate * CASE_BOOST)):
            delay = self.rng.uniform(*self.c.case_delay)
            case = self._case(now - delay, now - delay)
            self.open_cases[case.entity["id"]] = case
            out.cases.append(dict(case.entity))
        for key in sorted(self.open_cases):
            case = self.open_cases[key]
            if now >= case.resolve_at:
                del self.open_cases[key]
                closed = self._close(case, now - self.rng.uniform(*self.c.case_delay))
                out.cases.append(closed)
                if self.rng.random() < self.c.reopen:
                    self.closed.append(closed)
            elif not case.assigned and now - case.opened > 120 and self.rng.random() < 0.05:
                case.assigned = True
                case.entity = case.entity | {"statusDetail": "assigned", "dateModified": _iso(now)}
                out.cases.append(dict(case.entity))
        if self.closed and self.rng.random() < 0.01:  # a citizen calls back: reopened, to be resolved again
            entity = self.closed.pop(0)
            reopened = {k: v for k, v in entity.items() if k != "dateClosed"}
            reopened.update(status="open", statusDetail="in_progress", dateModified=_iso(now))
            self.open_cases[entity["id"]] = _Case(reopened, now, now + self.rng.uniform(300, 3600), True)
            out.cases.append(reopened)

    def _payments(self, now: float, out: Step) -> None:
        mean = self.c.payments_per_month / MONTH_SECONDS * self.rate * STEP_SECONDS
        for _ in range(self._poisson(mean)):
            local = self._next("pay")
            category, typical = self.rng.choice(PAY_CATEGORIES)
            amount = Decimal(round(self.rng.lognormvariate(math.log(typical), 0.5) * 100)) / 100
            booked = now - self.rng.uniform(*self.c.payment_delay)
            rejected = self.rng.random() < 0.03
            entity: JsonObject = {
                "id": f"urn:ngsi-ld:PaymentTransaction:{self.c.code}:{local}",
                "type": "PaymentTransaction",
                "city": self.c.code,
                "dateModified": _iso(booked),
                "source": f"settlement hub {self.c.code}",
                "transactionId": local,
                "amount": f"{amount:.2f}",
                "currency": "KZT",
                "creditDebitIndicator": "CRDT",
                "status": "RJCT" if rejected else "ACSC",
                "serviceCategory": category,
                "channel": self.rng.choice(PAY_CHANNELS),
                "payerType": "individual",
                "district": self.rng.choice(self.c.districts),
                "dateBooked": _iso(booked),
            }
            if rejected:
                entity["statusReason"] = "AM04"
            out.payments.append(entity)

    def _reading(self, station: int, observed: float) -> JsonObject:
        hour = datetime.fromtimestamp(observed, ZONE).hour
        rush = 1.5 if hour in (7, 8, 9, 18, 19, 20, 21) else 1.0
        pm25 = round(max(1.0, self.rng.gauss(self.c.pm25_base * rush, self.c.pm25_base * 0.35)), 1)
        lon, lat = self.c.centre
        return {
            "id": f"urn:ngsi-ld:AirQualityObserved:{self.c.code}:aq{station:02d}.{self.seed}.{round(observed)}",
            "type": "AirQualityObserved",
            "city": self.c.code,
            "dateModified": _iso(observed),
            "source": f"air monitoring {self.c.code}",
            "name": f"{self.c.code} station {station}",
            "dateObserved": _iso(observed),
            "location": {"type": "Point", "coordinates": [round(lon + 0.01 * station, 6), round(lat, 6)]},
            "refDevice": f"urn:ngsi-ld:Device:{self.c.code}:aq{station:02d}",
            "pm25": pm25,
            "pm10": round(pm25 * 1.6, 1),
            "temperature": round(self.rng.gauss(-8.0, 3.0), 1),
        }

    def _air(self, index: int, now: float, out: Step) -> None:
        every = max(1, round(60 / self.rate))  # every station once a minute (at rate 1)
        for station in range(self.c.stations):
            if (index + station * 7) % every:
                continue
            self._buffer.append(self._reading(station, now - self.rng.uniform(*self.c.air_delay)))
            if self.rng.random() < self.c.late_share:  # a station back online uploads yesterday's reading
                self._buffer.append(self._reading(station, now - 86_400 - self.rng.uniform(0, 3600)))
        if len(self._buffer) >= self.c.air_batch * self.c.stations or (self.c.air_batch == 1 and self._buffer):
            out.air.extend(self._buffer)
            self._buffer = []

    def _vehicles(self, now: float, out: Step) -> None:
        lon, lat = self.c.centre
        for route in range(1, self.c.routes + 1):
            for n in range(2):
                angle = (now / 600 + route * 0.37 + n * math.pi) % (2 * math.pi)
                radius = 0.02 + 0.0008 * route
                out.vehicles.append(
                    (
                        f"{self.c.code}-{route:03d}-{n}",
                        str(route),
                        lon + radius * math.cos(angle),
                        lat + radius * math.sin(angle) * 0.7,
                        math.degrees(angle) % 360,
                        int(now - self.rng.uniform(1, 8)),
                    )
                )

    def _meters(self, now: float, out: Step) -> None:
        for meter in range(self.c.meters):
            device = f"EM-{self.c.code[:3].upper()}{meter:04d}"
            observed = int(now - self.rng.uniform(0, 5))
            reading = round((now - self.start) / 3600 * 1.7 + 1000 + meter * 13.1, 3)
            out.meters.append(
                (
                    f"qala/sim/{self.c.code}/meters/{device}",
                    [
                        {"bn": f"{device}/", "bt": observed, "bu": "kWh", "n": "1-0:1.8.0", "v": reading},
                    ],
                )
            )
