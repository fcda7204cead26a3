"""The ASGI application: EdgeX routes under ``/api/v3``, the correlation header, EdgeX-shaped
errors for unknown routes and methods.

Built on Starlette rather than FastAPI: on this project's 2-core reference machine a FastAPI
"hello" answers ~10k req/s against Starlette's ~25k and a bare ASGI app's ~37k, and the EdgeX
contract (case-insensitive keys, one 400 for a bad batch, 207 bodies) means the request bodies
are decoded by our own DTO layer anyway. The OpenAPI document is ours, in ``openapi.yaml``;
each port that serves one shows it as a browsable page at ``/api/v3/docs`` (``edgemeta.api.docs``).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from importlib import resources
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from edgemeta.api import docs as api_docs
from edgemeta.api.auth import AuthGate
from edgemeta.api.handlers import ApiContext
from edgemeta.api.observe import observed
from edgemeta.api.responses import error
from edgemeta.api.routes import command as command_routes
from edgemeta.api.routes import (
    common,
    device_services,
    devices,
    moves,
    profiles,
    provisioning,
    systemevents,
    watchers,
)
from edgemeta.api.routes import coredata as coredata_routes
from edgemeta.api.routes import keeper as keeper_routes
from edgemeta.api.routes.command import CommandContext
from edgemeta.api.routes.coredata import DataContext
from edgemeta.api.routes.keeper import KeeperContext
from edgemeta.api.routing import IndexedRouter
from edgemeta.logs import CORRELATION
from edgemeta.observability.metrics import CONTENT_TYPE, Metrics, MetricsMiddleware
from edgemeta.security.authn import Authenticator
from edgemeta.security.roles import COMMAND, DATA, KEEPER, METADATA, rule_for
from edgemeta.tracing import Tracing

API_BASE = "/api/v3"
_CID_HEADER = b"x-correlation-id"
_CID_MAX = 128


def _usable_cid(value: bytes) -> bool:
    """1 to 128 printable ASCII characters, not starting or ending with a space.

    The id is echoed in a response header and stored with every system event, so a NUL
    (which PostgreSQL cannot store), a line break or another control character must not pass.
    """
    return (
        0 < len(value) <= _CID_MAX
        and all(0x20 <= b <= 0x7E for b in value)
        and value[0] != 0x20
        and value[-1] != 0x20
    )


class CorrelationMiddleware:
    """Echo ``X-Correlation-ID`` (or a new UUID) and route on the undecoded path.

    Routing on ``raw_path`` lets a name hold an escaped ``/`` (``%2F``); path parameters are
    then decoded exactly once by the handlers, as EdgeX's UrlDecodeMiddleware does. A
    correlation id that is not printable ASCII (or is too long) is replaced by a new UUID.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI connection."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cid = ""
        for key, value in scope["headers"]:
            if key.lower() == _CID_HEADER:
                if _usable_cid(value):
                    cid = value.decode("ascii")
                break
        if not cid:
            cid = str(uuid.uuid4())
        scope.setdefault("state", {})["correlation_id"] = cid
        raw = scope.get("raw_path")
        if raw:
            scope["path"] = raw.decode("utf-8", "replace")
        header = (_CID_HEADER, cid.encode("latin-1"))

        async def send_with_cid(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        # For log lines written while serving it (edgemeta.logs), and by tasks it starts.
        token = CORRELATION.set(cid)
        try:
            await self.app(scope, receive, send_with_cid)
        finally:
            CORRELATION.reset(token)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return error(404, f"no route for {request.method} {request.url.path}")
    if exc.status_code == 405:
        return error(405, f"method {request.method} is not allowed on {request.url.path}")
    return error(exc.status_code, str(exc.detail))


async def _server_error(request: Request, exc: Exception) -> Response:
    return error(500, "unexpected server error; see the service log")


def openapi_document() -> bytes:
    """edgemeta's own OpenAPI document (EdgeX core-metadata plus edgemeta's additions)."""
    return resources.files("edgemeta.api").joinpath("openapi.yaml").read_bytes()


def keeper_openapi_document() -> bytes:
    """The OpenAPI document of the core-keeper-compatible port (the key/value store)."""
    return resources.files("edgemeta.api").joinpath("keeper-openapi.yaml").read_bytes()


def coredata_openapi_document() -> bytes:
    """The OpenAPI document of the core-data port (EdgeX core-data's, narrowed to our routes)."""
    return resources.files("edgemeta.api").joinpath("coredata-openapi.yaml").read_bytes()


def command_openapi_document() -> bytes:
    """The OpenAPI document of the core-command-compatible port."""
    return resources.files("edgemeta.api").joinpath("command-openapi.yaml").read_bytes()


_CONVERTER = re.compile(r"\{(\w+):\w+\}")


def route_template(path: str) -> str:
    """A Starlette route path as the role table and the OpenAPI documents name it
    (``{key:path}`` -> ``{key}``)."""
    return _CONVERTER.sub(r"{\1}", path)


def _guarded(
    routes: list[BaseRoute], service: str, authenticator: Authenticator | None
) -> list[BaseRoute]:
    """Each route under ``/api/v3``, behind the gate with its rule from the role table."""
    out: list[BaseRoute] = []
    for r in routes:
        assert isinstance(r, Route)
        methods = sorted(r.methods or ())
        method = next((m for m in methods if m != "HEAD"), "GET")
        gate = Middleware(
            AuthGate,
            rule=rule_for(service, method, route_template(r.path)),
            authenticator=authenticator,
            label=f"{method} {API_BASE}{route_template(r.path)}",
        )
        out.append(
            Route(API_BASE + r.path, r.endpoint, methods=r.methods, name=r.name, middleware=[gate])
        )
    return out


def _middleware(cors_origins: Sequence[str]) -> list[Middleware]:
    """CORS for the listed origins (none by default); it answers preflight ``OPTIONS`` before
    routing, so before the auth gate (a browser's preflight never carries credentials)."""
    if not cors_origins:
        return []
    return [
        Middleware(
            CORSMiddleware,
            allow_origins=list(cors_origins),
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "X-API-Key", "Content-Type", "X-Correlation-ID"],
            expose_headers=["X-Correlation-ID", "WWW-Authenticate"],
            max_age=600,
        )
    ]


