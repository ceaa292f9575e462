# ruff: noqa: E501 - the sample tables read better one record per line
"""Regenerate the sample legacy exports in this folder, byte for byte the same on every run.

    python examples/legacy/make_samples.py

Every person, phone number, card and payment in them is invented.
"""

from __future__ import annotations

import csv
import io
import json
import random
import re
import struct
import zipfile
from datetime import datetime, timedelta
from pathlib import Path

from google.transit import gtfs_realtime_pb2
from openpyxl import Workbook

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


ALMATY_DISTRICTS = ["Алмалинский", "Бостандыкский", "Медеуский", "Ауэзовский", "Наурызбайский", "Турксибский"]
ALMATY_STATUSES = ["Орындалды", "Жұмыста", "Выполнено", "Принято", "Отклонено"]


ALMATY_TITLE = "Реестр обращений Almaty-109 за февраль–март 2024 года"
ALMATY_HEADER = [
    ["Номер заявки", "Дата поступления", "Категория", "Адрес", None, "Заявитель", None, "Статус", "Дата закрытия"],
    [None, None, None, "Район", "Улица, дом", "ФИО", "Телефон", None, None],
]
ALMATY_MERGES = [
    (0, 0, 0, 8),
    (1, 2, 0, 0),
    (1, 2, 1, 1),
    (1, 2, 2, 2),
    (1, 2, 7, 7),
    (1, 2, 8, 8),
    (1, 1, 3, 4),
    (1, 1, 5, 6),
]
"""Merged ranges of the register, 0-based (first row, last row, first column, last column), as in the workbook."""


def almaty_rows() -> list[list[object]]:
    """The Almaty-109 register's data rows: Excel date-times, some typed as text by operators, one bad date."""
    rng = random.Random(727)  # noqa: S311 - invented sample data, not secrets
    rows: list[list[object]] = []
    start = datetime(2024, 2, 27, 8, 0)
    for n in range(30):
        opened = start + timedelta(hours=n * 5 + rng.randrange(0, 4), minutes=rng.randrange(0, 60))
        status = ALMATY_STATUSES[n % len(ALMATY_STATUSES)]
        closed = (
            opened + timedelta(hours=rng.randrange(3, 40))
            if status in ("Орындалды", "Выполнено", "Отклонено")
            else None
        )
        rows.append(
            [
                f"ALM-{240000 + n * 13}",
                opened if n % 4 else opened.strftime("%d.%m.%Y %H:%M"),  # some cells typed as text by operators
                list(CATEGORIES)[n % len(CATEGORIES)],
                ALMATY_DISTRICTS[n % len(ALMATY_DISTRICTS)],
                f"проспект Абая, {rng.randrange(1, 200)}",
                f"{rng.choice(SURNAMES)} {rng.choice(NAMES)}",
                f"+7 (7{rng.choice(['01', '07', '77'])}) 555 {rng.randrange(1000, 9999)}",
                status,
                closed,
            ]
        )
    rows.append(["ALM-249999", "вчера вечером", "Уборка снега", "Медеуский", "улица Кунаева, 1", "Ким Анна",
                 "+7 701 555 0000", "Принято", None])  # fmt: skip
    return rows


def write_almaty_xlsx(path: Path = HERE / "almaty-109.xlsx", rows: list[list[object]] | None = None) -> None:
    """Almaty-109 register: a title row, then a two-row header with merged cells; Kazakh and Russian statuses.
    ``path`` and ``rows`` are for bench/adapters.py, which writes the register with more rows."""
    book = Workbook()
    sheet = book.active
    sheet.title = "Обращения"
    sheet.append([ALMATY_TITLE])
    for row in ALMATY_HEADER:
        sheet.append(row)
    for top, bottom, left, right in ALMATY_MERGES:
        sheet.merge_cells(start_row=top + 1, end_row=bottom + 1, start_column=left + 1, end_column=right + 1)
    for row in almaty_rows() if rows is None else rows:
        sheet.append(row)
    for cells in sheet.iter_rows(min_row=4):
        for cell in (cells[1], cells[8]):
            if isinstance(cell.value, datetime):
                cell.number_format = "DD.MM.YYYY HH:MM"
    book.properties.created = datetime(2024, 3, 5, 9, 0)  # fixed, so the file is the same on every run
    book.properties.modified = datetime(2024, 3, 5, 9, 0)
    buffer = io.BytesIO()
    book.save(buffer)
    path.write_bytes(_stable_zip(buffer.getvalue()))


