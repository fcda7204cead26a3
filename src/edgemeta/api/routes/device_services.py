"""Device service routes."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from edgemeta.api import authz, convert, wire
from edgemeta.api.handlers import ApiContext, correlation_id, endpoint, path, run_batch
from edgemeta.api.query import check_range, list_query
from edgemeta.api.responses import ok, stored_one, stored_page
from edgemeta.usecases import device_services as uc


def routes(api: ApiContext) -> list[Route]:
    """The device service routes."""
    deps = api.deps

    @endpoint
    async def add(request: Request) -> Response:
        cid = correlation_id(request)

        async def one(item: wire.AddDeviceServiceRequest) -> dict[str, Any]:
            return {"id": await uc.add_service(deps, convert.service(item.service), cid)}

        async def authorize(items: list[wire.AddDeviceServiceRequest]) -> None:
            for item in items:
                authz.own_service_name(request, item.service.name, "register")

        return await run_batch(
            request, api, wire.AddDeviceServiceRequest, one, 201, authorize=authorize
        )

    @endpoint
    async def patch(request: Request) -> Response:
        cid = correlation_id(request)

        async def one(item: wire.UpdateDeviceServiceRequest) -> dict[str, Any]:
            await uc.patch_service(deps, convert.service_patch(item.service), cid)
            return {}

        async def authorize(items: list[wire.UpdateDeviceServiceRequest]) -> None:
            await authz.own_services(request, deps.store, items)

        return await run_batch(
            request, api, wire.UpdateDeviceServiceRequest, one, 200, authorize=authorize
        )

    @endpoint
    async def all_(request: Request) -> Response:
        q = list_query(request.query_params, api.max_result_count)
        page = await uc.list_service_documents(deps, q)
        check_range(page.total, q)
        return stored_page("services", page.total, page.items)

    @endpoint
    async def by_name(request: Request) -> Response:
        return stored_one("service", await uc.get_service_document(deps, path(request, "name")))

    @endpoint
    async def delete(request: Request) -> Response:
        await uc.delete_service(deps, path(request, "name"), correlation_id(request))
        return ok()

    return [
        Route("/deviceservice", add, methods=["POST"]),
        Route("/deviceservice", patch, methods=["PATCH"]),
        Route("/deviceservice/all", all_, methods=["GET"]),
        Route("/deviceservice/name/{name}", by_name, methods=["GET"]),
        Route("/deviceservice/name/{name}", delete, methods=["DELETE"]),
    ]
