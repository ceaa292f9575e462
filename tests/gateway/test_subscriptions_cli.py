"""``qala subscriptions ...`` through the real ``qala`` entry point, on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from tests.gateway.serving import register_client
from tests.gateway.test_cli import Outcome, qala

__all__ = ["qala"]  # fixture


def test_create_list_pause_resume_replay_and_log(qala: Callable[..., Outcome], database_url: str) -> None:
    reader, _ = register_client(database_url, ["service-requests:read"], ["astana"])
    created = qala(
        "subscriptions", "create", "--client", reader, "--type", "ServiceRequest", "--city", "astana",
        "--filter", "status=open", "--url", "http://127.0.0.1:9/hook",
    )  # fmt: skip
    assert created.code == 0, created.err
    subscription = re.search(r"subscription:\s+(sub_\w+)", created.out)
    assert subscription is not None
    sid = subscription.group(1)
    assert re.search(r"secret:\s+whsec_", created.out)

    listed = qala("subscriptions", "list")
    assert sid in listed.out
    assert "active" in listed.out
    assert "paused" in qala("subscriptions", "pause", sid).out
    assert "active" in qala("subscriptions", "resume", sid).out
    assert qala("subscriptions", "replay", sid).code == 0
    assert qala("subscriptions", "log", sid).code == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--type", "Device", "--url", "http://127.0.0.1:9/hook"], "devices:read"),
        (["--type", "Unicorn", "--url", "http://127.0.0.1:9/hook"], "unknown type"),
        (["--type", "ServiceRequest"], "--url"),
        (["--type", "ServiceRequest", "--url", "ftp://x/hook"], "https"),
    ],
)
def test_bad_input_is_one_clear_line(
    qala: Callable[..., Outcome], database_url: str, args: list[str], message: str
) -> None:
    reader, _ = register_client(database_url, ["service-requests:read"], ["astana"])
    failed = qala("subscriptions", "create", "--client", reader, *args)
    assert failed.code == 2
    assert failed.err.startswith("qala: error:")
    assert message in failed.err
    assert len(failed.err.strip().splitlines()) == 1


def test_an_unknown_subscription_is_one_clear_line(qala: Callable[..., Outcome], database_url: str) -> None:
    register_client(database_url, ["service-requests:read"], ["astana"])  # a hub exists, the subscription does not
    failed = qala("subscriptions", "pause", "sub_missing")
    assert failed.code == 2
    assert "no subscription" in failed.err
