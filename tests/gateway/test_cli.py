"""The gateway's CLI commands, through the real `qala` entry point, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from gateway.services import open_services
from gateway.settings import Settings
from qala.cli import main
from qala.home import Home
from tests.gateway.conftest import MEMBER_BIN
from tests.gateway.serving import free_port, register_client, socket_inodes, tcp_inodes


@dataclass
class Outcome:
    code: int
    out: str
    err: str


@pytest.fixture
def qala(capsys: pytest.CaptureFixture[str], database_url: str) -> Callable[..., Outcome]:
    def run(*args: str) -> Outcome:
        capsys.readouterr()
        try:
            main([*args, "--database-url", database_url])
            code = 0
        except SystemExit as exit:
            code = int(exit.code or 0)
        captured = capsys.readouterr()
        return Outcome(code, captured.out, captured.err)

    return run


def secret_matches(database_url: str, client_id: str, secret: str) -> bool:
    async def check() -> bool:
        async with open_services(Settings(database_url=database_url)) as services:
            client = await services.directory.get_client(client_id)
            return services.directory.hasher.matches(secret, client.secret_digest)

    return asyncio.run(check())


def create_hub(database_url: str) -> None:
    """An existing, empty hub: commands that read state refuse a missing one."""

    async def create() -> None:
        async with open_services(Settings(database_url=database_url)):
            pass

    asyncio.run(create())


def field(pattern: str, text: str) -> str:
    found = re.search(pattern, text)
    assert found is not None, text
    return found.group(1)


def test_members_and_clients_lifecycle(qala: Callable[..., Outcome], database_url: str) -> None:
    created = qala("members", "create", "--name", "Astana Akimat", "--bin", MEMBER_BIN, "--city", "astana")
    assert created.code == 0, created.err
    assert MEMBER_BIN in qala("members", "list").out
    duplicate = qala("members", "create", "--name", "Again", "--bin", MEMBER_BIN, "--city", "astana")
    assert (duplicate.code, duplicate.err.count("\n")) == (2, 1)
    assert "already exists" in duplicate.err

    made = qala(
        "clients", "create", "--member", MEMBER_BIN, "--name", "311", "--scope", "service-requests:write",
        "--scope", "service-requests:read", "--city", "astana",
    )  # fmt: skip
    assert made.code == 0, made.err
    client_id = field(r"client_id:\s+(\S+)", made.out)
    secret = field(r"client_secret:\s+(\S+)", made.out)
    assert secret_matches(database_url, client_id, secret)

    listed = qala("clients", "list").out
    assert client_id in listed
    assert "enabled" in listed
    assert secret not in listed, "a secret is shown once, at creation"

    new_secret = field(r"client_secret:\s+(\S+)", qala("clients", "rotate-secret", client_id).out)
    assert new_secret != secret
    assert not secret_matches(database_url, client_id, secret)
    assert secret_matches(database_url, client_id, new_secret)

    assert qala("clients", "disable", client_id).code == 0
    assert "DISABLED" in qala("clients", "list").out
    assert qala("clients", "enable", client_id).code == 0

    tail = qala("audit", "tail", "-n", "10").out
    assert [line.split()[2] for line in tail.splitlines()] == [
        "member.created",
        "client.created",
        "client.secret-rotated",
        "client.disabled",
        "client.enabled",
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("members", "create", "--name", "X", "--bin", "123456789012", "--city", "astana"), "not a valid 12-digit BIN"),
        (("clients", "create", "--member", MEMBER_BIN, "--name", "x", "--scope", "x", "--city", "a1"), "no member"),
        (("clients", "rotate-secret", "qc_nobody"), "no client 'qc_nobody'"),
        (("clients", "disable", "qc_nobody"), "no client 'qc_nobody'"),
        (("keys", "rotate", "--purpose", "nonsense"), "unknown key purpose 'nonsense'"),
    ],
)
def test_failures_print_one_line(
    qala: Callable[..., Outcome], database_url: str, args: tuple[str, ...], message: str
) -> None:
    create_hub(database_url)
    outcome = qala(*args)
    assert outcome.code == 2
    assert message in outcome.err
    assert outcome.err.startswith("qala: error: ")
    assert outcome.err.count("\n") == 1
    assert "Traceback" not in outcome.err


def test_unknown_scope_is_refused(qala: Callable[..., Outcome]) -> None:
    qala("members", "create", "--name", "Astana Akimat", "--bin", MEMBER_BIN, "--city", "astana")
    outcome = qala("clients", "create", "--member", MEMBER_BIN, "--name", "x", "--scope", "bogus", "--city", "astana")
    assert outcome.code == 2
    assert "unknown scopes: bogus" in outcome.err


def test_keys_list_and_rotate(qala: Callable[..., Outcome], database_url: str) -> None:
    create_hub(database_url)
    before = qala("keys", "list").out.splitlines()
    assert {line.split()[1] for line in before} >= {"access-token", "audit-checkpoint"}
    assert qala("keys", "rotate", "--lead", "600").code == 0
    after = qala("keys", "list").out.splitlines()
    states = sorted((line.split()[1], line.split()[3], line.split()[4]) for line in after)
    assert ("access-token", "pending", "published") in states
    assert ("access-token", "active", "published") in states


def test_refuses_unsafe_settings_in_one_line(qala: Callable[..., Outcome], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QALA_ENV", "production")
    monkeypatch.delenv("QALA_SECRET_KEY", raising=False)
    for command in (("audit", "verify"), ("serve",)):
        outcome = qala(*command)
        assert outcome.code == 2
        assert "QALA_SECRET_KEY must be set" in outcome.err
        assert outcome.err.count("\n") == 1


def _serve(home: Path, port: int, *options: str) -> subprocess.Popen[bytes]:
    """``qala serve`` on ``port`` with ``home`` and nothing from the environment's ``QALA_*``, once it answers."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("QALA_")}
    command = [sys.executable, "-c", "from qala.cli import main; main()", "--home", str(home), "serve"]
    server = subprocess.Popen(
        [*command, "--port", str(port), *options], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and server.poll() is None:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/oauth/jwks", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.2)
    return server


def _served_lines(home: Path, *options: str) -> tuple[str, str]:
    """What ``qala serve`` prints (stdout, stderr) while it answers two requests, then stops on Ctrl-C."""
    port = free_port()
    server = _serve(home, port, *options)
    try:
        assert httpx.get(f"http://127.0.0.1:{port}/api/v1/nothing-here", timeout=5).status_code == 404
    finally:
        server.send_signal(signal.SIGINT)
        out, err = server.communicate(timeout=30)
    assert server.returncode == 0, err.decode()[-3000:]  # a stop by Ctrl+C is a clean exit
    return out.decode(), err.decode()


@pytest.mark.parametrize("workers", [1, 2])
def test_serve_stops_on_sigterm_while_an_event_stream_is_open(tmp_path: Path, workers: int) -> None:
    """SIGTERM, as a supervisor stops a service, ends open event streams with a last comment, and the hub exits
    after its lifespan's clean-up (gateway.draining). Before, uvicorn waited for every stream's consumer, up to the
    life of its token, and a supervisor's grace period ran out first."""
    port = free_port()
    server = _serve(tmp_path / "home", port, "--workers", str(workers), "--no-access-log")
    try:
        client_id, secret = register_client(Home(tmp_path / "home").database_url, ["devices:read"], ["astana"])
        base = f"http://127.0.0.1:{port}"
        grant = {"grant_type": "client_credentials"}
        access = httpx.post(f"{base}/oauth/token", data=grant, auth=(client_id, secret)).json()["access_token"]
        headers = {"Authorization": f"Bearer {access}"}
        with httpx.stream("GET", f"{base}/api/v1/stream", headers=headers, timeout=30) as response:
            lines = response.iter_lines()
            assert [next(lines), next(lines)] == ["retry: 2000", ": connected"]
            server.send_signal(signal.SIGTERM)
            rest, deadline = [], time.monotonic() + 60
            for line in lines:  # a response cut off, not ended, raises here (httpx.RemoteProtocolError)
                rest.append(line)
                if time.monotonic() > deadline:  # heartbeats: the stream went on
                    break
        assert ": the server is shutting down; reconnect" in rest
        _, err = server.communicate(timeout=30)
    finally:
        if server.poll() is None:
            server.kill()
            server.communicate()
    assert err.decode().count("Application shutdown complete") == workers, err.decode()[-3000:]
    # one process re-raises SIGTERM after its clean-up, as uvicorn does; a supervisor exits 0 once its workers have
    assert server.returncode == (-signal.SIGTERM if workers == 1 else 0)


def test_serve_logs_each_request_unless_told_not_to(tmp_path: Path) -> None:
    logged, _ = _served_lines(tmp_path / "logged")
    assert '"GET /api/v1/nothing-here HTTP/1.1" 404' in logged
    assert '"GET /oauth/jwks HTTP/1.1" 200' in logged
    quiet, errors = _served_lines(tmp_path / "quiet", "--no-access-log")
    assert "GET /" not in quiet + errors
    assert "Application startup complete" in errors  # uvicorn's own log still runs: only the per-request lines go


def test_a_client_stalled_mid_request_holds_up_a_stop_only_for_the_grace_period(tmp_path: Path) -> None:
    """A city system that stops halfway through sending a batch kept `qala serve` at 'Waiting for connections to
    close' after SIGTERM for as long as it stalled (40 s and counting, tried by hand). Requests still running get
    --graceful-seconds, then are cancelled, and the hub's lifespan clean-up still runs."""
    port = free_port()
    server = _serve(tmp_path / "home", port, "--graceful-seconds", "1", "--no-access-log")
    try:
        scopes = ["service-requests:read", "service-requests:write"]
        client_id, secret = register_client(Home(tmp_path / "home").database_url, scopes, ["astana"])
        grant = {"grant_type": "client_credentials"}
        token = httpx.post(f"http://127.0.0.1:{port}/oauth/token", data=grant, auth=(client_id, secret))
        with socket.create_connection(("127.0.0.1", port)) as stalled:
            head = (
                f"POST /api/v1/batch HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-ndjson\r\n"
                f"Authorization: Bearer {token.json()['access_token']}\r\nContent-Length: 100000\r\n\r\n"
            )
            stalled.sendall(head.encode() + b'{"id": ')  # and nothing more
            time.sleep(0.5)  # the request is in the app, reading its body
            server.send_signal(signal.SIGTERM)
            _, err = server.communicate(timeout=30)
    finally:
        if server.poll() is None:
            server.kill()
            server.communicate()
    log = err.decode()
    assert re.search(r"Cancel [1-9]\d* running task\(s\), timeout graceful shutdown exceeded", log), log[-3000:]
    assert "Application shutdown complete" in log


@pytest.mark.skipif(sys.platform != "linux", reason="a socket per worker is Linux's SO_REUSEPORT")
def test_serve_spreads_keep_alive_connections_over_its_workers(tmp_path: Path) -> None:
    """32 keep-alive connections opened at once to ``qala serve --workers 2`` are shared by both workers: each has
    a listening socket of its own, and Linux spreads connections over them (one shared socket let one worker take
    nearly all of them). Binomially, a fair spread gives one worker fewer than 4 of 32 about once in a million."""
    port = free_port()
    server = _serve(tmp_path / "home", port, "--workers", "2", "--no-access-log")
    clients = [httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) for _ in range(32)]
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and server.poll() is None and len(tcp_inodes(port, state="0A")) < 2:
            time.sleep(0.2)  # both workers listening (each starts its app first)
        assert server.poll() is None, server.communicate(timeout=30)[1].decode()[-3000:]
        assert len(tcp_inodes(port, state="0A")) == 2
        assert [client.get("/oauth/jwks").status_code for client in clients] == [200] * 32
        workers = [
            int(child)
            for task in Path(f"/proc/{server.pid}/task").iterdir()
            for child in (task / "children").read_text().split()
        ]
        established = tcp_inodes(port, state="01")
        held = sorted((len(socket_inodes(pid) & established) for pid in workers), reverse=True)
        assert sum(held) == 32, held
        assert len([count for count in held if count]) == 2, held
        assert held[1] >= 4, f"one worker holds {held[0]} of the 32 connections"
    finally:
        for client in clients:
            client.close()
        server.send_signal(signal.SIGINT)
        _, err = server.communicate(timeout=30)
    assert "2 workers each on a socket of its own" in err.decode()
    assert server.returncode == 0


