"""core-command's REST API (EdgeX ``core-command.yaml``), on its own port.

``GET /device/all`` and ``GET /device/name/{name}`` list devices' core commands; ``GET`` and
``PUT /device/name/{name}/{command}`` read and set, with ``ds-pushevent`` (default false) and
``ds-returnevent`` (default true) passed on to the device service, which pushes the event to
core-data itself, as in EdgeX. The checks and the move-aware routing are
:mod:`edgemeta.usecases.commands`; docs/commands.md has the whole contract.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from edgemeta.api.body import parse_json, read_body
from edgemeta.api.handlers import bind, path
from edgemeta.api.query import DEFAULT_LIMIT, MAX_OFFSET, int_param
from edgemeta.api.responses import JSON_TYPE, base, respond
from edgemeta.api.routes.common import service_routes
from edgemeta.domain.errors import ContractInvalid
from edgemeta.ports import ListQuery
from edgemeta.usecases import commands as uc

SERVICE_NAME = "core-command"
PUSH_EVENT = "ds-pushevent"
RETURN_EVENT = "ds-returnevent"


@dataclass(frozen=True, slots=True)
class CommandContext:
    """What the core-command routes need."""

    cd: uc.CommandDeps
    max_body_bytes: int = 16 * 1024 * 1024
    config: dict[str, Any] = field(default_factory=dict)


def _flag(params: Mapping[str, str], key: str, default: str) -> str:
    raw = params.get(key, default).lower()
    if raw not in ("true", "false"):
        raise ContractInvalid(f"{key} must be true or false, not {params.get(key)!r}")
    return raw


def command_query(params: Mapping[str, str]) -> dict[str, str]:
    """The ``ds-*`` query parameters as the device service gets them (checked, lower case)."""
    return {
        PUSH_EVENT: _flag(params, PUSH_EVENT, "false"),
        RETURN_EVENT: _flag(params, RETURN_EVENT, "true"),
    }


def device_core_command(dc: uc.DeviceCommands, url: str) -> dict[str, Any]:
    """A DeviceCoreCommand document."""
    name = dc.device.name
    return {
        "deviceName": name,
        "profileName": dc.device.profile_name,
        "coreCommands": [
            {
                "name": c.name,
                "get": c.get,
                "set": c.set,
                "path": f"/api/v3/device/name/{quote(name, safe='')}/{quote(c.name, safe='')}",
                "url": url,
                "parameters": [
                    {"resourceName": r.name, "valueType": r.properties.value_type}
                    for r in c.resources
                ],
            }
            for c in dc.commands
        ],
    }


def _url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


async def all_commands(ctx: CommandContext, request: Request) -> Response:
    """``GET /device/all``: every device's core commands, paged."""
    params = request.query_params
    limit = int_param(params, "limit", DEFAULT_LIMIT, -1, ctx.cd.deps.policy.max_result_count)
    if limit == -1:
        limit = ctx.cd.deps.policy.max_result_count
    offset = int_param(params, "offset", 0, 0, MAX_OFFSET)
    page = await uc.list_all(ctx.cd.deps, ListQuery(offset=offset, limit=limit))
    url = _url(request)
    body = base(200)
    body["totalCount"] = page.total
    body["deviceCoreCommands"] = [device_core_command(d, url) for d in page.items]
    return respond(200, body)


async def device_commands(ctx: CommandContext, request: Request) -> Response:
    """``GET /device/name/{name}``: one device's core commands."""
    dc = await uc.by_device(ctx.cd.deps, path(request, "name"))
    body = base(200)
    body["deviceCoreCommand"] = device_core_command(dc, _url(request))
    return respond(200, body)


def _cid(request: Request) -> str:
    return str(request.scope.get("state", {}).get("correlation_id", ""))


async def read(ctx: CommandContext, request: Request) -> Response:
    """``GET /device/name/{name}/{command}``: a read, answered as the device service did."""
    answer = await uc.issue(
        ctx.cd,
        path(request, "name"),
        path(request, "command"),
        "get",
        None,
        command_query(request.query_params),
        _cid(request),
    )
    return Response(answer.body, status_code=answer.status, media_type=JSON_TYPE)


async def write(ctx: CommandContext, request: Request) -> Response:
    """``PUT /device/name/{name}/{command}``: a set, checked before it is sent."""
    body = parse_json(await read_body(request, ctx.max_body_bytes))
    if not isinstance(body, dict):
        raise ContractInvalid(
            'a set request is a JSON object of resource names and values: {"resource": "value"}'
        )
    answer = await uc.issue(
        ctx.cd,
        path(request, "name"),
        path(request, "command"),
        "set",
        body,
        command_query(request.query_params),
        _cid(request),
    )
    return Response(answer.body, status_code=answer.status, media_type=JSON_TYPE)


def routes(ctx: CommandContext) -> list[Route]:
    """core-command's routes (relative to ``/api/v3``)."""
    return [
        *service_routes(SERVICE_NAME, store=ctx.cd.deps.store, config=lambda: ctx.config),
        Route("/device/all", bind(ctx, all_commands), methods=["GET"]),
        Route("/device/name/{name}", bind(ctx, device_commands), methods=["GET"]),
        Route("/device/name/{name}/{command}", bind(ctx, read), methods=["GET"]),
        Route("/device/name/{name}/{command}", bind(ctx, write), methods=["PUT"]),
    ]
