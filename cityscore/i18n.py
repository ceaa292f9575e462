"""The words of the CityScore pages in Kazakh, Russian and English, and numbers and dates in the reader's locale.

>>> text("ranking", "kk")
'Ұлттық рейтинг'
>>> number(1234.5, "ru"), number(1234.5, "en")
('1\\xa0234,5', '1,234.5')
>>> unit("s", "kk")
'сек'
"""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_datetime
from babel.numbers import format_decimal

LOCALES = ("kk", "ru", "en")
BABEL = {"kk": "kk_KZ", "ru": "ru_RU", "en": "en_GB"}
ZONE = ZoneInfo("Asia/Almaty")

WORDS: dict[str, dict[str, str]] = {
    "site": {"kk": "Qala ашық деректері", "ru": "Открытые данные Qala", "en": "Qala open data"},
    "skip": {"kk": "Негізгі мазмұнға өту", "ru": "Перейти к содержанию", "en": "Skip to content"},
    "cityscore": {"kk": "CityScore-KZ", "ru": "CityScore-KZ", "en": "CityScore-KZ"},
    "ranking": {"kk": "Ұлттық рейтинг", "ru": "Национальный рейтинг", "en": "National ranking"},
    "intro": {
        "kk": "Әр көрсеткіш тікелей деректер ағынынан есептеледі және мақсатпен салыстырылады: 1 = мақсатқа жетті. "
        "Қала бағасы — көрсеткіштер бағаларының салмақты орташасы.",
        "ru": "Каждый показатель вычисляется из живых потоков данных и сравнивается с целью: 1 = цель достигнута. "
        "Оценка города — взвешенное среднее оценок показателей.",
        "en": "Every indicator is computed from live data feeds and compared with its target: 1 = on target. "
        "A city's score is the weighted mean of its indicator scores.",
    },
    "rank": {"kk": "Орын", "ru": "Место", "en": "Rank"},
    "city": {"kk": "Қала", "ru": "Город", "en": "City"},
    "score": {"kk": "Баға", "ru": "Оценка", "en": "Score"},
    "day": {"kk": "Күн", "ru": "День", "en": "Day"},
    "week": {"kk": "Апта", "ru": "Неделя", "en": "Week"},
    "month": {"kk": "Ай", "ru": "Месяц", "en": "Month"},
    "history": {"kk": "Рейтинг тарихы", "ru": "История рейтинга", "en": "Ranking history"},
    "today": {"kk": "Бүгінгі баға", "ru": "Оценка за сегодня", "en": "Today's score"},
    "indicator": {"kk": "Көрсеткіш", "ru": "Показатель", "en": "Indicator"},
    "value": {"kk": "Мәні", "ru": "Значение", "en": "Value"},
    "target": {"kk": "Мақсат", "ru": "Цель", "en": "Target"},
    "trend": {"kk": "Динамика", "ru": "Динамика", "en": "Trend"},
    "period": {"kk": "Кезең", "ru": "Период", "en": "Period"},
    "provisional": {"kk": "алдын ала", "ru": "предварительно", "en": "provisional"},
    "revised": {"kk": "қайта қаралды", "ru": "пересмотрено", "en": "revised"},
    "revision": {"kk": "Түзету", "ru": "Редакция", "en": "Revision"},
    "no_data": {"kk": "Деректер жоқ", "ru": "Нет данных", "en": "No data"},
    "formula": {"kk": "Қалай есептеледі", "ru": "Как вычисляется", "en": "How it is computed"},
    "reads": {"kk": "Деректер көзі", "ru": "Источники данных", "en": "Data it reads"},
    "direction_higher": {"kk": "Көп болған жақсы", "ru": "Чем больше, тем лучше", "en": "Higher is better"},
    "direction_lower": {"kk": "Аз болған жақсы", "ru": "Чем меньше, тем лучше", "en": "Lower is better"},
    "cap": {"kk": "Бағаның жоғарғы шегі", "ru": "Потолок оценки", "en": "Score cap"},
    "weight": {"kk": "Салмағы", "ru": "Вес", "en": "Weight"},
    "targets": {"kk": "Қалалардың мақсаттары (күнге)", "ru": "Цели городов (в день)", "en": "City targets (per day)"},
    "data": {"kk": "Деректер", "ru": "Данные", "en": "Data"},
    "downloads": {"kk": "Жүктеп алу", "ru": "Скачать", "en": "Downloads"},
    "dataset": {"kk": "Деректер жиынтығы", "ru": "Набор данных", "en": "Dataset"},
    "calculated": {"kk": "Есептелген уақыты", "ru": "Рассчитано", "en": "Calculated"},
    "book": {"kk": "Көрсеткіштер кітабы", "ru": "Книга показателей", "en": "KPI book"},
    "not_found": {"kk": "Табылмады", "ru": "Не найдено", "en": "Not found"},
    "language": {"kk": "Тіл", "ru": "Язык", "en": "Language"},
    "all_indicators": {"kk": "Барлық көрсеткіштер", "ru": "Все показатели", "en": "All indicators"},
    "table_of": {"kk": "Кесте түрінде", "ru": "В виде таблицы", "en": "As a table"},
    "date": {"kk": "Күні", "ru": "Дата", "en": "Date"},
}

UNITS: dict[str, dict[str, str]] = {
    "s": {"kk": "сек", "ru": "с", "en": "s"},
    "h": {"kk": "сағ", "ru": "ч", "en": "h"},
    "1": {"kk": "", "ru": "", "en": ""},
    "{count}": {"kk": "дана", "ru": "шт.", "en": ""},
    "KZT": {"kk": "₸", "ru": "₸", "en": "₸"},
}

AGGREGATES: dict[str, dict[str, str]] = {
    "count": {"kk": "саны", "ru": "количество", "en": "count"},
    "sum": {"kk": "сомасы", "ru": "сумма", "en": "sum"},
    "mean": {"kk": "орташасы", "ru": "среднее", "en": "mean"},
    "median": {"kk": "медианасы", "ru": "медиана", "en": "median"},
    "p95": {"kk": "95-процентилі", "ru": "95-й процентиль", "en": "95th percentile"},
    "ratio": {"kk": "үлесі", "ru": "доля", "en": "share"},
    "distinct": {"kk": "әртүрлі кілттер саны", "ru": "число различных ключей", "en": "distinct keys"},
    "coverage": {"kk": "қамту үлесі", "ru": "доля покрытия", "en": "coverage share"},
}


def text(key: str, locale: str) -> str:
    return WORDS[key][locale]


def unit(code: str, locale: str) -> str:
    return UNITS.get(code, {}).get(locale, code)


def number(value: float | None, locale: str, digits: int = 2) -> str:
    if value is None:
        return "—"
    return str(format_decimal(round(value, digits), locale=BABEL[locale]))


def day(value: date, locale: str, *, short: bool = False) -> str:
    return str(format_date(value, format="d MMM" if short else "long", locale=BABEL[locale]))


def moment(value: datetime, locale: str) -> str:
    """A date and time as people in Kazakhstan read it: Asia/Almaty time, the reader's locale."""
    return str(format_datetime(value, format="medium", tzinfo=ZONE, locale=BABEL[locale]))
