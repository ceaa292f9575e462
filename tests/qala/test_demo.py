"""``qala demo`` loads every legacy sample through its adapter and the hub's batch API."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from typer.testing import CliRunner

from qala.cli import build_app
from tests.conformance.conftest import free_port


def test_demo_loads_every_sample_through_the_hub(tmp_path: Path) -> None:
    data_dir = tmp_path / "demo"
    result = CliRunner().invoke(
        build_app(), ["demo", "--port", str(free_port()), "--data-dir", str(data_dir), "--exit-after-load"]
    )
    assert result.exit_code == 0, result.output
    assert "ikomek-109-astana.csv" in result.output
    assert "client_secret qs_" in result.output
    with sqlite3.connect(data_dir / "qala.db") as db:
        counts = dict(db.execute("SELECT collection, count(*) FROM entities WHERE NOT deleted GROUP BY collection"))
        quarantined = db.execute("SELECT count(*) FROM quarantined_records").fetchone()[0]
        facilities = [
            json.loads(row[0])
            for row in db.execute("SELECT payload FROM entities WHERE collection = 'facilities' AND NOT deleted")
        ]
    kazakh = [f for f in facilities if set("ҚқӘәҒғҢңӨөҰұҮүҺһІі") & set(json.dumps(f, ensure_ascii=False))]
    # Every collection has data; the adapters' samples dominate where they exist.
    assert len(counts) == 12, counts
    assert counts["service-requests"] >= 45 + 30 + 24
    assert counts["payment-transactions"] >= 38
    assert kazakh, "Kazakh text survived the KZ-1048 export"
    assert quarantined >= 9, "every sample's rejected records reached the hub's quarantine"
    assert not [f for f in facilities if set("ЌЈЄ") & set(json.dumps(f, ensure_ascii=False))], "no cp1251 mojibake"
