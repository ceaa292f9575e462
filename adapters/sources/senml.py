"""SenML (RFC 8428) packs from smart meters into MeterReading entities with OBIS codes.

A record's name (``bn`` + ``n``) is ``<device>/<OBIS code>``, e.g. ``EM-000123/1-0:1.8.0``; the OBIS medium
(group A) gives the meter type. A value with ``ut`` (the interval it covers) is an interval reading; other
values, and sums (``s``), are register totals. Values are ``bv`` + ``v`` and sums ``bs`` + ``s`` (RFC 8428
section 4.1: the base sum is added to every sum that follows it); times are ``bt`` + ``t`` seconds, and times
below 2**28 are relative to now, as RFC 8428 says. A time that is no POSIX time in seconds (milliseconds, say)
rejects its own record only.

This module reads packs from an NDJSON file (``{"topic", "payload"}`` per line, as recorded from a broker);
:mod:`adapters.sources.mqtt` reads the same packs live from MQTT.

Options: ``city`` (tenant code, required).

    $ qala adapt run senml examples/legacy/senml-astana.ndjson -o city=astana
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

import orjson

from adapters.conversions import epoch_datetime
from adapters.errors import ConversionError, MappingError, SourceError
from adapters.mapping import Mapping
from adapters.records import Entity, Position, Reason, Record, Rejection
from adapters.sources.open311 import local_id

OBIS = re.compile(r"^(\d{1,3})-(\d{1,3}):(\d{1,3})\.(\d{1,3})\.(\d{1,3})(\*\d{1,3})?$")
MEDIUM = {"1": "electricity", "4": "heat", "5": "heat", "6": "heat", "7": "gas", "8": "water", "9": "water"}
RELATIVE_LIMIT = 2**28


def resolve_pack(payload: bytes) -> list[dict[str, Any]]:
    """The records of a SenML JSON pack with base fields applied (``name``, ``time``, ``unit``, value).

    >>> resolve_pack(b'[{"bn": "EM-1/", "bt": 1709251200, "bu": "kWh", "n": "1-0:1.8.0", "v": 12.5}]')
    [{'name': 'EM-1/1-0:1.8.0', 'time': 1709251200.0, 'unit': 'kWh', 'value': 12.5, 'sum': None, 'interval': None}]
    >>> resolve_pack(b'[{"bn": "EM-1/", "bt": 1709251200, "bs": 1000, "n": "1-0:1.8.0", "s": 20.5}]')[0]["sum"]
    1020.5
    """
    try:
        pack = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc}") from None
    if not isinstance(pack, list) or not pack or not all(isinstance(r, dict) for r in pack):
        raise ValueError("not a SenML pack: a JSON array of records is expected")
    base_name, base_time, base_unit, base_value, base_sum = "", 0.0, None, 0.0, 0.0
    out = []
    for record in pack:
        base_name = str(record.get("bn", base_name))
        base_time = float(record.get("bt", base_time))
        base_unit = record.get("bu", base_unit)
        base_value = float(record.get("bv", base_value))
        base_sum = float(record.get("bs", base_sum))
        if "n" not in record and "bn" not in record:
            raise ValueError("a SenML record without a name (n or bn)")
        value = record.get("v")
        total = record.get("s")
        if value is None and total is None:
            raise ValueError(f"SenML record {record.get('n', '')!r} has no numeric value (v or s)")
        if not all(isinstance(x, int | float) for x in (value, total) if x is not None):
            raise ValueError(f"SenML record {record.get('n', '')!r}: v and s must be numbers")
        when = base_time + float(record.get("t", 0))
        if when < RELATIVE_LIMIT:
            when += time.time()
        out.append(
            {
                "name": base_name + str(record.get("n", "")),
                "time": when,
                "unit": record.get("u", base_unit),
                "value": None if value is None else _add(base_value, value),
                "sum": None if total is None else _add(base_sum, total),
                "interval": record.get("ut"),
            }
        )
    return out


def _add(base: float, value: float) -> float:
    """``base + value`` as the decimals they are written as, so that ``400 + 12.734`` is 412.734, not
    412.73400000000004."""
    if not base:
        return value
    return float(Decimal(repr(base)) + Decimal(repr(value)))


def message_records(topic: str, number: int, payload: bytes) -> Iterator[Record]:
    """One record per SenML record of a message; one problem record when the message is not SenML."""
    try:
        resolved = resolve_pack(payload)
    except ValueError as exc:
        raw = payload.decode("utf-8", errors="replace")
        yield Record(Position(topic, record=number), raw, None, [Reason("not-senml", str(exc))])
        return
    for index, item in enumerate(resolved, start=1):
        yield Record(Position(topic, record=number, row=index), item, item)


def meter_reading(item: dict[str, Any], city: str, source: str) -> Entity | Rejection:
    """Map one resolved SenML record to a MeterReading (validated later against the schema)."""
    device, _, obis = str(item["name"]).rpartition("/")
    match = OBIS.match(obis)
    if not device or not match:
        return Rejection([Reason("invalid-value", f"name {item['name']!r} is not <device>/<OBIS code>", "name")])
    meter_type = MEDIUM.get(match.group(1))
    if meter_type is None:
        return Rejection([Reason("invalid-value", f"OBIS medium {match.group(1)} is not a metered medium", "name")])
    seconds = int(item["time"])
    try:
        observed = epoch_datetime(seconds)
        start = epoch_datetime(seconds - float(item["interval"])) if item["interval"] and item["sum"] is None else None
    except ConversionError as exc:
        return Rejection([Reason("invalid-value", str(exc), "dateObserved")])
    value = item["sum"] if item["sum"] is not None else item["value"]
    entity: Entity = {
        "id": f"urn:ngsi-ld:MeterReading:{city}:{local_id(device)}.{local_id(obis)}.{seconds}",
        "type": "MeterReading",
        "city": city,
        "dateModified": observed,
        "source": source,
        "meterType": meter_type,
        "refDevice": f"urn:ngsi-ld:Device:{city}:{local_id(device)}",
        "obisCode": obis,
        "value": value,
        "unit": item["unit"],
        "readingType": "cumulative",
        "dateObserved": observed,
    }
    if item["interval"] and item["sum"] is None:
        entity["readingType"] = "interval"
        entity["dateObservedFrom"] = start
        entity["dateObservedTo"] = observed
    return entity


class SenmlFileAdapter:
    """SenML packs recorded as NDJSON; see :mod:`adapters.sources.senml`."""

    name: ClassVar[str] = "senml"
    summary: ClassVar[str] = "SenML JSON packs recorded from MQTT (NDJSON of topic and payload): meter readings"
    needs_mapping: ClassVar[bool] = False

    def __init__(self, source: str, mapping: Mapping | None = None, options: dict[str, str] | None = None) -> None:
        self.options = dict(options or {})
        if not self.options.get("city"):
            raise MappingError(f"{self.name} needs -o city=<tenant code>")
        self.city = self.options["city"]
        self.source = source
        self._done = 0
        self._total: int | None = None

    def records(self) -> Iterator[Record]:
        path = Path(self.source)
        try:
            stream = path.open("rb")
        except OSError as exc:
            raise SourceError(f"cannot open {path}: {exc.strerror or exc}") from exc
        self._total = path.stat().st_size
        with stream:
            for number, line in enumerate(stream, start=1):
                self._done += len(line)
                if not line.strip():
                    continue
                try:
                    message = orjson.loads(line)
                    topic, payload = str(message["topic"]), message["payload"]
                except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
                    reason = Reason("not-senml", f"line is not {{topic, payload}} JSON: {exc}")
                    yield Record(Position(str(path), line=number), line.decode("utf-8", "replace"), None, [reason])
                    continue
                data = payload.encode() if isinstance(payload, str) else orjson.dumps(payload)
                yield from message_records(f"{path}:{topic}", number, data)

    def map(self, record: Record) -> Entity | Rejection:
        return meter_reading(record.values, self.city, "SenML")

    def progress(self) -> tuple[int, int | None]:
        return self._done, self._total
