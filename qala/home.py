"""The hub's home: the one folder that holds a hub's state, found the same way by every sub-command.

A home holds the hub's settings (``qala.env``, ``QALA_*`` lines read as defaults under the environment), its
SQLite database (``qala.db``, unless ``QALA_DATABASE_URL`` points elsewhere), the conformance suite's issuer key
(``conformance/``) and the demo's working files (``work/``). It is ``--home`` (the root option, which sets
``QALA_HOME`` for everything it runs), else ``QALA_HOME``, else ``$XDG_DATA_HOME/qala`` (``~/.local/share/qala``):
never the current directory, so a command finds the same hub wherever it is typed.

    >>> str(resolve_home("/srv/qala"))
    '/srv/qala'
    >>> str(Home(resolve_home("/srv/qala")).database)
    '/srv/qala/qala.db'

A running hub holds ``hub.lock`` (an advisory ``flock``), so ``qala demo`` can refuse to reset a home in use.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

HOME_ENV = "QALA_HOME"
ENV_FILE = "qala.env"
DATABASE_FILE = "qala.db"
LOCK_FILE = "hub.lock"


def default_home() -> Path:
    """``$XDG_DATA_HOME/qala``, or ``~/.local/share/qala`` when that is unset (the XDG base-directory default)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "qala"


def resolve_home(home: str | os.PathLike[str] | None = None) -> Path:
    """The absolute home: ``home`` when given, else ``QALA_HOME``, else :func:`default_home`."""
    value = home or os.environ.get(HOME_ENV) or default_home()
    return Path(value).expanduser().resolve()


def missing_database(url: str) -> Path | None:
    """The SQLite file ``url`` names when it does not exist (None for one that does, or a server database).

    Commands that read state ask this first: opening a missing SQLite file would create an empty hub.
    """
    from sqlalchemy.engine import make_url  # noqa: PLC0415 -- only reading commands need it; keep --help light

    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    path = Path(parsed.database)
    return None if path.is_file() else path


def no_hub_message(home: Path, database: Path) -> str:
    """The one line a reading command prints when the home has no hub."""
    return (
        f"no hub in {home}: {database} does not exist "
        "(start one with `make demo` or `qala serve`, or choose the home with --home or QALA_HOME)"
    )


class HomeBusy(Exception):
    """Another process holds the home's lock: a hub is running on it."""


@dataclass(frozen=True)
class Home:
    """The files of one home (nothing is created until asked)."""

    path: Path

    @property
    def env_file(self) -> Path:
        return self.path / ENV_FILE

    @property
    def database(self) -> Path:
        return self.path / DATABASE_FILE

    @property
    def database_url(self) -> str:
        return f"sqlite:///{self.database}"

    @property
    def conformance(self) -> Path:
        """Where the conformance suite keeps its issuer key between runs."""
        return self.path / "conformance"

    @property
    def work(self) -> Path:
        return self.path / "work"

    def read_env(self) -> dict[str, str]:
        """The ``KEY=value`` lines of ``qala.env`` (empty when there is none)."""
        if not self.env_file.is_file():
            return {}
        pairs = (line.split("=", 1) for line in self.env_file.read_text(encoding="utf-8").splitlines())
        return {key.strip(): value.strip() for key, value in (p for p in pairs if len(p) == 2)}

    def write_env(self, values: dict[str, str]) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        lines = [f"{key}={value}" for key, value in values.items()]
        self.env_file.write_text("\n".join(lines) + "\n", encoding="utf-8")

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the home's lock for the block; :class:`HomeBusy` when another process holds it."""
        self.path.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(self.path / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.read(descriptor, 32).decode(errors="replace").strip() or "another process"
                raise HomeBusy(f"a hub is running on {self.path} (pid {holder})") from None
            os.ftruncate(descriptor, 0)
            os.pwrite(descriptor, str(os.getpid()).encode(), 0)
            yield
        finally:
            os.close(descriptor)  # closing the descriptor releases the flock
