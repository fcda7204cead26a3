"""Device routes."""

from __future__ import annotations

import contextlib
from contextlib import AbstractAsyncContextManager
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from edgemeta import documents as docs
from edgemeta.api import authz, convert, wire
from edgemeta.api.handlers import ApiContext, correlation_id, endpoint, path, run_batch
from edgemeta.api.query import (
    MAX_OFFSET,
    check_range,
    flag,
    int_param,
    list_query,
    name_param,
)
from edgemeta.api.responses import base, ok, respond, stored_one, stored_page
from edgemeta.usecases import devices as uc
from edgemeta.usecases.common import check_uuid


def routes(api: ApiContext) -> list[Route]:
    """The device routes."""
    deps = api.deps

    @endpoint
    async def add(request: Request) -> Response:
        cid = correlation_id(request)
        force = flag(request.query_params, "force")
        bypass = flag(request.query_params, "bypassValidation")

        async def one(item: wire.AddDeviceRequest) -> dict[str, Any]:
            device = convert.device(item.device)
            new_id = await uc.add_device(deps, device, cid, force=force, bypass_validation=bypass)
            return {"id": new_id}

        def around(items: list[wire.AddDeviceRequest]) -> AbstractAsyncContextManager[Any]:
            # Nothing to wait for but the database (no validation over the bus, no move): one
            # transaction (one commit) for the whole batch, each device in a savepoint so a
            # refused one is undone alone.
            services = (i.device.service_name for i in items)
            if uc.adds_may_wait(deps, services, force=force, bypass_validation=bypass):
                return contextlib.nullcontext()
            return deps.store.batch()

        async def authorize(items: list[wire.AddDeviceRequest]) -> None:
            authz.own_new_devices(request, items)

        return await run_batch(
            request, api, wire.AddDeviceRequest, one, 201, around=around, authorize=authorize
        )

    @endpoint
    async def patch(request: Request) -> Response:
        cid = correlation_id(request)
        bypass = flag(request.query_params, "bypassValidation")

        async def one(item: wire.UpdateDeviceRequest) -> dict[str, Any]:
            await uc.patch_device(
                deps, convert.device_patch(item.device), cid, bypass_validation=bypass
            )
            return {}

        async def authorize(items: list[wire.UpdateDeviceRequest]) -> None:
            await authz.own_devices(request, deps.store, items)

        return await run_batch(
            request, api, wire.UpdateDeviceRequest, one, 200, authorize=authorize
        )

    @endpoint
    async def all_(request: Request) -> Response:
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

    @endpoint
    async def by_name(request: Request) -> Response:
        return stored_one("device", await uc.get_device_document(deps, path(request, "name")))

    @endpoint
    async def by_id(request: Request) -> Response:
        id_ = check_uuid(path(request, "id"), "device id")
        return ok(device=docs.device_doc(await uc.get_device_by_id(deps, id_)))

    @endpoint
    async def check_name(request: Request) -> Response:
        # EdgeX answers with the status code only: no message either way.
        found = await uc.device_exists(deps, path(request, "name"))
        status = 200 if found else 404
        return respond(status, base(status))

    @endpoint
    async def delete(request: Request) -> Response:
        name = path(request, "name")
        await authz.own_device(request, deps.store, name)
        await uc.delete_device(deps, name, correlation_id(request))
        return ok()

    @endpoint
    async def by_service(request: Request) -> Response:
        q = list_query(request.query_params, api.max_result_count, with_labels=False)
        page = await uc.list_device_documents(deps, q, service=path(request, "name"))
        check_range(page.total, q)
        return stored_page("devices", page.total, page.items)

    @endpoint
    async def by_profile(request: Request) -> Response:
        q = list_query(request.query_params, api.max_result_count, with_labels=False)
        page = await uc.list_device_documents(deps, q, profile=path(request, "name"))
        check_range(page.total, q)
        return stored_page("devices", page.total, page.items)

    return [
        Route("/device", add, methods=["POST"]),
        Route("/device", patch, methods=["PATCH"]),
        Route("/device/all", all_, methods=["GET"]),
        Route("/device/name/{name}", by_name, methods=["GET"]),
        Route("/device/name/{name}", delete, methods=["DELETE"]),
        Route("/device/id/{id}", by_id, methods=["GET"]),
        Route("/device/check/name/{name}", check_name, methods=["GET"]),
        Route("/device/service/name/{name}", by_service, methods=["GET"]),
        Route("/device/profile/name/{name}", by_profile, methods=["GET"]),
    ]
