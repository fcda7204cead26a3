"""Moves: ``POST /device/reassign`` (seed options 2 and 2a), and the move history.

A reassign item is answered when its move has ended: 200 with the ``move`` (state
``assigned``), or the error that ended it with the ``move`` as far as it got (``failed``,
``rolledBack``). ``dryRun=true`` runs every check — the target exists and is unlocked, the
profile exists, the target's capacity, the expected revision, no move under way, and the new
service accepts the device — and changes nothing; the answer lists the problems (``checks``).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from edgemeta import documents as docs
from edgemeta.api.handlers import (
    ApiContext,
    ItemError,
    bind,
    correlation_id,
    path,
    run_batch,
)
from edgemeta.api.query import check_range, flag, list_query
from edgemeta.api.responses import base, ok, respond
from edgemeta.domain.moves import Move, MoveReason, StatePolicy
from edgemeta.ports import Page
from edgemeta.usecases import moves as uc


def _page(page: Page[Move]) -> Response:
    body = base(200)
    body["totalCount"] = page.total
    body["moves"] = [docs.move_doc(m) for m in page.items]
    return respond(200, body)


async def reassign(api: ApiContext, request: Request) -> Response:
    """``POST /device/reassign``."""
    deps = api.deps
    cid = correlation_id(request)
    dry = flag(request.query_params, "dryRun")

    async def one(item: docs.ReassignRequest) -> dict[str, Any]:
        r = item.reassign
        req = uc.MoveRequest(
            device_name=r.device_name,
            to_service=r.service_name,
            policy=StatePolicy(r.state_policy or "migrate"),
            reason=MoveReason.OPERATOR,
            expected_revision=r.expected_revision,
            requested_by=r.requested_by or "",
            note=r.note or "",
        )
        if dry:
            check = await uc.dry_run(deps, req, cid)
            error = check.error()
            if error is None:
                return {"message": "dry run: every check passed", "checks": []}
            raise ItemError(error, {"checks": check.messages})
        try:
            move = await uc.move_device(deps, req, cid)
        except uc.MoveError as exc:
            raise ItemError(exc, {"move": docs.move_doc(exc.move)}) from None
        return {"move": docs.move_doc(move)}

    return await run_batch(request, api, docs.ReassignRequest, one, 200)


async def by_id(api: ApiContext, request: Request) -> Response:
    """``GET /device/move/id/{id}``."""
    deps = api.deps
    return ok(move=docs.move_doc(await uc.get_move(deps, path(request, "id"))))


async def of_device(api: ApiContext, request: Request) -> Response:
    """``GET /device/name/{name}/moves``."""
    deps = api.deps
    q = list_query(request.query_params, api.max_result_count, with_labels=False)
    page = await uc.list_moves(deps, q, device=path(request, "name"))
    check_range(page.total, q)
    return _page(page)


async def of_service(api: ApiContext, request: Request) -> Response:
    """``GET /deviceservice/name/{name}/moves``."""
    deps = api.deps
    q = list_query(request.query_params, api.max_result_count, with_labels=False)
    page = await uc.list_moves(deps, q, service=path(request, "name"))
    check_range(page.total, q)
    return _page(page)


def routes(api: ApiContext) -> list[Route]:
    """The move routes."""
    return [
        Route("/device/reassign", bind(api, reassign), methods=["POST"]),
        Route("/device/move/id/{id}", bind(api, by_id), methods=["GET"]),
        Route("/device/name/{name}/moves", bind(api, of_device), methods=["GET"]),
        Route("/deviceservice/name/{name}/moves", bind(api, of_service), methods=["GET"]),
    ]
