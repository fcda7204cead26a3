"""Provisioning routes: enrolments, registrations, operator reprovisioning, quarantine, and a
device's initial and current state. edgemeta's own API, in EdgeX's envelope and style."""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from edgemeta import documents as docs
from edgemeta.api import authz
from edgemeta.api.body import decode_one, parse_json, read_body
from edgemeta.api.errors import status_of
from edgemeta.api.handlers import ApiContext, bind, correlation_id, path, run_batch
from edgemeta.api.query import check_range, flag, list_query, name_param
from edgemeta.api.responses import base, ok, respond
from edgemeta.domain.errors import (
    ContractInvalid,
    EdgeMetaError,
    Forbidden,
    NotFound,
    Unauthorized,
)
from edgemeta.security.roles import Role
from edgemeta.security.tls import client_certificate
from edgemeta.usecases import enrollments as enr
from edgemeta.usecases import registration as reg
from edgemeta.usecases.registration import Outcome

log = logging.getLogger("edgemeta.api.provisioning")


def _wait(raw: str | None, default: float) -> float:
    """Seconds a registration may take before it answers 202 (``wait``, 0 to 300)."""
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ContractInvalid(
            f"querystring wait must be a number of seconds, not {raw!r}"
        ) from None
    if not 0 <= value <= 300:
        raise ContractInvalid(f"querystring wait {value} is out of min 0 ~ max 300 range")
    return value


def _finished(task: asyncio.Task[Outcome]) -> None:
    _RUNNING.discard(task)
    if not task.cancelled() and task.exception() is not None:
        exc = task.exception()
        message = exc.message if isinstance(exc, EdgeMetaError) else repr(exc)
        log.warning("a registration answered 202 ended in an error: %s", message)


def _outcome(o: Outcome) -> dict[str, Any]:
    out: dict[str, Any] = {"registration": docs.registration_doc(o.registration)}
    if o.device is not None:
        out["device"] = docs.device_doc(o.device)
    if o.move is not None:
        out["move"] = docs.move_doc(o.move)
    if o.certificate:
        out["certificate"] = o.certificate
    return out


def if_match(request: Request) -> int | None:
    """The revision an ``If-Match`` header names (``3`` or ``"3"``), if any; 400 if it is not
    one revision."""
    raw = request.headers.get("if-match")
    if raw is None:
        return None
    value = raw.strip().removeprefix("W/").strip('"')
    if not value.isascii() or not value.isdigit() or not 1 <= int(value) <= 2**63 - 1:
        raise ContractInvalid(f'If-Match must name one revision (e.g. "3"), not {raw!r}')
    return int(value)


# Registrations still assigning when their answer was sent (202): kept so they finish.
_RUNNING: set[asyncio.Task[Outcome]] = set()


async def add(api: ApiContext, request: Request) -> Response:
    """``POST /enrollment``."""
    deps = api.deps

    async def one(item: docs.AddEnrollmentRequest) -> dict[str, Any]:
        stored = await enr.add_enrollment(deps, docs.enrollment_record(item.enrollment))
        # The keys are given back once, here (generated ones are not known otherwise).
        return {"id": stored.id, "enrollment": docs.enrollment_doc(stored)}

    return await run_batch(request, api, docs.AddEnrollmentRequest, one, 201)


async def update(api: ApiContext, request: Request) -> Response:
    """``PATCH /enrollment``."""
    deps = api.deps
    header = if_match(request)

    def check(item: docs.UpdateEnrollmentRequest) -> None:
        if header is not None and item.expected_revision not in (None, header):
            raise ContractInvalid(
                f"If-Match {header} and expectedRevision {item.expected_revision} disagree"
            )

    async def one(item: docs.UpdateEnrollmentRequest) -> dict[str, Any]:
        change = enr.EnrollmentChange(
            enrollment=docs.enrollment_record(item.enrollment),
            expected_revision=header if header is not None else item.expected_revision,
            keep_attestation=item.enrollment.attestation is None,
        )
        stored = await enr.update_enrollment(deps, change)
        return {"enrollment": docs.enrollment_doc(stored, keys=False)}

    return await run_batch(request, api, docs.UpdateEnrollmentRequest, one, 200, check=check)


