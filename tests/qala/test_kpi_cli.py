"""``qala kpi``: list and show the book; compute figures from a hub's database; explain what went into one."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

import qala.kpi
from gateway.audit import AuditLog
from gateway.services import open_services
from gateway.settings import Settings
from gateway.store.entities import EntityStore
from gateway.store.records import Publisher
from qala.cli import main
from schemas import SchemaRegistry
from tests.cityscore.factories import case, payment


def _qala(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    try:
        main(list(args))
        code = 0
    except SystemExit as exit:
        code = int(exit.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def hub_db(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'qala.db'}"
    registry = SchemaRegistry.load()
    entities = [
        payment("p1", 600, "100.00"),
        payment("p2", 660, "50.00"),
        payment("p3", 700, "5.00", status="RJCT"),
        case("c1", 60, closed_after=180, fcr=True),
        case("c22", 60, closed_after=None, fcr=False),
    ]

    async def load() -> None:
        async with open_services(Settings(database_url=url)) as services:
            store = EntityStore(services.engine, AuditLog(services.engine))
            await store.ensure()
            await store.write_many([(e, registry.validate(e)) for e in entities], Publisher("qc_test", None))

    asyncio.run(load())
    return url


def test_list_and_show(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    # The table as piped output gets it: the console's width is fixed when qala.kpi is imported, and a narrow
    # terminal then (COLUMNS=80, as in a pytest-xdist worker) wraps the labels.
    monkeypatch.setattr(qala.kpi.out, "width", 250)
    code, out, _ = _qala(capsys, "kpi", "list", "--lang", "ru")
    assert code == 0
    assert "payments.count" in out
    assert "Количество" in out
    code, out, _ = _qala(capsys, "kpi", "show", "payments.count")
    assert code == 0
    assert "shymkent" in out
    assert "600000" in out


def test_bad_input_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _qala(capsys, "kpi", "show", "nope")
    assert (code, err.count("\n")) == (2, 1)
    assert "unknown KPI 'nope'" in err
    code, _, err = _qala(capsys, "kpi", "explain", "payments.count", "--city", "astana", "--period", "2026-13")
    assert code == 2
    assert "not a valid period" in err


def test_compute_then_explain(capsys: pytest.CaptureFixture[str], hub_db: str) -> None:
    code, out, err = _qala(
        capsys,
        "kpi",
        "compute",
        "--from",
        "2026-11-01",
        "--to",
        "2026-11-30",
        "--city",
        "astana",
        "--database-url",
        hub_db,
    )
    assert code == 0, err
    assert "payments.count" in out
    assert "KPIValue entities written" in out
    code, out, err = _qala(
        capsys,
        "kpi",
        "explain",
        "payments.count",
        "--city",
        "astana",
        "--period",
        "2026-11-02",
        "--database-url",
        hub_db,
    )
    assert code == 0, err
    assert "value 2 {count}" in out
    assert "urn:ngsi-ld:PaymentTransaction:astana:p1" in out
    assert "urn:ngsi-ld:PaymentTransaction:astana:p3" not in out  # rejected payments do not count
    assert "published urn:ngsi-ld:KPIValue:astana:payments.count-day-2026-11-02" in out
    code, out, _ = _qala(
        capsys,
        "kpi",
        "explain",
        "contact-centre.first-contact-resolution",
        "--city",
        "astana",
        "--period",
        "2026-W45",
        "--database-url",
        hub_db,
    )
    assert "numerator 1  denominator 2" in out
