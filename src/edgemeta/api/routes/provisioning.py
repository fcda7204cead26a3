"""Provisioning routes: enrolments, registrations, operator reprovisioning, quarantine, and a
device's initial and current state. edgemeta's own API, in EdgeX's envelope and style."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from edgemeta import documents as docs
from edgemeta import provisioning_documents as pdocs
from edgemeta.api import convert, wire_provisioning
from edgemeta.api.body import decode_one, parse_json, read_body
from edgemeta.api.errors import status_of
from edgemeta.api.handlers import ApiContext, correlation_id, endpoint, path, run_batch
from edgemeta.api.query import check_range, flag, list_query, name_param
from edgemeta.api.responses import base, ok, respond
from edgemeta.domain.errors import EdgeMetaError
from edgemeta.usecases import enrollments as enr
from edgemeta.usecases import registration as reg
from edgemeta.usecases.registration import Outcome


def _outcome(o: Outcome) -> dict[str, Any]:
    out: dict[str, Any] = {"registration": pdocs.registration_doc(o.registration)}
    if o.device is not None:
        out["device"] = docs.device_doc(o.device)
    if o.move is not None:
        out["move"] = docs.move_doc(o.move)
    return out


def routes(api: ApiContext) -> list[Route]:
    """The provisioning routes."""
    deps = api.deps

    @endpoint
    async def add(request: Request) -> Response:
        async def one(item: wire_provisioning.AddEnrollmentRequest) -> dict[str, Any]:
            stored = await enr.add_enrollment(deps, convert.enrollment(item.enrollment))
            # The keys are given back once, here (generated ones are not known otherwise).
            return {"id": stored.id, "enrollment": pdocs.enrollment_doc(stored)}

        return await run_batch(request, api, wire_provisioning.AddEnrollmentRequest, one, 201)

    @endpoint
    async def update(request: Request) -> Response:
        async def one(item: wire_provisioning.UpdateEnrollmentRequest) -> dict[str, Any]:
            change = enr.EnrollmentChange(
                enrollment=convert.enrollment(item.enrollment),
                expected_revision=item.expected_revision,
            )
            stored = await enr.update_enrollment(deps, change)
            return {"enrollment": pdocs.enrollment_doc(stored, keys=False)}

        return await run_batch(request, api, wire_provisioning.UpdateEnrollmentRequest, one, 200)

    @endpoint
    async def all_(request: Request) -> Response:
        q = list_query(request.query_params, api.max_result_count, with_labels=False)
        page = await enr.list_enrollments(deps, q)
        check_range(page.total, q)
        body = base(200)
        body["totalCount"] = page.total
        body["enrollments"] = [pdocs.enrollment_doc(e, keys=False) for e in page.items]
        return respond(200, body)

    @endpoint
    async def by_name(request: Request) -> Response:
        e = await enr.get_enrollment(deps, path(request, "name"))
        return ok(enrollment=pdocs.enrollment_doc(e, keys=flag(request.query_params, "showKeys")))

    @endpoint
    async def delete(request: Request) -> Response:
        await enr.delete_enrollment(deps, path(request, "name"))
        return ok()

    @endpoint
    async def reprovision_all(request: Request) -> Response:
        results = await reg.reprovision_enrollment(
            deps, path(request, "name"), correlation_id(request)
        )
        items: list[dict[str, Any]] = []
        for rid, outcome in results:
            if isinstance(outcome, EdgeMetaError):
                item = base(status_of(outcome), message=outcome.message)
                item["registrationId"] = rid
            else:
                item = base(200)
                item["registrationId"] = rid
                item.update(_outcome(outcome))
            items.append(item)
        body = base(200)
        body["totalCount"] = len(items)
        body["results"] = items
        return respond(200, body)

    @endpoint
    async def register(request: Request) -> Response:
        data = parse_json(await read_body(request, api.max_body_bytes))
        req = decode_one(data, wire_provisioning.RegistrationRequest)
        outcome = await reg.register(
            deps, req.registration.token, convert.report(req.registration), correlation_id(request)
        )
        body = base(200, request_id=req.request_id or "")
        body.update(_outcome(outcome))
        return respond(200, body)

    @endpoint
    async def registrations(request: Request) -> Response:
        q = list_query(request.query_params, api.max_result_count, with_labels=False)
        enrollment = name_param(request.query_params, "enrollment") or None
        page = await reg.list_registrations(deps, q, enrollment=enrollment)
        check_range(page.total, q)
        body = base(200)
        body["totalCount"] = page.total
        body["registrations"] = [pdocs.registration_doc(r) for r in page.items]
        return respond(200, body)

    @endpoint
    async def registration(request: Request) -> Response:
        r = await reg.get_registration(deps, path(request, "id"))
        return ok(registration=pdocs.registration_doc(r))

    @endpoint
    async def reprovision_one(request: Request) -> Response:
        outcome = await reg.reprovision_device(deps, path(request, "id"), correlation_id(request))
        return ok(**_outcome(outcome))

    @endpoint
    async def quarantine(request: Request) -> Response:
        data = parse_json(await read_body(request, api.max_body_bytes))
        req = decode_one(data, wire_provisioning.QuarantineRequest)
        outcome = await reg.quarantine(
            deps,
            path(request, "id"),
            req.quarantine.service_name,
            req.quarantine.note or "",
            correlation_id(request),
        )
        return ok(**_outcome(outcome))

    @endpoint
    async def release(request: Request) -> Response:
        outcome = await reg.release_quarantine(deps, path(request, "id"), correlation_id(request))
        return ok(**_outcome(outcome))

    @endpoint
    async def state(request: Request) -> Response:
        initial, current = await reg.device_state(deps, path(request, "name"))
        return ok(
            initial=None if initial is None else docs.device_doc(initial),
            current=docs.device_doc(current),
        )

    return [
        Route("/enrollment", add, methods=["POST"]),
        Route("/enrollment", update, methods=["PATCH"]),
        Route("/enrollment/all", all_, methods=["GET"]),
        Route("/enrollment/name/{name}", by_name, methods=["GET"]),
        Route("/enrollment/name/{name}", delete, methods=["DELETE"]),
        Route("/enrollment/name/{name}/reprovision", reprovision_all, methods=["POST"]),
        Route("/registration", register, methods=["POST"]),
        Route("/registration/all", registrations, methods=["GET"]),
        Route("/registration/name/{id}", registration, methods=["GET"]),
        Route("/registration/name/{id}/reprovision", reprovision_one, methods=["POST"]),
        Route("/registration/name/{id}/quarantine", quarantine, methods=["POST"]),
        Route("/registration/name/{id}/release", release, methods=["POST"]),
        Route("/device/name/{name}/state", state, methods=["GET"]),
    ]
