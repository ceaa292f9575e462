"""How ``qala serve`` runs uvicorn: :func:`run_hub` picks the mode (one process, workers, reload), and every
server in it is a :class:`~gateway.draining.DrainingServer`, which ends the hub's event streams as it stops (else
SIGTERM waited for every stream's consumer).

``qala serve --workers N`` on Linux: uvicorn's worker supervisor, each worker listening on a socket of its own.

uvicorn's workers all accept from one socket their parent binds, and whichever wakes first takes what is waiting.
Connections that arrive together, as a client's keep-alive pool opens them, can all land on one worker: under wrk's
32 connections ``bench/scaleout.py`` saw one worker at 92 % of a core and the other at 4 % while a CPU sat idle,
and a two-worker hub no faster than one. Here each worker binds its own socket with ``SO_REUSEPORT`` and Linux
spreads new connections over them by a hash of their addresses, so no worker can take another's share. The parent
keeps a bound socket of the same group, never listening, so that nothing else takes the port meanwhile (a socket
joins the kernel's choice only once it listens).

Everything else is uvicorn's supervisor as ``uvicorn.run`` starts it: health checks, restarts of a worker that
died, signals, and a parent that stops when a worker cannot start.

What a socket per worker costs: connections still queued on a worker's socket when it closes (its restart, or the
supervisor killing it as hung) are reset, where one shared socket kept them for the others (Linux moves them only
with ``net.ipv4.tcp_migrate_req=1``). Until the first worker listens, the parent's socket keeps out only sockets
without ``SO_REUSEADDR``; and any process of the same user that sets ``SO_REUSEPORT`` on the port joins the group,
as the kernel allows only to the same user::

    run_workers(uvicorn.Config("gateway.app:app_from_environment", factory=True, port=8000, workers=2))
"""

from __future__ import annotations

import contextlib
import logging
import socket
import sys

import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import ChangeReload, multiprocess

from gateway.draining import DrainingServer

logger = logging.getLogger("uvicorn.error")


def spreads_connections(port: int) -> bool:
    """Whether this system gives each worker a socket of its own and spreads connections over them (Linux), on
    ``port`` (not 0: each worker would take a port of its own)."""
    return sys.platform == "linux" and hasattr(socket, "SO_REUSEPORT") and port != 0


def reuse_port_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` with ``SO_REUSEPORT``, not yet listening."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


class DrainingProcess(multiprocess.Process):
    """A worker whose server ends the app's event streams as it stops."""

    @property
    def server(self) -> uvicorn.Server:
        if self._server is None:
            self._server = DrainingServer(config=self.config)
        return self._server


class OwnSocketProcess(DrainingProcess):
    """A worker that serves on a socket it binds itself (in the worker process, which runs ``target``)."""

    def target(self, sockets: list[socket.socket] | None = None) -> None:  # pragma: no cover -- in the worker
        try:
            own = reuse_port_socket(self.config.host, self.config.port)
        except OSError as exc:  # the supervisor stops on this exit code rather than restart the worker forever
            logger.error("cannot listen on %s:%d: %s", self.config.host, self.config.port, exc.strerror)
            sys.exit(STARTUP_FAILURE)
        super().target([own])


def run_workers(config: uvicorn.Config) -> bool:
    """Run ``config.workers`` workers under uvicorn's supervisor until it is stopped, each on its own socket; False
    when it stopped because a worker could not start (its reason is in the log)."""
    held = reuse_port_socket(config.host, config.port)
    try:
        scheme = "https" if config.is_ssl else "http"
        logger.info(
            "Uvicorn running on %s://%s:%d, %d workers each on a socket of its own (Press CTRL+C to quit)",
            *(scheme, config.host, config.port, config.workers),
        )
        return _supervise(config, OwnSocketProcess, sockets=[])
    finally:
        held.close()


def _supervise(config: uvicorn.Config, worker: type[multiprocess.Process], sockets: list[socket.socket]) -> bool:
    """uvicorn's supervisor with workers of class ``worker``; False when one could not start."""
    # uvicorn's supervisor makes its workers by this module-level name, at start and on every restart
    original, multiprocess.Process = multiprocess.Process, worker  # type: ignore[misc]
    try:
        supervisor = multiprocess.Multiprocess(config, sockets=sockets)
        supervisor.run()
    finally:
        multiprocess.Process = original  # type: ignore[misc]
    return all(process.exitcode != STARTUP_FAILURE for process in supervisor.processes)


def run_hub(config: uvicorn.Config) -> bool:
    """Serve ``config`` until stopped, as ``uvicorn.run`` would (reload, workers, or this process), with servers that
    end event streams as they stop; False when the hub could not start (its reason is in the log)."""
    if config.should_reload:
        with contextlib.suppress(KeyboardInterrupt):
            ChangeReload(config, target=DrainingServer(config).run, sockets=[config.bind_socket()]).run()
        return True
    if config.workers > 1 and spreads_connections(config.port):
        return run_workers(config)
    if config.workers > 1:  # one socket the workers share: uvicorn's own way, where SO_REUSEPORT is not
        return _supervise(config, DrainingProcess, sockets=[config.bind_socket()])
    server = DrainingServer(config)
    # After its shutdown the server raises the signal it caught again; Ctrl+C's is a KeyboardInterrupt, which
    # uvicorn.run swallows too, so that a stop by Ctrl+C exits 0.
    with contextlib.suppress(KeyboardInterrupt):
        server.run()
    return server.started
