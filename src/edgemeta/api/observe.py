"""Per-request observability on every HTTP port: the server span and the access log.

:func:`observed` wraps an application only when tracing or the access log is on, so with both
off (the default) a request pays nothing for them. It runs inside the correlation middleware
(the correlation id is known) and outside routing; the route template it names a span after
is the one the auth gate of the matched route records in the request's state
(``state["route"]``: ``GET /api/v3/device/name/{name}``).

Server span: named after the route template (just the method when no route matched),
OpenTelemetry's HTTP attributes (``http.request.method``, ``http.route``, ``url.path``,
``http.response.status_code``, ``server.port``) and ``edgemeta.correlation_id``; a W3C
``traceparent``/``tracestate`` on the request makes it a child of the caller's span, and a 5xx
marks it as an error.

Access log: one INFO line per request on logger ``edgemeta.access``::

    GET /api/v3/device/name/d1 200 1.4ms cid=2f0e... principal=ops

``principal`` is there only when authentication is on (the verified subject).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from edgemeta.security.principal import Principal
from edgemeta.tracing import Tracing, context_of

access_log = logging.getLogger("edgemeta.access")


class Observed:
    """The middleware :func:`observed` installs."""

    def __init__(self, app: ASGIApp, *, tracing: Tracing, access: bool, port: int = 0) -> None:
        self.app = app
        self.tracing = tracing
        self.access = access
        self.port = port

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI connection."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            if self.tracing.enabled:
                await self._traced(scope, receive, send_status, lambda: status)
            else:
                await self.app(scope, receive, send_status)
        finally:
            if self.access and access_log.isEnabledFor(logging.INFO):
                _log_access(scope, status or 500, started)

    async def _traced(self, scope: Scope, receive: Receive, send: Send, status: Any) -> None:
        traceparent = tracestate = ""
        for key, value in scope["headers"]:
            if key == b"traceparent":
                traceparent = value.decode("latin-1")
            elif key == b"tracestate":
                tracestate = value.decode("latin-1")
        method = scope["method"]
        attributes: dict[str, Any] = {
            "http.request.method": method,
            "url.path": scope["path"],
            "url.scheme": scope.get("scheme", "http"),
        }
        if self.port:
            attributes["server.port"] = self.port
        state = scope.setdefault("state", {})
        cid = state.get("correlation_id")
        if cid:
            attributes["edgemeta.correlation_id"] = cid
        tracer = self.tracing.tracer
        assert tracer is not None
        from opentelemetry.trace import SpanKind, Status, StatusCode

        with tracer.start_as_current_span(
            method,
            context=context_of(traceparent, tracestate) if traceparent else None,
            kind=SpanKind.SERVER,
            attributes=attributes,
        ) as span:
            try:
                await self.app(scope, receive, send)
            finally:
                code = status() or 500
                if span.is_recording():  # an unsampled request's span takes nothing
                    route = state.get("route")
                    end: dict[str, Any] = {"http.response.status_code": code}
                    if route:
                        span.update_name(route)
                        end["http.route"] = route.partition(" ")[2]
                    span.set_attributes(end)  # one lock for both, not one each
                    if code >= 500:
                        span.set_status(Status(StatusCode.ERROR))


def _log_access(scope: Scope, status: int, started: float) -> None:
    state = scope.get("state") or {}
    principal = state.get("principal")
    who = (
        f" principal={principal.subject}"
        if isinstance(principal, Principal) and not principal.auth_off
        else ""
    )
    query = scope.get("query_string") or b""
    path = scope["path"] + ("?" + query.decode("latin-1") if query else "")
    access_log.info(
        "%s %s %d %.1fms cid=%s%s",
        scope["method"],
        path,
        status,
        (time.perf_counter() - started) * 1000,
        state.get("correlation_id", ""),
        who,
    )


def observed(app: ASGIApp, *, tracing: Tracing | None, access: bool, port: int = 0) -> ASGIApp:
    """``app`` with its server spans and access log, or ``app`` itself when both are off."""
    tracing = tracing or Tracing.off()
    if not tracing.enabled and not access:
        return app
    return Observed(app, tracing=tracing, access=access, port=port)


__all__ = ["Observed", "access_log", "observed"]
