"""Record every authorised API call in the audit log, with its final status and trace id.

The auth dependency marks the request with its caller; after the response is sent this middleware appends one
record: who (client, member), what (method, route template, path), outcome (status) and the trace id. A route that
already wrote its own audit record inside its data transaction (the exchange API does, so the entity and its
record commit together) sets ``request.state.audited = True`` and is not recorded twice.

    app.add_middleware(AuditMiddleware)   # inside TelemetryMiddleware, so the trace id is current
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.audit import AuditRecord
from gateway.telemetry import current_trace_id

logger = logging.getLogger("qala.gateway.audit")


def outcome_of(status: int) -> str:
    return "ok" if status < 400 else "refused" if status < 500 else "error"


class AuditMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            state: dict[str, Any] = scope.get("state", {})
            caller = state.get("caller")
            if caller is not None and not state.get("audited"):
                await self._record(scope, caller, status)

    @staticmethod
    async def _record(scope: Scope, caller: Any, status: int) -> None:
        route = scope.get("route")
        record = AuditRecord(
            action="api.call",
            outcome=outcome_of(status),
            status=status,
            client_id=caller.client_id,
            member=caller.member,
            method=scope["method"],
            route=getattr(route, "path", None),
            resource=scope["path"],
            trace_id=current_trace_id(),
        )
        try:
            await scope["app"].state.services.audit.append(record)
        except Exception:  # the response is already sent; losing the record must at least be loud
            logger.exception("could not append the audit record of %s %s", scope["method"], scope["path"])
