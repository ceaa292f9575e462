"""``/api/v1/quarantine``: the records a city system's adapters rejected, kept at the hub next to the data.

A client posts its quarantine lines (NDJSON, as ``qala adapt run --push`` does after a run) and reads back its own;
a client with ``admin`` reads everyone's. Each line is a JSON object with at least ``reasons``; a line seen before
from the same client is not stored twice, so an interrupted upload is simply sent again.

    curl -H "Authorization: Bearer $TOKEN" -H "Content-Type: application/x-ndjson" \\
         --data-binary @cases.quarantine.ndjson http://127.0.0.1:8000/api/v1/quarantine
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

import orjson
import sqlalchemy as sa
from fastapi import APIRouter, Query, Request
from sqlalchemy.dialects import postgresql, sqlite

from gateway.auth import CallerDep
from gateway.db import writer
from gateway.errors import ValidationFailed
from gateway.exchange import ExchangeDep, UnsupportedMediaType, audit_record, mark_audited
from gateway.inputs import json_issue
from gateway.routes.documents import ndjson_body
from gateway.store.tables import quarantined_records
from openapi.mandate import DEFAULT_LIMIT, MAX_LIMIT

router = APIRouter(prefix="/api/v1", tags=["quarantine"])
MAX_LINES = 10_000


def _parse(body: bytes) -> list[dict[str, Any]]:
    records, errors = [], []
    for number, line in enumerate(body.splitlines()):
        if not line.strip():
            continue
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            errors.append({"pointer": f"/{number}", "keyword": "x-json", "message": f"invalid JSON: {exc.msg}"})
            continue
        issue = json_issue(record)  # U+0000 cannot be stored (PostgreSQL), and depth is bounded everywhere
        if issue is not None:
            errors.append({"pointer": f"/{number}", "keyword": "x-input", "message": issue})
            continue
        if not isinstance(record, dict) or not isinstance(record.get("reasons"), list):
            errors.append(
                {
                    "pointer": f"/{number}",
                    "keyword": "required",
                    "message": "each line is a JSON object with a 'reasons' list",
                }
            )
            continue
        records.append(record)
    if errors:
        raise ValidationFailed(f"{len(errors)} line(s) are not quarantine records; nothing was stored", errors=errors)
    if len(records) > MAX_LINES:
        raise ValidationFailed(f"at most {MAX_LINES} records per request; split the upload", errors=[])
    return records


@router.post(
    "/quarantine",
    summary="Keep an adapter's rejected records at the hub (NDJSON).",
    openapi_extra=ndjson_body("One quarantine record per line, as `qala adapt run --quarantine` writes them."),
)
async def upload(request: Request, caller: CallerDep, exchange: ExchangeDep) -> dict[str, int]:
    media = (request.headers.get("content-type") or "").split(";", 1)[0].strip().lower()
    if media not in ("application/x-ndjson", "application/jsonl", "application/ndjson"):
        raise UnsupportedMediaType(f"send quarantine records as application/x-ndjson, not {media or 'nothing'}")
    records = _parse(await request.body())
    now = time.time()
    rows = [
        {
            "client_id": caller.client_id,
            "member": caller.member,
            "received_at": now,
            "record_hash": hashlib.sha256(orjson.dumps(record, option=orjson.OPT_SORT_KEYS)).hexdigest(),
            "source": str(record.get("source"))[:200] if record.get("source") is not None else None,
            "stage": str(record.get("stage"))[:32] if record.get("stage") is not None else None,
            "record": record,
        }
        for record in records
    ]
    engine = exchange.services.engine
    dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
    stored = 0
    async with writer(engine), engine.begin() as conn:
        if rows:
            # RETURNING counts what was stored on both engines (executemany's rowcount does not on asyncpg).
            statement = (
                dialect.insert(quarantined_records)
                .on_conflict_do_nothing(index_elements=["client_id", "record_hash"])
                .returning(quarantined_records.c.id)
            )
            stored = len((await conn.execute(statement, rows)).all())
        record = audit_record(
            request,
            caller,
            "quarantine.stored",
            resource="/api/v1/quarantine",
            status=200,
            detail={"received": len(rows), "stored": stored},
        )
        await exchange.services.audit.append(record, conn)
    mark_audited(request)
    return {"received": len(rows), "stored": stored, "duplicates": len(rows) - stored}


@router.get("/quarantine", summary="Rejected records: your own, or everyone's with the admin scope.")
async def listing(
    caller: CallerDep,
    exchange: ExchangeDep,
    after: int = Query(0, ge=0, le=2**63 - 1, description="The last id of the previous page."),
    limit: int = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT),
    source: str | None = Query(None, description="Only records from this source (adapter or system)."),
) -> dict[str, Any]:
    query = sa.select(quarantined_records).where(quarantined_records.c.id > after)
    if not caller.has_scope("admin"):
        query = query.where(quarantined_records.c.client_id == caller.client_id)
    if source is not None:
        query = query.where(quarantined_records.c.source == source)
    async with exchange.services.engine.connect() as conn:
        rows = (await conn.execute(query.order_by(quarantined_records.c.id).limit(limit))).all()
    items = [
        {
            "id": r.id,
            "clientId": r.client_id,
            "member": r.member,
            "receivedAt": r.received_at,
            "source": r.source,
            "stage": r.stage,
            "record": r.record,
        }
        for r in rows
    ]
    return {"items": items, "after": rows[-1].id if len(rows) == limit else None}