async def all_(api: ApiContext, request: Request) -> Response:
    """``GET /enrollment/all``."""
    deps = api.deps
    q = list_query(request.query_params, api.max_result_count, with_labels=False)
    page = await enr.list_enrollments(deps, q)
    check_range(page.total, q)
    body = base(200)
    body["totalCount"] = page.total
    body["enrollments"] = [docs.enrollment_doc(e, keys=False) for e in page.items]
    return respond(200, body)


async def by_name(api: ApiContext, request: Request) -> Response:
    """``GET /enrollment/name/{name}``."""
    deps = api.deps
    show = flag(request.query_params, "showKeys")
    if show and not authz.principal(request).has(Role.PROVISIONING_ADMIN):
        raise Forbidden("showKeys=true needs the provisioning-admin role")
    e = await enr.get_enrollment(deps, path(request, "name"))
    return ok(enrollment=docs.enrollment_doc(e, keys=show))


async def delete(api: ApiContext, request: Request) -> Response:
    """``DELETE /enrollment/name/{name}``."""
    deps = api.deps
    await enr.delete_enrollment(deps, path(request, "name"))
    return ok()


async def reprovision_all(api: ApiContext, request: Request) -> Response:
    """``POST /enrollment/name/{name}/reprovision``."""
    deps = api.deps
    results = await reg.reprovision_enrollment(deps, path(request, "name"), correlation_id(request))
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


