"""Run the command blocks of Markdown documents, in order, against a demo hub started as the README says.

A fenced block whose info string is ``sh`` runs in ``bash -eo pipefail`` from the top of a fresh checkout (the
tracked files only, as a clone has them), with a ``PATH`` that does not hold the virtual environment: what the
docs say to type must work without activating anything. Variables a block ``export``s reach the blocks after
it, as they would in the reader's shell. An HTML comment just before a block changes how it runs:

- ``<!-- docs-test: demo -->``: the block starts the demo hub; it keeps running, and the ``export`` lines it
  prints (home, client id and secret) are set for the blocks after it, as the reader pastes them;
- ``<!-- docs-test: background URL -->``: the block starts a server; the runner waits until URL answers;
- ``<!-- docs-test: skip REASON -->``: not run here (``make test`` inside the test suite, say).

A ``text output`` block right after a command block is the output the docs show: each of its lines must appear
in the command's output, in order, where ``...`` stands for any text.

Ports: the docs use 8000 (hub), 9000 (reference module) and 8765 (the suite's issuer). The runner replaces them
with free ports in every block, so that the test never meets another hub on this machine.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.gateway.serving import free_port

ROOT = Path(__file__).resolve().parents[2]
MARKER = re.compile(r"<!--\s*docs-test:\s*(?P<kind>\w+)\s*(?P<arg>.*?)\s*-->")
FENCE = re.compile(r"^```(?P<info>[^\n`]*)\n(?P<body>.*?)^```\s*$", re.MULTILINE | re.DOTALL)
DOC_PORTS = {"hub": 8000, "module": 9000, "issuer": 8765}


@dataclass
class Block:
    document: str
    line: int
    body: str
    kind: str = "run"
    argument: str = ""
    output: str | None = None

    @property
    def where(self) -> str:
        return f"{self.document}:{self.line}"


def blocks(path: Path) -> list[Block]:
    """The ``sh`` blocks of one document, each with its marker and its shown output."""
    text = path.read_text(encoding="utf-8")
    found: list[Block] = []
    for match in FENCE.finditer(text):
        info = match.group("info").strip()
        if info == "text output" and found and found[-1].output is None:
            found[-1].output = match.group("body")
            continue
        if info != "sh":
            continue
        before = text[: match.start()].rstrip().rsplit("\n", 1)[-1]
        marker = MARKER.fullmatch(before.strip())
        line = text.count("\n", 0, match.start()) + 1
        block = Block(str(path.relative_to(ROOT)), line, match.group("body"))
        if marker is not None:
            block.kind, block.argument = marker.group("kind"), marker.group("arg")
        found.append(block)
    return found


def fresh_checkout(target: Path) -> Path:
    """The tracked files as they are now (a clone of the work in progress), and the project's virtual env."""
    listed = (
        subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout.decode().split("\0")
    )
    for name in filter(None, listed):
        source = ROOT / name
        if not source.exists() and not source.is_symlink():
            continue  # deleted in the work tree, not yet committed
        destination = target / name
        destination.parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():
            destination.symlink_to(os.readlink(source))
        else:
            shutil.copy2(source, destination)
    (target / ".venv").symlink_to(ROOT / ".venv")  # `make` finds it installed (its stamp is honoured with -o)
    return target


def matches(expected: str, output: str) -> str | None:
    """None when every expected line appears in order (``...`` matching anything); else the first missing line."""
    lines = output.splitlines()
    position = 0
    for wanted in filter(None, (line.rstrip() for line in expected.splitlines())):
        pattern = re.compile(".*".join(re.escape(part) for part in wanted.split("...")))
        while position < len(lines) and not pattern.search(lines[position]):
            position += 1
        if position == len(lines):
            return wanted
        position += 1
    return None


