from __future__ import annotations

import time
from pathlib import Path

import orjson
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


def _recorded(tmp_path: Path, *packs: object) -> Path:
    """Packs as a broker recorder writes them: one ``{topic, payload}`` JSON object per line."""
    path = tmp_path / "recorded.ndjson"
    lines = [orjson.dumps({"topic": f"qala/astana/meters/{n}", "payload": p}) for n, p in enumerate(packs)]
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def test_base_sum_is_added_to_every_sum(convert, tmp_path: Path) -> None:
    """RFC 8428 section 4.1: a gateway sends the register's base once (bs) and increments after it (s)."""
    pack = [
        {"bn": "WM-88001/", "bt": 1709222400, "bu": "m3", "bs": 400, "n": "8-0:1.0.0", "s": 12.734},
        {"n": "8-0:1.0.0", "t": 3600, "s": 13.001},
    ]
    result = convert("senml", _recorded(tmp_path, pack), city="astana")
    assert [e["value"] for e in result.entities] == [412.734, 413.001]


def test_a_time_in_milliseconds_rejects_its_record_and_the_run_goes_on(convert, tmp_path: Path) -> None:
    """A meter whose firmware sends milliseconds: that record is quarantined, the next pack is read."""
    wrong = [{"bn": "EM-1/", "bt": 1709222400000, "bu": "kWh", "n": "1-0:1.8.0", "v": 1520.5}]
    right = [{"bn": "EM-2/", "bt": 1709222400, "bu": "kWh", "n": "1-0:1.8.0", "v": 17.5}]
    result = convert("senml", _recorded(tmp_path, wrong, right), city="astana")
    s = result.summary
    assert (s.read, s.accepted, s.rejected) == (2, 1, 1)
    reason = result.quarantine[0]["reasons"][0]
    assert (reason["code"], reason["field"]) == ("invalid-value", "dateObserved")
    assert "milliseconds" in reason["message"]
    assert result.entities[0]["refDevice"].endswith("EM-2")
