"""Push accepted entities to the hub's batch endpoint, with retries, and resume after an interruption.

The hub answers ``POST /api/v1/batch`` (NDJSON, one entity per line) with one result line per input line:
``{"index", "id", "status": created|updated|unchanged|rejected, "errors": [...]}``. The same batch sent twice
creates nothing twice, so a batch whose answer was lost is simply sent again.

Example::

    client = HubClient("https://hub.example", "ikomek", "s3cret")
    pusher = BatchPusher(client, Path("cases.push-state.json"), fingerprint=file_fingerprint("cases.csv"))
    summary = run(adapter, registry, sink=pusher)

After each committed batch the state file records how many entities the hub has answered for and which of them
it refused; a rerun over the same source skips that many accepted entities and sends the rest. An entity reaches
``--out`` only once the hub holds it, so the output, the summary's accepted count and the hub agree.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson

from adapters.errors import PushError
from adapters.pipeline import Settled
from adapters.records import Entity, Position, Reason

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class HubClient:
    """OAuth 2.0 client-credentials client of the hub's batch API (plain httpx; the transport is injectable)."""

    def __init__(
        self,
        hub: str,
        client_id: str,
        client_secret: str,
        *,
        scope: str | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        attempts: int = 6,
        backoff: float = 0.5,
        timeout: float = 30.0,
    ) -> None:
        self.hub = hub.rstrip("/")
        self.scope = scope
        self.sleep = sleep
        self.attempts = attempts
        self.backoff = backoff
        self._auth = (client_id, client_secret)
        self._token: str | None = None
        self.http = httpx.Client(transport=transport, timeout=timeout)

    def close(self) -> None:
        self.http.close()

    def _refresh_token(self) -> str:
        form = {"grant_type": "client_credentials"}
        if self.scope:
            form["scope"] = self.scope
        try:
            response = self.http.post(f"{self.hub}/oauth/token", data=form, auth=self._auth)
        except httpx.HTTPError as exc:
            raise PushError(f"cannot reach the hub at {self.hub}: {exc}") from exc
        if response.status_code != 200:
            try:
                detail = response.json().get("error", "")
            except ValueError:
                detail = ""
            raise PushError(f"the hub refused the client credentials: HTTP {response.status_code} {detail}".rstrip())
        token = response.json().get("access_token")
        if not isinstance(token, str):
            raise PushError("the hub's token response has no access_token")
        self._token = token
        return token

    def _wait(self, attempt: int, response: httpx.Response | None) -> None:
        delay = self.backoff * 2**attempt
        if response is not None and "retry-after" in response.headers:
            with contextlib.suppress(ValueError):
                delay = float(response.headers["retry-after"])
        self.sleep(min(delay, 60.0))

    def send_batch(self, body: bytes, count: int) -> list[dict[str, Any]]:
        """POST one NDJSON batch; return its ``count`` result lines in input order."""
        return _results(self._post_ndjson("/api/v1/batch", body, "batch").content, count)

    def send_quarantine(self, body: bytes) -> dict[str, Any]:
        """POST quarantine lines (NDJSON) to the hub, which keeps each record once; returns its counts."""
        answer: dict[str, Any] = self._post_ndjson("/api/v1/quarantine", body, "quarantine").json()
        return answer

    def _post_ndjson(self, path: str, body: bytes, what: str) -> httpx.Response:
        """POST NDJSON with the token, refreshing it once on 401 and retrying on 429/5xx and lost connections."""
        token = self._token or self._refresh_token()
        refreshed = False
        last = "no answer"
        for attempt in range(self.attempts):
            response: httpx.Response | None = None
            try:
                response = self.http.post(
                    f"{self.hub}{path}",
                    content=body,
                    headers={"Content-Type": "application/x-ndjson", "Authorization": f"Bearer {token}"},
                )
            except httpx.HTTPError as exc:
                last = f"{type(exc).__name__}: {exc}"
                self._wait(attempt, None)
                continue
            if response.status_code == 401 and not refreshed:
                token, refreshed = self._refresh_token(), True
                continue
            if response.status_code in RETRY_STATUSES:
                last = f"HTTP {response.status_code}"
                self._wait(attempt, response)
                continue
            if response.status_code not in (200, 207):
                raise PushError(f"the hub refused the {what}: HTTP {response.status_code} {response.text[:200]}")
            return response
        raise PushError(f"the hub did not take the {what} after {self.attempts} attempts ({last})")


