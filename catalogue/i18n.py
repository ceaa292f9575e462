"""Languages of the catalogue (Kazakh, Russian, English): interface messages and the names of things.

Every user-visible string of the public pages is looked up here, so a missing translation is a missing key in
one table (a test checks the three tables have the same keys).

    >>> translate("search", "kk")
    'Іздеу'
    >>> pick({"kk": "Астана", "en": "Astana"}, "ru")
    'Астана'
"""

from __future__ import annotations

from collections.abc import Mapping

from catalogue.formatting import number
from schemas.cities import CityRegistry

LOCALES = ("kk", "ru", "en")
DEFAULT_LOCALE = "kk"
LANGUAGE_NAMES = {"kk": "Қазақша", "ru": "Русский", "en": "English"}

Translated = dict[str, str]

MESSAGES: dict[str, Translated] = {
    "site_tagline": {
        "kk": "Қалалардың ашық деректері — тікелей хабтан",
        "ru": "Открытые данные городов — в реальном времени из хаба",
        "en": "Open data of Kazakh cities, live from the hub",
    },
    "search": {"kk": "Іздеу", "ru": "Поиск", "en": "Search"},
    "search_label": {"kk": "Деректер жиынтығын іздеу", "ru": "Поиск наборов данных", "en": "Search datasets"},
    "datasets": {"kk": "Деректер жиынтықтары", "ru": "Наборы данных", "en": "Datasets"},
    "featured": {"kk": "Жаңартылған деректер", "ru": "Недавно обновлённые", "en": "Recently updated"},
    "organizations": {"kk": "Ұйымдар", "ru": "Организации", "en": "Organisations"},
    "modules": {"kk": "Сертификатталған модульдер", "ru": "Сертифицированные модули", "en": "Certified modules"},
    "api": {"kk": "API", "ru": "API", "en": "API"},
    "language": {"kk": "Тіл", "ru": "Язык", "en": "Language"},
    "skip": {"kk": "Негізгі мазмұнға өту", "ru": "Перейти к содержимому", "en": "Skip to content"},
    "found": {"kk": "Табылған жиынтықтар", "ru": "Найдено наборов", "en": "Datasets found"},
    "no_results": {"kk": "Ештеңе табылмады", "ru": "Ничего не найдено", "en": "No datasets found"},
    "filters": {"kk": "Сүзгілер", "ru": "Фильтры", "en": "Filters"},
    "organization": {"kk": "Ұйым", "ru": "Организация", "en": "Organisation"},
    "city": {"kk": "Қала", "ru": "Город", "en": "City"},
    "groups": {"kk": "Тақырып", "ru": "Тема", "en": "Theme"},
    "res_format": {"kk": "Формат", "ru": "Формат", "en": "Format"},
    "license_id": {"kk": "Лицензия", "ru": "Лицензия", "en": "Licence"},
    "tags": {"kk": "Тегтер", "ru": "Теги", "en": "Tags"},
    "previous": {"kk": "Алдыңғы", "ru": "Назад", "en": "Previous"},
    "next": {"kk": "Келесі", "ru": "Далее", "en": "Next"},
    "page": {"kk": "Бет", "ru": "Страница", "en": "Page"},
    "metadata": {"kk": "Метадеректер", "ru": "Метаданные", "en": "Metadata"},
    "freshness": {"kk": "Жаңалығы", "ru": "Актуальность", "en": "Freshness"},
    "last_update": {"kk": "Соңғы жаңарту", "ru": "Последнее обновление", "en": "Last update"},
    "latency": {"kk": "Кешігудің медианасы", "ru": "Медианная задержка", "en": "Median data latency"},
    "lineage": {"kk": "Шығу тегі", "ru": "Происхождение", "en": "Lineage"},
    "publishers": {"kk": "Жариялаушылар", "ru": "Публикаторы", "en": "Publishers"},
    "sources": {"kk": "Бастапқы жүйелер", "ru": "Системы-источники", "en": "Source systems"},
    "preview": {"kk": "Алдын ала қарау", "ru": "Предпросмотр", "en": "Preview"},
    "downloads": {"kk": "Жүктеп алу", "ru": "Скачать", "en": "Downloads"},
    "api_example": {"kk": "API мысалы", "ru": "Пример API", "en": "API example"},
    "copy": {"kk": "Көшіру", "ru": "Копировать", "en": "Copy"},
    "licence": {"kk": "Лицензия", "ru": "Лицензия", "en": "Licence"},
    "frequency": {"kk": "Жаңарту жиілігі", "ru": "Периодичность", "en": "Update frequency"},
    "spatial": {"kk": "Аумақ", "ru": "Территория", "en": "Spatial coverage"},
    "temporal": {"kk": "Кезең", "ru": "Период", "en": "Temporal coverage"},
    "records": {"kk": "Жазбалар", "ru": "Записей", "en": "Records"},
    "live": {"kk": "Тікелей", "ru": "Живой", "en": "Live"},
    "aggregated": {
        "kk": "Жеке деректерді қорғау үшін тек жиынтық көрсеткіштер жарияланады: әр ұяшықта кемінде 10 төлем.",
        "ru": "Для защиты персональных данных публикуются только агрегаты: не меньше 10 платежей в ячейке.",
        "en": "To protect personal data only aggregates are published (cells below k = 10 suppressed).",
    },
    "seconds": {"kk": "сек", "ru": "с", "en": "s"},
    "minutes": {"kk": "мин", "ru": "мин", "en": "min"},
    "hours": {"kk": "сағ", "ru": "ч", "en": "h"},
    "days": {"kk": "күн", "ru": "дн", "en": "d"},
    "no_modules": {
        "kk": "Әзірге сертификатталған модульдер жоқ.",
        "ru": "Сертифицированных модулей пока нет.",
        "en": "No certified modules yet.",
    },
    "module_name": {"kk": "Модуль", "ru": "Модуль", "en": "Module"},
    "profile": {"kk": "Профиль", "ru": "Профиль", "en": "Profile"},
    "version": {"kk": "Нұсқа", "ru": "Версия", "en": "Version"},
    "certified_at": {"kk": "Берілген күні", "ru": "Дата выдачи", "en": "Certified on"},
    "api_intro": {
        "kk": "Каталог CKAN API-імен үйлесімді: ckanapi және басқа құралдар өзгеріссіз жұмыс істейді.",
        "ru": "Каталог совместим с CKAN API: ckanapi и другие инструменты работают без изменений.",
        "en": "The catalogue speaks the CKAN Action API: ckanapi and other CKAN tools work unchanged.",
    },
    "site_name": {"kk": "Qala ашық деректері", "ru": "Открытые данные Qala", "en": "Qala open data"},
    "site_description": {
        "kk": "Қазақстан қалаларының ашық деректері: Qala хабы арқылы тікелей жаңартылады.",
        "ru": "Открытые данные городов Казахстана, обновляются в реальном времени через хаб Qala.",
        "en": "Open data of Kazakh smart cities, live from the Qala interoperability hub.",
    },
    "licence_note": {
        "kk": "Деректерді авторын көрсетіп еркін пайдалануға болады (CC BY 4.0).",
        "ru": "Данные можно свободно использовать с указанием источника (CC BY 4.0).",
        "en": "You may use the data freely if you name the source (CC BY 4.0).",
    },
    "machine_access": {"kk": "Бағдарламаларға арналған", "ru": "Для программ", "en": "For software"},
    "continuous": {"kk": "үздіксіз", "ru": "непрерывно", "en": "continuous"},
    "updated": {"kk": "Жаңартылды", "ru": "Обновлено", "en": "Updated"},
    "period_label": {"kk": "Деректер кезеңі", "ru": "Период данных", "en": "Data period"},
    "format_csv": {"kk": "Кесте", "ru": "Таблица", "en": "Table"},
    "format_json": {"kk": "Толық деректер", "ru": "Полные данные", "en": "Full data"},
    "format_geojson": {"kk": "Карта үшін", "ru": "Для карт", "en": "For maps"},
    "format_api": {"kk": "Бағдарламалық интерфейс", "ru": "Программный интерфейс", "en": "Programming interface"},
    "format_datapackage": {
        "kk": "Деректер пакетінің сипаттамасы",
        "ru": "Описание пакета данных",
        "en": "Data package description",
    },
    "licence_cc_by": {
        "kk": "CC BY 4.0 — авторын көрсетіп еркін пайдалану",
        "ru": "CC BY 4.0 — свободное использование с указанием автора",
        "en": "CC BY 4.0 — free to use with attribution",
    },
    "map": {"kk": "Карта", "ru": "Карта", "en": "Map"},
    "chart": {"kk": "Уақыт бойынша", "ru": "Во времени", "en": "Over time"},
    "km": {"kk": "км", "ru": "км", "en": "km"},
    "map_points": {"kk": "Картадағы нүктелер саны", "ru": "Точек на карте", "en": "Points on the map"},
    "payments_by_day": {
        "kk": "Күн сайынғы төлемдер сомасы, ₸ (жарияланған жиынтықтар)",
        "ru": "Сумма платежей по дням, ₸ (опубликованные итоги)",
        "en": "Payments per day, ₸ (published totals)",
    },
    "hidden_cells": {
        "kk": "{cells} ұяшық ({rows} жол) жасырылған: онда 10-нан аз төлем бар немесе олардың мәнін "
        "жиынтықтан шығаруға болар еді.",
        "ru": "Скрыто ячеек: {cells} (строк: {rows}) — в них меньше 10 платежей или их можно было бы "
        "вычислить из итогов.",
        "en": "{cells} cells in {rows} rows are hidden: they hold fewer than 10 payments, or could be worked "
        "out from the totals.",
    },
    "preview_rows": {
        "kk": "Алдын ала қаралатын жазбалар: {n}",
        "ru": "Записей в предпросмотре: {n}",
        "en": "Records shown: {n}",
    },
    "member_organizations": {
        "kk": "Деректерді жариялайтын ұйымдар",
        "ru": "Организации, публикующие данные",
        "en": "Organisations that publish data",
    },
    "cities": {"kk": "Қалалар", "ru": "Города", "en": "Cities"},
    "ckan_api_heading": {"kk": "CKAN үйлесімді API", "ru": "API, совместимый с CKAN", "en": "CKAN-compatible API"},
    "python_heading": {"kk": "Python тілінде", "ru": "На Python", "en": "In Python"},
    "dcat_heading": {"kk": "Метадеректер каталогы", "ru": "Каталог метаданных", "en": "Metadata catalogue"},
    "write_actions": {
        "kk": "Өзгерту әрекеттері (токенмен)",
        "ru": "Изменение (с токеном)",
        "en": "Changes (with a token)",
    },
    "not_found": {"kk": "Бет табылмады", "ru": "Страница не найдена", "en": "Page not found"},
}

