"""Provision watcher routes."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from edgemeta import documents as docs
from edgemeta.api.handlers import ApiContext, correlation_id, endpoint, path, run_batch
from edgemeta.api.query import check_range, list_query
from edgemeta.api.responses import ok, stored_one, stored_page
from edgemeta.usecases import watchers as uc


def routes(api: ApiContext) -> list[Route]:
    """The provision watcher routes."""
    deps = api.deps

    @endpoint
    async def add(request: Request) -> Response:
        cid = correlation_id(request)

        async def one(item: docs.AddProvisionWatcherRequest) -> dict[str, Any]:
            return {
                "id": await uc.add_watcher(deps, docs.watcher_record(item.provision_watcher), cid)
            }

        return await run_batch(request, api, docs.AddProvisionWatcherRequest, one, 201)

    @endpoint
    async def patch(request: Request) -> Response:
        cid = correlation_id(request)

        async def one(item: docs.UpdateProvisionWatcherRequest) -> dict[str, Any]:
            await uc.patch_watcher(deps, docs.watcher_patch(item.provision_watcher), cid)
            return {}

        return await run_batch(request, api, docs.UpdateProvisionWatcherRequest, one, 200)

    @endpoint
    async def all_(request: Request) -> Response:
        q = list_query(request.query_params, api.max_result_count)
        page = await uc.list_watcher_documents(deps, q)
        check_range(page.total, q)
        return stored_page("provisionWatchers", page.total, page.items)

    @endpoint
    async def by_name(request: Request) -> Response:
        document = await uc.get_watcher_document(deps, path(request, "name"))
        return stored_one("provisionWatcher", document)

    @endpoint
    async def by_service(request: Request) -> Response:
        q = list_query(request.query_params, api.max_result_count, with_labels=False)
        page = await uc.list_watcher_documents(deps, q, service=path(request, "name"))
        check_range(page.total, q)
        return stored_page("provisionWatchers", page.total, page.items)

    @endpoint
    async def by_profile(request: Request) -> Response:
        q = list_query(request.query_params, api.max_result_count, with_labels=False)
        page = await uc.list_watcher_documents(deps, q, profile=path(request, "name"))
        check_range(page.total, q)
        return stored_page("provisionWatchers", page.total, page.items)

    @endpoint
    async def delete(request: Request) -> Response:
        await uc.delete_watcher(deps, path(request, "name"), correlation_id(request))
        return ok()

    return [
        Route("/provisionwatcher", add, methods=["POST"]),
        Route("/provisionwatcher", patch, methods=["PATCH"]),
        Route("/provisionwatcher/all", all_, methods=["GET"]),
        Route("/provisionwatcher/name/{name}", by_name, methods=["GET"]),
        Route("/provisionwatcher/name/{name}", delete, methods=["DELETE"]),
        Route("/provisionwatcher/service/name/{name}", by_service, methods=["GET"]),
        Route("/provisionwatcher/profile/name/{name}", by_profile, methods=["GET"]),
    ]
