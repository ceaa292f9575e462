"""The audit log's public transparency surface: the signed tree head and Merkle proofs (RFC 9162 section 4).

No token is needed: the point is that anyone can keep heads and check that each new one extends the last.

    curl http://127.0.0.1:8000/api/v1/audit/tree-head
    curl 'http://127.0.0.1:8000/api/v1/audit/proofs/consistency?first=10&second=42'
    curl 'http://127.0.0.1:8000/api/v1/audit/proofs/inclusion?seq=7&size=42'

Heads are signed by the hub's ``audit-checkpoint`` key, published with the others at ``/oauth/jwks``. Hashes are
lowercase hex SHA-256; leaf *i* of the tree is audit record ``seq = i + 1``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from gateway.errors import BadRequest, NotFound
from gateway.merkle import ProofError
from gateway.services import ServicesDep

router = APIRouter(prefix="/api/v1/audit", tags=["audit transparency"])
BIG = 2**62  # sizes beyond this are nonsense; refusing them keeps them out of the database's integer range


@router.get("/tree-head")
async def tree_head(services: ServicesDep) -> JSONResponse:
    """The newest signed tree head: tree size, Merkle root, chain hash, time (ms) and a JWS by the hub's key."""
    head = await services.checkpoints.latest()
    if head is None:
        raise NotFound("no signed tree head yet: the hub signs one every QALA_AUDIT_CHECKPOINT_SECONDS")
    return JSONResponse(head.as_json(), headers={"Cache-Control": "no-cache"})


@router.get("/proofs/consistency")
async def consistency_proof(
    services: ServicesDep,
    first: Annotated[int, Query(ge=0, le=BIG, description="The older tree size")],
    second: Annotated[int, Query(ge=0, le=BIG, description="The newer tree size")],
) -> dict[str, Any]:
    """RFC 9162 PROOF(first, D[0:second]): the newer tree extends the older one, nothing rewritten or dropped."""
    try:
        proof = await services.tree.consistency(first, second)
    except ProofError as exc:
        raise BadRequest(str(exc)) from exc
    return {"first": first, "second": second, "proof": [node.hex() for node in proof]}


@router.get("/proofs/inclusion")
async def inclusion_proof(
    services: ServicesDep,
    seq: Annotated[int, Query(ge=1, le=BIG, description="The audit record's sequence number")],
    size: Annotated[int, Query(ge=1, le=BIG, description="The tree size (of a signed head)")],
) -> dict[str, Any]:
    """RFC 9162 PATH(seq - 1, D[0:size]): the record is in the tree of that size."""
    try:
        proof = await services.tree.inclusion(seq - 1, size)
    except ProofError as exc:
        raise BadRequest(str(exc)) from exc
    return {"seq": seq, "leafIndex": seq - 1, "treeSize": size, "proof": [node.hex() for node in proof]}
