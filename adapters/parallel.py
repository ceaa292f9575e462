"""Map and validate in several processes: ``run(..., workers=N)`` and ``qala adapt run --workers N``.

Two ways, one result. For a source that can be cut into blocks of whole records (CSV with an ASCII delimiter
and quote: ``splittable``, ``cuts``, ``block_rows`` and ``map_values`` on the adapter) and no sink, the
parent only cuts the file; the workers read, map and validate their blocks, leave their NDJSON in memory they
share with the parent, and the parent writes it to the output in order (:func:`run_blocks`). Otherwise the
parent reads records in order, as in a single process, and hands them out in chunks; each worker maps and
validates a chunk and sends back its NDJSON lines. Either way the parent takes the work back in the order it
sent it, with what became of each record, so the output, the quarantine and the summary are the same as a
single process gives; at most ``2 * workers`` pieces are in flight, so memory stays flat. Workers are forked,
and inherit the adapter (with its compiled mapping) and the schema registry instead of receiving them pickled.

    summary = run(adapter, SchemaRegistry.load(), out=out, quarantine=q, workers=2)

Worth it with cores to spare, and only then: one process reads a CSV in blocks too, so two workers take about
the CPU per row that one process takes (``bench/adapters.py`` at 1,000,000 rows: 9.0 to 10.0 µs a row, 0.9 to
1.4 of them the parent's, against 9.1 to 9.7), and turn a file into NDJSON twice as fast when they have two
cores to themselves (0.32 of a bare ``csv.reader`` pass against 0.16 for one process, measured so); on a
machine that other work keeps busy, they get less than two cores, and less of a gain.
"""

from __future__ import annotations

import itertools
import mmap
import multiprocessing
import os
import shutil
import tempfile
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, wait
from typing import IO, Any, TypeVar

import orjson

from adapters.base import Adapter
from adapters.pipeline import (
    EntitySink,
    LineWriter,
    ProgressCallback,
    Summary,
    _hub_rejected,
    finish,
    schema_reasons,
)
from adapters.quarantine import Quarantine
from adapters.records import Position, Reason, Record, Rejection
from schemas import SchemaRegistry

CHUNK = 2000
"""Records per chunk: large enough that pickling and the round trip cost little per record."""

LINES = 128
"""NDJSON lines a block worker gathers before it copies them to the parent's memory."""

BLOCK_BYTES = 1 << 20
"""Bytes per block for sources that workers read themselves (some 4,000 rows of a contact-centre export)."""

Outcome = str | tuple[str, list[Reason]] | None
"""Per record: the accepted entity's type, ``(stage, reasons)`` for a rejection, None for a read problem."""

Rejected = tuple[str, list[Reason], tuple[Any, ...], Any]
"""A rejected record of a block: ``(stage, reasons, position, raw)``."""

Block = tuple[int, int, int, tuple[int, int] | None, str]
"""What a block worker is given: offset, length, first line, slot of shared memory, scratch directory."""

_inherited: tuple[Adapter, SchemaRegistry, mmap.mmap | None] | None = None
"""What forked workers map and validate with, and the memory they share with the parent (block workers write
their NDJSON there); set in the parent just before the pool forks."""


T = TypeVar("T")
K = TypeVar("K")
A = TypeVar("A")
R = TypeVar("R")
Chunk = list[tuple[tuple[Any, ...], Any] | None]


def _work(chunk: Chunk | bytes) -> tuple[bytes, list[Outcome]]:
    """In a worker: map and validate one chunk of ``(position, values)``; None for a record already rejected.

    Plain tuples, not Records: pickling a slotted dataclass goes through Python-level ``__getstate__``. For
    adapters whose cells are always text (``text_cells``), the chunk comes as one orjson document, which costs
    a tenth of pickling the strings one by one. The worker's records carry no ``raw`` form; ``map`` has no use
    for it, and the parent keeps it.
    """
    if _inherited is None:  # pragma: no cover - only if the pool was not forked from run_parallel
        raise RuntimeError("adapters.parallel worker started without an adapter")
    adapter, registry, _ = _inherited
    rows: Chunk = orjson.loads(chunk) if isinstance(chunk, bytes) else chunk
    map_record, is_valid, dumps = adapter.map, registry.is_valid, orjson.dumps
    lines: list[bytes] = []
    outcomes: list[Outcome] = []
    for row in rows:
        if row is None:
            outcomes.append(None)
            continue
        result = map_record(Record(Position(*row[0]), None, row[1], []))
        if isinstance(result, Rejection):
            outcomes.append(("map", result.reasons))
        elif not is_valid(result):
            outcomes.append(("validate", schema_reasons(registry, result)))
        else:
            lines.append(dumps(result, option=orjson.OPT_APPEND_NEWLINE))
            outcomes.append(result["type"])
    return b"".join(lines), outcomes


