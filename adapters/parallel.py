"""Map and validate in several processes: ``run(..., workers=N)`` and ``qala adapt run --workers N``.

Two ways, one result. For a source that can be cut into blocks of whole records (CSV with an ASCII delimiter
and quote: ``splittable``, ``blocks`` and ``block_records`` on the adapter) and no sink, the parent only
cuts the file, the workers read, map and validate their blocks and leave their NDJSON in scratch files, and
the parent copies those to the output in order (:func:`run_blocks`). Otherwise the parent reads records in
order, as in a single process, and hands them out in chunks; each worker maps and validates a chunk and sends
back its NDJSON lines. Either way the parent takes the work back in the order it sent it, with what became of
each record, so the output, the quarantine and the summary are the same as a single process gives; at most
``2 * workers`` pieces are in flight, so memory stays flat. Workers are forked, and inherit the adapter (with
its compiled mapping) and the schema registry instead of receiving them pickled.

    summary = run(adapter, SchemaRegistry.load(), out=out, quarantine=q, workers=2)

Worth it with cores to spare: on two cores, two workers read a CSV file about 1.7 times as fast as one
process (``bench/adapters.py``).
"""

from __future__ import annotations

import multiprocessing
import os
import tempfile
from collections import Counter, deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from typing import IO, Any, TypeVar

import orjson

from adapters.base import Adapter
from adapters.pipeline import EntitySink, ProgressCallback, Summary, _hub_rejected, finish, schema_reasons
from adapters.quarantine import Quarantine
from adapters.records import Position, Reason, Record, Rejection
from schemas import SchemaRegistry

CHUNK = 2000
"""Records per chunk: large enough that pickling and the round trip cost little per record."""

WRITE_BUFFER = 1 << 18
"""Bytes a block worker gathers before each write of its NDJSON."""

BLOCK_BYTES = 1 << 20
"""Bytes per block for sources that workers read themselves (some 4,000 rows of a contact-centre export)."""

Outcome = str | tuple[str, list[Reason]] | None
"""Per record: the accepted entity's type, ``(stage, reasons)`` for a rejection, None for a read problem."""

Rejected = tuple[str, list[Reason], tuple[Any, ...], Any]
"""A rejected record of a block: ``(stage, reasons, position, raw)``."""

_inherited: tuple[Adapter, SchemaRegistry] | None = None
"""What forked workers map and validate with; set in the parent just before the pool forks."""


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
    adapter, registry = _inherited
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