def metrics_route(metrics: Metrics, authenticator: Authenticator | None) -> Route:
    """``GET /metrics`` (at the root, Prometheus' default path) behind the ``metrics`` role."""

    async def scrape(request: Request) -> Response:
        return Response(await metrics.exposition(), media_type=CONTENT_TYPE)

    gate = Middleware(
        AuthGate,
        rule=rule_for(METADATA, "GET", "/metrics"),
        authenticator=authenticator,
        label="GET /metrics",
    )
    return Route("/metrics", scrape, methods=["GET"], name="metrics", middleware=[gate])


def create_metrics_app(metrics: Metrics, *, authenticator: Authenticator | None = None) -> ASGIApp:
    """The application of ``EDGEMETA_METRICS_PORT``: ``GET /metrics`` alone, same gate."""
    app = Starlette(
        routes=[metrics_route(metrics, authenticator)],
        exception_handlers={HTTPException: _http_error, Exception: _server_error},
    )
    return CorrelationMiddleware(app)


def create_app(
    api: ApiContext,
    *,
    extra_routes: list[BaseRoute] | None = None,
    lifespan: Callable[[Any], AbstractAsyncContextManager[None]] | None = None,
    authenticator: Authenticator | None = None,
    cors_origins: Sequence[str] = (),
    tracing: Tracing | None = None,
    access_log: bool = False,
    port: int = 0,
    metrics: Metrics | None = None,
    serve_metrics: bool = True,
) -> ASGIApp:
    """The application, with every core-metadata route (behind the auth gate: without an
    ``authenticator``, authentication is off and every listed route is open). ``metrics``
    instruments it; ``serve_metrics`` false leaves ``/metrics`` to a port of its own."""
    inner: list[BaseRoute] = []
    modules = (
        common,
        device_services,
        profiles,
        devices,
        watchers,
        moves,
        provisioning,
        systemevents,
    )
    for module in modules:
        inner.extend(module.routes(api))
    inner.extend(extra_routes or [])
    spec = openapi_document()

    async def openapi(request: Request) -> Response:
        return Response(spec, media_type="application/yaml")

    inner.append(Route("/openapi.yaml", openapi, methods=["GET"]))
    inner.extend(api_docs.routes())
    routes = _guarded(inner, METADATA, authenticator)
    middleware = _middleware(cors_origins)
    if metrics is not None:
        if serve_metrics:
            routes.append(metrics_route(metrics, authenticator))
        # Innermost of the app's middleware: it reads the route the router put in the scope.
        middleware.append(Middleware(MetricsMiddleware, metrics=metrics, name=METADATA))
    app = Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers={HTTPException: _http_error, Exception: _server_error},
        lifespan=lifespan,
    )
    # The same table, scanned by first segment (edgemeta.api.routing): same answers, fewer
    # regular expressions tried per request.
    app.router = IndexedRouter(routes, prefix=API_BASE + "/", lifespan=lifespan)
    return CorrelationMiddleware(observed(app, tracing=tracing, access=access_log, port=port))


