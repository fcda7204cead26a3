"""Device service routes."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from edgemeta import documents as docs
from edgemeta.api import authz
from edgemeta.api.handlers import ApiContext, bind, correlation_id, path, run_batch
from edgemeta.api.query import check_range, list_query
from edgemeta.api.responses import ok, stored_one, stored_page
from edgemeta.usecases import device_services as uc
from edgemeta.usecases import release_keys


async def add(api: ApiContext, request: Request) -> Response:
    """``POST /deviceservice``."""
    deps = api.deps
    cid = correlation_id(request)

    async def one(item: docs.AddDeviceServiceRequest) -> dict[str, Any]:
        return {"id": await uc.add_service(deps, docs.service_record(item.service), cid)}

    async def authorize(items: list[docs.AddDeviceServiceRequest]) -> None:
        for item in items:
            authz.own_service_name(request, item.service.name, "register")

    return await run_batch(
        request, api, docs.AddDeviceServiceRequest, one, 201, authorize=authorize
    )


async def patch(api: ApiContext, request: Request) -> Response:
    """``PATCH /deviceservice``."""
    deps = api.deps
    cid = correlation_id(request)

    async def one(item: docs.UpdateDeviceServiceRequest) -> dict[str, Any]:
        await uc.patch_service(deps, docs.service_patch(item.service), cid)
        return {}

    async def authorize(items: list[docs.UpdateDeviceServiceRequest]) -> None:
        await authz.own_services(request, deps.store, items)

    return await run_batch(
        request, api, docs.UpdateDeviceServiceRequest, one, 200, authorize=authorize
    )


async def all_(api: ApiContext, request: Request) -> Response:
    """``GET /deviceservice/all``."""
    deps = api.deps
    q = list_query(request.query_params, api.max_result_count)
    page = await uc.list_service_documents(deps, q)
    check_range(page.total, q)
    return stored_page("services", page.total, page.items)


async def by_name(api: ApiContext, request: Request) -> Response:
    """``GET /deviceservice/name/{name}``."""
    deps = api.deps
    return stored_one("service", await uc.get_service_document(deps, path(request, "name")))


async def delete(api: ApiContext, request: Request) -> Response:
    """``DELETE /deviceservice/name/{name}``."""
    deps = api.deps
    await uc.delete_service(deps, path(request, "name"), correlation_id(request))
    return ok()


async def release_key(api: ApiContext, request: Request) -> Response:
    """``GET /deviceservice/name/{name}/releasekey``: the key the service signs its release
    confirmations and validation answers with (docs/security.md); its own credential only."""
    name = path(request, "name")
    authz.own_service_name(request, name, "read the release key")
    key = await release_keys.release_key(api.deps, name)
    return ok(releaseKey=key.hex())


def routes(api: ApiContext) -> list[Route]:
    """The device service routes."""
    return [
        Route("/deviceservice", bind(api, add), methods=["POST"]),
        Route("/deviceservice", bind(api, patch), methods=["PATCH"]),
        Route("/deviceservice/all", bind(api, all_), methods=["GET"]),
        Route("/deviceservice/name/{name}", bind(api, by_name), methods=["GET"]),
        Route("/deviceservice/name/{name}", bind(api, delete), methods=["DELETE"]),
        Route("/deviceservice/name/{name}/releasekey", bind(api, release_key), methods=["GET"]),
    ]
