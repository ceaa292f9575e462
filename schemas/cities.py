"""The registry of cities: the tenant codes the hub knows, with their names, KATO code and time zone.

Cities are data (``schemas/cities.json``), not code: every part that meets a city code (the gateway refusing an
unknown tenant, the catalogue naming a city, a KPI computing a local day) asks this registry.

    >>> cities = CityRegistry.load()
    >>> cities.get("almaty").name["kk"]
    'Алматы'
    >>> cities.is_known("gotham")
    False
    >>> cities.get("gotham")
    Traceback (most recent call last):
    ...
    schemas.errors.UnknownCity: unknown city code 'gotham'; known: astana, almaty, shymkent, ...
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from schemas.errors import UnknownCity

CITIES_FILE = Path(__file__).with_name("cities.json")


@dataclass(frozen=True, slots=True)
class City:
    """One tenant: ``code`` is what entities carry in ``city`` and ids carry after their type."""

    code: str
    name: dict[str, str]
    kato: str | None
    time_zone: str
    population_class: str
    location: tuple[float, float] | None

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    def as_json(self) -> dict[str, Any]:
        """The public JSON form (the shape of ``GET /api/v1/cities``)."""
        return {
            "code": self.code,
            "name": dict(self.name),
            "kato": self.kato,
            "timeZone": self.time_zone,
            "populationClass": self.population_class,
            "location": list(self.location) if self.location else None,
        }


class CityRegistry:
    """Every known city, in the file's order (republican cities first)."""

    def __init__(self, cities: list[City], version: str) -> None:
        self._cities = {city.code: city for city in cities}
        self.version = version

    @classmethod
    def load(cls, path: Path = CITIES_FILE) -> CityRegistry:
        """The registry from ``path``; the bundled file is read once per process."""
        if path == CITIES_FILE:
            return _bundled()
        return cls._read(path)

    @classmethod
    def _read(cls, path: Path) -> CityRegistry:
        document = json.loads(path.read_text(encoding="utf-8"))
        cities = [
            City(
                code=item["code"],
                name=item["name"],
                kato=item.get("kato"),
                time_zone=item["timeZone"],
                population_class=item["populationClass"],
                location=tuple(item["location"]) if item.get("location") else None,
            )
            for item in document["cities"]
        ]
        return cls(cities, document["version"])

    def __iter__(self) -> Iterator[City]:
        return iter(self._cities.values())

    def __len__(self) -> int:
        return len(self._cities)

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(self._cities)

    def is_known(self, code: str) -> bool:
        return code in self._cities

    def get(self, code: str) -> City:
        """The city for ``code``; raises :class:`UnknownCity` naming the known ones."""
        try:
            return self._cities[code]
        except KeyError:
            raise UnknownCity(code, self.codes) from None

    def name(self, code: str, locale: str) -> str:
        """The city's name in ``locale`` (kk, ru or en); an unknown code is returned as it is."""
        city = self._cities.get(code)
        if city is None:
            return code
        return city.name.get(locale) or city.name["en"]


@functools.cache
def _bundled() -> CityRegistry:
    return CityRegistry._read(CITIES_FILE)
