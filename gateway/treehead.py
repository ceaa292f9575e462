"""Signed tree heads (RFC 9162 section 4.10, in JWS form): what the hub publishes and what witnesses keep.

A head commits to the first ``tree_size`` audit records: the Merkle root over them, the chain hash of the last
one, and the time it was signed. The signature is a compact JWS (ES256) by the hub's ``audit-checkpoint`` key,
whose public half is in the hub's JWKS (``/oauth/jwks``), so anyone can check a head they were given, and keep it:

    head = SignedHead.from_json(httpx.get(f"{hub}/api/v1/audit/tree-head").json())
    head.verify(KeySet.import_key_set(httpx.get(f"{hub}/oauth/jwks").json()))   # raises HeadInvalid

The published JSON repeats the signed fields in the clear for convenience; :meth:`SignedHead.verify` checks that
they equal the signed ones, so a head file edited by hand fails.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from gateway.keys import SigningKey

HEAD_TYPE = "qala-tree-head+jws"
HEAD_ALGS = ["ES256"]


class HeadInvalid(Exception):
    """A tree head whose signature, issuer or content does not check out."""


@dataclass(frozen=True)
class SignedHead:
    issuer: str
    tree_size: int
    root_hash: str  # lowercase hex SHA-256
    chain_hash: str  # record_hash of record ``tree_size`` (the genesis hash for an empty log)
    timestamp: int  # milliseconds since the epoch, as in RFC 9162
    signature: str  # compact JWS over :meth:`payload`

    def payload(self) -> dict[str, Any]:
        return {
            "iss": self.issuer,
            "tree_size": self.tree_size,
            "root_hash": self.root_hash,
            "chain_hash": self.chain_hash,
            "timestamp": self.timestamp,
        }

    @classmethod
    def sign(
        cls, key: SigningKey, *, issuer: str, tree_size: int, root_hash: str, chain_hash: str, timestamp: int
    ) -> SignedHead:
        unsigned = cls(issuer, tree_size, root_hash, chain_hash, timestamp, "")
        header = {"alg": key.alg, "kid": key.kid, "typ": HEAD_TYPE}
        body = json.dumps(unsigned.payload(), sort_keys=True, separators=(",", ":"))
        token = jws.serialize_compact(header, body, key.key, algorithms=[key.alg])
        return cls(issuer, tree_size, root_hash, chain_hash, timestamp, token)

    def as_json(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "treeSize": self.tree_size,
            "rootHash": self.root_hash,
            "chainHash": self.chain_hash,
            "timestamp": self.timestamp,
            "signature": self.signature,
        }

    @classmethod
    def from_json(cls, value: Any) -> SignedHead:
        """Read a head in its published JSON form; raises :class:`HeadInvalid` naming what is missing."""
        if not isinstance(value, dict):
            raise HeadInvalid("a tree head is a JSON object")
        try:
            return cls(
                issuer=str(value["issuer"]),
                tree_size=_int(value["treeSize"]),
                root_hash=str(value["rootHash"]),
                chain_hash=str(value["chainHash"]),
                timestamp=_int(value["timestamp"]),
                signature=str(value["signature"]),
            )
        except KeyError as exc:
            raise HeadInvalid(f"the tree head has no {exc.args[0]!r}") from exc

    @classmethod
    def from_jws(cls, token: str, keys: KeySet) -> SignedHead:
        """The head a stored JWS signs, after checking its signature."""
        payload = _verified_payload(token, keys)
        try:
            return cls(
                issuer=str(payload["iss"]),
                tree_size=_int(payload["tree_size"]),
                root_hash=str(payload["root_hash"]),
                chain_hash=str(payload["chain_hash"]),
                timestamp=_int(payload["timestamp"]),
                signature=token,
            )
        except KeyError as exc:
            raise HeadInvalid(f"the signed tree head has no {exc.args[0]!r}") from exc

    def verify(self, keys: KeySet, issuer: str | None = None) -> None:
        """Check the signature with ``keys`` and that the clear fields are the signed ones (and the issuer)."""
        if self.tree_size < 0:
            raise HeadInvalid("a tree size cannot be negative")
        if _verified_payload(self.signature, keys) != self.payload():
            raise HeadInvalid(f"the tree head at size {self.tree_size} differs from what was signed")
        if issuer is not None and self.issuer.rstrip("/") != issuer.rstrip("/"):
            raise HeadInvalid(f"the tree head was issued by {self.issuer!r}, not {issuer!r}")

    def describe(self) -> str:
        return f"tree head {self.tree_size} {self.root_hash[:16]}..."


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise HeadInvalid(f"expected an integer, got {value!r}")
    return value


def _verified_payload(token: str, keys: KeySet) -> dict[str, Any]:
    try:
        header = jws.extract_compact(token.encode()).protected
        if header.get("typ") != HEAD_TYPE:
            raise HeadInvalid(f"not a tree head (typ {header.get('typ')!r})")
        payload = json.loads(jws.deserialize_compact(token, keys, algorithms=HEAD_ALGS).payload)
    except (JoseError, ValueError) as exc:
        raise HeadInvalid("the tree head's signature does not verify with the hub's published keys") from exc
    if not isinstance(payload, dict):
        raise HeadInvalid("the tree head's payload is not a JSON object")
    return payload