@dataclass
class Session:
    """One reader's shell, in one checkout, against one demo hub."""

    checkout: Path
    home: Path
    ports: dict[str, int] = field(default_factory=lambda: {name: free_port() for name in DOC_PORTS})
    exported: dict[str, str] = field(default_factory=dict)
    servers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    state: Path = field(init=False)

    def __post_init__(self) -> None:
        self.state = self.home.parent / "exported.sh"
        self.state.write_text("")

    def localise(self, text: str) -> str:
        for name, port in DOC_PORTS.items():
            text = text.replace(f"127.0.0.1:{port}", f"127.0.0.1:{self.ports[name]}")
            text = text.replace(f"--port {port}", f"--port {self.ports[name]}")
        return text

    def env(self) -> dict[str, str]:
        venv = str(ROOT / ".venv" / "bin")
        path = ":".join(p for p in os.environ.get("PATH", "").split(":") if p and p != venv)
        keep = {"HOME", "LANG", "LC_ALL", "TMPDIR", "XDG_DATA_HOME"}
        env = {key: value for key, value in os.environ.items() if key in keep}
        env.update(PATH=path, QALA_HOME=str(self.home), COLUMNS="120")
        env["QALA_CONFORMANCE_ISSUER_URL"] = f"http://127.0.0.1:{self.ports['issuer']}"
        env.update(self.exported)
        return env

    def run(self, block: Block, timeout: float = 240) -> str:
        body = self.localise(block.body)
        if block.kind == "skip":
            return ""
        if block.kind == "demo":
            return self._demo(block, body)
        if block.kind == "background":
            return self._background(block, body)
        script = f"set -eo pipefail\nsource {self.state}\n{body}\nexport -p > {self.state}.new\n"
        proc = subprocess.run(
            ["bash", "-c", script],
            cwd=self.checkout,
            env=self.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,  # one stream, in the order a terminal shows it
            timeout=timeout,
            check=False,
        )
        output = proc.stdout.decode(errors="replace")
        if proc.returncode != 0:
            raise AssertionError(f"{block.where}: exit {proc.returncode}\n$ {body}\n{output}")
        self._keep_exports()
        if block.output is not None:
            missing = matches(self.localise(block.output), output)
            if missing is not None:
                raise AssertionError(f"{block.where}: the output lacks {missing!r}\n$ {body}\n{output}")
        return output

    def _keep_exports(self) -> None:
        lines = Path(f"{self.state}.new").read_text().splitlines()
        skip = re.compile(r"declare -x (PWD|OLDPWD|SHLVL|_)(=|$)")
        self.state.write_text("\n".join(line for line in lines if not skip.match(line)) + "\n")

    def _start(self, body: str, log: Path) -> subprocess.Popen[bytes]:
        with log.open("wb") as sink:
            server = subprocess.Popen(
                ["bash", "-c", f"source {self.state}\n{body.strip()}"],
                cwd=self.checkout,
                env=self.env(),
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.servers.append(server)
        return server

    def _demo(self, block: Block, body: str) -> str:
        # `make -o` honours the installed stamp of the linked venv instead of reinstalling into it
        body = body.replace("make demo", f"make -o .venv/.installed demo DEMO_ARGS='--port {self.ports['hub']}'")
        log = self.home.parent / "demo.log"
        server = self._start(body, log)
        deadline = time.monotonic() + 180
        while "Ctrl-C stops the hub." not in log.read_text(errors="replace"):
            if server.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"{block.where}: the demo did not start\n{log.read_text(errors='replace')}")
            time.sleep(0.5)
        output = log.read_text(errors="replace")
        for name, value in re.findall(r"^\s*export (\w+)=(\S+)\s*$", output, re.MULTILINE):
            self.exported[name] = value
        if block.output is not None:
            missing = matches(self.localise(block.output), output)
            if missing is not None:
                raise AssertionError(f"{block.where}: the demo's output lacks {missing!r}\n{output}")
        return output

    def _background(self, block: Block, body: str) -> str:
        url = self.localise(block.argument)
        log = self.home.parent / f"server-{len(self.servers)}.log"
        server = self._start(body, log)
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url, timeout=2).status_code < 500:
                    return ""
            if server.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"{block.where}: {url} never answered\n{log.read_text(errors='replace')}")
            time.sleep(0.3)

    def close(self) -> None:
        for server in reversed(self.servers):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server.pid, signal.SIGINT)
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()


@contextlib.contextmanager
def session(tmp: Path) -> Iterator[Session]:
    checkout = fresh_checkout(tmp / "qala")
    home = tmp / "home" / "qala"
    home.parent.mkdir(parents=True)
    running = Session(checkout, home)
    try:
        yield running
    finally:
        running.close()