def write_almaty_xls(path: Path = HERE / "almaty-109.xls", rows: list[list[object]] | None = None) -> None:
    """The same register as Excel 97-2003 saves it (BIFF8, written by xlwt): merged cells, date-time cells."""
    import xlwt  # noqa: PLC0415 - a sample-making dependency only

    book = xlwt.Workbook(encoding="utf-8")
    sheet = book.add_sheet("Обращения")
    dated = xlwt.easyxf(num_format_str="DD.MM.YYYY HH:MM")
    header = [[ALMATY_TITLE, *[None] * 8], *ALMATY_HEADER]
    merged = {(top, left) for top, _, left, _ in ALMATY_MERGES}
    for top, bottom, left, right in ALMATY_MERGES:
        sheet.write_merge(top, bottom, left, right, header[top][left])
    for r, row in enumerate(header):
        for c, value in enumerate(row):
            if value is not None and (r, c) not in merged:
                sheet.write(r, c, value)
    for r, row in enumerate(almaty_rows() if rows is None else rows, start=len(header)):
        for c, value in enumerate(row):
            if isinstance(value, datetime):
                sheet.write(r, c, value, dated)
            elif value is not None:
                sheet.write(r, c, value)
    buffer = io.BytesIO()
    book.save(buffer)
    path.write_bytes(buffer.getvalue())


def write_almaty_ods(path: Path = HERE / "almaty-109.ods", rows: list[list[object]] | None = None) -> None:
    """The same register as LibreOffice saves it (OpenDocument, written by odfpy): spanned cells, date cells."""
    from odf.opendocument import OpenDocumentSpreadsheet  # noqa: PLC0415 - a sample-making dependency only
    from odf.table import CoveredTableCell, Table, TableCell, TableRow  # noqa: PLC0415
    from odf.text import P  # noqa: PLC0415

    document = OpenDocumentSpreadsheet()
    table = Table(name="Обращения")
    spans = {(top, left): (bottom - top + 1, right - left + 1) for top, bottom, left, right in ALMATY_MERGES}
    covered = {
        (r, c)
        for top, bottom, left, right in ALMATY_MERGES
        for r in range(top, bottom + 1)
        for c in range(left, right + 1)
        if (r, c) != (top, left)
    }
    table_rows = [[ALMATY_TITLE, *[None] * 8], *ALMATY_HEADER, *(almaty_rows() if rows is None else rows)]
    for r, values in enumerate(table_rows):
        row = TableRow()
        for c, value in enumerate(values):
            if (r, c) in covered:
                row.addElement(CoveredTableCell())
                continue
            attributes: dict[str, object] = {}
            if (r, c) in spans:
                attributes["numberrowsspanned"], attributes["numbercolumnsspanned"] = spans[(r, c)]
            if isinstance(value, datetime):
                cell = TableCell(valuetype="date", datevalue=value.strftime("%Y-%m-%dT%H:%M:%S"), **attributes)
                cell.addElement(P(text=value.strftime("%d.%m.%Y %H:%M")))
            elif value is None:
                cell = TableCell(**attributes)
            else:
                cell = TableCell(valuetype="string", **attributes)
                cell.addElement(P(text=str(value)))
            row.addElement(cell)
        table.addElement(row)
    document.spreadsheet.addElement(table)
    buffer = io.BytesIO()
    document.write(buffer)
    path.write_bytes(_stable_zip(buffer.getvalue()))


