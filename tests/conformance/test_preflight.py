"""A dead or wrong --base-url is one clear line before the suite runs."""

from __future__ import annotations

import httpx
import pytest

from conformance.errors import ConfigurationError
from conformance.preflight import check_module
from tests.conformance.conftest import free_port


def _answering(status: int, body: object) -> httpx.MockTransport:
    return httpx.MockTransport(lambda request: httpx.Response(status, json=body))


def test_a_module_serving_its_openapi_passes() -> None:
    check_module("http://module.test", _answering(200, {"openapi": "3.1.0", "paths": {}}))


def test_nothing_listening_is_named() -> None:
    port = free_port()
    with pytest.raises(ConfigurationError, match=rf"no module answers at http://127.0.0.1:{port} .*is it running"):
        check_module(f"http://127.0.0.1:{port}")


@pytest.mark.parametrize(
    ("status", "body", "message"),
    [(404, {"title": "Not Found"}, "answered HTTP 404"), (200, {"items": []}, "is not an OpenAPI document")],
)
def test_a_base_url_without_the_modules_openapi_is_refused(status: int, body: object, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message) as raised:
        check_module("http://module.test/api/v1", _answering(status, body))
    assert "where /openapi.json is" in str(raised.value)
