"""`qala --home` sets QALA_HOME for the process; tests that invoke it in process get the variable back."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True)
def _restore_home(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QALA_HOME", os.environ["QALA_HOME"])
