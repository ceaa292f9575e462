"""``POST /api/v1/batch``: many entities of mixed types as NDJSON, one result line per input line.

The body is first spooled (to disk past a few MiB, so memory stays flat), then its lines are validated and
committed in chunks while the result lines stream back; a chunk's results are sent only after its transaction
has committed, so a client never sees ``created`` for something a crash could still lose. The next chunk is
validated while the database commits the previous one. Reading the whole body
before answering matters: HTTP/1.1 clients (curl, httpx, requests) send all of a body before they read the
response, so a server that answered while still reading would fill both socket buffers and deadlock.

A bad line never rejects the good ones, and the same batch sent again changes nothing (``unchanged``), so a
client that lost the connection simply sends the batch again.

    curl -H "Authorization: Bearer $TOKEN" -H "Content-Type: application/x-ndjson" \\
         --data-binary @entities.ndjson http://127.0.0.1:8000/api/v1/batch
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import tempfile
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import IO, Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from gateway.auth import Caller, CallerDep
from gateway.cities import unknown_city_message
from gateway.exchange import ExchangeDep, UnsupportedMediaType, audit_record, mark_audited, publisher_of
from gateway.inputs import json_issue
from gateway.routes.documents import ndjson_body
from gateway.routes.patch import keep_unseen
from gateway.store.entities import EntityStore
from gateway.store.records import JsonObject, Outcome
from schemas import SchemaRegistry, SchemaVersion

logger = logging.getLogger("qala.gateway.batch")
router = APIRouter(prefix="/api/v1", tags=["exchange"])
NDJSON_TYPES = ("application/x-ndjson", "application/jsonl", "application/ndjson")
CHUNK = 2000
MAX_LINES = 100_000
SPOOL_IN_MEMORY = 8 * 1024 * 1024


@dataclass
class _Chunk:
    results: list[JsonObject] = field(default_factory=list)
    valid: list[tuple[int, JsonObject, SchemaVersion]] = field(default_factory=list)


def _rejected(index: int, entity_id: Any, errors: list[dict[str, str]]) -> JsonObject:
    return {
        "index": index,
        "id": entity_id if isinstance(entity_id, str) else None,
        "status": "rejected",
        "errors": errors,
    }


def check_line(index: int, raw: bytes, registry: SchemaRegistry, caller: Caller) -> tuple[JsonObject, Any]:
    """(entity, schema) for a good line, or (rejection, None) with the precise reason."""
    try:
        entity = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return _rejected(
            index, None, [{"pointer": "", "keyword": "x-json", "message": f"invalid JSON: {exc.msg}"}]
        ), None
    issue = json_issue(entity)
    if issue is not None:
        pointer, _, message = issue.partition(": ")
        return _rejected(
            index, None, [{"pointer": pointer.rstrip("/"), "keyword": "x-input", "message": message}]
        ), None
    if not isinstance(entity, dict):
        return _rejected(
            index,
            None,
            [{"pointer": "", "keyword": "type", "message": "each line must be one JSON object (an entity)"}],
        ), None
    type_name = entity.get("type")
    if not isinstance(type_name, str) or not registry.has(type_name):
        issues = registry.explain(entity)
        return _rejected(index, entity.get("id"), [i.as_dict() for i in issues]), None
    schema = registry.get(type_name)
    if not caller.has_scope(f"{schema.collection}:write"):
        message = f"the token lacks the scope {schema.collection}:write"
        return _rejected(
            index, entity.get("id"), [{"pointer": "/type", "keyword": "x-scope", "message": message}]
        ), None
    if not schema.is_valid(entity):
        return _rejected(index, entity.get("id"), [i.as_dict() for i in schema.explain(entity)]), None
    unknown = unknown_city_message(entity["city"])
    if unknown is not None:
        return _rejected(index, entity["id"], [{"pointer": "/city", "keyword": "x-city", "message": unknown}]), None
    if not caller.may_touch(entity["city"]):
        message = f"client {caller.client_id!r} may not write city {entity['city']!r}"
        return _rejected(index, entity["id"], [{"pointer": "/city", "keyword": "x-city", "message": message}]), None
    return entity, schema


def _classify(index: int, raw: bytes, registry: SchemaRegistry, caller: Caller) -> tuple[JsonObject, Any]:
    if index >= MAX_LINES:  # the response has started: refuse line by line, never silently drop
        message = f"a batch holds at most {MAX_LINES} lines; send the rest in another batch"
        return _rejected(index, None, [{"pointer": "", "keyword": "x-batch-size", "message": message}]), None
    try:
        return check_line(index, raw, registry, caller)
    except Exception:  # a line that breaks a check is that line's result; the stream and the other lines go on
        logger.exception("batch line %d could not be checked", index)
        message = "this line could not be checked; it has been logged"
        return _rejected(index, None, [{"pointer": "", "keyword": "x-internal", "message": message}]), None


def _lines(results: list[JsonObject]) -> bytes:
    return b"".join(orjson.dumps(r) + b"\n" for r in results)


async def _spool(stream: AsyncIterator[bytes]) -> IO[bytes]:
    spool: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)  # noqa: SIM115 -- closed by caller
    async for chunk in stream:
        spool.write(chunk)
    spool.seek(0)
    return spool


@router.post(
    "/batch",
    summary="Publish entities of any type as NDJSON; one result line per input line.",
    openapi_extra={
        **ndjson_body("One canonical entity of any type per line."),
        "responses": {
            "200": {
                "description": "One result per input line, in order: created, updated, unchanged or rejected.",
                "content": {"application/x-ndjson": {"schema": {"type": "string"}}},
            }
        },
    },
)
async def batch(request: Request, caller: CallerDep, exchange: ExchangeDep) -> StreamingResponse:
    media = (request.headers.get("content-type") or "").split(";", 1)[0].strip().lower()
    if media not in NDJSON_TYPES:
        raise UnsupportedMediaType(f"send the batch as application/x-ndjson, not {media or 'no Content-Type'}")
    writer = _BatchWriter(request, caller, exchange.registry, exchange.store)
    body = await _spool(request.stream())

    async def closing() -> AsyncIterator[bytes]:
        try:
            async for piece in writer.results(body):
                yield piece
        finally:
            body.close()

    return StreamingResponse(closing(), media_type="application/x-ndjson")


class _BatchWriter:
    """Checks a spooled batch line by line and writes it chunk by chunk, one chunk's commit overlapping the
    checks of the next; a chunk's result lines are released only once it has committed."""

    def __init__(self, request: Request, caller: Caller, registry: SchemaRegistry, store: EntityStore) -> None:
        self.request, self.caller, self.registry, self.store = request, caller, registry, store
        self.publisher = publisher_of(caller)

    async def results(self, body: IO[bytes]) -> AsyncIterator[bytes]:
        chunk = _Chunk()
        writing: asyncio.Task[list[JsonObject]] | None = None
        index = -1
        try:
            for raw in body:
                if not raw.strip():
                    continue
                index += 1
                outcome, schema = _classify(index, raw, self.registry, self.caller)
                if schema is None:
                    chunk.results.append(outcome)
                else:
                    chunk.results.append({"index": index})  # filled in after the commit
                    chunk.valid.append((index, outcome, schema))
                if len(chunk.results) >= CHUNK:
                    if writing is not None:
                        yield _lines(await asyncio.shield(writing))
                    writing, chunk = await self.start(chunk), _Chunk()
            if writing is not None:
                yield _lines(await asyncio.shield(writing))
                writing = None
            if chunk.results:
                writing = await self.start(chunk)
                yield _lines(await asyncio.shield(writing))
                writing = None
        finally:
            # The client went away, or a write failed: a transaction under way still finishes (shielded above
            # from the response's cancellation), and its outcome is collected here rather than left unread.
            if writing is not None:
                with contextlib.suppress(Exception, asyncio.CancelledError):
                    await asyncio.shield(writing)

    async def start(self, chunk: _Chunk) -> asyncio.Task[list[JsonObject]]:
        """Write ``chunk`` in a task; return once only its commit is left (or it has finished or failed), so
        that the next chunk is checked while the database commits this one."""
        committing = asyncio.Event()
        task = asyncio.create_task(self.commit(chunk, committing.set))
        waiter = asyncio.create_task(committing.wait())
        try:
            await asyncio.wait((task, waiter), return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
        return task

    async def keep_unseen(self, chunk: _Chunk) -> None:
        """Carry over the personal fields this writer cannot see and left out, as a PUT does."""
        blind = [
            (position, entity)
            for position, (_, entity, schema) in enumerate(chunk.valid)
            if schema.personal_fields and not self.caller.may_read_personal(schema.collection, entity["city"])
        ]
        if not blind:
            return
        current = await self.store.payloads([entity["id"] for _, entity in blind])
        for position, entity in blind:
            index, _, schema = chunk.valid[position]
            kept = keep_unseen(schema, self.caller, entity, current.get(entity["id"]))
            chunk.valid[position] = (index, kept, schema)

    async def commit(self, chunk: _Chunk, before_commit: Callable[[], None]) -> list[JsonObject]:
        if chunk.valid:
            await self.keep_unseen(chunk)
            counts = {"lines": len(chunk.results), "valid": len(chunk.valid)}
            record = audit_record(
                self.request, self.caller, "entity.batch", resource="/api/v1/batch", status=200, detail=counts
            )
            written: list[tuple[int, Outcome] | None]
            try:
                written = list(
                    await self.store.write_many(
                        [(e, s) for _, e, s in chunk.valid], self.publisher, record, before_commit=before_commit
                    )
                )
            except Exception:
                # The chunk's transaction failed as a whole: find the line(s) at fault by writing one at a time,
                # so that the good lines are still accepted and only the bad ones are refused.
                logger.exception("a batch chunk failed to commit; retrying its lines one by one")
                before_commit()
                written = [await self._write_one(entity, schema) for _, entity, schema in chunk.valid]
            mark_audited(self.request)
            first = chunk.results[0]["index"]
            for (index, entity, _), result in zip(chunk.valid, written, strict=True):
                if result is None:
                    message = "the store refused this line; it has been logged"
                    error = {"pointer": "", "keyword": "x-store", "message": message}
                    chunk.results[index - first] = _rejected(index, entity["id"], [error])
                    continue
                version, outcome = result
                chunk.results[index - first] = {
                    "index": index,
                    "id": entity["id"],
                    "status": outcome.value,
                    "version": version,
                }
        return chunk.results

    async def _write_one(self, entity: JsonObject, schema: SchemaVersion) -> tuple[int, Outcome] | None:
        record = audit_record(
            self.request,
            self.caller,
            "entity.batch",
            resource="/api/v1/batch",
            status=200,
            detail={"lines": 1, "valid": 1},
        )
        try:
            return (await self.store.write_many([(entity, schema)], self.publisher, record))[0]
        except Exception:
            logger.exception("batch line with id %r could not be stored", entity.get("id"))
            return None
