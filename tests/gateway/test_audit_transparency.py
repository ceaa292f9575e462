"""The audit log as a transparency log: signed tree heads, proofs, `verify --against` and the witness.

The attacks are those of issue 15, by someone with write access to the database but not the hub's keys: edit a
record, recompute every later hash and delete the checkpoints; truncate the tail and rewrite the chain head row.
The database alone cannot tell (the plain `verify` passes, and says so); a tree head kept outside catches each.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from joserfc import jws
from joserfc.jwk import KeySet

from gateway.audit import AuditRecord, audit_head, audit_log, entry, record_hash
from gateway.audit_tree import audit_tree_nodes
from gateway.audit_verify import verify_log
from gateway.checkpoints import audit_checkpoints
from gateway.db import make_engine
from gateway.merkle import leaf_hash, verify_consistency, verify_inclusion
from gateway.services import Services, open_services
from gateway.settings import Settings
from gateway.treehead import HeadInvalid, SignedHead
from gateway.witness import WitnessAlarm, WitnessState, witness
from tests.gateway.conftest import get_token
from tests.gateway.serving import HubProcess, register_client
from tests.gateway.test_audit import Outcome, execute, qala, seed, where

__all__ = ["qala"]  # the fixture, imported for its side effect


async def save_head(database_url: str, path: Path) -> SignedHead:
    """Sign a head now and keep it in a file, as a witness would have."""
    async with open_services(Settings(database_url=database_url)) as services:
        head = await services.checkpoints.take(services.audit)
    assert head is not None
    path.write_text(json.dumps(head.as_json()))
    return head


async def append(database_url: str, count: int) -> None:
    async with open_services(Settings(database_url=database_url)) as services:
        for index in range(count):
            await services.audit.append(AuditRecord(action="api.call", outcome="ok", detail={"later": index}))


async def rewrite(database_url: str, seq: int, **values: Any) -> None:
    """Edit record ``seq`` and recompute every later hash and the chain head: the chain verifies again."""
    engine = make_engine(database_url)
    try:
        async with engine.begin() as conn:
            rows = [dict(r._mapping) for r in await conn.execute(sa.select(audit_log).order_by(audit_log.c.seq))]
            prev = rows[seq - 2]["record_hash"] if seq > 1 else "0" * 64
            for row in rows[seq - 1 :]:
                if row["seq"] == seq:
                    row.update(values)
                row["prev_hash"] = prev
                row["record_hash"] = prev = record_hash(row)
                changed = {**values, "prev_hash": row["prev_hash"], "record_hash": prev} if row["seq"] == seq else {}
                changed = changed or {"prev_hash": row["prev_hash"], "record_hash": prev}
                await conn.execute(audit_log.update().where(where(row["seq"])).values(**changed))
            await conn.execute(audit_head.update().values(hash=prev))
    finally:
        await engine.dispose()


async def truncate(database_url: str, keep: int) -> None:
    """Drop every record after ``keep`` and point the chain head row at the new last one."""
    engine = make_engine(database_url)
    try:
        async with engine.begin() as conn:
            last = (await conn.execute(sa.select(audit_log.c.record_hash).where(where(keep)))).scalar_one()
            await conn.execute(audit_log.delete().where(audit_log.c.seq > keep))
            await conn.execute(audit_head.update().values(seq=keep, hash=last))
    finally:
        await engine.dispose()


DELETE_CHECKPOINTS = (audit_checkpoints.delete(), audit_tree_nodes.delete())

ATTACKS: dict[str, tuple[Callable[[str], Any], str]] = {
    "edit a record, recompute later hashes, delete checkpoints": (
        lambda url: rewrite(url, 3, outcome="refused"),
        "records 1..6 differ from the signed tree head of size 6",
    ),
    "truncate the tail and rewrite the head row": (
        lambda url: truncate(url, 4),
        "records 5..6 removed: a signed tree head covers 6 records",
    ),
    "rewrite the head row's record": (
        lambda url: rewrite(url, 6, detail={"n": 999}),
        "records 1..6 differ from the signed tree head of size 6",
    ),
}


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_verify_against_a_kept_head_catches_what_the_database_alone_cannot(
    database_url: str, attack: str, qala: Callable[..., Outcome], tmp_path: Path
) -> None:
    asyncio.run(seed(database_url))
    kept = tmp_path / "head.json"
    asyncio.run(save_head(database_url, kept))
    asyncio.run(append(database_url, 2))  # the log goes on after the head was kept
    assert qala("audit", "verify", "--against", str(kept), "--database-url", database_url).returncode == 0
    tamper, expected = ATTACKS[attack]
    asyncio.run(tamper(database_url))
    asyncio.run(execute(database_url, *DELETE_CHECKPOINTS))

    inside = qala("audit", "verify", "--database-url", database_url)
    assert inside.returncode == 0, "the documented weakness: the database agrees with itself"
    assert "cannot be told apart from an intact log" in inside.stderr, "and verify says so"

    caught = qala("audit", "verify", "--against", str(kept), "--database-url", database_url)
    assert caught.returncode == 1, caught.stdout
    assert expected in caught.stderr
    assert caught.stderr.count("\n") == 1, "one line, no traceback"


def test_deleting_only_the_kept_heads_checkpoint_is_caught(
    database_url: str, qala: Callable[..., Outcome], tmp_path: Path
) -> None:
    asyncio.run(seed(database_url))
    kept = tmp_path / "head.json"
    asyncio.run(save_head(database_url, kept))
    asyncio.run(execute(database_url, audit_checkpoints.delete().where(audit_checkpoints.c.seq == 6)))
    caught = qala("audit", "verify", "--against", str(kept), "--database-url", database_url)
    assert caught.returncode == 1
    assert "the signed tree head of size 6 was deleted from the hub" in caught.stderr


def test_stored_heads_catch_a_rewrite_that_left_them_in_place(database_url: str, qala: Callable[..., Outcome]) -> None:
    asyncio.run(seed(database_url))
    asyncio.run(save_head(database_url, Path("/dev/null")))
    asyncio.run(rewrite(database_url, 2, client_id="qc_someone_else"))
    result = qala("audit", "verify", "--database-url", database_url)
    assert result.returncode == 1
    assert "records 1..6 differ from the signed tree head of size 6" in result.stderr


def test_a_forged_or_edited_head_is_refused(database_url: str, qala: Callable[..., Outcome], tmp_path: Path) -> None:
    asyncio.run(seed(database_url))
    kept = tmp_path / "head.json"
    head = asyncio.run(save_head(database_url, kept))
    edited = {**head.as_json(), "treeSize": 3}
    kept.write_text(json.dumps(edited))
    result = qala("audit", "verify", "--against", str(kept), "--database-url", database_url)
    assert result.returncode == 1
    assert "differs from what was signed" in result.stderr


def test_verify_refuses_a_database_that_does_not_exist(qala: Callable[..., Outcome], tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "qala.db"
    result = qala("audit", "verify", "--database-url", f"sqlite:///{missing}")
    assert result.returncode == 2
    assert f"{missing} does not exist" in result.stderr
    assert not missing.parent.exists(), "nothing was created"


async def test_public_tree_head_and_proofs_verify_with_the_published_key(
    http: httpx.AsyncClient, services: Services, register: Any
) -> None:
    none_yet = await http.get("/api/v1/audit/tree-head")
    assert none_yet.status_code == 404
    assert none_yet.headers["content-type"] == "application/problem+json"
    who = await register()
    await get_token(http, who)
    first = await services.checkpoints.take(services.audit)
    assert first is not None
    for _ in range(5):
        await get_token(http, who)
    await services.checkpoints.take(services.audit)
    answer = await http.get("/api/v1/audit/tree-head")
    assert answer.status_code == 200
    head = SignedHead.from_json(answer.json())
    keys = KeySet.import_key_set((await http.get("/oauth/jwks")).json())
    head.verify(keys, issuer="http://testserver")
    assert head.tree_size > first.tree_size

    proof = await http.get(
        "/api/v1/audit/proofs/consistency", params={"first": first.tree_size, "second": head.tree_size}
    )
    nodes = [bytes.fromhex(node) for node in proof.json()["proof"]]
    old, new = bytes.fromhex(first.root_hash), bytes.fromhex(head.root_hash)
    assert verify_consistency(first.tree_size, head.tree_size, old, new, nodes)

    record = (await services.audit.records(after=2, limit=1))[0]
    path = await http.get("/api/v1/audit/proofs/inclusion", params={"seq": 3, "size": head.tree_size})
    nodes = [bytes.fromhex(node) for node in path.json()["proof"]]
    assert verify_inclusion(leaf_hash(entry(record)), 2, head.tree_size, nodes, new)

    beyond = await http.get("/api/v1/audit/proofs/consistency", params={"first": 1, "second": head.tree_size + 50})
    assert beyond.status_code == 400
    assert "does not reach" in beyond.json()["detail"]
    backwards = await http.get("/api/v1/audit/proofs/consistency", params={"first": 5, "second": 2})
    assert backwards.status_code == 400
    paths = (await http.get("/openapi.json")).json()["paths"]
    assert {"/api/v1/audit/tree-head", "/api/v1/audit/proofs/consistency", "/api/v1/audit/proofs/inclusion"} <= set(
        paths
    )


async def test_an_edited_head_signature_is_refused(services: Services) -> None:
    await services.audit.append(AuditRecord(action="x", outcome="ok"))
    head = await services.checkpoints.take(services.audit)
    assert head is not None
    forged = SignedHead(head.issuer, head.tree_size, "00" * 32, head.chain_hash, head.timestamp, head.signature)
    with pytest.raises(HeadInvalid):
        forged.verify(services.checkpoints.key_set())


async def test_witness_keeps_heads_and_raises_the_alarm_on_a_rewrite(
    http: httpx.AsyncClient, services: Services, register: Any, tmp_path: Path, database_url: str
) -> None:
    state = WitnessState.load(tmp_path / "witness.json")
    who = await register()
    for _ in range(3):
        await get_token(http, who)
    await services.checkpoints.take(services.audit)
    assert "first tree head" in await witness(http, "http://testserver", state)
    state.save()
    for _ in range(4):
        await get_token(http, who)
    await services.checkpoints.take(services.audit)
    state = WitnessState.load(tmp_path / "witness.json")
    assert "consistency proof verified" in await witness(http, "http://testserver", state)
    assert "unchanged" in await witness(http, "http://testserver", state)
    state.save()

    # The attacker rewrites record 2 and deletes the tree and heads; the hub then signs what its database holds.
    await rewrite(database_url, 2, outcome="refused")
    await execute(database_url, *DELETE_CHECKPOINTS)
    await get_token(http, who)
    await services.checkpoints.take(services.audit)
    with pytest.raises(WitnessAlarm, match="not consistent with the kept tree head"):
        await witness(http, "http://testserver", state)

    await truncate(database_url, 3)
    await execute(database_url, *DELETE_CHECKPOINTS)
    await services.checkpoints.take(services.audit)
    with pytest.raises(WitnessAlarm, match="shrank"):
        await witness(http, "http://testserver", state)


async def test_verify_recomputes_the_merkle_root_of_each_signed_size(services: Services) -> None:
    for index in range(5):
        await services.audit.append(AuditRecord(action="x", outcome="ok", detail={"i": index}))
    head = await services.checkpoints.take(services.audit)
    assert head is not None
    assert (await services.audit.verify(roots={5: head.root_hash})).intact
    wrong = await services.audit.verify(roots={3: head.root_hash})
    assert not wrong.intact
    assert wrong.problem == "records 1..3 differ from the signed tree head of size 3: the log was rewritten"


def test_witness_and_verify_against_a_running_hub(
    qala: Callable[..., Outcome], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The commands as a user runs them: a real hub process, its public tree head, a witness state file."""
    database_url = f"sqlite:///{tmp_path / 'hub.db'}"
    hub = HubProcess(database_url)
    monkeypatch.setenv("QALA_ISSUER", hub.base)  # the CLI signs heads as the hub it works for
    client_id, secret = register_client(database_url, ["service-requests:read"], ["astana"])
    hub.start()
    try:
        state = tmp_path / "witness.json"
        assert qala("audit", "witness", hub.base, "--state", str(state)).returncode == 2, "no head yet"
        for _ in range(3):
            httpx.post(f"{hub.base}/oauth/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret))
        assert qala("audit", "checkpoint", "--database-url", database_url).stdout.startswith("signed tree head")
        first = qala("audit", "witness", hub.base, "--state", str(state))
        assert first.returncode == 0, first.stderr
        assert "first tree head" in first.stdout
        httpx.post(f"{hub.base}/oauth/token", data={"grant_type": "client_credentials"}, auth=(client_id, "qs_x"))
        qala("audit", "checkpoint", "--database-url", database_url)
        second = qala("audit", "witness", hub.base, "--state", str(state))
        assert "consistency proof verified" in second.stdout, second.stderr
        assert len(json.loads(state.read_text())["heads"]) == 2

        against = qala("audit", "verify", "--against", str(state), "--database-url", database_url)
        assert against.returncode == 0, against.stderr
        assert "consistent with the tree head" in against.stdout
        live = qala("audit", "verify", "--against", hub.base, "--database-url", database_url)
        assert live.returncode == 0, live.stderr

        asyncio.run(rewrite(database_url, 1, outcome="ok-rewritten"))
        asyncio.run(execute(database_url, *DELETE_CHECKPOINTS))
        qala("audit", "checkpoint", "--database-url", database_url)
        alarm = qala("audit", "witness", hub.base, "--state", str(state))
        assert alarm.returncode == 1
        assert alarm.stderr == "qala: error: ALARM: two different tree heads of size 4: the log was rewritten\n"
        caught = qala("audit", "verify", "--against", str(state), "--database-url", database_url)
        assert caught.returncode == 1
    finally:
        hub.stop()


async def test_chain_only_checkpoints_from_before_the_tree_still_verify(services: Services) -> None:
    """Databases signed before the Merkle tree keep their checkpoints: {seq, hash} JWS, no root."""
    for index in range(3):
        await services.audit.append(AuditRecord(action="x", outcome="ok", detail={"i": index}))
    seq, chain = await services.audit.head()
    key = services.keys.signer("audit-checkpoint")
    payload = json.dumps({"iss": "http://testserver", "seq": seq, "hash": chain, "at": 1}, sort_keys=True)
    token = jws.serialize_compact({"alg": key.alg, "kid": key.kid}, payload, key.key, algorithms=[key.alg])
    async with services.engine.begin() as conn:
        await conn.execute(audit_checkpoints.insert().values(seq=seq, record_hash=chain, signed_at=1.0, jws=token))
    assert (await verify_log(services.audit, services.checkpoints)).intact
    assert await services.checkpoints.latest() is None, "a chain-only checkpoint is not a tree head"
    async with services.engine.begin() as conn:
        await conn.execute(audit_checkpoints.update().values(record_hash="0" * 64))
    edited = await verify_log(services.audit, services.checkpoints)
    assert edited.problem == f"checkpoint at record {seq} was edited after signing"
