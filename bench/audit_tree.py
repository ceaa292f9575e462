"""Benchmark: growing the audit log's Merkle tree at checkpoint time, and serving proofs from it.

Appending an audit record never touches the tree; the tree is grown when a head is signed. This prints how fast
a checkpoint hashes new records into the tree (records/s) against a ceiling measured in the same run on the same
database: reading the same records and recomputing their chain hashes, the least any check of them must do.
Their ratio is the figure (target >= 0.25). It also prints the mean time of a consistency and an inclusion proof
over the whole tree (each a handful of primary-key reads, O(log n)). SQLite file database.

    python bench/audit_tree.py               # 200,000 records
    python bench/audit_tree.py --quick       # 20,000 records
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from pathlib import Path

# Run as a script, bench/ comes first on sys.path and its modules (bench/catalogue.py) would shadow the packages.
if Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)

import sqlalchemy as sa

from gateway.audit import AuditRecord, audit_log, record_hash
from gateway.services import open_services
from gateway.settings import Settings


async def main(records: int, proofs: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(database_url=f"sqlite:///{Path(folder) / 'bench.db'}")
        async with open_services(settings) as services:
            batch = [
                AuditRecord(action="api.call", outcome="ok", status=200, client_id="qc_bench", detail={"n": n})
                for n in range(1000)
            ]
            for _ in range(records // len(batch)):
                async with services.engine.begin() as conn:
                    await services.audit.append_many(batch, conn)
            size = (await services.audit.head())[0]

            started = time.perf_counter()
            async with services.engine.connect() as conn:
                after = 0
                while True:
                    rows = (
                        await conn.execute(
                            sa.select(audit_log).where(audit_log.c.seq > after).order_by(audit_log.c.seq).limit(5000)
                        )
                    ).all()
                    if not rows:
                        break
                    for row in rows:
                        record_hash(dict(row._mapping))
                    after = rows[-1].seq
            ceiling = size / (time.perf_counter() - started)

            started = time.perf_counter()
            head = await services.checkpoints.take(services.audit)
            grow = size / (time.perf_counter() - started)
            if head is None or head.tree_size != size:
                raise SystemExit("the checkpoint did not cover the whole log")

            started = time.perf_counter()
            for _ in range(proofs):
                async with services.engine.connect() as conn:
                    await conn.execute(sa.text("SELECT 1"))
            round_trip_ms = (time.perf_counter() - started) / proofs * 1000

            rng = random.Random(7)
            started = time.perf_counter()
            for _ in range(proofs):
                first = rng.randrange(1, size)
                await services.tree.consistency(first, size)
            consistency_ms = (time.perf_counter() - started) / proofs * 1000
            started = time.perf_counter()
            for _ in range(proofs):
                await services.tree.inclusion(rng.randrange(size), size)
            inclusion_ms = (time.perf_counter() - started) / proofs * 1000

    print(f"records in the log:                 {size:,}")
    print(f"ceiling (read + chain hash):        {ceiling:,.0f} records/s")
    print(f"checkpoint (grow tree + sign):      {grow:,.0f} records/s")
    print(f"ratio to ceiling:                   {grow / ceiling:.2f} (target >= 0.25)")
    print(f"database round trip (SELECT 1):     {round_trip_ms:.2f} ms")
    for name, took in (("consistency", consistency_ms), ("inclusion", inclusion_ms)):
        print(f"{name + ' proof, mean:':<36}{took:.2f} ms ({took / round_trip_ms:.1f} round trips)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--proofs", type=int, default=200)
    parser.add_argument("--quick", action="store_true", help="20,000 records, 50 proofs")
    arguments = parser.parse_args()
    if arguments.quick:
        arguments.records, arguments.proofs = 20_000, 50
    asyncio.run(main(arguments.records, arguments.proofs))
