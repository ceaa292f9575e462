"""A witness of a hub's audit log: keep its signed tree heads and check each new one extends the last.

RFC 9162's monitors in miniature. The witness fetches the hub's newest head, checks its signature with the hub's
published keys, asks the hub for a consistency proof from the last head it kept, and verifies it locally. A hub
that rewrote, reordered or truncated anything its earlier head covered cannot produce that proof, whatever it
did to its own database. Heads are kept in a small JSON state file, which ``qala audit verify --against`` also
reads. The signature is checked against the keys the hub publishes at the time: it shows the hub vouched for the
head; the consistency proof, checked against the head the witness already holds, is what needs no trust at all.

    async with httpx.AsyncClient() as http:
        state = WitnessState.load(Path("hub.json"))
        message = await witness(http, "http://127.0.0.1:8000", state)   # raises WitnessAlarm
        state.save()
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from gateway.merkle import verify_consistency
from gateway.treehead import HeadInvalid, SignedHead

HEAD_PATH = "/api/v1/audit/tree-head"
KEEP = 1000  # heads kept in the state file (the newest matters; older ones are evidence)


class WitnessError(Exception):
    """The hub could not be asked (unreachable, not a Qala hub, bad answer): nothing learnt either way."""


class WitnessAlarm(Exception):
    """The hub's log does not extend a head the witness kept: history was rewritten or truncated."""


def hub_base(url: str) -> str:
    """The hub's base URL from either the base itself or the tree-head URL."""
    url = url.rstrip("/")
    return url[: -len(HEAD_PATH)] if url.endswith(HEAD_PATH) else url


@dataclass
class WitnessState:
    path: Path
    hub: str | None = None
    heads: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def load(cls, path: Path) -> WitnessState:
        if not path.exists():
            return cls(path)
        try:
            data = json.loads(path.read_text())
            return cls(path, data.get("hub"), list(data.get("heads", [])))
        except (OSError, ValueError, AttributeError) as exc:
            raise WitnessError(f"cannot read the witness state {path}: {exc}") from exc

    @property
    def latest(self) -> SignedHead | None:
        return SignedHead.from_json(self.heads[-1]) if self.heads else None

    def keep(self, head: SignedHead) -> None:
        self.heads = [*self.heads, head.as_json()][-KEEP:]

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(self.path.name + ".tmp")
        temporary.write_text(json.dumps({"hub": self.hub, "heads": self.heads}, indent=1) + "\n")
        temporary.replace(self.path)  # a crash never leaves half a state file


async def _get_json(http: httpx.AsyncClient, url: str, params: dict[str, int] | None = None) -> Any:
    try:
        response = await http.get(url, params=params)
    except httpx.HTTPError as exc:
        raise WitnessError(f"cannot reach {url}: {exc}") from exc
    if response.status_code != 200:
        raise WitnessError(f"{url} answered {response.status_code}: {response.text[:200]}")
    try:
        return response.json()
    except ValueError as exc:
        raise WitnessError(f"{url} did not answer JSON") from exc


async def hub_keys(http: httpx.AsyncClient, base: str) -> KeySet:
    try:
        return KeySet.import_key_set(await _get_json(http, f"{base}/oauth/jwks"))
    except (JoseError, ValueError, TypeError, KeyError) as exc:
        raise WitnessError(f"{base}/oauth/jwks is not a JWK Set") from exc


async def fetch_head(http: httpx.AsyncClient, url: str) -> SignedHead:
    """The hub's newest head, its signature checked against the hub's published keys."""
    base = hub_base(url)
    try:
        head = SignedHead.from_json(await _get_json(http, base + HEAD_PATH))
        head.verify(await hub_keys(http, base))
    except HeadInvalid as exc:
        raise WitnessError(f"the tree head of {base} does not check out: {exc}") from exc
    return head


async def witness(http: httpx.AsyncClient, url: str, state: WitnessState) -> str:
    """Fetch the newest head, check it extends the last one kept, keep it; returns what happened, in one line."""
    base = hub_base(url)
    if state.hub is not None and state.hub != base:
        raise WitnessError(f"the state file keeps heads of {state.hub}, not {base}")
    new = await fetch_head(http, base)
    old = state.latest
    state.hub = base
    if old is None:
        state.keep(new)
        return f"first {new.describe()} kept (nothing to compare yet)"
    if new.tree_size < old.tree_size:
        raise WitnessAlarm(
            f"the hub's log shrank from {old.tree_size} to {new.tree_size} records: truncated or rewritten"
        )
    if new.tree_size == old.tree_size:
        if new.root_hash != old.root_hash:
            raise WitnessAlarm(f"two different tree heads of size {new.tree_size}: the log was rewritten")
        return f"{new.describe()} unchanged"
    answer = await _get_json(
        http, f"{base}/api/v1/audit/proofs/consistency", {"first": old.tree_size, "second": new.tree_size}
    )
    try:
        proof = [bytes.fromhex(node) for node in answer["proof"]]
        valid = verify_consistency(
            old.tree_size, new.tree_size, bytes.fromhex(old.root_hash), bytes.fromhex(new.root_hash), proof
        )
    except (KeyError, TypeError, ValueError):
        valid = False
    if not valid:
        raise WitnessAlarm(
            f"{new.describe()} is not consistent with the kept {old.describe()}: "
            f"the first {old.tree_size} records were rewritten"
        )
    state.keep(new)
    return f"{new.describe()} extends {old.describe()} (consistency proof verified)"


async def load_head(http: httpx.AsyncClient, source: str) -> SignedHead:
    """A head from a URL (a hub or its tree-head URL), a saved head file, or a witness state file (its newest)."""
    if urlsplit(source).scheme in ("http", "https"):
        data = await _get_json(http, hub_base(source) + HEAD_PATH)
    else:
        try:
            data = json.loads(Path(source).read_text())
        except (OSError, ValueError) as exc:
            raise WitnessError(f"cannot read a tree head from {source}: {exc}") from exc
    if isinstance(data, dict) and "heads" in data:
        heads = data["heads"]
        if not isinstance(heads, list) or not heads:
            raise WitnessError(f"the witness state {source} holds no head yet")
        data = heads[-1]
    try:
        return SignedHead.from_json(data)
    except HeadInvalid as exc:
        raise WitnessError(f"{source}: {exc}") from exc
