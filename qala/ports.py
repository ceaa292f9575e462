"""Is a port free? Asked before a server touches any state, so a busy port is one clear line and nothing else.

check_port("127.0.0.1", 8000)      # raises CliError("cannot listen on 127.0.0.1:8000: Address already in use ...")
"""

from __future__ import annotations

import socket

from qala.cli import CliError


def check_port(host: str, port: int) -> None:
    """Bind and release ``host:port``; :class:`CliError` naming it when that fails."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds: TIME_WAIT is not busy
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise CliError(f"cannot listen on {host}:{port}: {exc.strerror} (is a hub running? try --port)") from exc