THEMES: dict[str, Translated] = {
    "mobility": {"kk": "Көлік", "ru": "Мобильность", "en": "Mobility"},
    "environment": {"kk": "Қоршаған орта", "ru": "Окружающая среда", "en": "Environment"},
    "utilities": {"kk": "Коммуналдық қызметтер", "ru": "Коммунальные услуги", "en": "Utilities"},
    "safety": {"kk": "Қауіпсіздік", "ru": "Безопасность", "en": "Safety"},
    "services": {"kk": "Қалалық қызметтер", "ru": "Городские услуги", "en": "City services"},
    "finance": {"kk": "Қаржы", "ru": "Финансы", "en": "Finance"},
}


def translate(key: str, locale: str) -> str:
    """The interface message ``key`` in ``locale`` (English when the key lacks that language)."""
    entry = MESSAGES.get(key)
    if entry is None:
        return key
    return entry.get(locale) or entry["en"]


def pick(values: Mapping[str, str] | str | None, locale: str) -> str:
    """One language out of a ``{kk, ru, en}`` object, falling back kk -> ru -> en -> anything."""
    if values is None:
        return ""
    if isinstance(values, str):
        return values
    for candidate in (locale, DEFAULT_LOCALE, "ru", "en"):
        if values.get(candidate):
            return values[candidate]
    return next(iter(values.values()), "")


def city_name(city: str) -> Translated:
    """The city's name in the three languages, from the city registry; an unknown code is shown as it is."""
    cities = CityRegistry.load()
    return {locale: cities.name(city, locale) for locale in LOCALES}


def duration(seconds: float, locale: str) -> str:
    """A latency people can read: ``duration(5400, "en")`` is ``'1.5 h'``.

    >>> duration(42.25, "kk"), duration(200000, "ru")
    ('42,2 сек', '2,3 дн')
    """
    for unit, size in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if abs(seconds) >= size * 1.5 or (unit == "minutes" and abs(seconds) >= 90):
            return f"{number(round(seconds / size, 1), locale)} {translate(unit, locale)}"
    return f"{number(round(seconds, 1), locale)} {translate('seconds', locale)}"


def negotiate(cookie: str | None, accept_language: str | None) -> str:
    """The page language: the remembered cookie first, then the browser's preference, then Kazakh."""
    if cookie in LOCALES:
        return cookie
    for part in (accept_language or "").split(","):
        code = part.split(";")[0].strip().lower()[:2]
        if code in LOCALES:
            return code
    return DEFAULT_LOCALE
