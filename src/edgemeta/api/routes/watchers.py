"""Provision watcher routes."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from edgemeta import documents as docs
from edgemeta.api.handlers import ApiContext, bind, correlation_id, path, run_batch
from edgemeta.api.query import check_range, list_query
from edgemeta.api.responses import ok, stored_one, stored_page
from edgemeta.usecases import watchers as uc


async def add(api: ApiContext, request: Request) -> Response:
    """``POST /provisionwatcher``."""
    deps = api.deps
    cid = correlation_id(request)

    async def one(item: docs.AddProvisionWatcherRequest) -> dict[str, Any]:
        return {"id": await uc.add_watcher(deps, docs.watcher_record(item.provision_watcher), cid)}

    return await run_batch(request, api, docs.AddProvisionWatcherRequest, one, 201)


async def patch(api: ApiContext, request: Request) -> Response:
    """``PATCH /provisionwatcher``."""
    deps = api.deps
    cid = correlation_id(request)

    async def one(item: docs.UpdateProvisionWatcherRequest) -> dict[str, Any]:
        await uc.patch_watcher(deps, docs.watcher_patch(item.provision_watcher), cid)
        return {}

    return await run_batch(request, api, docs.UpdateProvisionWatcherRequest, one, 200)


async def all_(api: ApiContext, request: Request) -> Response:
    """``GET /provisionwatcher/all``."""
    deps = api.deps
    q = list_query(request.query_params, api.max_result_count)
    page = await uc.list_watcher_documents(deps, q)
    check_range(page.total, q)
    return stored_page("provisionWatchers", page.total, page.items)


async def by_name(api: ApiContext, request: Request) -> Response:
    """``GET /provisionwatcher/name/{name}``."""
    deps = api.deps
    document = await uc.get_watcher_document(deps, path(request, "name"))
    return stored_one("provisionWatcher", document)


async def by_service(api: ApiContext, request: Request) -> Response:
    """``GET /provisionwatcher/service/name/{name}``."""
    deps = api.deps
    q = list_query(request.query_params, api.max_result_count, with_labels=False)
    page = await uc.list_watcher_documents(deps, q, service=path(request, "name"))
    check_range(page.total, q)
    return stored_page("provisionWatchers", page.total, page.items)


async def by_profile(api: ApiContext, request: Request) -> Response:
    """``GET /provisionwatcher/profile/name/{name}``."""
    deps = api.deps
    q = list_query(request.query_params, api.max_result_count, with_labels=False)
    page = await uc.list_watcher_documents(deps, q, profile=path(request, "name"))
    check_range(page.total, q)
    return stored_page("provisionWatchers", page.total, page.items)


async def delete(api: ApiContext, request: Request) -> Response:
    """``DELETE /provisionwatcher/name/{name}``."""
    deps = api.deps
    await uc.delete_watcher(deps, path(request, "name"), correlation_id(request))
    return ok()


def routes(api: ApiContext) -> list[Route]:
    """The provision watcher routes."""
    return [
        Route("/provisionwatcher", bind(api, add), methods=["POST"]),
        Route("/provisionwatcher", bind(api, patch), methods=["PATCH"]),
        Route("/provisionwatcher/all", bind(api, all_), methods=["GET"]),
        Route("/provisionwatcher/name/{name}", bind(api, by_name), methods=["GET"]),
        Route("/provisionwatcher/name/{name}", bind(api, delete), methods=["DELETE"]),
        Route("/provisionwatcher/service/name/{name}", bind(api, by_service), methods=["GET"]),
        Route("/provisionwatcher/profile/name/{name}", bind(api, by_profile), methods=["GET"]),
    ]
