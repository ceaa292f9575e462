"""Record every authorised API call in the audit log, with its final status and trace id, and refused tokens.

The auth dependency marks the request with its caller; after the response is sent this middleware appends one
record: who (client, member), what (method, route template, path), outcome (status) and the trace id. A route that
already wrote its own audit record inside its data transaction (the exchange API does, so the entity and its
record commit together) sets ``request.state.audited = True`` and is not recorded twice. A bearer token that was
presented and refused (bad, expired, forged, revoked) is recorded as ``api.unauthorized`` with the reason and the
source address, sampled per source (``QALA_AUDIT_REFUSALS_PER_SOURCE`` and ``..._TOTAL`` per window and worker; the
next record says how many were held back), so a flood of bad tokens cannot fill the log.

    app.add_middleware(AuditMiddleware)   # inside TelemetryMiddleware, so the trace id is current
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.audit import AuditRecord
from gateway.telemetry import current_trace_id

logger = logging.getLogger("qala.gateway.audit")


def _clean(text: str, limit: int) -> str:
    """Attacker-chosen text, made storable: bounded, and without NUL (PostgreSQL cannot store U+0000)."""
    return text.replace("\x00", "\ufffd")[:limit]


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
            elif caller is None and state.get("auth_refused") is not None:
                await self._record_refusal(scope, state["auth_refused"], status)

    @staticmethod
    async def _record_refusal(scope: Scope, refusal: Any, status: int) -> None:
        """A refused bearer token: recorded, but sampled per source so a flood cannot fill the log."""
        services = scope["app"].state.services
        client = scope.get("client")
        source = str(client[0]) if client else "unknown"
        suppressed = services.refusals.admit(source)
        if suppressed is None:
            return
        detail: dict[str, Any] = {"reason": _clean(refusal.reason, 200), "source": source, "suppressed": suppressed}
        if refusal.claimed_client_id:
            detail["claimedClientId"] = _clean(refusal.claimed_client_id, 64)
        record = AuditRecord(
            action="api.unauthorized",
            outcome="refused",
            status=status,
            method=scope["method"],
            route=getattr(scope.get("route"), "path", None),
            resource=_clean(scope["path"], 500),
            trace_id=current_trace_id(),
            detail=detail,
        )
        try:
            await services.audit.append(record)
        except Exception:
            logger.exception("could not append the audit record of a refused token on %s", scope["path"])

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
