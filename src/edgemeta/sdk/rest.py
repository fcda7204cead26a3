"""A device service's own HTTP endpoint (optional): EdgeX's device-service routes.

=====================================================  ==================================
route                                                  answer
=====================================================  ==================================
``GET /api/v3/ping``                                   200 ``{apiVersion, timestamp,
                                                       serviceName}``
``GET /api/v3/device/name/{name}/{command}``           200 ``EventResponse`` (no ``event``
                                                       with ``ds-returnevent=false``)
``PUT /api/v3/device/name/{name}/{command}``           200 ``BaseResponse``; body
                                                       ``{resourceName: value}``
``POST /api/v3/discovery``                             202: a discovery run is started
=====================================================  ==================================

Refusals are EdgeX's error envelope ``{apiVersion, message, statusCode}`` with the status of
:mod:`edgemeta.sdk.commands` and :mod:`edgemeta.sdk.values` (404, 405, 400, 423, 500). Only
a service started with an HTTP port runs this app; a bus-only service needs no port.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
from collections.abc import Callable, Coroutine
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from edgemeta.sdk.commands import CommandRunner, Options
from edgemeta.sdk.driver import CommandError
from edgemeta.sdk.events import API_VERSION

log = logging.getLogger("edgemeta.sdk.rest")


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def _error(exc: CommandError) -> Response:
    return _json(
        {"apiVersion": API_VERSION, "message": exc.message, "statusCode": exc.status}, exc.status
    )


def rest_app(
    service: str,
    runner: CommandRunner,
    discover: Callable[[], Coroutine[Any, Any, Any]] | None = None,
) -> Starlette:
    """The ASGI app of device service ``service``."""
    background: set[asyncio.Task[Any]] = set()

    async def ping(request: Request) -> Response:
        now = email.utils.formatdate(usegmt=True)
        return _json({"apiVersion": API_VERSION, "timestamp": now, "serviceName": service})

    async def command(request: Request) -> Response:
        name = request.path_params["name"]
        cmd = request.path_params["command"]
        correlation = request.headers.get("x-correlation-id", "")
        try:
            if request.method == "GET":
                options = Options.of(request.query_params)
                ev = await runner.get(name, cmd, options, correlation)
                body: dict[str, Any] = {"apiVersion": API_VERSION, "statusCode": 200}
                if options.return_event:
                    body["event"] = ev
                return _json(body)
            try:
                given = orjson.loads(await request.body() or b"{}")
            except orjson.JSONDecodeError:
                raise CommandError(400, "the body is not JSON") from None
            await runner.set(name, cmd, given)
            return _json({"apiVersion": API_VERSION, "statusCode": 200})
        except CommandError as exc:
            return _error(exc)

    async def discovery(request: Request) -> Response:
        if discover is None:
            return _error(CommandError(501, "this device service does not discover devices"))
        task = asyncio.create_task(discover())
        background.add(task)
        task.add_done_callback(background.discard)
        return _json({"apiVersion": API_VERSION, "statusCode": 202}, 202)

    return Starlette(
        routes=[
            Route("/api/v3/ping", ping, methods=["GET"]),
            Route("/api/v3/device/name/{name}/{command}", command, methods=["GET", "PUT"]),
            Route("/api/v3/discovery", discovery, methods=["POST"]),
        ]
    )