def _work_block(piece: Block) -> tuple[int, str | None, int, dict[str, int], list[Rejected]]:
    """In a worker: read, map and validate one block of a source that :func:`run_blocks` splits, given as its
    byte offset, length and first line number, the slot of shared memory for its NDJSON (start and size; None
    without output) and a scratch directory; the bytes of NDJSON in the slot, the scratch file holding the
    rest of it (None if it all fitted), how many records were read, the accepted ones by type, and the
    rejected ones in order (the last of which may be one that ran out of input: see :func:`run_blocks`).

    The NDJSON goes into memory that the parent shares: a pipe carries 64 kB at a time, and scratch files
    cost a copy into the page cache here and another out of it in the parent. It goes there every
    :data:`LINES` lines: holding a block's lines until the end made every one of them fresh memory (in one
    process over a block of 5,000 rows, 13.5 µs a row against 10.5)."""
    if _inherited is None:  # pragma: no cover - only if the pool was not forked from run_blocks
        raise RuntimeError("adapters.parallel worker started without an adapter")
    adapter, registry, shared = _inherited
    offset, length, line, slot, scratch = piece
    with open(adapter.source, "rb") as source:  # type: ignore[attr-defined]
        source.seek(offset)
        block = source.read(length)
    output = None if slot is None or shared is None else _SlotWriter(shared, slot, scratch)
    map_values, dumps, newline = adapter.map_values, orjson.dumps, orjson.OPT_APPEND_NEWLINE  # type: ignore[attr-defined]
    is_valid = _validity(adapter, registry)
    lines: list[bytes] = []
    accepted: dict[str, int] = {}
    rejected: list[Rejected] = []
    read = 0
    rows = adapter.block_rows(block, line, offset)  # type: ignore[attr-defined]
    for row in rows:
        read += 1
        record: Record | None = None
        if row.__class__ is tuple:  # cells and lines: the record is made only if it is rejected
            values, first, last = row
        else:
            record = row
            if record.problems:
                rejected.append(("read", record.problems, tuple(record.position), record.raw))
                continue
            values = record.values
        result = map_values(values)
        if isinstance(result, Rejection):
            stage, reasons = "map", result.reasons
        elif not is_valid(result):
            stage, reasons = "validate", schema_reasons(registry, result)
        else:
            kind = result["type"]
            accepted[kind] = accepted.get(kind, 0) + 1
            if output is not None:
                lines.append(dumps(result, None, newline))
                if len(lines) >= LINES:
                    output.write(b"".join(lines))
                    lines.clear()
            continue
        if record is None:
            record = rows.record(values, first, last)
        rejected.append((stage, reasons, tuple(record.position), record.raw))
    if output is None:
        return 0, None, read, accepted, rejected
    output.write(b"".join(lines))
    output.close()
    return output.used, output.path, read, accepted, rejected


def _validity(adapter: Adapter, registry: SchemaRegistry) -> Callable[[Any], bool]:
    """:meth:`SchemaRegistry.is_valid`, or when the adapter's compiled mapping makes entities of one known type
    only, the check it would pick for that type, taken once instead of per entity."""
    kind = getattr(getattr(adapter, "compiled", None), "type", None)
    if isinstance(kind, str) and kind in registry.types():
        return registry.get(kind).fast.is_valid
    return registry.is_valid


class _SlotWriter:
    """A block's NDJSON in its slot of the memory shared with the parent, and from the first write that does
    not fit there on, in a scratch file."""

    def __init__(self, shared: mmap.mmap, slot: tuple[int, int], scratch: str) -> None:
        start, size = slot
        self.view = memoryview(shared)[start : start + size]
        self.used = 0
        self.scratch = scratch
        self.spill: IO[bytes] | None = None
        self.path: str | None = None

    def write(self, data: bytes) -> None:
        if self.spill is None:
            end = self.used + len(data)
            if end <= len(self.view):
                self.view[self.used : end] = data
                self.used = end
                return
            fd, self.path = tempfile.mkstemp(dir=self.scratch, suffix=".ndjson")
            self.spill = os.fdopen(fd, "wb")
        self.spill.write(data)

    def close(self) -> None:
        self.view.release()
        if self.spill is not None:
            self.spill.close()


