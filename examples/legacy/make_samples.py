"""Regenerate the sample legacy exports in this folder, byte for byte the same on every run.

    python examples/legacy/make_samples.py

Every person, phone number, card and payment in them is invented.
"""

from __future__ import annotations

import csv
import io
import random
from datetime import datetime, timedelta
from pathlib import Path

HERE = Path(__file__).parent

SURNAMES = ["Ахметов", "Иванова", "Сейткали", "Ким", "Нурланова", "Петров", "Бекова", "Жумабаев", "Орлова", "Тлеубаев"]
NAMES = ["Ерлан", "Анна", "Данияр", "Виктория", "Асель", "Сергей", "Мадина", "Тимур", "Ольга", "Айдос"]
ASTANA_STREETS = [
    ("Есиль", "проспект Туран", 71.4039, 51.1328),
    ("Алматы", "улица Жубанова", 71.4851, 51.1466),
    ("Сарыарка", "проспект Сарыарка", 71.4143, 51.1788),
    ("Байконур", "улица Богенбай батыра", 71.4507, 51.1735),
    ("Нура", "проспект Кабанбай батыра", 71.4180, 51.0905),
]
CATEGORIES = {
    "Ямы на дороге": ("Глубокая яма на проезжей части у остановки", "ГУ «Управление транспорта города Астаны»"),
    "Уборка снега": ("Не вывезен снег во дворе, проезд затруднён", "ТОО «Астана Тазалык»"),
    "Уличное освещение": ("Не горят фонари вдоль тротуара", "ГКП «Астана Жарык»"),
    "Вывоз мусора": ("Контейнеры переполнены третий день", "ТОО «Астана Тазалык»"),
    "Отопление": ("В квартире холодно, батареи еле тёплые", "АО «Астана-Теплотранзит»"),
    "Водоснабжение": ("Нет холодной воды с утра", "ГКП «Астана Су Арнасы»"),
}
CHANNELS = ["Звонок 109", "Звонок 109", "Мобильное приложение", "Telegram", "Сайт", "Чат-бот"]


def ikomek_rows() -> list[list[str]]:
    """iKOMEK-109 cases around the time-zone change of 1 March 2024; the last three rows are broken on purpose."""
    rng = random.Random(109)  # noqa: S311 - invented sample data, not secrets
    rows = []
    for n in range(45):
        day = 26 + n // 9  # 26.02 .. 02.03 (after the 29th comes March)
        month, day = (2, day) if day <= 29 else (3, day - 29)
        hour, minute = rng.randrange(0, 24), rng.randrange(0, 60)
        if n == 26:
            (month, day, hour, minute) = (2, 29, 23, 40)  # the last hour on +06:00
        if n == 27:
            (month, day, hour, minute) = (3, 1, 0, 15)  # the first one on +05:00
        category = list(CATEGORIES)[n % len(CATEGORIES)]
        text, agency = CATEGORIES[category]
        district, street, lon, lat = ASTANA_STREETS[n % len(ASTANA_STREETS)]
        status = ["Выполнено", "В работе", "Принято", "Орындалды", "Выполнено"][n % 5]
        closed = status in ("Выполнено", "Орындалды")
        opened = datetime(2024, month, day, hour, minute)
        closed_at = (opened + timedelta(hours=rng.randrange(2, 30))).strftime("%d.%m.%Y %H:%M")
        description = f"{text}, дом {rng.randrange(1, 80)}"
        if n == 5:
            description = "Яма на дороге; машины объезжают по встречной полосе"  # a delimiter inside quotes
        if n == 9:
            description = "Не горят фонари.\nЖители просят ускорить ремонт"  # a line break inside quotes
        rows.append(
            [
                f"IK-2024-{212000 + n * 37:07d}",
                opened.strftime("%d.%m.%Y %H:%M"),
                CHANNELS[n % len(CHANNELS)],
                category,
                description,
                district,
                f"{street}, {rng.randrange(1, 90)}",
                f"{lon + rng.uniform(-0.01, 0.01):.4f}".replace(".", ","),
                f"{lat + rng.uniform(-0.01, 0.01):.4f}".replace(".", ","),
                status,
                closed_at if closed else "",
                agency,
                f"{rng.choice(SURNAMES)} {rng.choice(NAMES)}",
                f"8 (7{rng.choice(['01', '05', '47', '77'])}) 555-{rng.randrange(10, 99)}-{rng.randrange(10, 99)}",
                "Да" if closed and n % 3 == 0 else "Нет",
            ]
        )
    broken_date = [*rows[0]]
    broken_date[0], broken_date[1] = "IK-2024-0213900", "31.02.2024 10:00"  # no such day
    closed_undated = [*rows[1]]
    closed_undated[0], closed_undated[9], closed_undated[10] = "IK-2024-0213901", "Выполнено", ""  # no closing time
    short = rows[2][:6]
    short[0] = "IK-2024-0213902"  # a row cut after the district
    return [*rows, broken_date, closed_undated, short]


IKOMEK_HEADER = [
    "№ обращения", "Дата регистрации", "Канал", "Категория", "Описание", "Район", "Адрес", "Долгота", "Широта",
    "Статус", "Дата закрытия", "Исполнитель", "Заявитель", "Телефон", "Решено при первом обращении",
]  # fmt: skip


def write_ikomek() -> None:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")
    writer.writerow(IKOMEK_HEADER)
    writer.writerows(ikomek_rows())
    (HERE / "ikomek-109-astana.csv").write_bytes(buffer.getvalue().encode("cp1251"))


def main() -> None:
    write_ikomek()


if __name__ == "__main__":
    main()