async def register(api: ApiContext, request: Request) -> Response:
    """``POST /registration``."""
    deps = api.deps
    data = parse_json(await read_body(request, api.max_body_bytes))
    req = decode_one(data, docs.RegistrationRequest)
    wait = _wait(request.query_params.get("wait"), api.registration_wait)
    report = docs.report_record(req.registration)
    proof = req.registration.attestation
    # Set once the device is proven and admitted: a bad token or certificate is refused
    # with its 401/403 even under ?wait=0, never answered 202 "assigning".
    attested = asyncio.Event()
    if proof is not None:
        how: reg.NonceProof | reg.TransportProof
        if proof.nonce is not None and proof.signature is not None:
            how = reg.NonceProof(proof.nonce, proof.signature)
        else:
            tls_cert = client_certificate(request.scope)
            if tls_cert is None:
                raise Unauthorized(
                    "an X.509 registration without nonce and signature must come over mutual"
                    " TLS with the device certificate (or GET /registration/challenge and sign)"
                )
            how = reg.TransportProof(tls_cert)
        work = reg.register_x509(
            deps,
            reg.X509Registration(
                report=report, chain=tuple(proof.chain), proof=how, csr=req.registration.csr or ""
            ),
            correlation_id(request),
            attested.set,
        )
    else:
        work = reg.register(
            deps, req.registration.token or "", report, correlation_id(request), attested.set
        )
    task = asyncio.create_task(work)
    proven = asyncio.create_task(attested.wait())
    try:
        # Attestation is short (a signature check, one write); only assignment may wait.
        await asyncio.wait({task, proven}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        proven.cancel()
    done, _ = await asyncio.wait({task}, timeout=wait)
    if not done:
        # Still assigning (a move waits on device services): answer with the record to
        # poll, and let the move finish on its own.
        _RUNNING.add(task)
        task.add_done_callback(_finished)
        rid = report.registration_id
        try:
            doc = docs.registration_doc(await reg.get_registration(deps, rid))
        except NotFound:  # nothing decided yet (e.g. a slow allocation webhook)
            doc = {"registrationId": rid, "status": "unassigned"}
        body = base(202, request_id=req.request_id or "")
        body["registration"] = doc
        body["operation"] = {
            "status": "assigning",
            "poll": f"/api/v3/registration/name/{quote(report.registration_id, safe='')}",
        }
        return respond(202, body)
    outcome = task.result()
    body = base(200, request_id=req.request_id or "")
    body.update(_outcome(outcome))
    return respond(200, body)


async def challenge(api: ApiContext, request: Request) -> Response:
    """``GET /registration/challenge``: a single-use nonce for an X.509 registration."""
    nonce, expiry = await reg.new_challenge(api.deps)
    return ok(nonce=nonce, expiry=expiry)


async def registrations(api: ApiContext, request: Request) -> Response:
    """``GET /registration/all``."""
    deps = api.deps
    q = list_query(request.query_params, api.max_result_count, with_labels=False)
    enrollment = name_param(request.query_params, "enrollment") or None
    page = await reg.list_registrations(deps, q, enrollment=enrollment)
    check_range(page.total, q)
    body = base(200)
    body["totalCount"] = page.total
    body["registrations"] = [docs.registration_doc(r) for r in page.items]
    return respond(200, body)


async def registration(api: ApiContext, request: Request) -> Response:
    """``GET /registration/name/{id}``."""
    deps = api.deps
    r = await reg.get_registration(deps, path(request, "id"))
    return ok(registration=docs.registration_doc(r))


async def reprovision_one(api: ApiContext, request: Request) -> Response:
    """``POST /registration/name/{id}/reprovision``."""
    deps = api.deps
    outcome = await reg.reprovision_device(deps, path(request, "id"), correlation_id(request))
    return ok(**_outcome(outcome))


async def quarantine(api: ApiContext, request: Request) -> Response:
    """``POST /registration/name/{id}/quarantine``."""
    deps = api.deps
    data = parse_json(await read_body(request, api.max_body_bytes))
    req = decode_one(data, docs.QuarantineRequest)
    outcome = await reg.quarantine(
        deps,
        path(request, "id"),
        req.quarantine.service_name,
        req.quarantine.note or "",
        correlation_id(request),
        require_reissue=bool(req.quarantine.require_reissue),
    )
    return ok(**_outcome(outcome))


async def release(api: ApiContext, request: Request) -> Response:
    """``POST /registration/name/{id}/release``."""
    deps = api.deps
    outcome = await reg.release_quarantine(deps, path(request, "id"), correlation_id(request))
    return ok(**_outcome(outcome))


async def state(api: ApiContext, request: Request) -> Response:
    """``GET /device/name/{name}/state``."""
    deps = api.deps
    initial, current = await reg.device_state(deps, path(request, "name"))
    return ok(
        initial=None if initial is None else docs.device_doc(initial),
        current=docs.device_doc(current),
    )


def routes(api: ApiContext) -> list[Route]:
    """The provisioning routes."""
    return [
        Route("/enrollment", bind(api, add), methods=["POST"]),
        Route("/enrollment", bind(api, update), methods=["PATCH"]),
        Route("/enrollment/all", bind(api, all_), methods=["GET"]),
        Route("/enrollment/name/{name}", bind(api, by_name), methods=["GET"]),
        Route("/enrollment/name/{name}", bind(api, delete), methods=["DELETE"]),
        Route("/enrollment/name/{name}/reprovision", bind(api, reprovision_all), methods=["POST"]),
        Route("/registration", bind(api, register), methods=["POST"]),
        Route("/registration/challenge", bind(api, challenge), methods=["GET"]),
        Route("/registration/all", bind(api, registrations), methods=["GET"]),
        Route("/registration/name/{id}", bind(api, registration), methods=["GET"]),
        Route("/registration/name/{id}/reprovision", bind(api, reprovision_one), methods=["POST"]),
        Route("/registration/name/{id}/quarantine", bind(api, quarantine), methods=["POST"]),
        Route("/registration/name/{id}/release", bind(api, release), methods=["POST"]),
        Route("/device/name/{name}/state", bind(api, state), methods=["GET"]),
    ]