def _port_app(
    routes: list[BaseRoute],
    spec: bytes,
    table: str,
    *,
    authenticator: Authenticator | None,
    cors_origins: Sequence[str],
    tracing: Tracing | None,
    access_log: bool,
    port: int,
    metrics: Metrics | None,
) -> ASGIApp:
    """One of the other ports' applications (core-data, core-keeper, core-command): its
    routes plus its OpenAPI document and API page, guarded by its part of the role table,
    with the same envelope and middleware as core-metadata; ``metrics`` counts its requests
    under ``app=<table>`` (its ``/metrics`` stays on core-metadata's port or its own)."""

    async def openapi(request: Request) -> Response:
        return Response(spec, media_type="application/yaml")

    routes.append(Route("/openapi.yaml", openapi, methods=["GET"]))
    routes.extend(api_docs.routes())
    middleware = _middleware(cors_origins)
    if metrics is not None:
        # Innermost, as on core-metadata: it reads the route the router put in the scope.
        middleware.append(Middleware(MetricsMiddleware, metrics=metrics, name=table))
    app = Starlette(
        routes=_guarded(routes, table, authenticator),
        middleware=middleware,
        exception_handlers={HTTPException: _http_error, Exception: _server_error},
    )
    return CorrelationMiddleware(observed(app, tracing=tracing, access=access_log, port=port))


def create_data_app(
    ctx: DataContext,
    *,
    authenticator: Authenticator | None = None,
    cors_origins: Sequence[str] = (),
    tracing: Tracing | None = None,
    access_log: bool = False,
    port: int = 0,
    metrics: Metrics | None = None,
) -> ASGIApp:
    """The core-data application (its own port), with the same envelope and middleware."""
    return _port_app(
        list(coredata_routes.routes(ctx)),
        coredata_openapi_document(),
        DATA,
        authenticator=authenticator,
        cors_origins=cors_origins,
        tracing=tracing,
        access_log=access_log,
        port=port,
        metrics=metrics,
    )


def create_keeper_app(
    ctx: KeeperContext,
    *,
    authenticator: Authenticator | None = None,
    cors_origins: Sequence[str] = (),
    tracing: Tracing | None = None,
    access_log: bool = False,
    port: int = 0,
    metrics: Metrics | None = None,
) -> ASGIApp:
    """The core-keeper-compatible application (its own port): the key/value store."""
    return _port_app(
        list(keeper_routes.routes(ctx)),
        keeper_openapi_document(),
        KEEPER,
        authenticator=authenticator,
        cors_origins=cors_origins,
        tracing=tracing,
        access_log=access_log,
        port=port,
        metrics=metrics,
    )


def create_command_app(
    ctx: CommandContext,
    *,
    authenticator: Authenticator | None = None,
    cors_origins: Sequence[str] = (),
    tracing: Tracing | None = None,
    access_log: bool = False,
    port: int = 0,
    metrics: Metrics | None = None,
) -> ASGIApp:
    """The core-command-compatible application (its own port): devices' commands."""
    return _port_app(
        list(command_routes.routes(ctx)),
        command_openapi_document(),
        COMMAND,
        authenticator=authenticator,
        cors_origins=cors_origins,
        tracing=tracing,
        access_log=access_log,
        port=port,
        metrics=metrics,
    )
