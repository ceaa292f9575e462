"""How a check reports its outcome: return normally to pass, or raise one of these signals.

A check raises :class:`CheckFailed` when the module broke the requirement (with what was expected), and
:class:`CheckSkipped` when it could not decide for lack of data (a skipped MUST blocks the certificate, as in
Inferno). :class:`CheckOmitted` means the test does not apply to this run, and only that: writes against a
read-only fixture. A test that merely could not be carried out is a skip, never an omission, so an untested MUST
always blocks the certificate.
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
    """The module broke a requirement; ``cause`` names another requirement when that one is the root cause.

    A check that reads a list and finds a page without ``next`` fails, but the broken rule is the page shape
    (QM-LIST-007), not the check's own: the report then shows the failure as a consequence of its cause.
    """

    def __init__(self, message: str, *, expected: str = "", cause: str = "") -> None:
        super().__init__(message)
        self.expected = expected
        self.cause = cause


class CheckSkipped(CheckSignal):
    pass


class CheckOmitted(CheckSignal):
    pass


def expect(condition: bool, message: str, *, expected: str = "", cause: str = "") -> None:
    """Raise :class:`CheckFailed` with ``message`` unless ``condition`` holds."""
    if not condition:
        raise CheckFailed(message, expected=expected, cause=cause)
