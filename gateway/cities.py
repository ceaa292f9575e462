"""The one check of a city code against the city registry, for every part of the gateway that meets one.

>>> unknown_city_message("astana") is None
True
"""

from __future__ import annotations

from gateway.errors import ValidationFailed
from schemas.cities import CityRegistry


def check_known_city(code: object, pointer: str = "/city") -> None:
    """A 422 problem unless ``code`` is a city of the registry.

    >>> check_known_city("astana")
    >>> check_known_city("gotham")
    Traceback (most recent call last):
    ...
    gateway.errors.ValidationFailed: unknown city code 'gotham'; GET /api/v1/cities lists the known ones
    """
    message = unknown_city_message(code)
    if message is not None:
        raise ValidationFailed(message, errors=[{"pointer": pointer, "keyword": "x-city", "message": message}])


def unknown_city_message(code: object) -> str | None:
    """Why ``code`` is not a known city, or None when it is one."""
    if isinstance(code, str) and CityRegistry.load().is_known(code):
        return None
    return f"unknown city code {str(code)[:40]!r}; GET /api/v1/cities lists the known ones"
