"""The gateway's fixtures (the real app in process, on both engines, with registered clients) for mandate tests."""

from tests.gateway.conftest import app, http, register, services, settings  # noqa: F401