def _chunks(records: Iterator[Record], size: int) -> Iterator[list[Record]]:
    chunk: list[Record] = []
    for record in records:
        chunk.append(record)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def run_parallel(
    adapter: Adapter,
    registry: SchemaRegistry,
    *,
    out: IO[bytes] | None = None,
    quarantine: Quarantine | None = None,
    sink: EntitySink | None = None,
    progress: ProgressCallback | None = None,
    workers: int = 2,
    chunk: int = CHUNK,
) -> Summary:
    """:func:`adapters.pipeline.run` with mapping and validation in ``workers`` forked processes."""
    if sink is None and _splittable(adapter):
        return run_blocks(adapter, registry, out=out, quarantine=quarantine, progress=progress, workers=workers)
    summary = Summary(adapter.name)
    writer = LineWriter(out)
    hub_rejected = _hub_rejected(summary, quarantine, writer)

    def settle(records: list[Record], result: tuple[bytes, list[Outcome]]) -> None:
        block, outcomes = result
        if out is not None and block and sink is None:  # with a sink, each line waits for the hub's answer
            out.write(block)
        lines = iter(block.splitlines()) if sink is not None else None
        for record, outcome in zip(records, outcomes, strict=True):
            if outcome is None:
                summary.reject(record.problems)
                if quarantine is not None:
                    quarantine.add(record.position, record.raw, record.problems, stage="read")
            elif isinstance(outcome, tuple):
                stage, reasons = outcome
                summary.reject(reasons)
                if quarantine is not None:
                    quarantine.add(record.position, record.raw, reasons, stage=stage)
            else:
                summary.accepted += 1
                summary.types[outcome] += 1
                if lines is not None and sink is not None:
                    hub_rejected(sink.offer(orjson.loads(next(lines)), record.position, record.raw))
        if progress is not None:
            done, total = adapter.progress()
            progress(done, total, summary.read)

    text = bool(getattr(adapter, "text_cells", False))  # every cell a str: JSON carries it exactly

    def pieces(records: Iterator[Record]) -> Iterator[tuple[list[Record], Chunk | bytes]]:
        for batch in _chunks(records, chunk):
            summary.read += len(batch)
            sendable: Chunk = [None if r.problems else (tuple(r.position), r.values) for r in batch]
            yield batch, orjson.dumps(sendable) if text else sendable

    records = adapter.records()
    first = next(records, None)  # reading the header binds the mapping, which the workers need
    if first is not None:
        chunks = pieces(_prepend(first, records))
        _farm_out((adapter, registry, None), chunks, work=_work, settle=settle, workers=workers)
    try:
        finish(summary, sink, hub_rejected)
    finally:
        writer.flush()
    if progress is not None:
        done, total = adapter.progress()
        progress(done, total, summary.read)
    return summary.check()


