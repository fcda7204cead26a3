"""Device routes."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from edgemeta import documents as docs
from edgemeta.api import authz
from edgemeta.api.handlers import ApiContext, Outcome, bind, correlation_id, path, run_batch
from edgemeta.api.query import (
    MAX_OFFSET,
    check_range,
    flag,
    int_param,
    list_query,
    name_param,
)
from edgemeta.api.responses import base, ok, respond, stored_one, stored_page
from edgemeta.domain.errors import EdgeMetaError
from edgemeta.domain.records import Device
from edgemeta.usecases import devices as uc
from edgemeta.usecases.common import check_uuid


async def add(api: ApiContext, request: Request) -> Response:
    """``POST /device``."""
    deps = api.deps
    cid = correlation_id(request)
    force = flag(request.query_params, "force")
    bypass = flag(request.query_params, "bypassValidation")

    async def one(item: docs.AddDeviceRequest) -> dict[str, Any]:
        device = docs.device_record(item.device)
        new_id = await uc.add_device(deps, device, cid, force=force, bypass_validation=bypass)
        return {"id": new_id}

    def around(items: list[docs.AddDeviceRequest]) -> AbstractAsyncContextManager[Any]:
        services = (i.device.service_name for i in items)
        return uc.adds_scope(deps, services, force=force, bypass_validation=bypass)

    async def authorize(items: list[docs.AddDeviceRequest]) -> None:
        authz.own_new_devices(request, items)

    async def bulk(items: list[docs.AddDeviceRequest]) -> list[Outcome] | None:
        # When nothing can wait but the database (the batch is one transaction, see
        # around), the devices are checked and written together: same results, fewer
        # statements. Otherwise one by one.
        services = (i.device.service_name for i in items)
        if uc.adds_may_wait(deps, services, force=force, bypass_validation=bypass):
            return None
        devices: list[Device | EdgeMetaError] = []
        for item in items:
            try:
                devices.append(docs.device_record(item.device))
            except EdgeMetaError as exc:
                devices.append(exc)
        added = await uc.add_new_devices(deps, devices, cid, bypass_validation=bypass)
        return [r if isinstance(r, EdgeMetaError) else {"id": r} for r in added]

    return await run_batch(
        request,
        api,
        docs.AddDeviceRequest,
        one,
        201,
        around=around,
        authorize=authorize,
        bulk=bulk,
    )


async def patch(api: ApiContext, request: Request) -> Response:
    """``PATCH /device``."""
    deps = api.deps
    cid = correlation_id(request)
    bypass = flag(request.query_params, "bypassValidation")

    async def one(item: docs.UpdateDeviceRequest) -> dict[str, Any]:
        await uc.patch_device(deps, docs.device_patch(item.device), cid, bypass_validation=bypass)
        return {}

    async def authorize(items: list[docs.UpdateDeviceRequest]) -> None:
        await authz.own_devices(request, deps.store, items)

    return await run_batch(request, api, docs.UpdateDeviceRequest, one, 200, authorize=authorize)


async def all_(api: ApiContext, request: Request) -> Response:
    """``GET /device/all``."""
    deps = api.deps
    params = request.query_params
    q = list_query(params, api.max_result_count)
    ancestor = name_param(params, "descendantsOf")
    # Checked even without descendantsOf: a bad value is a 400, never silently ignored.
    levels = int_param(params, "maxLevels", 0, -MAX_OFFSET, MAX_OFFSET)
    if ancestor:
        page = await uc.list_descendant_documents(deps, ancestor, levels, q)
        return stored_page("devices", page.total, page.items)
    page = await uc.list_device_documents(deps, q)
    check_range(page.total, q)
    return stored_page("devices", page.total, page.items)


async def by_name(api: ApiContext, request: Request) -> Response:
    """``GET /device/name/{name}``."""
    deps = api.deps
    return stored_one("device", await uc.get_device_document(deps, path(request, "name")))


async def by_id(api: ApiContext, request: Request) -> Response:
    """``GET /device/id/{id}``."""
    deps = api.deps
    id_ = check_uuid(path(request, "id"), "device id")
    return ok(device=docs.device_doc(await uc.get_device_by_id(deps, id_)))


async def check_name(api: ApiContext, request: Request) -> Response:
    """``GET /device/check/name/{name}``."""
    deps = api.deps
    # EdgeX answers with the status code only: no message either way.
    found = await uc.device_exists(deps, path(request, "name"))
    status = 200 if found else 404
    return respond(status, base(status))


async def delete(api: ApiContext, request: Request) -> Response:
    """``DELETE /device/name/{name}``."""
    deps = api.deps
    name = path(request, "name")
    await authz.own_device(request, deps.store, name)
    await uc.delete_device(deps, name, correlation_id(request))
    return ok()


async def by_service(api: ApiContext, request: Request) -> Response:
    """``GET /device/service/name/{name}``."""
    deps = api.deps
    q = list_query(request.query_params, api.max_result_count, with_labels=False)
    page = await uc.list_device_documents(deps, q, service=path(request, "name"))
    check_range(page.total, q)
    return stored_page("devices", page.total, page.items)


async def by_profile(api: ApiContext, request: Request) -> Response:
    """``GET /device/profile/name/{name}``."""
    deps = api.deps
    q = list_query(request.query_params, api.max_result_count, with_labels=False)
    page = await uc.list_device_documents(deps, q, profile=path(request, "name"))
    check_range(page.total, q)
    return stored_page("devices", page.total, page.items)


def routes(api: ApiContext) -> list[Route]:
    """The device routes."""
    return [
        Route("/device", bind(api, add), methods=["POST"]),
        Route("/device", bind(api, patch), methods=["PATCH"]),
        Route("/device/all", bind(api, all_), methods=["GET"]),
        Route("/device/name/{name}", bind(api, by_name), methods=["GET"]),
        Route("/device/name/{name}", bind(api, delete), methods=["DELETE"]),
        Route("/device/id/{id}", bind(api, by_id), methods=["GET"]),
        Route("/device/check/name/{name}", bind(api, check_name), methods=["GET"]),
        Route("/device/service/name/{name}", bind(api, by_service), methods=["GET"]),
        Route("/device/profile/name/{name}", bind(api, by_profile), methods=["GET"]),
    ]
