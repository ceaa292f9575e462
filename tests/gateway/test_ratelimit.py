"""Per-client rate limits: the bucket maths, Redis atomicity and expiry, fail-open/closed, and two real servers."""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis

from gateway.errors import RateLimited, ServiceUnavailable
from gateway.ratelimit import InProcessLimiter, RedisLimiter
from gateway.services import open_services
from gateway.settings import Settings
from tests.gateway.conftest import MEMBER_BIN
from tests.gateway.serving import free_port

REDIS_URL = os.environ.get("QALA_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


async def test_in_process_bucket_refuses_after_capacity_with_headers() -> None:
    limiter = InProcessLimiter()
    decisions = [await limiter.hit("qc_a:api", capacity=3, window=60.0) for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert [d.remaining for d in decisions] == [2, 1, 0, 0]
    refused = decisions[-1]
    assert refused.headers()["RateLimit-Limit"] == "3"
    assert refused.headers()["Retry-After"] == "20", "one token refills in window / capacity seconds"
    with pytest.raises(RateLimited) as caught:
        refused.enforce()
    assert caught.value.headers["Retry-After"] == "20"
    assert (await limiter.hit("qc_b:api", capacity=3, window=60.0)).allowed, "buckets are per client"


@pytest.mark.redis
async def test_redis_bucket_is_shared_and_expires_in_seconds() -> None:
    redis = Redis.from_url(REDIS_URL)
    try:
        first, second = RedisLimiter(redis, "closed"), RedisLimiter(redis, "closed")
        key = f"qc_{secrets.token_hex(6)}:api"
        results = await asyncio.gather(
            *(limiter.hit(key, capacity=10, window=60.0) for limiter in [first, second] * 10)
        )
        assert sum(d.allowed for d in results) == 10
        ttl = await redis.ttl(f"qala:rl:{key}")
        assert 0 < ttl <= 61, f"expiry must be in seconds, got {ttl}"
    finally:
        await redis.aclose()


@pytest.mark.parametrize(("mode", "allowed"), [("open", True), ("closed", False)])
async def test_redis_down_fails_open_or_closed_as_configured(mode: str, allowed: bool) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead_port = probe.getsockname()[1]  # nothing listens here once the socket closes
    redis = Redis.from_url(f"redis://127.0.0.1:{dead_port}/0", socket_connect_timeout=0.5)
    try:
        limiter = RedisLimiter(redis, "open" if mode == "open" else "closed")
        if allowed:
            assert (await limiter.hit("qc_x:api", capacity=5, window=60.0)).allowed
        else:
            with pytest.raises(ServiceUnavailable):
                await limiter.hit("qc_x:api", capacity=5, window=60.0)
    finally:
        await redis.aclose()


@pytest.fixture
def two_servers(tmp_path: Path) -> Iterator[tuple[list[str], str, str]]:
    """Two gateway processes on different ports sharing one database and the real Redis."""
    database_url = f"sqlite:///{tmp_path / 'shared.db'}"
    env = {
        **os.environ,
        "QALA_ENV": "demo",
        "QALA_DATABASE_URL": database_url,
        "QALA_REDIS_URL": REDIS_URL,
        "QALA_ISSUER": "http://hub.test",
        "QALA_RATE_LIMIT_REQUESTS": "200",
        "QALA_RATE_LIMIT_WINDOW_SECONDS": "3600",
        "QALA_TOKEN_RATE_LIMIT_REQUESTS": "1000",
    }

    async def setup() -> tuple[str, str]:
        async with open_services(Settings(env="demo", database_url=database_url)) as services:
            await services.directory.create_member(name="Almaty Akimat", bin=MEMBER_BIN, home_city="almaty")
            client, secret = await services.directory.create_client(
                member=MEMBER_BIN, name="busy system", scopes=["service-requests:read"], cities=["almaty"]
            )
            assert secret is not None
            return client.client_id, secret

    client_id, secret = asyncio.run(setup())
    ports = [free_port(), free_port()]
    servers = [
        subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "gateway.app:app_from_environment", "--factory", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for port in ports
    ]
    try:
        bases = [f"http://127.0.0.1:{port}" for port in ports]
        deadline = time.monotonic() + 60
        for base in bases:
            while True:
                try:
                    if httpx.get(f"{base}/oauth/jwks", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "the gateway servers did not start"
                time.sleep(0.2)
        yield bases, client_id, secret
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            server.wait(timeout=20)


@pytest.mark.redis
async def test_limit_holds_within_5_percent_across_two_servers(two_servers: tuple[list[str], str, str]) -> None:
    bases, client_id, secret = two_servers
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.post(
            f"{bases[0]}/oauth/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret)
        )
        token = response.json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        semaphore = asyncio.Semaphore(16)

        async def one(index: int) -> httpx.Response:
            async with semaphore:
                return await http.get(f"{bases[index % 2]}/api/v1/whoami", headers=headers)

        responses = await asyncio.gather(*(one(index) for index in range(420)))
    statuses = [response.status_code for response in responses]
    admitted = statuses.count(200)
    assert set(statuses) == {200, 429}
    assert 200 <= admitted <= 210, f"admitted {admitted} of a limit of 200"
    per_server = [sum(1 for i, s in enumerate(statuses) if s == 200 and i % 2 == k) for k in (0, 1)]
    assert min(per_server) > 50, f"both servers served traffic: {per_server}"
    refused = next(response for response in responses if response.status_code == 429)
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.headers["content-type"] == "application/problem+json"