def _stable_zip(data: bytes) -> bytes:
    """The same archive with fixed member timestamps, so regenerating changes no byte."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            fixed = zipfile.ZipInfo(info.filename, date_time=(2024, 3, 5, 9, 0, 0))
            # OpenDocument wants its mimetype first and stored; the rest is deflated
            fixed.compress_type = zipfile.ZIP_STORED if info.filename == "mimetype" else zipfile.ZIP_DEFLATED
            data = source.read(info.filename)
            if info.filename == "docProps/core.xml":  # openpyxl stamps the saving time here
                data = re.sub(rb"<dcterms:modified([^>]*)>[^<]*<", rb"<dcterms:modified\1>2024-03-05T09:00:00Z<", data)
            if info.filename == "meta.xml":  # odfpy stamps the saving time and its version here
                data = re.sub(rb"<meta:generator>[^<]*<", b"<meta:generator>odfpy<", data)
                data = re.sub(rb"<dc:date>[^<]*<", b"<dc:date>2024-03-05T09:00:00<", data)
                data = re.sub(rb"<meta:creation-date>[^<]*<", b"<meta:creation-date>2024-03-05T09:00:00<", data)
            target.writestr(fixed, data)
    return out.getvalue()


FACILITIES = [
    ("Мектеп-лицей № 78", "Школа-лицей № 78", "Мектеп", "Коммуналдық", "Есіл", "Тұран даңғылы, 55", "ДП"),
    ("№ 12 балабақша «Айгөлек»", "Детский сад № 12 «Айгөлек»", "Балабақша", "Коммуналдық", "Алматы", "Жұбанов көшесі, 4", "ДЧ"),
    ("№ 4 қалалық емхана", "Городская поликлиника № 4", "Емхана", "Коммуналдық", "Сарыарқа", "Сарыарқа даңғылы, 31", "ДЧ"),
    ("Халыққа қызмет көрсету орталығы", "ЦОН района Байқоңыр", "ХҚКО", "Республикалық", "Байқоңыр", "Бөгенбай батыр даңғылы, 18", "ДП"),
    ("Ұлттық академиялық кітапхана", "Национальная академическая библиотека", "Кітапхана", "Республикалық", "Есіл", "Достық көшесі, 11", "ДП"),
    ("«Жерұйық» саябағы", "Парк «Жеруйык»", "Саябақ", "Коммуналдық", "Нұра", "Қабанбай батыр даңғылы, 60", "ДУ"),
    ("«Қазақстан» спорт кешені", "Спорткомплекс «Казахстан»", "Спорт кешені", "Коммуналдық", "Сарыарқа", "Абай даңғылы, 48", "ДЧ"),
    ("Ақ Орда дәріханасы", "Аптека «Ак Орда»", "Дәріхана", "Жеке", "Алматы", "Шәкәрім көшесі, 7", "ВНД"),
]  # fmt: skip
PASSPORT = ["Пандус", "Лифт", "Кнопка вызова", "Туалет", "Тактильная плитка", "Парковка"]
ANSWERS = ["Иә", "Ішінара", "Жоқ", "Талап етілмейді"]


def write_facilities() -> None:
    """Astana facility registry with accessibility passports: KZ-1048, Kazakh names, ';'."""
    rng = random.Random(1048)  # noqa: S311 - invented sample data, not secrets
    header = ["Код объекта", "Атауы", "Наименование", "Санаты", "Меншік нысаны", "Аудан", "Мекенжайы",
              "Бойлық", "Ендік", "Паспорттау күні", "Қолжетімділік деңгейі", *PASSPORT]  # fmt: skip
    rows = []
    for n, (kk, ru, category, owner, district, address, level) in enumerate(FACILITIES * 2):
        assessed = datetime(2024, 2, 20) + timedelta(days=n * 2)
        answers = ["Иә"] * len(PASSPORT) if level == "ДП" else [rng.choice(ANSWERS) for _ in PASSPORT]
        suffix = "" if n < len(FACILITIES) else f" ({n - len(FACILITIES) + 2})"
        rows.append(
            [
                f"AST-F-{1000 + n}",
                kk + suffix,
                ru + suffix,
                category,
                owner,
                district,
                address,
                f"{71.40 + rng.uniform(0, 0.1):.5f}".replace(".", ","),
                f"{51.08 + rng.uniform(0, 0.1):.5f}".replace(".", ","),
                assessed.strftime("%d.%m.%Y"),
                level,
                *answers,
            ]
        )
    rows[3][-1] = "Жоқ"  # passport says fully accessible, yet no parking: the schema refuses it
    rows[9][9] = "30.02.2024"  # no such day
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    (HERE / "facilities-astana.csv").write_bytes(buffer.getvalue().encode("kz1048"))


def write_dbf(path: Path, fields: list[tuple[str, str, int, int]], records: list[tuple[bool, list[str]]]) -> None:
    """A minimal dBase III table: LDID 0x65 (cp866), character and numeric fields; ``True`` marks deleted."""
    record_length = 1 + sum(length for _, _, length, _ in fields)
    header_length = 32 + 32 * len(fields) + 1
    out = bytearray(struct.pack("<BBBBIHH", 0x03, 124, 3, 5, len(records), header_length, record_length))
    out += bytes(17) + bytes([0x65]) + bytes(2)
    for name, kind, length, decimals in fields:
        out += name.encode("ascii").ljust(11, b"\0") + kind.encode("ascii") + bytes(4)
        out += bytes([length, decimals]) + bytes(14)
    out += b"\r"
    for deleted, values in records:
        out += b"*" if deleted else b" "
        for (_, kind, length, _), value in zip(fields, values, strict=True):
            data = value.encode("cp866")
            out += data.rjust(length) if kind == "N" else data.ljust(length)
    out += b"\x1a"
    path.write_bytes(bytes(out))


def write_onay() -> None:
    """ONAY transport-card operations in Almaty: fares and top-ups, cp866 DBF, around 1 March 2024."""
    rng = random.Random(2024)  # noqa: S311 - invented sample data, not secrets
    fields = [("TRANS_ID", "C", 14, 0), ("DT_OPER", "C", 16, 0), ("AMOUNT", "N", 12, 2), ("CARD", "C", 16, 0),
              ("OPER", "C", 12, 0), ("STATUS", "C", 12, 0), ("REASON", "C", 40, 0), ("DISTRICT", "C", 20, 0)]  # fmt: skip
    records: list[tuple[bool, list[str]]] = []
    moment = datetime(2024, 2, 29, 21, 0)
    for n in range(40):
        moment += timedelta(minutes=rng.randrange(5, 25))
        top_up = n % 5 == 0
        amount = f"{rng.choice([1000, 2000, 5000]) if top_up else 200:.2f}"
        status = "Проведен" if n % 9 else "Отклонен"
        records.append(
            (
                n == 17,  # deleted by the operator: skipped, not counted
                [
                    f"ON{24030000 + n:08d}",
                    moment.strftime("%d.%m.%Y %H:%M"),
                    amount,
                    f"9398{rng.randrange(10**11, 10**12)}",
                    "Пополнение" if top_up else "Проезд",
                    status,
                    "" if status == "Проведен" else ["Недостаточно средств на карте", "Карта заблокирована"][n % 2],
                    ALMATY_DISTRICTS[n % len(ALMATY_DISTRICTS)],
                ],
            )
        )
    records[23][1][2] = "12,5.0".rjust(12)  # a damaged numeric field
    write_dbf(HERE / "onay-payments.dbf", fields, records)


METERS = [("ЭЛ", "1-0:1.8.0", "kWh"), ("ХВС", "8-0:1.0.0", "m3"), ("ТЕП", "6-0:1.0.0", "Gcal")]


def write_meters() -> None:
    """Astana utility meter dump: fixed width, cp866, banner lines, decimal commas."""
    rng = random.Random(866)  # noqa: S311 - invented sample data, not secrets
    lines = ["АО АСТАНА-ЭНЕРГОСБЫТ   ВЫГРУЗКА ПОКАЗАНИЙ ПРИБОРОВ УЧЕТА   05.03.2024", "-" * 90]
    for n in range(30):
        kind, obis, unit = METERS[n % 3]
        when = datetime(2024, 2, 28, 23, 0) + timedelta(hours=n * 3)
        value = f"{rng.uniform(100, 90000):.3f}".replace(".", ",")
        lines.append(
            f"{4000100 + n:<10}{'SN' + str(7700000 + n):<12}{obis:<12}{value:>14}{unit:<6}"
            f"{kind:<4}{when.strftime('%d.%m.%Y %H:%M'):<17}{ASTANA_STREETS[n % 3][0]:<20}"
        )
    lines[10] = lines[10][:34] + "     ошибка   " + lines[10][48:]  # an unreadable reading
    lines.append(lines[5][:40])  # the dump ends in the middle of a line
    (HERE / "meters-astana.txt").write_bytes(("\r\n".join(lines)).encode("cp866"))


SHYMKENT_SERVICES = [
    ("roads.pothole", "Ямы на дороге"),
    ("lighting.streetlight", "Уличное освещение"),
    ("waste.collection", "Вывоз мусора"),
    ("utilities.water", "Водоснабжение"),
]


def write_open311() -> None:
    """Shymkent's Open311 endpoint, as a folder the fixture server pages through (25 requests)."""
    rng = random.Random(311)  # noqa: S311 - invented sample data, not secrets
    folder = HERE / "open311-shymkent"
    folder.mkdir(exist_ok=True)
    services = [
        {"service_code": code, "service_name": name, "description": name, "metadata": False, "type": "realtime",
         "keywords": "", "group": code.split(".")[0]}
        for code, name in SHYMKENT_SERVICES
    ]  # fmt: skip
    requests = []
    moment = datetime(2024, 2, 25, 9, 0)
    for n in range(25):
        moment += timedelta(hours=rng.randrange(3, 12))
        offset = "+06:00" if moment < datetime(2024, 3, 1) else "+05:00"
        code, name = SHYMKENT_SERVICES[n % len(SHYMKENT_SERVICES)]
        closed = n % 3 == 0
        updated = moment + timedelta(hours=rng.randrange(2, 20))
        updated_offset = "+06:00" if updated < datetime(2024, 3, 1) else "+05:00"
        requests.append(
            {
                "service_request_id": f"SHY-{5100 + n}",
                "status": "closed" if closed else "open",
                "status_notes": "Работы выполнены" if closed else None,
                "service_name": name,
                "service_code": code,
                "description": f"{name}: обращение жителя, дом {rng.randrange(1, 120)}",
                "agency_responsible": "Акимат города Шымкент",
                "service_notice": None,
                "requested_datetime": moment.isoformat() + offset,
                "updated_datetime": updated.isoformat() + updated_offset,
                "expected_datetime": None,
                "address": f"проспект Тауке хана, {rng.randrange(1, 150)}",
                "address_id": None,
                "zipcode": "160012",
                "lat": round(42.315 + rng.uniform(-0.03, 0.03), 5),
                "long": round(69.586 + rng.uniform(-0.04, 0.04), 5),
                "media_url": None,
            }
        )
    requests[7]["requested_datetime"] = "2024-02-27T10:15:00"  # no offset: refused, not guessed
    (folder / "requests.json").write_text(json.dumps(requests, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    (folder / "services.json").write_text(json.dumps(services, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


def write_gtfs_rt() -> None:
    """An Almaty bus and trolleybus GTFS-Realtime feed: 12 vehicles, one without a position, one alert."""
    rng = random.Random(1435)  # noqa: S311 - invented sample data, not secrets
    feed = gtfs_realtime_pb2.FeedMessage()
    feed.header.gtfs_realtime_version = "2.0"
    feed.header.incrementality = gtfs_realtime_pb2.FeedHeader.FULL_DATASET
    feed.header.timestamp = 1709231100  # 18:25 UTC on 29 Feb 2024: 23:25 in Almaty, already on +05:00
    for n in range(12):
        entity = feed.entity.add()
        entity.id = f"veh-{n}"
        vehicle = entity.vehicle
        vehicle.vehicle.id = f"ALA-{3100 + n}"
        vehicle.vehicle.label = f"{[12, 92, 37][n % 3]}"
        vehicle.trip.trip_id = f"T{[12, 92, 37][n % 3]}-{n:03d}"
        vehicle.trip.route_id = str([12, 92, 37][n % 3])
        vehicle.trip.direction_id = n % 2
        vehicle.trip.start_date = "20240229"
        vehicle.trip.start_time = f"23:{10 + n:02d}:00"
        vehicle.timestamp = 1709229000 + n * 180  # 23:50 on +06:00, then after 18:00 UTC 23:00.. on +05:00
        if n != 5:  # a vehicle whose GPS fix was lost
            vehicle.position.latitude = 43.238 + rng.uniform(-0.03, 0.03)
            vehicle.position.longitude = 76.945 + rng.uniform(-0.05, 0.05)
            vehicle.position.bearing = rng.randrange(0, 360)
            vehicle.position.speed = round(rng.uniform(0, 14), 1)
        vehicle.stop_id = f"STOP-{400 + n}"
        vehicle.current_status = gtfs_realtime_pb2.VehiclePosition.IN_TRANSIT_TO
        vehicle.occupancy_status = gtfs_realtime_pb2.VehiclePosition.MANY_SEATS_AVAILABLE
    alert = feed.entity.add()
    alert.id = "alert-1"
    alert.alert.header_text.translation.add(text="Маршрут 92: объезд по улице Сатпаева", language="ru")
    (HERE / "almaty-vehicles.pb").write_bytes(feed.SerializeToString())


def write_senml() -> None:
    """Smart-meter SenML packs recorded from MQTT in Astana, one {topic, payload} per line; one is not SenML."""
    lines = []
    base = 1709222400  # 2024-02-29 22:00 in Astana (+06:00)
    for n in range(8):
        serial = f"EM-{77100 + n}"
        pack: list[dict[str, object]] = [
            {
                "bn": f"{serial}/",
                "bt": base + n * 1800,
                "bu": "kWh",
                "n": "1-0:1.8.0",
                "v": round(1520.5 + n * 3.25, 3),
            },
            {"n": "1-0:2.8.0", "v": 0.0},
        ]
        if n % 2:
            pack.append({"n": "1-0:1.8.0*96", "u": "kWh", "v": 1.25, "ut": 1800, "t": 0})  # the last half hour
        lines.append({"topic": f"qala/astana/meters/{serial}", "payload": pack})
    lines.append({"topic": "qala/astana/meters/WM-88001", "payload": [
        {"bn": "WM-88001/", "bt": base + 3600, "n": "8-0:1.0.0", "u": "m3", "s": 412.734}]})  # fmt: skip
    lines.append({"topic": "qala/astana/meters/EM-77100", "payload": "status: online"})  # firmware chatter
    text = "\n".join(json.dumps(line, ensure_ascii=False) for line in lines) + "\n"
    (HERE / "senml-astana.ndjson").write_text(text, encoding="utf-8")


def valid_bin(prefix: str, rng: random.Random) -> str:
    """A 12-digit BIN whose mod-11 check digit is right (the second weight pass included)."""
    while True:
        digits = [int(c) for c in prefix] + [rng.randrange(10) for _ in range(11 - len(prefix))]
        check = sum(d * w for d, w in zip(digits, range(1, 12), strict=True)) % 11
        if check == 10:
            check = sum(d * w for d, w in zip(digits, [3, 4, 5, 6, 7, 8, 9, 10, 11, 1, 2], strict=True)) % 11
        if check != 10:
            return "".join(map(str, digits)) + str(check)


ORGANIZATIONS = [
    ("Шымкент қаласы әкімдігі", "Акимат города Шымкент", "akimat", "administration"),
    ("Шымкент қаласының жолаушылар көлігі басқармасы", "Управление пассажирского транспорта города Шымкент", "state-agency", "transport"),
    ("«Шымкент Су Арнасы» ЖШС", "ТОО «Шымкент Су Арнасы»", "state-enterprise", "water"),
    ("«Тазалық-Шымкент» МКК", "ГКП «Тазалык-Шымкент»", "state-enterprise", "environment"),
    ("«3-Энергоорталық» АҚ", "АО «3-Энергоорталык»", "private", "energy"),
]  # fmt: skip


def write_egov_xml() -> None:
    """A SOAP answer of the state register (ГБД ЮЛ-style) listing Shymkent organisations."""
    rng = random.Random(12)  # noqa: S311 - invented sample data, not secrets
    items = []
    for n, (kk, ru, kind, sector) in enumerate(ORGANIZATIONS):
        bin_ = valid_bin("0" + str(4 + n % 5) + "0340", rng)
        if n == 3:
            bin_ = bin_[:-1] + str((int(bin_[-1]) + 1) % 10)  # a mistyped BIN: the check digit fails
        items.append(
            f"""      <ns2:Организация>
        <ns2:БИН>{bin_}</ns2:БИН>
        <ns2:Наименование lang="kk">{kk}</ns2:Наименование>
        <ns2:НаименованиеРус>{ru}</ns2:НаименованиеРус>
        <ns2:Вид>{kind}</ns2:Вид>
        <ns2:Отрасль>{sector}</ns2:Отрасль>
        <ns2:ДатаРегистрации>{10 + n:02d}.0{1 + n}.2004</ns2:ДатаРегистрации>
        <ns2:Адрес><ns2:Улица>проспект Тауке хана, {n * 7 + 1}</ns2:Улица><ns2:Индекс>160012</ns2:Индекс></ns2:Адрес>
      </ns2:Организация>"""
        )
        items[-1] = items[-1].replace("&", "&amp;")
    envelope = f"""<?xml version="1.0" encoding="UTF-8"?>
<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:ns2="urn:kz:egov:gbdul:v1">
  <soap:Header/>
  <soap:Body>
    <ns2:GetOrganizationsResponse>
      <ns2:ДатаВыгрузки>2024-03-04T10:00:00+05:00</ns2:ДатаВыгрузки>
{chr(10).join(items)}
    </ns2:GetOrganizationsResponse>
  </soap:Body>
</soap:Envelope>
"""
    (HERE / "egov-organizations.xml").write_text(envelope, encoding="utf-8")


def main() -> None:
    write_ikomek()
    write_almaty_xlsx()
    write_almaty_xls()
    write_almaty_ods()
    write_facilities()
    write_onay()
    write_meters()
    write_open311()
    write_gtfs_rt()
    write_senml()
    write_egov_xml()


if __name__ == "__main__":
    main()
