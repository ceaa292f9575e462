"""Real processes for the delivery tests: reference receivers and ``qala deliver`` workers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.gateway.serving import free_port, socket_inodes, tcp_inodes

QALA = str(Path(sys.executable).parent / "qala")


QUICK_ENV = {
    "QALA_DELIVERY_POLL_SECONDS": "0.05",
    "QALA_DELIVERY_BACKOFF_BASE": "0.1",
    "QALA_DELIVERY_BACKOFF_MAX": "1.0",
    "QALA_DELIVERY_LEASE_SECONDS": "4",
    "QALA_WEBHOOK_TIMEOUT": "1.0",
}


@dataclass
class ReceiverProcess:
    """``python -m examples.receiver`` on its own port, keeping what it takes in an NDJSON file."""

    secret: str
    store: Path
    options: list[str] = field(default_factory=list)
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/webhook"

    def start(self) -> None:
        command = [sys.executable, "-m", "examples.receiver", "--port", str(self.port), "--secret", self.secret]
        self.process = subprocess.Popen(
            [*command, "--store", str(self.store), *self.options],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{self.port}/events", timeout=1)
                return
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the receiver on {self.port} did not start") from None
                time.sleep(0.1)

    def events(self) -> dict[str, Any]:
        found: dict[str, Any] = httpx.get(f"http://127.0.0.1:{self.port}/events", timeout=30).json()
        return found

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=20)


@dataclass
class DeliverProcess:
    """``qala deliver`` against ``database_url``."""

    database_url: str
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {**os.environ, "QALA_ENV": "demo", "QALA_DATABASE_URL": self.database_url, **QUICK_ENV, **self.env}
        self.process = subprocess.Popen(
            [QALA, "deliver"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

    def wait_connected(self, port: int = 5432, timeout: float = 60.0) -> None:
        """Wait until the process holds a TCP connection to ``port`` (its delivery loop has queried the database):
        on a loaded machine its start-up alone can take longer than the writes a test makes."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            assert self.process.poll() is None, "qala deliver exited"
            if tcp_inodes(port, local=False) & socket_inodes(self.process.pid):
                return
            time.sleep(0.1)
        raise AssertionError(f"qala deliver did not connect to port {port} within {timeout:.0f} s")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=20)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=20)
