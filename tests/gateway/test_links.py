"""Links the hub hands out: path segments escaped as ``urllib.parse.quote`` escapes them."""

from __future__ import annotations

from urllib.parse import quote

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.links import path_segment


@settings(max_examples=500, deadline=None)
@given(st.text() | st.text(st.characters(max_codepoint=127)))
def test_a_path_segment_is_what_quote_makes_of_it(text: str) -> None:
    assert path_segment(text) == quote(text, safe="")


def test_every_ascii_character_is_escaped_as_quote_escapes_it() -> None:
    every = "".join(chr(code) for code in range(128))
    assert path_segment(every) == quote(every, safe="")
    assert path_segment("urn:ngsi-ld:ServiceRequest:astana:Қ/1") == quote(
        "urn:ngsi-ld:ServiceRequest:astana:Қ/1", safe=""
    )
