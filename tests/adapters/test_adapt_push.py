from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from adapters.errors import PushError
from adapters.mapping import Mapping
from adapters.pipeline import Summary, run
from adapters.push import BatchPusher, HubClient, file_fingerprint
from adapters.quarantine import Quarantine, read_quarantine
from adapters.registry import AdapterRegistry
from schemas import SchemaRegistry

SAMPLES = Path(__file__).parents[2] / "examples" / "legacy"
SOURCE = str(SAMPLES / "ikomek-109-astana.csv")


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def push_once(
    hub: Any, state: Path, quarantine: Path, sleeps: Sleeps, batch_size: int = 10
) -> tuple[Summary, BatchPusher]:
    adapter = AdapterRegistry.load().create("csv", SOURCE, Mapping.load(SAMPLES / "ikomek-109-astana.yaml"))
    client = HubClient(
        "http://hub.test", "ikomek", "s3cret", transport=httpx.MockTransport(hub.handle), sleep=sleeps, attempts=3
    )
    pusher = BatchPusher(client, state, file_fingerprint(SOURCE), batch_size)
    with quarantine.open("ab") as q:
        summary = run(adapter, SchemaRegistry.load(), quarantine=Quarantine(q, "csv"), sink=pusher)
    return summary, pusher


def test_all_batches_reach_the_hub(hub: Any, tmp_path: Path) -> None:
    sleeps = Sleeps()
    summary, pusher = push_once(hub, tmp_path / "state.json", tmp_path / "q.ndjson", sleeps)
    assert len(hub.store) == summary.accepted == 45
    assert hub.batch_calls == 5
    assert pusher.statuses == {"created": 45}
    state = orjson.loads((tmp_path / "state.json").read_bytes())
    assert (state["committedBatches"], state["committedRecords"], state["complete"]) == (5, 45, True)


def test_interrupted_push_resumes_after_the_last_committed_batch(hub: Any, tmp_path: Path) -> None:
    sleeps = Sleeps()
    state, quarantine = tmp_path / "state.json", tmp_path / "q.ndjson"
    original = hub.handle
    calls = {"n": 0}

    def outage_after_two(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v1/batch":
            calls["n"] += 1
            hub.down = calls["n"] > 2
        return original(request)

    hub.handle = outage_after_two  # type: ignore[method-assign]
    with pytest.raises(PushError, match="did not take the batch after 3 attempts"):
        push_once(hub, state, quarantine, sleeps)
    assert len(hub.store) == 20
    assert orjson.loads(state.read_bytes())["committedRecords"] == 20
    assert sleeps == [0.5, 1.0, 2.0]  # backoff between the three attempts

    hub.handle = original  # type: ignore[method-assign]
    hub.down = False
    hub.batch_calls = 0
    summary, pusher = push_once(hub, state, quarantine, sleeps)
    assert hub.batch_calls == 3  # batches 3, 4 and 5 only
    assert pusher.statuses == {"created": 25}
    assert len(hub.store) == 45
    assert (summary.read, summary.accepted, summary.rejected) == (48, 45, 3)


def test_lost_answer_is_resent_without_duplicates(hub: Any, tmp_path: Path) -> None:
    sleeps = Sleeps()
    hub.lose_answer_once = True
    summary, pusher = push_once(hub, tmp_path / "state.json", tmp_path / "q.ndjson", sleeps)
    assert summary.accepted == 45
    assert len(hub.store) == 45
    assert pusher.statuses == {"created": 35, "unchanged": 10}  # the first batch, resent after its lost answer
    assert hub.batch_calls == 6


def test_throttling_expired_token_and_hub_rejections(hub: Any, tmp_path: Path) -> None:
    sleeps = Sleeps()
    hub.throttle_once = 7
    hub.expire_token_once = True
    hub.reject_city = "Нура"
    quarantine = tmp_path / "q.ndjson"
    summary, pusher = push_once(hub, tmp_path / "state.json", quarantine, sleeps)
    assert 7.0 in sleeps  # Retry-After honoured
    assert len(hub.tokens) == 2  # refreshed once after the 401
    hub_lines = [e for e in read_quarantine(quarantine) if e["stage"] == "hub"]
    assert len(hub_lines) == summary.rejected_by_hub == pusher.statuses["rejected"] == 9
    assert hub_lines[0]["reasons"][0] == {
        "code": "hub-x-scope",
        "message": "not a district of yours",
        "field": "/address/district",
    }
    assert summary.read == summary.accepted + summary.rejected == 48
    assert summary.accepted == 45 - 9


def test_bad_credentials_are_one_error(hub: Any, tmp_path: Path) -> None:
    hub.credentials = "b3RoZXI6b3RoZXI="  # other:other
    with pytest.raises(PushError, match="refused the client credentials: HTTP 401 invalid_client"):
        push_once(hub, tmp_path / "state.json", tmp_path / "q.ndjson", Sleeps())


def _push_to_out(hub: Any, tmp_path: Path, out: Path, batch_size: int = 10, workers: int = 1) -> Summary:
    adapter = AdapterRegistry.load().create("csv", SOURCE, Mapping.load(SAMPLES / "ikomek-109-astana.yaml"))
    client = HubClient(
        "http://hub.test", "ikomek", "s3cret", transport=httpx.MockTransport(hub.handle), sleep=Sleeps(), attempts=3
    )
    pusher = BatchPusher(client, tmp_path / "state.json", file_fingerprint(SOURCE), batch_size)
    with out.open("wb") as stream, (tmp_path / "q.ndjson").open("ab") as q:
        return run(
            adapter, SchemaRegistry.load(), out=stream, quarantine=Quarantine(q, "csv"), sink=pusher, workers=workers
        )


@pytest.mark.parametrize("workers", [1, 2])
def test_the_summary_and_out_add_up_to_what_the_hub_holds(hub: Any, tmp_path: Path, workers: int) -> None:
    """The hub refuses a district's cases: they leave --out and the accepted count, and are quarantined once."""
    hub.reject_city = "Нура"
    out = tmp_path / "cases.ndjson"
    summary = _push_to_out(hub, tmp_path, out, workers=workers)
    written = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert {e["id"] for e in written} == set(hub.store)
    assert len(written) == summary.accepted == sum(summary.types.values()) == len(hub.store) == 36
    assert summary.read == summary.accepted + summary.rejected
    quarantined = [e for e in read_quarantine(tmp_path / "q.ndjson") if e["stage"] == "hub"]
    assert len(quarantined) == summary.rejected_by_hub == 9


def test_a_resumed_push_leaves_refused_entities_out_too(hub: Any, tmp_path: Path) -> None:
    """Interrupted after two batches with refusals among them: the rerun's --out still holds only what the hub
    holds, and its summary adds up."""
    hub.reject_city = "Нура"
    handle = hub.handle

    def outage_after_two(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v1/batch" and hub.batch_calls >= 2:
            hub.batch_calls += 1
            raise httpx.ConnectError("down", request=request)
        return handle(request)

    hub.handle = outage_after_two  # type: ignore[method-assign]
    out = tmp_path / "cases.ndjson"
    with pytest.raises(PushError):
        _push_to_out(hub, tmp_path, out)
    hub.handle = handle  # type: ignore[method-assign]
    summary = _push_to_out(hub, tmp_path, out)
    written = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert {e["id"] for e in written} == set(hub.store)
    assert len(written) == summary.accepted == sum(summary.types.values()) == len(hub.store) == 36
    assert summary.read == summary.accepted + summary.rejected
