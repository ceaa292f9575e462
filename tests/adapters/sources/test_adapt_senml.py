from __future__ import annotations

import time
from pathlib import Path

import pytest

from adapters.sources.senml import resolve_pack

PACKS = Path(__file__).parents[3] / "examples" / "legacy" / "senml-astana.ndjson"


def test_recorded_packs(convert) -> None:
    result = convert("senml", PACKS, city="astana")
    s = result.summary
    assert (s.read, s.accepted, s.rejected) == (22, 21, 1)
    assert result.quarantine[0]["raw"] == "status: online"
    first = result.entities[0]
    assert first["obisCode"] == "1-0:1.8.0"
    assert first["meterType"] == "electricity"
    assert first["value"] == 1520.5
    assert first["refDevice"] == "urn:ngsi-ld:Device:astana:EM-77100"
    assert first["dateObserved"] == "2024-02-29T22:00:00+06:00"
    interval = next(e for e in result.entities if e["readingType"] == "interval")
    assert interval["obisCode"] == "1-0:1.8.0*96"
    assert interval["dateObservedFrom"] < interval["dateObservedTo"]
    water = next(e for e in result.entities if e["meterType"] == "water")
    assert (water["value"], water["unit"]) == (412.734, "m3")
    assert any(e["dateObserved"].endswith("+05:00") for e in result.entities)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"23.5", "not a SenML pack"),
        (b'{"temp": 20}', "not a SenML pack"),
        (b'[{"n": "x"}]', "no numeric value"),
        (b'[{"n": "x", "v": "12"}]', "must be numbers"),
        (b"\xff\xfe", "not JSON"),
    ],
)
def test_not_senml(payload: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        resolve_pack(payload)


def test_relative_times_resolve_to_now() -> None:
    (item,) = resolve_pack(b'[{"n": "EM-1/1-0:1.8.0", "t": -60, "v": 1}]')
    assert abs(item["time"] - (time.time() - 60)) < 5
