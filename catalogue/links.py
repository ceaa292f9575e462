"""Links the catalogue publishes must be web links: ``http(s)`` or relative, never ``javascript:`` or ``data:``.

A resource URL becomes an ``href`` on the dataset page and a ``dcat:downloadURL``; a token holder who could store
``javascript:alert(1)`` there would run script in the browser of whoever clicks it. Browsers ignore ASCII
whitespace and control characters inside a scheme (``java\\tscript:``), so those are removed before looking.

    >>> check_link("https://data.astana.kz/a.csv", "url")
    'https://data.astana.kz/a.csv'
    >>> check_link(" JaVa\\tScript:alert(1)", "url")
    Traceback (most recent call last):
    ...
    catalogue.errors.ValidationFailed: url: Only http and https links are allowed, not 'javascript'
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from catalogue.errors import ValidationFailed

ALLOWED_SCHEMES = frozenset({"http", "https"})
_IGNORED_BY_BROWSERS = re.compile(r"[\x00-\x20\x7f]")


def check_link(value: Any, field: str) -> Any:
    """``value`` unchanged when it is empty, relative or an http(s) URL; a CKAN validation error otherwise."""
    if value is None or value == "":
        return value
    if not isinstance(value, str):
        raise ValidationFailed({field: ["Must be a string"]})
    seen = _IGNORED_BY_BROWSERS.sub("", value)
    try:
        scheme = urlsplit(seen).scheme.lower()
    except ValueError:
        raise ValidationFailed({field: ["Not a valid URL"]}) from None
    if not scheme and ":" in seen.split("/", 1)[0]:
        scheme = seen.split(":", 1)[0].lower()  # "javascript:..." whose scheme urlsplit would not accept
    if scheme and scheme not in ALLOWED_SCHEMES:
        raise ValidationFailed({field: [f"Only http and https links are allowed, not {scheme!r}"]})
    return value
