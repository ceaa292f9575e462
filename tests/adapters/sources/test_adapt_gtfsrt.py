from __future__ import annotations

from pathlib import Path

import pytest

from adapters.errors import SourceError

FEED = Path(__file__).parents[3] / "examples" / "legacy" / "almaty-vehicles.pb"


def test_vehicle_positions(convert) -> None:
    result = convert("gtfs-rt", FEED, city="almaty", route_type="3")
    s = result.summary
    assert (s.read, s.accepted, s.rejected) == (13, 11, 1 + 1)
    codes = sorted(q["reasons"][0]["code"] for q in result.quarantine)
    assert codes == ["not-a-vehicle-position", "schema-required"]  # the alert; the bus without a GPS fix
    bus = result.entities[0]
    assert bus["vehicleId"] == "ALA-3100"
    assert bus["routeId"] == "12"
    assert bus["routeType"] == 3
    assert bus["tripStartDate"] == "2024-02-29"
    assert bus["currentStatus"] == "IN_TRANSIT_TO"
    assert bus["dateObserved"] == "2024-02-29T23:50:00+06:00"  # 17:50 UTC, before the change
    later = next(e for e in result.entities if e["vehicleId"] == "ALA-3106")
    assert later["dateObserved"] == "2024-02-29T23:08:00+05:00"  # 18:08 UTC: the clocks went back an hour
    assert 76.8 < bus["location"]["coordinates"][0] < 77.1


def test_malformed_protobuf_is_one_clear_error(convert, tmp_path: Path) -> None:
    damaged = tmp_path / "damaged.pb"
    damaged.write_bytes(FEED.read_bytes()[:-7] + b"\xff\xff\xff")
    with pytest.raises(SourceError, match="malformed protobuf"):
        convert("gtfs-rt", damaged, city="almaty")
    text = tmp_path / "text.pb"
    text.write_bytes(b"<html>not a feed</html>")
    with pytest.raises(SourceError, match="not a GTFS-Realtime feed"):
        convert("gtfs-rt", text, city="almaty")


def test_a_timestamp_in_milliseconds_rejects_that_vehicle_only(convert, tmp_path: Path) -> None:
    """An on-board unit that sends milliseconds (a common firmware bug): its vehicle is quarantined."""
    from google.transit import gtfs_realtime_pb2  # noqa: PLC0415

    feed = gtfs_realtime_pb2.FeedMessage()
    feed.ParseFromString(FEED.read_bytes())
    feed.entity[1].vehicle.timestamp = feed.entity[1].vehicle.timestamp * 1000
    path = tmp_path / "ms.pb"
    path.write_bytes(feed.SerializeToString())
    result = convert("gtfs-rt", path, city="almaty", route_type="3")
    s = result.summary
    assert (s.read, s.accepted, s.rejected) == (13, 10, 3)
    bad = next(q for q in result.quarantine if q["position"]["record"] == 2)
    assert bad["reasons"][0]["field"] == "dateObserved"
    assert "out of range" in bad["reasons"][0]["message"]
