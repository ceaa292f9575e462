"""The hash-chained audit log: what gets recorded, and `qala audit verify` catching every kind of tampering."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.audit import (
    AuditLog,
    AuditRecord,
    _chained,
    _timestamp,
    audit_head,
    audit_log,
    canonical,
    canonical_json,
    record_hash,
)
from gateway.db import make_engine
from gateway.services import Services, open_services
from gateway.settings import Settings
from qala.cli import main
from tests.gateway.conftest import get_token

QALA = str(Path(sys.executable).with_name("qala"))


@dataclass
class Outcome:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def qala(capsys: pytest.CaptureFixture[str]) -> Callable[..., Outcome]:
    """Run `qala ...` in process (the real entry point, exit code and output; no interpreter start-up)."""

    def run(*args: str) -> Outcome:
        capsys.readouterr()
        try:
            main(list(args))
            code = 0
        except SystemExit as exit:
            code = int(exit.code or 0)
        captured = capsys.readouterr()
        return Outcome(code, captured.out, captured.err)

    return run


async def seed(database_url: str, count: int = 6, checkpoint: bool = False) -> None:
    async with open_services(Settings(database_url=database_url)) as services:
        for index in range(count):
            record = AuditRecord(
                action="api.call",
                outcome="ok",
                status=200,
                client_id=f"qc_{index}",
                method="GET",
                route="/api/v1/whoami",
                resource=f"/api/v1/whoami?n={index}",
                trace_id=f"{index:032x}",
                detail={"n": index, "city": "Астана"},
            )
            await services.audit.append(record)
        if checkpoint:
            await services.checkpoints.take(services.audit)


async def execute(database_url: str, *statements: Any) -> None:
    engine = make_engine(database_url)
    try:
        async with engine.begin() as conn:
            for statement in statements:
                await conn.execute(statement)
    finally:
        await engine.dispose()


def where(seq: int) -> Any:
    return audit_log.c.seq == seq


TAMPERING = {
    "edit": (lambda: [audit_log.update().where(where(3)).values(outcome="refused")], "record 3 altered"),
    "edit detail": (lambda: [audit_log.update().where(where(2)).values(detail={"n": 99})], "record 2 altered"),
    "delete": (lambda: [audit_log.delete().where(where(3))], "record 3 removed"),
    "delete last": (lambda: [audit_log.delete().where(where(6))], "records 6..6 removed from the end"),
    "reorder": (
        lambda: [
            audit_log.update().where(where(2)).values(seq=-2),
            audit_log.update().where(where(4)).values(seq=2),
            audit_log.update().where(where(-2)).values(seq=4),
        ],
        "record 2 does not link to record 1",
    ),
}


@pytest.mark.parametrize("kind", list(TAMPERING))
def test_verify_catches_tampering(database_url: str, kind: str, qala: Callable[..., Outcome]) -> None:
    asyncio.run(seed(database_url))
    intact = qala("audit", "verify", "--database-url", database_url)
    assert intact.returncode == 0, intact.stderr
    assert "intact: 6 records" in intact.stdout
    statements, expected = TAMPERING[kind]
    asyncio.run(execute(database_url, *statements()))
    broken = qala("audit", "verify", "--database-url", database_url)
    assert broken.returncode == 1
    assert expected in broken.stderr
    assert broken.stderr.count("\n") == 1, "one line, no traceback"


def test_signed_checkpoint_catches_a_rewritten_chain(database_url: str, qala: Callable[..., Outcome]) -> None:
    asyncio.run(seed(database_url, checkpoint=True))

    async def rewrite() -> None:
        # An attacker with database access but not the signing key: edit record 3 and re-hash everything after it.
        engine = make_engine(database_url)
        try:
            async with engine.begin() as conn:
                rows = [dict(r._mapping) for r in await conn.execute(sa.select(audit_log).order_by(audit_log.c.seq))]
                prev = rows[1]["record_hash"]
                for row in rows[2:]:
                    if row["seq"] == 3:
                        row["outcome"] = "refused"
                    row["prev_hash"] = prev
                    row["record_hash"] = prev = record_hash(row)
                    values = {"outcome": row["outcome"], "prev_hash": row["prev_hash"], "record_hash": prev}
                    await conn.execute(audit_log.update().where(where(row["seq"])).values(**values))
                await conn.execute(audit_head.update().values(hash=prev))
            log = AuditLog(engine)
            assert (await log.verify()).intact, "the rewrite is consistent: only the checkpoint can tell"
        finally:
            await engine.dispose()

    asyncio.run(rewrite())
    result = qala("audit", "verify", "--database-url", database_url)
    assert result.returncode == 1
    assert "records 1..6 differ from the signed tree head of size 6" in result.stderr


async def test_tokens_and_api_calls_are_recorded_with_trace_ids(
    http: httpx.AsyncClient, register: Any, services: Services
) -> None:
    who = await register()
    token = await get_token(http, who)
    await http.post("/oauth/token", data={"grant_type": "client_credentials"}, auth=(who.client_id, "qs_wrong"))
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    await http.get(
        "/api/v1/whoami",
        headers={"Authorization": f"Bearer {token}", "traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"},
    )
    await http.get("/api/v1/admin/members", headers={"Authorization": f"Bearer {token}"})
    records = await services.audit.records()
    issued, refused, call, forbidden = records[-4:]
    assert (issued["action"], issued["outcome"], issued["client_id"]) == ("token.issued", "ok", who.client_id)
    assert issued["detail"]["jti"]
    assert (refused["action"], refused["outcome"], refused["status"]) == ("token.refused", "invalid_client", 401)
    assert refused["client_id"] == who.client_id
    assert (call["action"], call["route"], call["status"], call["trace_id"]) == (
        "api.call",
        "/api/v1/whoami",
        200,
        trace_id,
    )
    assert call["member"] == who.client.member
    assert (forbidden["route"], forbidden["status"], forbidden["outcome"]) == ("/api/v1/admin/members", 403, "refused")
    assert (await services.audit.verify()).intact


async def test_append_joins_the_callers_transaction(services: Services) -> None:
    before = await services.audit.head()

    async def failing_write() -> None:
        async with services.engine.begin() as conn:
            await services.audit.append(AuditRecord(action="entity.create", outcome="ok"), conn)
            raise RuntimeError("the entity write failed")

    with pytest.raises(RuntimeError):
        await failing_write()
    assert await services.audit.head() == before, "a rolled-back transaction leaves no audit record"
    async with services.engine.begin() as conn:
        seq, _ = await services.audit.append(AuditRecord(action="entity.create", outcome="ok"), conn)
    assert seq == before[0] + 1


async def test_concurrent_appends_keep_one_chain(services: Services) -> None:
    async def writer(n: int) -> None:
        for index in range(10):
            await services.audit.append(AuditRecord(action="load", outcome="ok", detail={"w": n, "i": index}))

    await asyncio.gather(*(writer(n) for n in range(5)))
    report = await services.audit.verify()
    assert report.intact, report.problem
    assert report.records == 50


async def test_records_appended_while_verifying_are_not_taken_for_tampering(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    for index in range(5):
        await services.audit.append(AuditRecord(action="load", outcome="ok", detail={"i": index}))
    seen = await services.audit.head()
    for index in range(3):  # a busy hub keeps writing after verify has read the head
        await services.audit.append(AuditRecord(action="load", outcome="ok", detail={"later": index}))

    async def head_when_verify_started() -> tuple[int, str]:
        return seen

    monkeypatch.setattr(services.audit, "head", head_when_verify_started)
    report = await services.audit.verify()
    assert report.intact, report.problem
    assert report.records == seen[0]
    # ... while a record really removed from the end is still caught
    async with services.engine.begin() as conn:
        await conn.execute(sa.delete(audit_log).where(audit_log.c.seq == seen[0]))
    broken = await services.audit.verify()
    assert not broken.intact
    assert f"records {seen[0]}..{seen[0]} removed from the end" in (broken.problem or "")


def test_tail_prints_latest_records(database_url: str, qala: Callable[..., Outcome]) -> None:
    asyncio.run(seed(database_url))
    result = qala("audit", "tail", "-n", "2", "--database-url", database_url)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line.split()[0] for line in lines] == ["5", "6"]
    assert "trace=00000000000000000000000000000005" in lines[1]


def test_verify_as_a_real_process(database_url: str) -> None:
    asyncio.run(seed(database_url))
    asyncio.run(execute(database_url, audit_log.update().where(where(4)).values(client_id="qc_someone_else")))
    result = subprocess.run(
        [QALA, "audit", "verify", "--database-url", database_url],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1
    assert (
        result.stderr == "qala: error: audit log NOT intact: record 4 altered: its content no longer matches its hash\n"
    )


async def test_a_failed_group_commit_leaves_the_chain_as_it_was(services: Services) -> None:
    """A record that cannot be written fails its whole group commit (each waiting caller learns), which rolls back
    the head it had already moved; the next append continues the chain."""
    before = await services.audit.head()
    good = services.audit.append(AuditRecord(action="load", outcome="ok"))
    bad = services.audit.append(AuditRecord(action="load", outcome="ok", detail={"not json": {1, 2}}))
    results = await asyncio.gather(good, bad, return_exceptions=True)
    assert all(isinstance(result, TypeError) for result in results), results
    assert await services.audit.head() == before
    seq, _ = await services.audit.append(AuditRecord(action="load", outcome="ok"))
    assert seq == before[0] + 1
    report = await services.audit.verify()
    assert report.intact, report.problem


# -- the canonical form a record hash covers ------------------------------------------------------------------------

_TEXT = st.text(st.characters(codec="utf-8") | st.sampled_from('\x00\x1f\x7f\b\f\n\r\t"\\/\u2028\u2029\ufeff'))
_SCALAR = st.none() | st.booleans() | st.integers() | st.integers(-(2**70), 2**70) | st.floats() | _TEXT
_VALUES = st.recursive(_SCALAR, lambda inner: st.lists(inner) | st.dictionaries(_TEXT, inner), max_leaves=20)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(_TEXT, _VALUES))
def test_canonical_is_the_standard_library_json_byte_for_byte(fields: dict[str, Any]) -> None:
    """orjson makes the canonical form only where it writes what the definition writes: over non-ASCII, escapes,
    floats (``1e+16``, NaN), integers beyond 64 bits and nesting, the bytes, and so every chain hash, are the same."""
    assert canonical(fields) == canonical_json(fields)


@pytest.mark.parametrize(
    "fields",
    [
        {"a": 1e16, "b": 0.1, "c": -0.0, "d": float("inf")},
        {"n": 2**64, "m": -(2**63) - 1, "k": 2**63 - 1},
        {"s": "Қазақ 😀 \u2028\x7f\x00\x1f", "z": None, "t": True, "f": False},
        {"detail": {"ü": [1, {"b": 2, "a": [None, "x"]}], "A": {}, "é": []}, "seq": 7},
        {"tuple": (1, 2), "nested": [{"x": (3,)}]},
        {"int_key": {1: "one"}},
    ],
)
def test_canonical_is_the_standard_library_json_on_tricky_values(fields: dict[str, Any]) -> None:
    assert canonical(fields) == canonical_json(fields)


def test_canonical_refuses_what_the_definition_refuses() -> None:
    with pytest.raises(UnicodeEncodeError):
        canonical({"s": "\ud800"})
    with pytest.raises(UnicodeEncodeError):
        canonical_json({"s": "\ud800"})


def test_a_record_hash_is_unchanged() -> None:
    """A chain written before orjson made the canonical form still verifies: this record's hash, computed by the
    standard library's JSON, is fixed here."""
    fields = {
        "seq": 12,
        "at": "2026-12-05T18:40:00.123456Z",
        "action": "entity.created",
        "outcome": "ok",
        "status": 201,
        "client_id": "qc_0123",
        "member": "970240001334",
        "method": "POST",
        "route": "/api/v1/service-requests",
        "resource": "urn:ngsi-ld:ServiceRequest:astana:Қ-1",
        "trace_id": "0123456789abcdef0123456789abcdef",
        "detail": {"reason": 'тест "quoted"\n', "count": 3},
        "prev_hash": "ab" * 32,
    }
    assert record_hash(fields) == hashlib.sha256(canonical_json(fields)).hexdigest()
    assert record_hash(fields) == "8599761f36bb0259f545cc182a525a947016e8c7f0790308fbdd7743dc8f6e1f"


