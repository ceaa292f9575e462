"""How a check reports its outcome: return normally to pass, or raise one of these signals.

A check raises :class:`CheckFailed` when the module broke the requirement (with what was expected), and
:class:`CheckSkipped` when it could not decide for lack of data (a skipped MUST blocks the certificate, as in
Inferno). :class:`CheckOmitted` means the test does not apply to this run (e.g. writes against a read-only fixture).
Any other exception is the suite's own fault and becomes status ``error``.

    >>> expect(200 == 200, "the list answers 200", expected="200")
    >>> expect(404 == 200, "the list answers 200", expected="200")
    Traceback (most recent call last):
    ...
    conformance.outcomes.CheckFailed: the list answers 200
"""

from __future__ import annotations


class CheckSignal(Exception):
    """Base of the outcome signals; ``message`` is shown to the vendor."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class CheckFailed(CheckSignal):
    def __init__(self, message: str, *, expected: str = "") -> None:
        super().__init__(message)
        self.expected = expected


class CheckSkipped(CheckSignal):
    pass


class CheckOmitted(CheckSignal):
    pass


def expect(condition: bool, message: str, *, expected: str = "") -> None:
    """Raise :class:`CheckFailed` with ``message`` unless ``condition`` holds."""
    if not condition:
        raise CheckFailed(message, expected=expected)