def run_blocks(
    adapter: Adapter,
    registry: SchemaRegistry,
    *,
    out: IO[bytes] | None = None,
    quarantine: Quarantine | None = None,
    progress: ProgressCallback | None = None,
    workers: int = 2,
    block_bytes: int = BLOCK_BYTES,
) -> Summary:
    """The parallel run for sources that can be cut into blocks of whole records (CSV): the parent only cuts
    the file, and the workers read, map and validate, so the parent no longer limits how many workers help.
    With ``workers=1``, this process reads, maps and validates the blocks itself, one after the other: what
    :func:`adapters.pipeline.run` does in one process for such a source, at less cost per row than reading
    records one by one (see :class:`adapters.sources.csv.BlockRows`).

    The adapter provides ``splittable()`` (true when its source can be cut), ``cuts(size, start, guess=)``
    (the length of each byte block, the line and offset it starts at and whether its end is a guess; reading
    the header binds the mapping before the first), ``block_rows(block, line, offset)`` (see
    :class:`adapters.sources.csv.BlockRows`) and ``map_values(cells)``. When a guessed end was
    wrong, the block's last record runs out of input, with the problem ``adapter.RAN_OUT``: the blocks sent
    after it are dropped, and the file is cut again from that record on, without guessing from then on (a
    file whose quote marks misled the guess once is likely to again).
    """
    summary = Summary(adapter.name)
    ran_out = getattr(adapter, "RAN_OUT", None)
    cuts = adapter.cuts  # type: ignore[attr-defined]

    slots = 2 * workers  # one for each block in flight
    slot_bytes = _slot_bytes(block_bytes)
    sequence = itertools.count()

    def settle(
        piece: tuple[int, bool, tuple[int, int] | None],
        done: tuple[int, str | None, int, dict[str, int], list[Rejected]],
    ) -> Iterator[tuple[tuple[int, bool, tuple[int, int] | None], Block]] | None:
        end, guessed, slot = piece
        used, path, read, accepted, rejected = done
        again = None
        if guessed and rejected and rejected[-1][1][:1] == [ran_out]:  # the guess was wrong
            _, _, position, _ = rejected.pop()
            read -= 1
            again = pieces(cuts(block_bytes, (position[1], position[4]), guess=False))
        if out is not None and shared is not None and slot is not None:
            with memoryview(shared) as view:
                out.write(view[slot[0] : slot[0] + used])
            if path is not None:  # what did not fit in the slot
                with open(path, "rb") as spilled:
                    shutil.copyfileobj(spilled, out)
                os.unlink(path)
        summary.read += read
        summary.accepted += sum(accepted.values())
        summary.types.update(accepted)
        for stage, reasons, position, raw in rejected:
            summary.reject(reasons)
            if quarantine is not None:
                quarantine.add(Position(*position), raw, reasons, stage=stage)
        if progress is not None and again is None:
            progress(end, adapter.progress()[1], summary.read)
        return again

    def pieces(
        cut: Iterator[tuple[int, int, int, bool]],
    ) -> Iterator[tuple[tuple[int, bool, tuple[int, int] | None], Block]]:
        for length, line, offset, guessed in cut:
            # Blocks take the slots in turn: the one sent 2 * workers blocks earlier has been settled, and the
            # blocks dropped after a wrong guess have finished (see _farm_out).
            slot = None if shared is None else (next(sequence) % slots * slot_bytes, slot_bytes)
            yield (offset + length, guessed, slot), (offset, length, line, slot, scratch)

    first = cuts(block_bytes)
    head = next(first, None)  # cutting the first block has read the header and bound the mapping
    if head is not None:
        shared = None if out is None else mmap.mmap(-1, slots * slot_bytes)  # shared with forked children
        try:
            with tempfile.TemporaryDirectory(prefix="qala-adapt-") as scratch:
                _farm_out(
                    (adapter, registry, shared),
                    pieces(_prepend(head, first)),
                    work=_work_block,
                    settle=settle,
                    workers=workers,
                )
        finally:
            if shared is not None:
                shared.close()
    if progress is not None:
        done, total = adapter.progress()
        progress(done, total, summary.read)
    return summary.check()


def _farm_out(
    inherited: tuple[Adapter, SchemaRegistry, mmap.mmap | None],
    pieces: Iterator[tuple[K, A]],
    *,
    work: Callable[[A], R],
    settle: Callable[[K, R], Iterator[tuple[K, A]] | None],
    workers: int,
) -> None:
    """Run ``work`` on each piece's argument in ``workers`` forked processes and ``settle`` the results with
    the piece's key, in the order the pieces came; at most ``2 * workers`` pieces are in flight. When
    ``settle`` returns pieces, those still in flight are dropped (and those already running are waited for,
    so that nothing they write can land on what comes next) and its pieces follow instead. With one worker,
    the work is done in this process, piece by piece."""
    global _inherited  # noqa: PLW0603 - handed to forked workers through their copy of this module
    in_flight: deque[tuple[K, Future[R]]] = deque()
    _inherited = inherited
    try:
        if workers <= 1:  # in this process, one piece after the other
            while (piece := next(pieces, None)) is not None:
                again = settle(piece[0], work(piece[1]))
                if again is not None:
                    pieces = again
            return
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
            while True:
                while len(in_flight) < 2 * workers and (piece := next(pieces, None)) is not None:
                    in_flight.append((piece[0], pool.submit(work, piece[1])))
                if not in_flight:
                    break
                key, future = in_flight.popleft()
                again = settle(key, future.result())
                if again is not None:
                    for _, dropped in in_flight:
                        dropped.cancel()
                    wait([dropped for _, dropped in in_flight])
                    in_flight.clear()
                    pieces = again
    finally:
        _inherited = None


def _slot_bytes(block_bytes: int) -> int:
    """The shared memory each block worker gets for its NDJSON (what does not fit goes to a scratch file):
    NDJSON is some four times the CSV it comes from."""
    return max(8 * block_bytes, 1 << 19)


def _splittable(adapter: Adapter) -> bool:
    splittable = getattr(adapter, "splittable", None)
    return bool(splittable is not None and splittable())


def _prepend(first: T, rest: Iterator[T]) -> Iterator[T]:
    yield first
    yield from rest
