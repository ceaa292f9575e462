"""Real hub processes for tests that need a server to crash, restart or share state across processes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from gateway.services import open_services
from gateway.settings import Settings
from schemas.identifiers import with_check_digit

MEMBER_BIN = with_check_digit("05014000456")
_PORT_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")


def socket_inodes(pid: int) -> set[str]:
    """The inodes of the sockets process ``pid`` has open (``/proc/<pid>/fd``)."""
    found = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                found.add(target[8:-1])
    return found


def tcp_inodes(port: int, *, local: bool = True, state: str | None = None) -> set[str]:
    """The inodes of the machine's TCP sockets whose local (else remote) port is ``port``, in ``state`` when given
    (``/proc/net/tcp``'s hex code: 01 established, 0A listening)."""
    column = 1 if local else 2
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(FileNotFoundError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if int(fields[column].rsplit(":", 1)[1], 16) == port and state in (None, fields[3]):
                    found.add(fields[9])
    return found


def free_port() -> int:
    """A port free now on 127.0.0.1, outside the kernel's ephemeral range, for a server a test starts later.

    A port from ``bind(("127.0.0.1", 0))`` is an ephemeral one: until the server listens, any outgoing connection
    on the machine may be given it as its own, and the server then cannot bind. That is the likely cause of a CI
    failure (the run did not print why): the conformance issuer, served twice on one port (the run, then the fuzz
    phase), could not listen the second time, while a suite run opens many database connections. The kernel never
    hands out ports outside the range."""
    low, high = (int(n) for n in _PORT_RANGE.read_text().split()) if _PORT_RANGE.exists() else (32768, 60999)
    # below the range if there is room, else above it; with neither (1024-65535), an ephemeral port as before
    window = (20000, low) if low > 21000 else (high + 1, 65536) if high < 64535 else None
    if window is None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            return int(probe.getsockname()[1])
    for _ in range(200):
        port = random.randrange(*window)  # a random one: xdist workers pick at the same time
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue  # taken: a service of the machine, or another test's server
            return port
    raise OSError("no free port outside the ephemeral range")


def register_client(database_url: str, scopes: list[str], cities: list[str]) -> tuple[str, str]:
    """A member and a client with a secret, written straight into the hub's database."""

    async def setup() -> tuple[str, str]:
        async with open_services(Settings(env="demo", database_url=database_url)) as services:
            if not [m for m in await services.directory.list_members() if m.bin == MEMBER_BIN]:
                await services.directory.create_member(name="Astana Akimat", bin=MEMBER_BIN, home_city="astana")
            client, secret = await services.directory.create_client(
                member=MEMBER_BIN, name="iKOMEK-109", scopes=scopes, cities=cities
            )
            assert secret is not None
            return client.client_id, secret

    return asyncio.run(setup())


@dataclass
class HubProcess:
    """``uvicorn gateway.app:app_from_environment`` on a free port, with ``QALA_*`` settings from ``env``."""

    database_url: str
    env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> None:
        env = {
            **os.environ,
            "QALA_ENV": "demo",
            "QALA_DATABASE_URL": self.database_url,
            "QALA_ISSUER": self.base,
            "QALA_RATE_LIMIT_ENABLED": "false",
            **self.env,
        }
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "gateway.app:app_from_environment",
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--log-level",
                "warning",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(f"{self.base}/oauth/jwks", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the hub on port {self.port} did not start")
            time.sleep(0.2)

    def kill(self) -> None:
        """SIGKILL: no shutdown, no flush, as a power cut or the OOM killer would stop it."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=20)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=20)