@pytest.mark.skipif(sys.platform != "linux", reason="a socket per worker is Linux's SO_REUSEPORT")
def test_workers_that_cannot_listen_stop_the_hub_instead_of_restarting(tmp_path: Path) -> None:
    """A plain listener takes the port after the parent reserved it: every worker fails to bind, and the supervisor
    stops (run_workers answers False) rather than restart them forever."""
    port = free_port()
    script = f"""
import socket, uvicorn
from qala import workers
reserve = workers.reuse_port_socket
def reserve_then_lose(host, port):
    held = reserve(host, port)
    global blocker
    blocker = socket.socket()
    blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    blocker.bind((host, port))
    blocker.listen()
    workers.reuse_port_socket = reserve  # the workers bind as usual, and fail
    return held
workers.reuse_port_socket = reserve_then_lose
config = uvicorn.Config("gateway.app:app_from_environment", factory=True, port={port}, workers=2)
print("started:", workers.run_workers(config))
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith("QALA_")}
    env |= {"QALA_ENV": "demo", "QALA_DATABASE_URL": f"sqlite:///{tmp_path}/hub.db"}
    command = [sys.executable, "-c", script]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert "started: False" in done.stdout, done.stdout + done.stderr[-2000:]
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in done.stderr
    assert done.stderr.count("cannot listen") <= 2  # each worker tried once: no restarts