def _work_block(piece: tuple[int, int, int, str | None]) -> tuple[str | None, int, Counter[str], list[Rejected]]:
    """In a worker: read, map and validate one block of a source that :func:`run_blocks` splits, given as its
    byte offset, length, first line number and the scratch directory for its NDJSON (None without output);
    the file holding that NDJSON, how many records were read, the accepted ones by type, and the rejected ones
    in order (the last of which may be one that ran out of input: see :func:`run_blocks`).

    The worker reads the block from the source and leaves its NDJSON in a file of the scratch directory: a
    pipe carries 64 kB at a time, and the megabytes of each block in and out of it cost more than the reading
    and writing of files that the page cache holds. Each line goes to the file's buffer as soon as it is made:
    holding a block's lines until the end made every one of them fresh memory, which cost a quarter of the
    worker's time (``bench/adapters.py``)."""
    if _inherited is None:  # pragma: no cover - only if the pool was not forked from run_blocks
        raise RuntimeError("adapters.parallel worker started without an adapter")
    adapter, registry = _inherited
    offset, length, line, scratch = piece
    with open(adapter.source, "rb") as source:  # type: ignore[attr-defined]
        source.seek(offset)
        block = source.read(length)
    path = None
    if scratch is None:
        written: IO[bytes] = open(os.devnull, "wb")  # noqa: SIM115 - closed below, with the scratch file
    else:
        fd, path = tempfile.mkstemp(dir=scratch, suffix=".ndjson")
        written = os.fdopen(fd, "wb", buffering=WRITE_BUFFER)
    map_record, is_valid, dumps, write = adapter.map, registry.is_valid, orjson.dumps, written.write
    accepted: Counter[str] = Counter()
    rejected: list[Rejected] = []
    read = 0
    with written:
        for record in adapter.block_records(block, line, offset):  # type: ignore[attr-defined]
            read += 1
            if record.problems:
                rejected.append(("read", record.problems, tuple(record.position), record.raw))
                continue
            result = map_record(record)
            if isinstance(result, Rejection):
                rejected.append(("map", result.reasons, tuple(record.position), record.raw))
            elif not is_valid(result):
                rejected.append(("validate", schema_reasons(registry, result), tuple(record.position), record.raw))
            else:
                write(dumps(result, option=orjson.OPT_APPEND_NEWLINE))
                accepted[result["type"]] += 1
    return path, read, accepted, rejected


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
    hub_rejected = _hub_rejected(summary, quarantine)

    def settle(records: list[Record], result: tuple[bytes, list[Outcome]]) -> None:
        block, outcomes = result
        if out is not None and block:
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
        _farm_out(adapter, registry, chunks, work=_work, settle=settle, workers=workers)
    finish(summary, sink, hub_rejected)
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

    The adapter provides ``splittable()`` (true when its source can be cut), ``blocks(size, start, guess=)``
    (byte blocks with the line and offset they start at and whether their end is a guess; reading the header
    binds the mapping before the first) and ``block_records(block, line, offset)``. When a guessed end was
    wrong, the block's last record runs out of input, with the problem ``adapter.RAN_OUT``: the blocks sent
    after it are dropped, and the file is cut again from that record on, without guessing from then on (a
    file whose quote marks misled the guess once is likely to again).
    """
    summary = Summary(adapter.name)
    ran_out = getattr(adapter, "RAN_OUT", None)
    blocks = adapter.blocks  # type: ignore[attr-defined]

    def settle(
        piece: tuple[int, bool], done: tuple[str | None, int, Counter[str], list[Rejected]]
    ) -> Iterator[tuple[tuple[int, bool], tuple[int, int, int, str | None]]] | None:
        end, guessed = piece
        path, read, accepted, rejected = done
        again = None
        if guessed and rejected and rejected[-1][1][:1] == [ran_out]:  # the guess was wrong
            _, _, position, _ = rejected.pop()
            read -= 1
            again = pieces(blocks(block_bytes, (position[1], position[4]), guess=False))
        if path is not None and out is not None:  # workers write a file only when there is output
            _append(path, out)
        summary.read += read
        summary.accepted += accepted.total()
        summary.types.update(accepted)
        for stage, reasons, position, raw in rejected:
            summary.reject(reasons)
            if quarantine is not None:
                quarantine.add(Position(*position), raw, reasons, stage=stage)
        if progress is not None and again is None:
            progress(end, adapter.progress()[1], summary.read)
        return again

    def pieces(
        cut: Iterator[tuple[bytes, int, int, bool]],
    ) -> Iterator[tuple[tuple[int, bool], tuple[int, int, int, str | None]]]:
        for block, line, offset, guessed in cut:
            yield (offset + len(block), guessed), (offset, len(block), line, scratch)

    first = blocks(block_bytes)
    head = next(first, None)  # cutting the first block has read the header and bound the mapping
    if head is not None:
        with tempfile.TemporaryDirectory(prefix="qala-adapt-") as directory:
            scratch = directory if out is not None else None
            _farm_out(
                adapter, registry, pieces(_prepend(head, first)), work=_work_block, settle=settle, workers=workers
            )
    if progress is not None:
        done, total = adapter.progress()
        progress(done, total, summary.read)
    return summary.check()


def _farm_out(
    adapter: Adapter,
    registry: SchemaRegistry,
    pieces: Iterator[tuple[K, A]],
    *,
    work: Callable[[A], R],
    settle: Callable[[K, R], Iterator[tuple[K, A]] | None],
    workers: int,
) -> None:
    """Run ``work`` on each piece's argument in ``workers`` forked processes and ``settle`` the results with
    the piece's key, in the order the pieces came; at most ``2 * workers`` pieces are in flight. When
    ``settle`` returns pieces, those still in flight are dropped and its pieces follow instead."""
    global _inherited  # noqa: PLW0603 - handed to forked workers through their copy of this module
    in_flight: deque[tuple[K, Future[R]]] = deque()
    _inherited = (adapter, registry)
    try:
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
                    in_flight.clear()
                    pieces = again
    finally:
        _inherited = None


def _append(path: str, out: IO[bytes]) -> None:
    """Copy the file at ``path`` to the end of ``out`` and remove it: in the kernel (``sendfile``) when ``out``
    is a file or a pipe that takes it, else through memory."""
    with open(path, "rb") as written:
        sent = 0
        try:
            target = out.fileno()
            out.flush()
            size = os.fstat(written.fileno()).st_size
            while sent < size and (step := os.sendfile(target, written.fileno(), sent, size - sent)):
                sent += step
        except (AttributeError, OSError):  # io.BytesIO (UnsupportedOperation), or a target sendfile refuses
            pass
        written.seek(sent)
        if rest := written.read():
            out.write(rest)
    os.unlink(path)


def _splittable(adapter: Adapter) -> bool:
    splittable = getattr(adapter, "splittable", None)
    return bool(splittable is not None and splittable())


def _prepend(first: T, rest: Iterator[T]) -> Iterator[T]:
    yield first
    yield from rest
