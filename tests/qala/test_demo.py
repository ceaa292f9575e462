"""``qala demo`` loads every legacy sample through its adapter and the hub's batch API, in the hub's home."""

from __future__ import annotations

import json
import socket
import sqlite3
from pathlib import Path

from typer.testing import CliRunner

from qala.cli import build_app
from qala.home import Home
from schemas.registry import SchemaRegistry, collection_name
from tests.conformance.conftest import free_port


def test_demo_loads_every_sample_through_the_hub(tmp_path: Path) -> None:
    home = tmp_path / "home"
    result = CliRunner().invoke(
        build_app(), ["--home", str(home), "demo", "--port", str(free_port()), "--exit-after-load"]
    )
    assert result.exit_code == 0, result.output
    assert "ikomek-109-astana.csv" in result.output
    assert "export QALA_CLIENT_SECRET=qs_" in result.output
    assert f"export QALA_HOME={home}" in result.output
    assert "open-data catalogue http://127.0.0.1:" in result.output
    with sqlite3.connect(home / "qala.db") as db:
        counts = dict(db.execute("SELECT collection, count(*) FROM entities WHERE NOT deleted GROUP BY collection"))
        quarantined = db.execute("SELECT count(*) FROM quarantined_records").fetchone()[0]
        facilities = [
            json.loads(row[0])
            for row in db.execute("SELECT payload FROM entities WHERE collection = 'facilities' AND NOT deleted")
        ]
    kazakh = [f for f in facilities if set("ҚқӘәҒғҢңӨөҰұҮүҺһІі") & set(json.dumps(f, ensure_ascii=False))]
    # Every collection has data, except the KPI values the engine computes once the simulated cities run (they are
    # never loaded from static examples, and whether its first pass has written any by now depends on the machine's
    # speed); the adapters' samples dominate where they exist.
    every = {collection_name(t) for t in SchemaRegistry.load().types()}
    assert set(counts) - {"kpi-values"} == every - {"kpi-values"}, counts
    assert counts["service-requests"] >= 45 + 30 + 24
    assert counts["payment-transactions"] >= 38
    assert kazakh, "Kazakh text survived the KZ-1048 export"
    assert quarantined >= 9, "every sample's rejected records reached the hub's quarantine"
    assert not [f for f in facilities if set("ЌЈЄ") & set(json.dumps(f, ensure_ascii=False))], "no cp1251 mojibake"
    assert Home(home).read_env() == {
        "QALA_ENV": "demo",
        "QALA_ISSUER": result.output.split("running at ")[1].split()[0],
    }


def _demo_home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    (home / "qala.db").write_bytes(b"the running hub's data")
    Home(home).write_env({"QALA_ENV": "demo", "QALA_ISSUER": "http://127.0.0.1:8000"})
    return home


def test_a_busy_port_is_one_line_and_the_home_is_untouched(tmp_path: Path) -> None:
    home = _demo_home(tmp_path)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = CliRunner().invoke(build_app(), ["--home", str(home), "demo", "--port", str(port)])
    assert result.exit_code == 2
    err = result.stderr
    assert err.startswith(f"qala: error: cannot listen on 127.0.0.1:{port}: Address already in use"), err
    assert err.count("\n") == 1
    assert (home / "qala.db").read_bytes() == b"the running hub's data"


def test_a_home_in_use_is_not_reset(tmp_path: Path) -> None:
    home = _demo_home(tmp_path)
    with Home(home).lock():  # a hub runs on this home (the lock is per open file: this process counts as another)
        result = CliRunner().invoke(build_app(), ["--home", str(home), "demo", "--port", str(free_port())])
    assert result.exit_code == 2
    assert f"a hub is running on {home}" in result.stderr
    assert (home / "qala.db").read_bytes() == b"the running hub's data"


def test_a_home_that_is_not_a_demo_is_not_reset(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "qala.db").write_bytes(b"a city's data")
    result = CliRunner().invoke(build_app(), ["--home", str(home), "demo", "--port", str(free_port())])
    assert result.exit_code == 2
    assert "holds a hub that is not a demo" in result.stderr
    assert (home / "qala.db").read_bytes() == b"a city's data"
