"""``qala serve --workers N`` on Linux: uvicorn's worker supervisor, each worker listening on a socket of its own.

uvicorn's workers all accept from one socket their parent binds, and whichever wakes first takes what is waiting.
Connections that arrive together, as a client's keep-alive pool opens them, can all land on one worker: under wrk's
32 connections ``bench/scaleout.py`` saw one worker at 92 % of a core and the other at 4 % while a CPU sat idle,
and a two-worker hub no faster than one. Here each worker binds its own socket with ``SO_REUSEPORT`` and Linux
spreads new connections over them by a hash of their addresses, so no worker can take another's share. The parent
keeps a bound socket of the same group, never listening, so that nothing else takes the port meanwhile (a socket
joins the kernel's choice only once it listens).

Everything else is uvicorn's supervisor as ``uvicorn.run`` starts it: health checks, restarts of a worker that
died, signals, and a parent that stops when a worker cannot start::

    run_workers(uvicorn.Config("gateway.app:app_from_environment", factory=True, port=8000, workers=2))
"""

from __future__ import annotations

import logging
import socket
import sys

import uvicorn
from uvicorn.supervisors import multiprocess

logger = logging.getLogger("uvicorn.error")


def spreads_connections() -> bool:
    """Whether this system gives each worker a socket of its own and spreads connections over them (Linux)."""
    return sys.platform == "linux" and hasattr(socket, "SO_REUSEPORT")


def reuse_port_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` with ``SO_REUSEPORT``, not yet listening."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


class OwnSocketProcess(multiprocess.Process):
    """A worker that serves on a socket it binds itself (in the worker process, which runs ``target``)."""

    def target(self, sockets: list[socket.socket] | None = None) -> None:  # pragma: no cover -- in the worker
        super().target([reuse_port_socket(self.config.host, self.config.port)])


def run_workers(config: uvicorn.Config) -> None:
    """Run ``config.workers`` workers under uvicorn's supervisor until it is stopped, each on its own socket."""
    held = reuse_port_socket(config.host, config.port)
    try:
        # uvicorn's supervisor makes its workers by this module-level name, at start and on every restart
        multiprocess.Process = OwnSocketProcess  # type: ignore[misc]
        scheme = "https" if config.is_ssl else "http"
        logger.info(
            "Uvicorn running on %s://%s:%d, %d workers each on a socket of its own (Press CTRL+C to quit)",
            *(scheme, config.host, config.port, config.workers),
        )
        multiprocess.Multiprocess(config, sockets=[]).run()
    finally:
        held.close()
