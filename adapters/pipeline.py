"""Run an adapter: read, map, validate, write; count every record exactly once.

Example::

    adapter = CsvAdapter("examples/legacy/ikomek-109-astana.csv",
                         Mapping.load("examples/legacy/ikomek-109-astana.yaml"))
    with open("cases.ndjson", "wb") as out, open("cases.quarantine.ndjson", "wb") as q:
        summary = run(adapter, SchemaRegistry.load(), out=out, quarantine=Quarantine(q, "csv"))
    assert summary.read == summary.accepted + summary.rejected
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Protocol

import orjson

from adapters.base import Adapter
from adapters.errors import AccountingError
from adapters.quarantine import Quarantine
from adapters.records import Entity, Position, Reason, Rejection
from schemas import SchemaRegistry

ProgressCallback = Callable[[int, int | None, int], None]
"""``callback(done, total, records_read)``: ``done``/``total`` in the adapter's unit."""


@dataclass(slots=True)
class Settled:
    """What the hub made of one offered entity: holds it (no ``reasons``), refused it (``reasons``), or refused it
    in an earlier, interrupted run whose rejections are already counted and quarantined (``carried``)."""

    line: bytes
    """The entity as its NDJSON line (without the line feed), for ``--out`` once the hub holds it."""
    type: str
    position: Position
    raw: object
    reasons: list[Reason] = field(default_factory=list)
    carried: bool = False


class EntitySink(Protocol):
    """Where accepted entities go besides the NDJSON output, e.g. the hub (see :mod:`adapters.push`).

    With a sink, an entity reaches the output only once the sink has settled it as held, so that the output,
    the summary and the hub agree."""

    carried_rejections: int
    """Rejections already counted by an earlier, interrupted run whose entities this run skips."""

    def offer(self, entity: Entity, position: Position, raw: object) -> list[Settled]:
        """Take one entity; return the entities settled meanwhile (a batch sent, or skipped ones), in order."""
        ...

    def finish(self) -> list[Settled]:
        """Send what is left; return the last settled entities."""
        ...


@dataclass
class Summary:
    """What happened to every record. ``read == accepted + rejected`` always holds (:meth:`check`)."""

    adapter: str
    read: int = 0
    accepted: int = 0
    rejected: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    types: Counter[str] = field(default_factory=Counter)
    rejected_by_hub: int = 0
    notes: list[str] = field(default_factory=list)
    """What the adapter decided on the reader's behalf (a sheet, an encoding, ...) and its evidence."""

    def reject(self, reasons: list[Reason]) -> None:
        self.rejected += 1
        self.reasons.update({r.key for r in reasons})

    def check(self) -> Summary:
        """Raise AccountingError if any record was lost or counted twice."""
        if self.read != self.accepted + self.rejected:
            raise AccountingError(
                f"{self.adapter}: read {self.read} != accepted {self.accepted} + rejected {self.rejected}"
            )
        return self

    def top_reasons(self, n: int = 5) -> list[tuple[str, int]]:
        return self.reasons.most_common(n)

    def as_dict(self) -> dict[str, object]:
        return {
            "adapter": self.adapter,
            "read": self.read,
            "accepted": self.accepted,
            "rejected": self.rejected,
            "rejectedByHub": self.rejected_by_hub,
            "types": dict(self.types),
            "topReasons": [{"reason": k, "count": v} for k, v in self.top_reasons()],
            "notes": list(self.notes),
        }


def schema_reasons(registry: SchemaRegistry, entity: Entity) -> list[Reason]:
    """Every schema issue of an entity, as rejection reasons (code ``schema-<keyword>``, field = JSON pointer)."""
    return [Reason(f"schema-{i.keyword}", i.message, i.pointer or "/") for i in registry.explain(entity)]


def run(
    adapter: Adapter,
    registry: SchemaRegistry,
    *,
    out: IO[bytes] | None = None,
    quarantine: Quarantine | None = None,
    sink: EntitySink | None = None,
    progress: ProgressCallback | None = None,
    every: int = 1000,
    workers: int = 1,
) -> Summary:
    """Stream every record of ``adapter`` through mapping and validation; constant memory.

    With ``workers`` > 1, records are still read here, in order, but mapped and validated in chunks by that many
    worker processes (:mod:`adapters.parallel`); the output, quarantine and summary are the same. A source
    that can be cut into blocks of whole records (CSV) is read, mapped and validated block by block, in one
    process as in workers (:func:`adapters.parallel.run_blocks`), unless a sink takes the entities.
    """
    if workers > 1:
        from adapters.parallel import run_parallel  # noqa: PLC0415 - multiprocessing only when asked for

        summary = run_parallel(
            adapter, registry, out=out, quarantine=quarantine, sink=sink, progress=progress, workers=workers
        )
    elif sink is None and _splittable(adapter):
        from adapters.parallel import run_blocks  # noqa: PLC0415 - it imports this module

        summary = run_blocks(adapter, registry, out=out, quarantine=quarantine, progress=progress, workers=1)
    else:
        summary = _run_serial(adapter, registry, out, quarantine, sink, progress, every)
    summary.notes = list(getattr(adapter, "notes", []))
    return summary