def _gathered(
    records: list[AuditRecord], last_seq: int, prev_hash: str, now: float
) -> tuple[list[tuple[Any, ...]], list[tuple[int, str]]]:
    """The rows and hashes of an append as the log made them before _chained wrote them out: every field gathered
    by name, the hash by record_hash, the row by the table's columns."""
    seq, rows, results = last_seq - len(records), [], []
    for record in records:
        seq += 1
        fields = {**dataclasses.asdict(record), "seq": seq, "at": _timestamp(now), "prev_hash": prev_hash}
        prev_hash = fields["record_hash"] = record_hash(fields)
        fields["detail"] = orjson.dumps(fields["detail"]).decode()
        rows.append(tuple(fields[column.name] for column in audit_log.columns))
        results.append((seq, prev_hash))
    return rows, results


def test_chained_rows_and_hashes_are_those_gathered_by_name() -> None:
    records = [
        AuditRecord(
            action="entity.created",
            outcome="ok",
            status=201,
            client_id="qc_1",
            member="970240001334",
            method="POST",
            route="/api/v1/service-requests",
            resource="urn:ngsi-ld:ServiceRequest:astana:Қ-1",
            trace_id="0123456789abcdef0123456789abcdef",
        ),
        AuditRecord(
            action="api.unauthorized",
            outcome="refused",
            status=401,
            detail={"reason": 'expired "token"\n', "source": "127.0.0.1", "suppressed": 0},
        ),
        AuditRecord(action="kpi", outcome="ok", detail={"ratio": 0.1, "nested": [{"b": None, "a": 1e16}]}),
        AuditRecord(action="token.issued", outcome="ok"),
    ]
    assert _chained(records, 41, "ab" * 32, 1_765_000_000.123456) == _gathered(
        records, 41, "ab" * 32, 1_765_000_000.123456
    )
