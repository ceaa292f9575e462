"""The audit log's Merkle tree (RFC 9162) in the database, grown at checkpoint time, never per request.

Leaf *i* is record ``seq = i + 1``; its entry is the record's canonical bytes (:func:`gateway.audit.entry`, what
its chain hash covers too). Only the nodes of *complete* subtrees are stored (``level``, ``index``): they never
change once written, so growing the tree appends rows and every proof or root is a handful of primary-key
lookups (O(log n)). Appending an audit record does not touch the tree at all; :meth:`AuditTree.extend` catches
up from the last stored size in bounded chunks, each in its own short transaction, and checks that the new
records still chain before it commits to them.

    tree = AuditTree(engine)
    size = await tree.extend(upto=(await audit.head())[0])
    root = await tree.root(size)
    proof = await tree.consistency(10, size)
"""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.audit import GENESIS_HASH, audit_log, entry, record_hash
from gateway.db import metadata, writer
from gateway.locking import acquire, ensure_lock
from gateway.merkle import (
    EMPTY_ROOT,
    Frontier,
    ProofError,
    consistency_ranges,
    inclusion_ranges,
    leaf_hash,
    perfect_pieces,
    range_hash,
)

LOCK = "audit-tree"
CHUNK = 5000
"""Records hashed per transaction while catching up: keeps the tree lock (SQLite's write lock) short."""

audit_tree_nodes = sa.Table(
    "audit_tree_nodes",
    metadata,
    sa.Column("level", sa.SmallInteger, primary_key=True, autoincrement=False),
    sa.Column("idx", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("hash", sa.String(64), nullable=False),
)


class TreeBroken(Exception):
    """The records to add do not form an intact chain: the tree (and any head signed over it) refuses them."""


class AuditTree:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def ensure(self) -> None:
        await ensure_lock(self.engine, LOCK)

    async def size(self, conn: AsyncConnection | None = None) -> int:
        """How many records the stored tree covers."""
        # ORDER BY ... LIMIT 1 rather than max(): SQLite walks every leaf for max() under a WHERE (20 ms at 20,000).
        query = (
            sa.select(audit_tree_nodes.c.idx)
            .where(audit_tree_nodes.c.level == 0)
            .order_by(audit_tree_nodes.c.idx.desc())
            .limit(1)
        )
        if conn is not None:
            last = (await conn.execute(query)).scalar()
        else:
            async with self.engine.connect() as own:
                last = (await own.execute(query)).scalar()
        return 0 if last is None else int(last) + 1

    async def extend(self, upto: int) -> int:
        """Grow the stored tree to cover records ``1..upto``; returns the size reached (``upto`` or more)."""
        while True:
            async with writer(self.engine), self.engine.begin() as conn:
                await acquire(conn, LOCK)
                size = await self.size(conn)
                if size >= upto:
                    return size
                await self._grow(conn, size, min(upto, size + CHUNK))

    async def _grow(self, conn: AsyncConnection, size: int, target: int) -> None:
        pending = await self._nodes(conn, Frontier.levels(size))
        frontier = Frontier(size, {level: pending[(level, index)] for level, index in Frontier.levels(size)})
        previous = GENESIS_HASH
        if size:
            found = await conn.execute(sa.select(audit_log.c.record_hash).where(audit_log.c.seq == size))
            previous = found.scalar() or ""
        rows = await conn.execute(
            sa.select(audit_log).where(audit_log.c.seq > size, audit_log.c.seq <= target).order_by(audit_log.c.seq)
        )
        closed: list[dict[str, object]] = []
        expected = size + 1
        for row in rows:
            fields = dict(row._mapping)
            if fields["seq"] != expected:
                raise TreeBroken(f"record {expected} is missing")
            if fields["prev_hash"] != previous or record_hash(fields) != fields["record_hash"]:
                raise TreeBroken(f"record {expected} does not chain: the log was altered before it was signed")
            for level, index, value in frontier.append(leaf_hash(entry(fields))):
                closed.append({"level": level, "idx": index, "hash": value.hex()})
            previous, expected = fields["record_hash"], expected + 1
        if expected <= target:
            raise TreeBroken(f"record {expected} is missing")
        await conn.execute(audit_tree_nodes.insert(), closed)

    @staticmethod
    async def _nodes(conn: AsyncConnection, wanted: Iterable[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        keys = sorted(set(wanted))
        if not keys:
            return {}
        by_level: dict[int, list[int]] = {}
        for level, index in keys:
            by_level.setdefault(level, []).append(index)
        # One (level = ? AND idx IN (...)) per level: both engines use the primary key for it, which a row-value
        # IN (tuple_) does not get on SQLite (it scanned the table: 30 ms a proof at 20,000 records).
        wanted_rows = sa.or_(
            *(
                sa.and_(audit_tree_nodes.c.level == level, audit_tree_nodes.c.idx.in_(indexes))
                for level, indexes in by_level.items()
            )
        )
        rows = await conn.execute(sa.select(audit_tree_nodes).where(wanted_rows))
        found = {(int(row.level), int(row.idx)): bytes.fromhex(row.hash) for row in rows}
        missing = [key for key in keys if key not in found]
        if missing:
            raise TreeBroken(f"tree node {missing[0]} is missing")
        return found

    async def _hashes(self, ranges: list[tuple[int, int]], size: int) -> list[bytes]:
        """MTH of each range, from the stored complete subtrees (one query for all of them)."""
        if size > await self.size():
            raise ProofError(f"the tree does not reach {size} records yet")
        wanted = [_node_key(piece) for start, end in ranges for piece in perfect_pieces(start, end)]
        async with self.engine.connect() as conn:
            nodes = await self._nodes(conn, wanted)
        return [range_hash(start, end, lambda s, e: nodes[_node_key((s, e))]) for start, end in ranges]

    async def root(self, size: int) -> bytes:
        """MTH of the first ``size`` records."""
        return EMPTY_ROOT if size == 0 else (await self._hashes([(0, size)], size))[0]

    async def inclusion(self, index: int, size: int) -> list[bytes]:
        """The RFC 9162 inclusion proof of leaf ``index`` (record ``index + 1``) in the tree of ``size``."""
        return await self._hashes(inclusion_ranges(index, size), size)

    async def consistency(self, first: int, second: int) -> list[bytes]:
        """The RFC 9162 consistency proof from the tree of ``first`` records to the tree of ``second``."""
        return await self._hashes(consistency_ranges(first, second), second)


def _node_key(piece: tuple[int, int]) -> tuple[int, int]:
    start, end = piece
    level = (end - start).bit_length() - 1
    return level, start >> level
