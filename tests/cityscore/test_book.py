"""The KPI book: valid against its schema, the methodology's defaults, per-city overrides, clear errors."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest
import yaml

from cityscore.book import BOOK_FILE, KpiBook
from cityscore.errors import BookError, UnknownKpi

REQUIRED = {
    "data.latency-median",
    "data.latency-p95",
    "contact-centre.first-contact-resolution",
    "service-requests.resolution-hours",
    "payments.count",
    "payments.amount",
    "air.pm25-exceedance-hours",
    "transport.route-hours",
    "open-data.freshness",
}


def test_the_bundled_book_has_every_required_kpi_in_three_languages() -> None:
    book = KpiBook.load()
    assert set(book.codes()) >= REQUIRED
    for kpi in book:
        assert set(kpi.name) == {"kk", "ru", "en"}
        assert all(kpi.description[lang] for lang in ("kk", "ru", "en"))


def test_methodology_defaults_and_city_overrides() -> None:
    book = KpiBook.load()
    payments = book.get("payments.count")
    assert payments.target_for("astana", days=30) == 1_000_000  # the methodology: 1 million a month
    assert payments.target_for("astana", days=1) == Fraction(1_000_000, 30)
    assert payments.target_for("shymkent", days=30) == 600_000  # kpis/overrides.yaml
    assert book.get("data.latency-p95").target_for("almaty", days=7) == 900  # 15 minutes, whatever the period


def test_unknown_kpi_names_the_known_ones() -> None:
    with pytest.raises(UnknownKpi, match=r"payments\.count"):
        KpiBook.load().get("nope")


def _broken(tmp_path: Path, change: dict[str, object], index: int = 0) -> Path:
    document = yaml.safe_load(BOOK_FILE.read_text(encoding="utf-8"))
    document["kpis"][index].update(change)
    path = tmp_path / "book.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("change", "pointer"),
    [
        ({"direction": "sideways"}, "/kpis/0/direction"),
        ({"cadence": ["hourly"]}, "/kpis/0/cadence/0"),
        ({"formula": {"reads": ["Unicorn"], "time": ["dateObserved"], "aggregate": "count"}}, "/kpis/0/formula/reads"),
        (
            {"formula": {"reads": ["ServiceRequest"], "time": ["dateRequested"], "aggregate": "median"}},
            "/kpis/0/formula",
        ),
    ],
)
def test_a_broken_book_is_refused_with_the_place(tmp_path: Path, change: dict[str, object], pointer: str) -> None:
    with pytest.raises(BookError) as caught:
        KpiBook.read(_broken(tmp_path, change))
    assert caught.value.pointer == pointer


def test_overrides_for_an_unknown_city_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "overrides.yaml"
    path.write_text("version: 1.0.0\ncities:\n  gotham:\n    payments.count: {target: 5}\n", encoding="utf-8")
    with pytest.raises(BookError, match="gotham"):
        KpiBook.read(BOOK_FILE, path)
