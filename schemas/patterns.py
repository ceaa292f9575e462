"""JSON Schema ``pattern`` in Python's ``re``, with the meaning jsonschema-rs gives it.

jsonschema-rs reads a pattern as ECMA-262 (JavaScript) does, as JSON Schema says; Python's ``re`` differs:

* ``$`` also matches before a final newline in Python, so ``"astana\\n"`` would match ``^[a-z]+$``. It is
  translated to ``\\Z`` (end of text only).
* ``\\s`` in Python is ``str.isspace``: it matches U+001C..U+001F and U+0085, and misses U+FEFF. It is
  translated to ECMA's white space and line terminators.
* ``\\d`` and ``\\w`` match any Unicode digit or letter in Python, only ASCII in ECMA; ``.`` excludes only
  ``\\n`` in Python, all four ECMA line terminators in ECMA. Each is translated to the explicit ASCII set.

Only a conservative subset is translated: literals, classes, groups (``(?:`` included), alternation,
quantifiers and the escapes below. Anything else (look-around, back-references, ``\\b``, ``\\p``)
raises :class:`UntranslatablePattern`, and callers keep Python's reading.

    >>> bool(compile_pattern("^[a-z]+$").search("astana\\n"))
    False
"""

from __future__ import annotations

import re
from functools import lru_cache

# ECMA-262's \s: WhiteSpace and LineTerminator (checked against jsonschema-rs for every code point to U+FFFF).
_WHITE_SPACE = "\\t-\\r \\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000\\ufeff"
# Escapes that stand for sets (ECMA: ASCII only), as their members go inside a class.
_SETS = {"s": _WHITE_SPACE, "d": "0-9", "w": "A-Za-z0-9_"}
_LITERAL_ESCAPES = frozenset(".^$*+?()[]{}|\\/-")
_SAME_ESCAPES = frozenset("nrtfv")
_ANY = "[^\\n\\r\\u2028\\u2029]"  # ECMA's "." without the s flag
# Inside a class Python warns about (future) set operations on '&&', '~~', '||' and a nested '['.
_CLASS_ESCAPES = frozenset("&~|[")


class UntranslatablePattern(ValueError):
    """The pattern uses syntax whose meaning in Python's ``re`` we do not vouch for."""


def translate(pattern: str) -> str:
    """The ``re`` source that matches exactly what jsonschema-rs matches with ``pattern``."""
    out: list[str] = []
    in_class = False
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "\\":
            if index + 1 >= len(pattern):
                raise UntranslatablePattern("a pattern may not end in a backslash")
            out.append(_escape(pattern[index + 1], in_class=in_class))
            index += 2
            continue
        index += 1
        if in_class:
            if char == "-" and pattern.startswith("-", index):
                raise UntranslatablePattern("'--' in a class is a set difference to Python")
            if char == "]":
                in_class = False
                out.append(char)
            elif char in _CLASS_ESCAPES:
                out.append("\\" + char)
            else:
                out.append(char)
            continue
        if char == "[":
            negated = pattern.startswith("^", index)
            if pattern.startswith("]", index + negated):
                raise UntranslatablePattern("a class starting with ']' is not translated")
            in_class = True
            out.append("[^" if negated else "[")
            index += negated
        elif char == "$":
            out.append("\\Z")
        elif char == ".":
            out.append(_ANY)
        elif char == "(" and pattern.startswith("?", index):
            if not pattern.startswith("?:", index):
                raise UntranslatablePattern("only (?: groups are translated")
            out.append("(?:")
            index += 2
        else:
            out.append(char)
    if in_class:
        raise UntranslatablePattern("unterminated character class")
    return "".join(out)


def _escape(escaped: str, *, in_class: bool) -> str:
    """The ``re`` source for the escape ``\\<escaped>``."""
    if escaped in _LITERAL_ESCAPES or escaped in _SAME_ESCAPES:
        return "\\" + escaped
    if escaped in _SETS:
        members = _SETS[escaped]
        return members if in_class else f"[{members}]"
    if escaped.lower() in _SETS and not in_class:  # \S \D \W outside a class
        return f"[^{_SETS[escaped.lower()]}]"
    raise UntranslatablePattern(f"escape \\{escaped} is not translated")


@lru_cache(maxsize=512)
def compile_pattern(pattern: str) -> re.Pattern[str]:
    """Compiled :func:`translate` of ``pattern``; use ``.search`` (JSON Schema patterns are not anchored)."""
    try:
        return re.compile(translate(pattern))
    except re.error as exc:
        raise UntranslatablePattern(str(exc)) from exc
