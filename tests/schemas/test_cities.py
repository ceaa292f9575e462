"""The city registry: every tenant the hub accepts, with names, KATO codes and time zones that hold."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from schemas import CityRegistry, UnknownCity
from schemas.cities import CITIES_FILE

CITY_CODE = re.compile(r"[a-z][a-z0-9-]{1,31}")  # CityCode in schemas/models/_common/core.json


def test_every_code_is_a_valid_tenant_code_and_unique() -> None:
    cities = CityRegistry.load()
    assert len(set(cities.codes)) == len(cities) >= 16
    for code in cities.codes:
        assert CITY_CODE.fullmatch(code), code


def test_names_in_three_languages_and_kazakh_letters_where_they_belong() -> None:
    cities = CityRegistry.load()
    for city in cities:
        assert set(city.name) == {"kk", "ru", "en"}, city.code
        assert all(city.name.values()), city.code
    assert cities.name("karaganda", "kk") == "Қарағанды"
    assert cities.name("oskemen", "ru") == "Усть-Каменогорск"


def test_kato_codes_are_nine_digits_and_carry_their_region() -> None:
    cities = CityRegistry.load()
    for city in cities:
        if city.code == "kz":
            assert city.kato is None
            continue
        assert city.kato is not None, city.code
        assert re.fullmatch(r"[0-9]{9}", city.kato), city.code
    assert len({city.kato for city in cities}) == len(cities)
    # The cities of republican significance are regions of their own (71 Astana, 75 Almaty, 79 Shymkent).
    assert [cities.get(c).kato[:2] for c in ("astana", "almaty", "shymkent")] == ["71", "75", "79"]  # type: ignore[index]


def test_every_zone_is_utc_plus_5_since_march_2024() -> None:
    """Kazakhstan moved to one zone, UTC+5, on 2024-03-01: a tz database older than 2024a would say +6."""
    for city in CityRegistry.load():
        before = datetime(2024, 2, 28, 12, tzinfo=city.zone).utcoffset()
        after = datetime(2025, 6, 1, 12, tzinfo=city.zone).utcoffset()
        assert after == timedelta(hours=5), city.code
        assert before in (timedelta(hours=5), timedelta(hours=6)), city.code


def test_locations_lie_in_kazakhstan() -> None:
    for city in CityRegistry.load():
        if city.location is None:
            continue
        lon, lat = city.location
        assert 46.0 <= lon <= 88.0, city.code
        assert 40.0 <= lat <= 56.0, city.code


def test_unknown_code_is_refused_with_the_code_named() -> None:
    cities = CityRegistry.load()
    assert not cities.is_known("gotham")
    with pytest.raises(UnknownCity, match="'gotham'"):
        cities.get("gotham")
    assert cities.name("gotham", "en") == "gotham"


def test_public_json_form_round_trips(tmp_path: Path) -> None:
    document = json.loads(CITIES_FILE.read_text(encoding="utf-8"))
    copy = tmp_path / "cities.json"
    document["cities"] = document["cities"][:2]
    copy.write_text(json.dumps(document), encoding="utf-8")
    two = CityRegistry.load(copy)
    assert [c.as_json() for c in two] == document["cities"]