def _splittable(adapter: Adapter) -> bool:
    splittable = getattr(adapter, "splittable", None)
    return bool(splittable is not None and splittable())


def _run_serial(  # noqa: PLR0917 - the arguments of run()
    adapter: Adapter,
    registry: SchemaRegistry,
    out: IO[bytes] | None,
    quarantine: Quarantine | None,
    sink: EntitySink | None,
    progress: ProgressCallback | None,
    every: int,
) -> Summary:
    summary = Summary(adapter.name)
    writer = LineWriter(out)
    hub_rejected = _hub_rejected(summary, quarantine, writer)
    map_record = adapter.map
    is_valid = registry.is_valid
    types = summary.types
    read = accepted = 0
    try:
        for record in adapter.records():
            read += 1
            if progress is not None and read % every == 0:
                done, total = adapter.progress()
                progress(done, total, read)
            if record.problems:
                summary.reject(record.problems)
                if quarantine is not None:
                    quarantine.add(record.position, record.raw, record.problems, stage="read")
                continue
            result = map_record(record)
            if isinstance(result, Rejection):
                summary.reject(result.reasons)
                if quarantine is not None:
                    quarantine.add(record.position, record.raw, result.reasons, stage="map")
                continue
            entity = result
            if not is_valid(entity):  # the fast path; only a reject pays for the explanation
                reasons = schema_reasons(registry, entity)
                summary.reject(reasons)
                if quarantine is not None:
                    quarantine.add(record.position, record.raw, reasons, stage="validate")
                continue
            accepted += 1
            types[entity["type"]] += 1
            if sink is None:
                writer.add(entity)
            else:  # written once the hub holds it
                summary.accepted = accepted
                hub_rejected(sink.offer(entity, record.position, record.raw))
                accepted = summary.accepted
        summary.read, summary.accepted = read, accepted
        finish(summary, sink, hub_rejected)
    finally:
        writer.flush()
        summary.read = read
    if progress is not None:
        done, total = adapter.progress()
        progress(done, total, summary.read)
    return summary.check()


class LineWriter:
    """NDJSON lines into a binary stream, written a few hundred kilobytes at a time rather than line by line."""

    def __init__(self, out: IO[bytes] | None, lines: int = 512) -> None:
        self.out = out
        self.lines = lines
        self.buffer: list[bytes] = []

    def add(self, entity: Entity) -> None:
        if self.out is None:
            return
        self.buffer.append(orjson.dumps(entity, option=orjson.OPT_APPEND_NEWLINE))
        if len(self.buffer) >= self.lines:
            self.flush()

    def flush(self) -> None:
        if self.out is not None and self.buffer:
            self.out.write(b"".join(self.buffer))
            self.buffer.clear()

    def add_line(self, line: bytes) -> None:
        """An entity already serialised (without its line feed)."""
        if self.out is None:
            return
        self.buffer.append(line + b"\n")
        if len(self.buffer) >= self.lines:
            self.flush()


def _hub_rejected(
    summary: Summary, quarantine: Quarantine | None, writer: LineWriter
) -> Callable[[list[Settled]], None]:
    """Settle entities the sink answered for: write those the hub holds to the output, and turn those it refused
    into rejections, quarantined at stage ``hub``; an entity refused in an interrupted earlier run is neither
    written nor counted again (:func:`finish` counts those)."""

    def settle(items: list[Settled]) -> None:
        for item in items:
            if not item.reasons and not item.carried:
                writer.add_line(item.line)
                continue
            summary.types[item.type] -= 1
            if not summary.types[item.type]:
                del summary.types[item.type]
            if item.carried:
                continue
            summary.accepted -= 1
            summary.rejected_by_hub += 1
            summary.reject(item.reasons)
            if quarantine is not None:
                quarantine.add(item.position, item.raw, item.reasons, stage="hub")

    return settle


def finish(summary: Summary, sink: EntitySink | None, hub_rejected: Callable[[list[Settled]], None]) -> None:
    """Send the sink's last batch and carry over the rejections of an interrupted earlier run."""
    if sink is None:
        return
    hub_rejected(sink.finish())
    carried = sink.carried_rejections
    if carried:
        summary.accepted -= carried
        summary.rejected += carried
        summary.rejected_by_hub += carried
        summary.reasons["hub rejections in the interrupted run"] += carried
