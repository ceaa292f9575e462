"""JSON Schema ``pattern`` in Python's ``re``, with the meaning jsonschema-rs gives it.

jsonschema-rs reads a pattern as the Rust ``regex`` crate does; Python's ``re`` differs in two ways that our
schemas hit:

* ``$`` also matches before a final newline in Python, so ``"astana\\n"`` would match ``^[a-z]+$``. It is
  translated to ``\\Z`` (end of text only, as in ECMA-262 and Rust).
* ``\\s`` also matches U+001C..U+001F in Python (``str.isspace``); Rust's ``\\s`` is the Unicode White_Space
  property. It is translated to that explicit set.

Only a conservative subset is translated: literals, classes, groups (``(?:`` included), alternation,
quantifiers and the escapes below. Anything else (look-around, back-references, ``\\w``, ``\\b``, ``\\p``)
raises :class:`UntranslatablePattern`, and callers hand the pattern to jsonschema-rs instead.

    >>> bool(compile_pattern("^[a-z]+$").search("astana\\n"))
    False
"""

from __future__ import annotations

import re
from functools import lru_cache

# The Unicode White_Space property, which the Rust regex crate's \s matches.
_WHITE_SPACE = "\\t-\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000"
_LITERAL_ESCAPES = frozenset(".^$*+?()[]{}|\\/-")
_SAME_ESCAPES = frozenset("dDnrtfv")
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
            escaped = pattern[index + 1]
            index += 2
            if escaped in _LITERAL_ESCAPES or escaped in _SAME_ESCAPES:
                out.append("\\" + escaped)
            elif escaped == "s":
                out.append(_WHITE_SPACE if in_class else f"[{_WHITE_SPACE}]")
            elif escaped == "S" and not in_class:
                out.append(f"[^{_WHITE_SPACE}]")
            else:
                raise UntranslatablePattern(f"escape \\{escaped} is not translated")
            continue
        index += 1
        if in_class:
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


@lru_cache(maxsize=512)
def compile_pattern(pattern: str) -> re.Pattern[str]:
    """Compiled :func:`translate` of ``pattern``; use ``.search`` (JSON Schema patterns are not anchored)."""
    try:
        return re.compile(translate(pattern))
    except re.error as exc:
        raise UntranslatablePattern(str(exc)) from exc
