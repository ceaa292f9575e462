from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest

from adapters.conversions import (
    boolean,
    decimal_string,
    epoch_datetime,
    local_date,
    local_datetime,
    normalise_key,
    number,
    phone_kz,
    to_decimal,
)
from adapters.errors import ConversionError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("29.02.2024 23:59", "2024-02-29T23:59:00+06:00"),
        ("01.03.2024 00:00", "2024-03-01T00:00:00+05:00"),
        ("28.02.2024", "2024-02-28T00:00:00+06:00"),
        ("02.03.2024 08:15:30", "2024-03-02T08:15:30+05:00"),
        (" 15.01.2023\u00a0 09:05 ", "2023-01-15T09:05:00+06:00"),
    ],
)
def test_local_datetime_takes_the_offset_of_its_day(text: str, expected: str) -> None:
    assert local_datetime(text) == expected


def test_local_datetime_accepts_excel_values() -> None:
    assert local_datetime(datetime(2024, 3, 5, 10, 0)) == "2024-03-05T10:00:00+05:00"
    assert local_datetime(date(2024, 2, 5)) == "2024-02-05T00:00:00+06:00"


@pytest.mark.parametrize("text", ["31.02.2024 10:00", "2024/03/01", "вчера", "12.13.2024"])
def test_impossible_dates_are_refused(text: str) -> None:
    with pytest.raises(ConversionError, match="not a date"):
        local_datetime(text)


def test_local_date_and_epoch() -> None:
    assert local_date("01.03.2024") == "2024-03-01"
    assert epoch_datetime(1709251200) == "2024-03-01T05:00:00+05:00"
    assert epoch_datetime(1709164800) == "2024-02-29T06:00:00+06:00"
    with pytest.raises(ConversionError):
        epoch_datetime("soon")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1 234 567,89", "1234567.89"),
        ("12\u00a0500,5", "12500.50"),
        ("12\u202f500", "12500.00"),
        ("0,1", "0.10"),
        (Decimal("7.5"), "7.50"),
        (250, "250.00"),
        (0.1 + 0.2, None),
    ],
)
def test_money_stays_exact(text: object, expected: str | None) -> None:
    if expected is None:  # 0.30000000000000004 has more than two places: refused, not rounded
        with pytest.raises(ConversionError):
            decimal_string(text)
    else:
        assert decimal_string(text) == expected


@pytest.mark.parametrize("text", ["12,5,3", "abc", "1.234,56.7", ""])
def test_garbage_numbers_are_refused(text: str) -> None:
    with pytest.raises(ConversionError):
        to_decimal(text)


def test_number_keeps_integers() -> None:
    assert number("42") == 42
    assert isinstance(number("42"), int)
    assert number("51,1328") == pytest.approx(51.1328)


def test_words_phones_and_keys() -> None:
    assert boolean("Иә") is True
    assert boolean("Жоқ") is False
    with pytest.raises(ConversionError):
        boolean("может быть")
    assert phone_kz("+7 701 555 01 23") == "+77015550123"
    assert phone_kz("8(747)5550000") == "+77475550000"
    with pytest.raises(ConversionError):
        phone_kz("555-01")
    assert normalise_key("ДАТА\u00a0Закрытия  ") == normalise_key("дата закрытия")
    assert normalise_key("Ёлка") == "елка"


def _strptime_local(text: str, zone: str = "Asia/Almaty") -> str | None:
    """What local_datetime answered before its strptime-free paths: the reference for them."""
    for fmt in ("%d.%m.%Y %H:%M:%S", "%d.%m.%Y %H:%M", "%d.%m.%Y", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S"):
        try:
            naive = datetime.strptime(text, fmt)
        except ValueError:
            continue
        return local_datetime(naive, zone)
    return None


@pytest.mark.parametrize(
    "text",
    [
        *(f"{d:02d}.{m:02d}.{y} {h:02d}:{mi:02d}" for d in (0, 1, 28, 29, 30, 31, 32) for m in (0, 2, 3, 12, 13)
          for y in (2023, 2024) for h, mi in ((0, 0), (23, 59), (24, 0), (12, 60))),
        "29.02.2024", "29.02.2023", "01.03.2024 00:00:00", "01.03.2024 23:59:60", "1.3.2024 9:05", "01.03.2024T09:05",
        "01.03.2024 09:5 ", "٠١.03.2024", "+1.03.2024", "01-03-2024", "01.03.0001 00:00", "01.03.2024 09:05:7",
    ],
)  # fmt: skip
def test_fast_date_path_agrees_with_strptime(text: str) -> None:
    try:
        fast: str | None = local_datetime(text)
    except ConversionError:
        fast = None
    assert fast == _strptime_local(" ".join(text.split()))


@pytest.mark.parametrize(
    "text", ["71,3951", "5", "-0", "-0.0", "5.0", "00071,30", "1 234,5", "12\u00a0500", "1e5", "abc", "", "٣", "5\n"]
)
def test_plain_number_path_agrees_with_decimal(text: str) -> None:
    def through_decimal(value: str) -> int | float:
        amount = to_decimal(value)
        return int(amount) if amount == amount.to_integral_value() and "." not in str(amount) else float(amount)

    try:
        expected: object = through_decimal(text)
    except ConversionError:
        expected = ConversionError
    try:
        got: object = number(text)
    except ConversionError:
        got = ConversionError
    assert got == expected
    assert type(got) is type(expected)


@pytest.mark.parametrize(
    ("zone", "days"),
    [
        ("Asia/Almaty", ["29.02.2024", "01.03.2024", "31.03.1991", "29.09.1991", "01.01.1930", "15.06.2004"]),
        ("Europe/Berlin", ["31.03.2024", "27.10.2024", "01.04.1945", "24.05.1945", "29.09.1947"]),
        ("America/St_Johns", ["10.03.2024", "03.11.2024", "30.10.1988"]),  # half-hour offsets, midnight shifts
        ("Australia/Lord_Howe", ["07.04.2024", "06.10.2024"]),  # a half-hour change of offset
        ("UTC", ["01.01.2024"]),
    ],
)
def test_offsets_on_days_the_clock_changes(zone: str, days: list[str]) -> None:
    """The per-day offset shortcut answers only for days on which the offset holds all day: every quarter hour
    of these days, and of the days either side, gets what strptime and the time-zone database give."""
    for day in days:
        base = datetime.strptime(day, "%d.%m.%Y")
        for shift in (-1, 0, 1):
            moment = base + timedelta(days=shift)
            for minutes in range(0, 24 * 60, 15):
                text = (moment + timedelta(minutes=minutes)).strftime("%d.%m.%Y %H:%M")
                assert local_datetime(text, zone) == _strptime_local(text, zone), (text, zone)


def test_phone_numbers_with_other_marks() -> None:
    assert phone_kz("8.701.555.01.23") == "+77015550123"
    assert phone_kz("тел. 8 701 555 0123") == "+77015550123"
    with pytest.raises(ConversionError):
        phone_kz("8 701 555 01 23 доб. 5")
