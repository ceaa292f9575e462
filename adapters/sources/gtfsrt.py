"""GTFS-Realtime feeds (protobuf): every VehiclePosition entity into a VehiclePosition entity.

The source is a ``.pb`` file or an ``http(s)`` URL of the feed. A feed is one protobuf message, so a damaged
file cannot be partly read: it ends the run with one line naming the file. Trip updates and alerts in the same
feed are counted and rejected as ``not-a-vehicle-position``.

Options: ``city`` (tenant code, required), ``route_type`` (GTFS route_type to record, e.g. 3 bus, 11 trolleybus).

    $ qala adapt run gtfs-rt examples/legacy/almaty-vehicles.pb -o city=almaty
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import httpx
from google.protobuf.message import DecodeError
from google.transit import gtfs_realtime_pb2

from adapters.conversions import epoch_datetime
from adapters.errors import ConversionError, MappingError, SourceError, SourceUnavailable
from adapters.mapping import Mapping
from adapters.records import Entity, Position, Reason, Record, Rejection
from adapters.sources.open311 import local_id


def _enum_name(message: Any, field: str) -> str:
    descriptor = message.DESCRIPTOR.fields_by_name[field].enum_type
    return str(descriptor.values_by_number[getattr(message, field)].name)


class GtfsRealtimeAdapter:
    """Reads a GTFS-RT FeedMessage; see :mod:`adapters.sources.gtfsrt`."""

    name: ClassVar[str] = "gtfs-rt"
    summary: ClassVar[str] = "GTFS-Realtime feed (protobuf file or URL): vehicle positions"
    needs_mapping: ClassVar[bool] = False

    def __init__(self, source: str, mapping: Mapping | None = None, options: dict[str, str] | None = None) -> None:
        self.options = dict(options or {})
        if not self.options.get("city"):
            raise MappingError("gtfs-rt needs -o city=<tenant code>")
        self.city = self.options["city"]
        self.source = source
        self._done = 0
        self._total: int | None = None

    def _read(self) -> bytes:
        if self.source.startswith(("http://", "https://")):
            try:
                response = httpx.get(self.source, timeout=30.0)
                response.raise_for_status()
            except httpx.HTTPError as exc:
                raise SourceUnavailable(f"cannot fetch the feed {self.source}: {exc}") from exc
            return response.content
        try:
            return Path(self.source).read_bytes()
        except OSError as exc:
            raise SourceError(f"cannot open {self.source}: {exc.strerror or exc}") from exc

    def records(self) -> Iterator[Record]:
        data = self._read()
        feed = gtfs_realtime_pb2.FeedMessage()
        try:
            feed.ParseFromString(data)
        except DecodeError as exc:
            raise SourceError(f"{self.source}: not a GTFS-Realtime feed (malformed protobuf: {exc})") from exc
        if not feed.HasField("header"):
            raise SourceError(f"{self.source}: not a GTFS-Realtime feed (no header)")
        self._total = len(feed.entity)
        header_time = feed.header.timestamp
        for number, entity in enumerate(feed.entity, start=1):
            self._done = number
            yield Record(Position(self.source, record=number), str(entity).strip(), (entity, header_time))

    def map(self, record: Record) -> Entity | Rejection:
        entity, header_time = record.values
        if not entity.HasField("vehicle"):
            kind = "trip update" if entity.HasField("trip_update") else "alert or other"
            return Rejection([Reason("not-a-vehicle-position", f"feed entity {entity.id!r} is a {kind}")])
        vp = entity.vehicle
        vehicle_id = vp.vehicle.id or entity.id
        seconds = vp.timestamp or header_time
        if not seconds:
            return Rejection(
                [Reason("missing-value", "no timestamp in the vehicle or the feed header", "dateObserved")]
            )
        try:
            observed = epoch_datetime(seconds, "Asia/Almaty")
        except ConversionError as exc:  # one vehicle's bad clock must not end the feed
            return Rejection([Reason("invalid-value", str(exc), "dateObserved")])
        out: Entity = {
            "id": f"urn:ngsi-ld:VehiclePosition:{self.city}:{local_id(vehicle_id)}.{seconds}",
            "type": "VehiclePosition",
            "city": self.city,
            "dateModified": observed,
            "source": "GTFS-Realtime",
            "vehicleId": vehicle_id,
            "dateObserved": observed,
        }
        if vp.vehicle.label:
            out["vehicleLabel"] = vp.vehicle.label
        if vp.vehicle.license_plate:
            out["licensePlate"] = vp.vehicle.license_plate
        if self.options.get("route_type"):
            out["routeType"] = int(self.options["route_type"])
        if vp.HasField("trip"):
            trip = vp.trip
            for field, target in (("trip_id", "tripId"), ("route_id", "routeId"), ("start_time", "tripStartTime")):
                if getattr(trip, field):
                    out[target] = getattr(trip, field)
            if trip.HasField("direction_id"):
                out["directionId"] = trip.direction_id
            if trip.start_date:
                out["tripStartDate"] = f"{trip.start_date[:4]}-{trip.start_date[4:6]}-{trip.start_date[6:8]}"
            if trip.HasField("schedule_relationship"):
                out["scheduleRelationship"] = _enum_name(trip, "schedule_relationship")
        if vp.HasField("position"):
            pos = vp.position
            out["location"] = {"type": "Point", "coordinates": [round(pos.longitude, 6), round(pos.latitude, 6)]}
            for field in ("bearing", "speed", "odometer"):
                if pos.HasField(field):
                    out[field] = round(getattr(pos, field), 3)
        if vp.HasField("current_stop_sequence"):
            out["currentStopSequence"] = vp.current_stop_sequence
        if vp.stop_id:
            out["stopId"] = vp.stop_id
        for field, target in (
            ("current_status", "currentStatus"),
            ("congestion_level", "congestionLevel"),
            ("occupancy_status", "occupancyStatus"),
        ):
            if vp.HasField(field):
                out[target] = _enum_name(vp, field)
        if vp.HasField("occupancy_percentage"):
            out["occupancyPercentage"] = vp.occupancy_percentage
        return out

    def progress(self) -> tuple[int, int | None]:
        return self._done, self._total
