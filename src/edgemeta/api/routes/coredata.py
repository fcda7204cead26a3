"""core-data's REST API (EdgeX ``core-data.yaml``): events and readings, on their own port.

Paths, bodies and status codes follow EdgeX: an add answers 201 with the event id; lists are
newest first with ``totalCount``, ``offset`` (``-1`` skips the count, as in EdgeX),
``limit`` and ``numeric=true``; ``start``/``end`` and ``age`` are nanoseconds; deleting a
device's events and purging by age answer 202. Unlike EdgeX, both deletions are done when
the 202 is sent (so a device can be deleted right after its events), and ``aggregateFunc``
answers 501 (not implemented yet).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from edgemeta.api.authz import own_service_name
from edgemeta.api.body import parse_json, read_body
from edgemeta.api.handlers import bind, path
from edgemeta.api.health import Readiness
from edgemeta.api.query import DEFAULT_LIMIT, MAX_OFFSET, int_param
from edgemeta.api.responses import JSON_TYPE, base, respond
from edgemeta.api.routes.common import service_routes
from edgemeta.documents import API_VERSION
from edgemeta.documents.coredata import numeric_document, parse_request
from edgemeta.domain.errors import ContractInvalid, RangeNotSatisfiable, Unsupported
from edgemeta.domain.ids import is_uuid
from edgemeta.domain.readings import EventAddress
from edgemeta.ports import DataQuery, ListQuery, Page
from edgemeta.usecases import coredata as uc
from edgemeta.usecases.deps import Deps

SERVICE_NAME = "core-data"
_NS_MAX = 2**63 - 1


@dataclass(frozen=True, slots=True)
class DataContext:
    """What the core-data routes need."""

    deps: Deps
    max_result_count: int = 1024
    max_event_bytes: int = 25_000 * 1024
    config: dict[str, Any] = field(default_factory=dict)
    readiness: Readiness | None = None  # the readiness checks, with the bus (bootstrap)
    writer: uc.GroupWriter = field(init=False)

    def __post_init__(self) -> None:
        # One writer per app: it groups concurrent adds into one transaction.
        object.__setattr__(self, "writer", uc.GroupWriter(self.deps))


def _paging(params: Mapping[str, str], max_count: int) -> tuple[ListQuery, bool]:
    """offset (-1: no total count), limit (-1: the maximum); whether to count."""
    offset = int_param(params, "offset", 0, -1, MAX_OFFSET)
    limit = int_param(params, "limit", DEFAULT_LIMIT, -1, max_count)
    if limit == -1:
        limit = max_count
    if params.get("aggregateFunc"):
        raise Unsupported("aggregateFunc is not implemented by edgemeta's core-data yet")
    return ListQuery(offset=max(offset, 0), limit=limit), offset != -1


def _ns(request: Request, key: str) -> int:
    raw = path(request, key)
    if not raw.isascii() or not raw.isdigit() or int(raw) > _NS_MAX:
        raise ContractInvalid(f"{key} must be a non-negative integer of nanoseconds, not {raw!r}")
    return int(raw)


def _range(request: Request) -> tuple[int, int]:
    start, end = _ns(request, "start"), _ns(request, "end")
    if end < start:
        raise ContractInvalid(f"end {end} is before start {start}")
    return start, end


def _numeric_event(document: str) -> str:
    doc = orjson.loads(document)
    doc["readings"] = [
        orjson.loads(numeric_document(orjson.dumps(r).decode())) for r in doc["readings"]
    ]
    return orjson.dumps(doc).decode()


def _page(key: str, page: Page[str], query: ListQuery, counted: bool, numeric: bool) -> Response:
    if counted and page.total > 0 and query.limit != 0 and query.offset > page.total:
        raise RangeNotSatisfiable(
            f"query objects bounds out of range. length:{page.total} offset:{query.offset}"
        )
    items = page.items
    if numeric:
        convert = _numeric_event if key == "events" else numeric_document
        items = [convert(d) for d in items]
    head = b'{"apiVersion":"%s","statusCode":200,"totalCount":%d,"%s":[' % (
        API_VERSION.encode(),
        page.total if counted else 0,
        key.encode(),
    )
    return Response(head + ",".join(items).encode() + b"]}", media_type=JSON_TYPE)


# The handlers: ``fn(ctx, request)``, bound to the app's context by :func:`routes`.


async def add_event(ctx: DataContext, request: Request) -> Response:
    """``POST /event/{serviceName}/{profileName}/{deviceName}/{sourceName}``."""
    address = EventAddress(
        path(request, "serviceName"),
        path(request, "profileName"),
        path(request, "deviceName"),
        path(request, "sourceName"),
    )
    own_service_name(request, address.service_name, "send events")
    if "cbor" in request.headers.get("content-type", ""):
        raise Unsupported("CBOR events are not supported yet; send JSON")
    raw, rid = parse_request(parse_json(await read_body(request, ctx.max_event_bytes)))
    event_id = await ctx.writer.add(raw, address, rid)
    body = base(201, request_id=rid)
    body["id"] = event_id
    return respond(201, body)


async def _events(ctx: DataContext, request: Request, query: DataQuery) -> Response:
    q, counted = _paging(request.query_params, ctx.max_result_count)
    page = await uc.list_events(ctx.deps, query, q)
    numeric = request.query_params.get("numeric", "").lower() == "true"
    return _page("events", page, q, counted, numeric)


async def _readings(ctx: DataContext, request: Request, query: DataQuery) -> Response:
    q, counted = _paging(request.query_params, ctx.max_result_count)
    page = await uc.list_readings(ctx.deps, query, q)
    numeric = request.query_params.get("numeric", "").lower() == "true"
    return _page("readings", page, q, counted, numeric)


def _event_id(request: Request) -> str:
    id_ = path(request, "id")
    if not is_uuid(id_):
        raise ContractInvalid(f"id {id_!r} is not a UUID")
    return id_


async def events_all(ctx: DataContext, request: Request) -> Response:
    """``GET /event/all``."""
    return await _events(ctx, request, DataQuery())


async def events_of_device(ctx: DataContext, request: Request) -> Response:
    """``GET /event/device/name/{name}``."""
    return await _events(ctx, request, DataQuery(device=path(request, "name")))


async def events_in_range(ctx: DataContext, request: Request) -> Response:
    """``GET /event/start/{start}/end/{end}``."""
    start, end = _range(request)
    return await _events(ctx, request, DataQuery(start=start, end=end))


async def event_by_id(ctx: DataContext, request: Request) -> Response:
    """``GET /event/id/{id}``."""
    document = await uc.get_event(ctx.deps, _event_id(request))
    head = b'{"apiVersion":"%s","statusCode":200,"event":' % API_VERSION.encode()
    return Response(head + document.encode() + b"}", media_type=JSON_TYPE)


async def delete_event(ctx: DataContext, request: Request) -> Response:
    """``DELETE /event/id/{id}``."""
    await uc.delete_event(ctx.deps, _event_id(request))
    return respond(200, base(200))


async def _count(ctx: DataContext, request: Request, what: str, of_device: bool) -> Response:
    n = await uc.count(ctx.deps, what, path(request, "name") if of_device else None)
    body = base(200)
    body["count"] = n
    return respond(200, body)


async def count_events(ctx: DataContext, request: Request) -> Response:
    """``GET /event/count``."""
    return await _count(ctx, request, "event", False)


async def count_events_of_device(ctx: DataContext, request: Request) -> Response:
    """``GET /event/count/device/name/{name}``."""
    return await _count(ctx, request, "event", True)


async def count_readings(ctx: DataContext, request: Request) -> Response:
    """``GET /reading/count``."""
    return await _count(ctx, request, "reading", False)


async def count_readings_of_device(ctx: DataContext, request: Request) -> Response:
    """``GET /reading/count/device/name/{name}``."""
    return await _count(ctx, request, "reading", True)


async def delete_of_device(ctx: DataContext, request: Request) -> Response:
    """``DELETE /event/device/name/{name}`` (done when the 202 is sent)."""
    await uc.delete_device_events(ctx.deps, path(request, "name"))
    return respond(202, base(202))


async def purge_by_age(ctx: DataContext, request: Request) -> Response:
    """``DELETE /event/age/{age}`` (done when the 202 is sent)."""
    age = _ns(request, "age")
    await uc.purge_older_than(ctx.deps, time.time_ns() - age)
    return respond(202, base(202))


async def readings_all(ctx: DataContext, request: Request) -> Response:
    """``GET /reading/all``."""
    return await _readings(ctx, request, DataQuery())


async def readings_of_device(ctx: DataContext, request: Request) -> Response:
    """``GET /reading/device/name/{name}``."""
    return await _readings(ctx, request, DataQuery(device=path(request, "name")))


async def readings_of_resource(ctx: DataContext, request: Request) -> Response:
    """``GET /reading/resourceName/{resourceName}``."""
    return await _readings(ctx, request, DataQuery(resource=path(request, "resourceName")))


async def readings_of_device_resource(ctx: DataContext, request: Request) -> Response:
    """``GET /reading/device/name/{deviceName}/resourceName/{resourceName}``."""
    query = DataQuery(device=path(request, "deviceName"), resource=path(request, "resourceName"))
    return await _readings(ctx, request, query)


async def readings_in_range(ctx: DataContext, request: Request) -> Response:
    """``GET /reading/start/{start}/end/{end}``."""
    start, end = _range(request)
    return await _readings(ctx, request, DataQuery(start=start, end=end))


async def readings_of_resource_in_range(ctx: DataContext, request: Request) -> Response:
    """``GET /reading/resourceName/{resourceName}/start/{start}/end/{end}``."""
    start, end = _range(request)
    query = DataQuery(resource=path(request, "resourceName"), start=start, end=end)
    return await _readings(ctx, request, query)


async def readings_of_device_resource_in_range(ctx: DataContext, request: Request) -> Response:
    """``GET /reading/device/name/{deviceName}/resourceName/{resourceName}/start/../end/..``."""
    start, end = _range(request)
    query = DataQuery(
        device=path(request, "deviceName"),
        resource=path(request, "resourceName"),
        start=start,
        end=end,
    )
    return await _readings(ctx, request, query)


async def readings_of_device_in_range(ctx: DataContext, request: Request) -> Response:
    """``GET /reading/device/name/{deviceName}/start/{start}/end/{end}``."""
    start, end = _range(request)
    raw = await read_body(request, 1024 * 1024)
    if raw.strip():
        body = parse_json(raw)
        if not isinstance(body, dict):
            raise ContractInvalid("request body must be a JSON object")
        if body.get("resourceNames"):
            raise Unsupported("filtering by resourceNames is not implemented yet")
    query = DataQuery(device=path(request, "deviceName"), start=start, end=end)
    return await _readings(ctx, request, query)


def routes(ctx: DataContext) -> list[Route]:
    """The core-data routes (without the ``/api/v3`` base)."""

    def get(template: str, fn: Callable[[DataContext, Request], Awaitable[Response]]) -> Route:
        return Route(template, bind(ctx, fn), methods=["GET"])

    def delete(template: str, fn: Callable[[DataContext, Request], Awaitable[Response]]) -> Route:
        return Route(template, bind(ctx, fn), methods=["DELETE"])

    r = "/reading"
    dev_r = f"{r}/device/name/{{deviceName}}/resourceName/{{resourceName}}"
    return [
        *service_routes(
            SERVICE_NAME,
            store=ctx.deps.store,
            config=lambda: ctx.config,
            readiness=ctx.readiness,
        ),
        get("/event/all", events_all),
        get("/event/count", count_events),
        get("/event/count/device/name/{name}", count_events_of_device),
        get("/event/device/name/{name}", events_of_device),
        delete("/event/device/name/{name}", delete_of_device),
        get("/event/id/{id}", event_by_id),
        delete("/event/id/{id}", delete_event),
        get("/event/start/{start}/end/{end}", events_in_range),
        delete("/event/age/{age}", purge_by_age),
        Route(
            "/event/{serviceName}/{profileName}/{deviceName}/{sourceName}",
            bind(ctx, add_event),
            methods=["POST"],
        ),
        get(f"{r}/all", readings_all),
        get(f"{r}/count", count_readings),
        get(f"{r}/count/device/name/{{name}}", count_readings_of_device),
        get(f"{r}/device/name/{{name}}", readings_of_device),
        get(f"{r}/resourceName/{{resourceName}}", readings_of_resource),
        get(dev_r, readings_of_device_resource),
        get(f"{r}/start/{{start}}/end/{{end}}", readings_in_range),
        get(
            f"{r}/resourceName/{{resourceName}}/start/{{start}}/end/{{end}}",
            readings_of_resource_in_range,
        ),
        get(f"{dev_r}/start/{{start}}/end/{{end}}", readings_of_device_resource_in_range),
        get(
            f"{r}/device/name/{{deviceName}}/start/{{start}}/end/{{end}}",
            readings_of_device_in_range,
        ),
    ]
