"""``GET /api/v1/cities``: the public registry of cities (tenants) the hub knows, and the one check of a code.

Every city code the hub meets (an entity's ``city``, a ``?city=`` filter, a client's or member's cities) must be
in this registry (:mod:`gateway.cities` checks it); anything else is refused, so an unknown code can never become
a new tenant or an open-data dataset.

    curl http://127.0.0.1:8000/api/v1/cities
    curl http://127.0.0.1:8000/api/v1/cities/almaty
"""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from gateway.cities import check_known_city, unknown_city_message
from gateway.errors import NotFound
from schemas.cities import City, CityRegistry

router = APIRouter(prefix="/api/v1", tags=["cities"])


class CityNames(BaseModel):
    kk: str
    ru: str
    en: str


class CityOut(BaseModel):
    code: str = Field(description="The tenant code entities carry in `city` (and in their ids).")
    name: CityNames
    kato: str | None = Field(description="KATO, the national classifier of administrative-territorial objects.")
    timeZone: str = Field(description="IANA time zone of the city's local day.")  # noqa: N815 -- JSON name
    populationClass: str  # noqa: N815 -- JSON name
    location: list[float] | None = Field(description="[longitude, latitude] of the centre.")


class CityList(BaseModel):
    version: str = Field(description="Version of the city registry.")
    cities: list[CityOut]


def _out(city: City) -> CityOut:
    return CityOut.model_validate(city.as_json())


@router.get("/cities", summary="Every city the hub knows: code, names kk/ru/en, KATO, time zone, population class.")
async def list_cities() -> CityList:
    registry = CityRegistry.load()
    return CityList(version=registry.version, cities=[_out(city) for city in registry])


@router.get("/cities/{code}", summary="One city of the registry.", responses={404: {"description": "Unknown."}})
async def get_city(code: str) -> CityOut:
    registry = CityRegistry.load()
    if not registry.is_known(code):
        raise NotFound(f"unknown city code {code[:40]!r}; GET /api/v1/cities lists the known ones")
    return _out(registry.get(code))


__all__ = ["check_known_city", "get_city", "list_cities", "router", "unknown_city_message"]