def _results(content: bytes, count: int) -> list[dict[str, Any]]:
    try:
        lines = [orjson.loads(line) for line in content.splitlines() if line.strip()]
    except orjson.JSONDecodeError as exc:
        raise PushError(f"the hub's batch answer is not NDJSON: {exc}") from exc
    by_index = {line["index"]: line for line in lines if isinstance(line, dict) and isinstance(line.get("index"), int)}
    if sorted(by_index) != list(range(count)):
        raise PushError(f"the hub answered {len(by_index)} results for a batch of {count}")
    return [by_index[i] for i in range(count)]


class BatchPusher:
    """Collects accepted entities into batches, sends them, and records progress in a state file."""

    def __init__(self, client: HubClient, state_path: Path, fingerprint: str, batch_size: int = 500) -> None:
        self.client = client
        self.state_path = state_path
        self.batch_size = batch_size
        self.statuses: Counter[str] = Counter()
        previous = _read_state(state_path)
        self.resuming = bool(previous) and previous.get("fingerprint") == fingerprint and not previous.get("complete")
        self.state: dict[str, Any] = (
            previous
            if self.resuming
            else {
                "fingerprint": fingerprint,
                "committedBatches": 0,
                "committedRecords": 0,
                "hubRejected": 0,
                "hubRejectedIndexes": [],
            }
        )
        self.state["complete"] = False
        self.skip = int(self.state["committedRecords"])
        self.carried_rejections = int(self.state["hubRejected"]) if self.resuming else 0
        self._skipped = 0
        self._refused = set(self.state.get("hubRejectedIndexes", [])) if self.resuming else set()
        """Which of the entities committed by an earlier run the hub refused (by their order among those offered)."""
        self._batch: list[Settled] = []

    def offer(self, entity: Entity, position: Position, raw: object) -> list[Settled]:
        line = orjson.dumps(entity)
        if self._skipped < self.skip:  # committed by an earlier run: held by the hub, or refused and counted then
            index, self._skipped = self._skipped, self._skipped + 1
            refused = index in self._refused
            return [Settled(line, str(entity["type"]), position, raw, carried=refused)]
        self._batch.append(Settled(line, str(entity["type"]), position, raw))
        return self._flush() if len(self._batch) >= self.batch_size else []

    def finish(self) -> list[Settled]:
        settled = self._flush()
        self.state["complete"] = True
        self._write_state()
        return settled

    def _flush(self) -> list[Settled]:
        if not self._batch:
            return []
        batch, self._batch = self._batch, []
        results = self.client.send_batch(b"\n".join(item.line for item in batch) + b"\n", len(batch))
        first = int(self.state["committedRecords"])
        refused = 0
        for n, (item, result) in enumerate(zip(batch, results, strict=True)):
            status = str(result.get("status", "rejected"))
            self.statuses[status] += 1
            if status == "rejected":
                item.reasons = [
                    Reason(f"hub-{e.get('keyword', 'rejected')}", str(e.get("message", "")), e.get("pointer"))
                    for e in result.get("errors") or [{}]
                ]
                self.state.setdefault("hubRejectedIndexes", []).append(first + n)
                refused += 1
        self.state["committedBatches"] += 1
        self.state["committedRecords"] += len(batch)
        self.state["hubRejected"] += refused
        self._write_state()
        return batch

    def _write_state(self) -> None:
        temporary = self.state_path.with_name(self.state_path.name + ".tmp")
        temporary.write_bytes(orjson.dumps(self.state, option=orjson.OPT_INDENT_2))
        os.replace(temporary, self.state_path)


def _read_state(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        state = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as exc:
        raise PushError(f"the push state file {path} is damaged ({exc}); delete it to start over") from exc
    return state if isinstance(state, dict) else {}


def file_fingerprint(source: str) -> str:
    """What identifies a source across runs: a file's path, size and modification time, or the URL itself."""
    path = Path(source)
    if path.is_file():
        stat = path.stat()
        return f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"
    return source
