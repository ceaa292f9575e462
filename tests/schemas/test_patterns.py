"""Patterns mean in Python what they mean to jsonschema-rs, and the fast path's rewritten schemas mean what the
schemas as written mean."""

from __future__ import annotations

import json

import jsonschema_rs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import SchemaRegistry
from schemas.patterns import UntranslatablePattern, compile_pattern, translate
from schemas.registry import MODELS_DIR
from schemas.validation import CALENDAR_PATTERNS, FastValidator, for_rust

REGISTRY = SchemaRegistry.load()


def _patterns(node: object) -> set[str]:
    if isinstance(node, dict):
        found = {node["pattern"]} if isinstance(node.get("pattern"), str) else set()
        return found.union(*(_patterns(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_patterns(v) for v in node))
    return set()


SCHEMA_PATTERNS = sorted(set().union(*(_patterns(v.document) for v in REGISTRY.latest())))


def _rust(pattern: str) -> jsonschema_rs.Draft202012Validator:
    return jsonschema_rs.Draft202012Validator({"pattern": pattern}, pattern_options=jsonschema_rs.RegexOptions())


def test_every_schema_pattern_is_translated() -> None:
    assert len(SCHEMA_PATTERNS) > 20
    for pattern in SCHEMA_PATTERNS:
        compile_pattern(pattern)


@pytest.mark.parametrize(
    ("pattern", "text", "matches"),
    [
        ("^[a-z]+$", "astana", True),
        ("^[a-z]+$", "astana\n", False),  # Python's $ would match before the newline
        ("^https?://[^\\s]+$", "http://a\x1cb", True),  # U+001C is not White_Space, though str.isspace says so
        ("^https?://[^\\s]+$", "http://a\u2028b", False),
        ("^https?://[^\\s]+$", "http://a\x85b", True),  # NEL is space to Python, not to ECMA-262
        ("^https?://[^\\s]+$", "http://a\ufeffb", False),  # and the BOM the other way round
        ("^\\d+$", "١٢", False),  # Arabic-Indic digits: digits to Python, not to ECMA-262
        ("^\\w+$", "Астана", False),
        ("^.$", "\u2028", False),
        ("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", "a@b.kz", True),
        ("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", "a @b.kz", False),
        ("^(?:ab)+\\S$", "ababx", True),
        ("^[A-Za-z0-9._~-]+$", "a~b", True),
    ],
)
def test_translation_matches_like_jsonschema_rs(pattern: str, text: str, matches: bool) -> None:
    assert (compile_pattern(pattern).search(text) is not None) is matches
    assert _rust(pattern).is_valid(text) is matches


@pytest.mark.parametrize("pattern", ["(?<=a)b", "\\bword", "\\p{L}", "(a)\\1", "[]a]", "[\\W]", "[a--b]", "[a"])
def test_syntax_we_do_not_vouch_for_is_refused(pattern: str) -> None:
    with pytest.raises(UntranslatablePattern):
        compile_pattern(pattern)


@pytest.mark.parametrize("escape", ["\\s", "\\S", "\\d", "\\D", "\\w", "\\W", ".", "[\\s\\d]", "[^\\s]"])
def test_sets_agree_with_jsonschema_rs_on_every_code_point(escape: str) -> None:
    pattern = f"^{escape}$"
    search, rust = compile_pattern(pattern).search, _rust(pattern).is_valid
    for code in range(0x10000):
        if 0xD800 <= code <= 0xDFFF:  # lone surrogates are not text
            continue
        assert (search(chr(code)) is not None) == rust(chr(code)), hex(code)


def test_class_punctuation_is_escaped_for_python() -> None:
    assert translate("[a&&b~~c||d]") == "[a\\&\\&b\\~\\~c\\|\\|d]"


tricky_text = st.text(
    alphabet=st.sampled_from(list("az09AZ-._~:/@+ \t\n\r\x0b\x0c\x1c\x1f\x85\xa0\u2028\u3000\ufeffТә١")),
    max_size=24,
)


@settings(max_examples=400, deadline=None)
@given(pattern=st.sampled_from(SCHEMA_PATTERNS), text=tricky_text)
def test_schema_patterns_agree_with_jsonschema_rs(pattern: str, text: str) -> None:
    assert (compile_pattern(pattern).search(text) is not None) == _rust(pattern).is_valid(text)


@settings(max_examples=300, deadline=None)
@given(pattern=st.sampled_from(SCHEMA_PATTERNS), data=st.data())
def test_schema_patterns_agree_on_near_matches(pattern: str, data: st.DataObject) -> None:
    """Strings built from the pattern itself, then nudged: a trailing newline, a space, a cut."""
    text = data.draw(st.from_regex(compile_pattern(pattern), fullmatch=True))
    text = data.draw(st.sampled_from([text, text + "\n", " " + text, text[:-1], text + "\x1c"]))
    assert (compile_pattern(pattern).search(text) is not None) == _rust(pattern).is_valid(text)


@pytest.mark.parametrize(("key", "calendar"), list(CALENDAR_PATTERNS.items()), ids=lambda v: str(v)[:20])
def test_calendar_patterns_equal_shape_plus_format(key: tuple[str, str], calendar: str) -> None:
    """Every day number 00..32 of every month 00..13 in years that test each leap-year rule, with times that
    test the offset and fraction forms: the shape pattern plus jsonschema-rs's format accepts exactly what the
    calendar pattern accepts."""
    fmt, shape = key
    with_format = jsonschema_rs.validator_for(
        {"type": "string", "pattern": shape, "format": fmt}, validate_formats=True
    )
    calendar_only = jsonschema_rs.validator_for({"type": "string", "pattern": calendar})
    times = (
        ["T00:00:00Z", "T23:59:59.123456+05:00", "T12:30:00-00:00", "T09:05:12+23:59"] if fmt == "date-time" else [""]
    )
    checked = accepted = 0
    for year in (
        "0000",
        "0001",
        "0004",
        "0100",
        "0400",
        "1900",
        "1996",
        "2000",
        "2023",
        "2024",
        "2100",
        "9996",
        "9999",
    ):
        for month in range(14):
            for day in range(33):
                for index, time in enumerate(times):
                    if fmt == "date-time" and index != (month + day) % len(times):
                        continue
                    text = f"{year}-{month:02}-{day:02}{time}"
                    verdict = with_format.is_valid(text)
                    assert calendar_only.is_valid(text) == verdict, text
                    checked += 1
                    accepted += verdict
    assert checked > 5000
    assert accepted == 13 * 365 + 7  # leap years here: 0000, 0004, 0400, 1996, 2000, 2024, 9996


def test_the_rewritten_schemas_are_flat_and_integral() -> None:
    for version in REGISTRY.latest():
        text = json.dumps(for_rust(version.document))
        assert '"$ref"' not in text
        assert '"format": "date-time"' not in text
        assert ".0," not in text, version.type_name
        assert ".0}" not in text, version.type_name


def test_rewriting_keeps_every_verdict() -> None:
    """Bundled examples and invalid cases get the same verdict from the schema as written and as rewritten
    (the property-based tests in test_paths_agree.py go further, through the explaining path)."""
    for version in REGISTRY.latest():
        written = FastValidator(version.document, as_written=True)
        folder = version.type_name
        cases = [json.loads(p.read_text()) for p in (MODELS_DIR / folder / "examples").glob("*.json")]
        cases += [json.loads(p.read_text())["entity"] for p in (MODELS_DIR / folder / "invalid").glob("*.json")]
        for case in cases:
            assert version.is_valid(case) == written.is_valid(case)
