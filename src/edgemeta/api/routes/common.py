"""ping, version, health (liveness and readiness, see :mod:`edgemeta.api.health`) and config,
which every service edgemeta serves answers alike (:func:`service_routes`), and core-metadata's
units of measure and secret."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Annotated, Any

from pydantic import Field, StringConstraints
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from edgemeta import version_body
from edgemeta.api.body import decode_one, parse_json, read_body
from edgemeta.api.handlers import ApiContext, endpoint
from edgemeta.api.health import Readiness, liveness
from edgemeta.api.responses import base, respond
from edgemeta.documents import API_VERSION, TEXT_MAX, Envelope, Name, Wire
from edgemeta.domain.errors import Unsupported
from edgemeta.ports import Store
from edgemeta.usecases.keeper import writable_document

log = logging.getLogger("edgemeta.api")

SERVICE_NAME = "core-metadata"


class SecretDataDTO(Wire):
    """SecretDataKeyValue."""

    key: Name
    value: Annotated[str, StringConstraints(max_length=TEXT_MAX)]


class SecretRequest(Envelope):
    """SecretRequest."""

    secret_name: Name
    secret_data: Annotated[list[SecretDataDTO], Field(min_length=1, max_length=256)]


def unix_date() -> str:
    """Now, in Go's ``time.UnixDate`` layout (what EdgeX's ping returns)."""
    return time.strftime("%a %b %e %H:%M:%S UTC %Y", time.gmtime())


async def store_health(store: Store, service_name: str) -> Response:
    """200 when the store answers a query, else 503 (no credential needed: says nothing else)."""
    try:
        async with store.read() as tx:
            await tx.services.get("health-check")
    except Exception as exc:
        log.warning("health check: the store does not answer: %s", exc)
        return respond(
            503, {**base(503, message="the store does not answer"), "serviceName": service_name}
        )
    return respond(200, {**base(200), "serviceName": service_name, "store": "ok"})


def service_routes(
    service_name: str,
    *,
    store: Store | None = None,
    config: Callable[[], dict[str, Any]] | None = None,
    readiness: Readiness | None = None,
) -> list[Route]:
    """``/ping``, ``/version`` and ``/health/live`` of ``service_name``; ``/health`` and
    ``/health/ready`` when it has a store (or ``readiness``: its checks, with the bus);
    ``/config`` when it has a configuration; in EdgeX's shapes (one place for every port)."""
    version_answer = version_body(service_name)

    async def ping(request: Request) -> Response:
        return respond(
            200, {"apiVersion": API_VERSION, "timestamp": unix_date(), "serviceName": service_name}
        )

    async def version(request: Request) -> Response:
        return respond(200, version_answer)

    async def live(request: Request) -> Response:
        return respond(200, {**liveness(), "serviceName": service_name})

    found = [Route("/ping", ping, methods=["GET"]), Route("/health/live", live, methods=["GET"])]
    if readiness is None and store is not None:
        readiness = Readiness(store)
    if readiness is not None:
        checks = readiness
        checked = checks.store

        async def health(request: Request) -> Response:
            return await store_health(checked, service_name)

        async def ready(request: Request) -> Response:
            status, body = await checks.check()
            return respond(status, {**body, "serviceName": service_name})

        found.append(Route("/health", health, methods=["GET"]))
        found.append(Route("/health/ready", ready, methods=["GET"]))
    found.append(Route("/version", version, methods=["GET"]))
    if config is not None:
        current = config

        async def config_route(request: Request) -> Response:
            return respond(
                200, {"apiVersion": API_VERSION, "config": current(), "serviceName": service_name}
            )

        found.append(Route("/config", config_route, methods=["GET"]))
    return found


def routes(api: ApiContext) -> list[Route]:
    """core-metadata's common routes."""

    def config() -> dict[str, Any]:
        # The writable settings as they are now (the core-keeper API changes them).
        policy = api.deps.policy
        live = dict(api.config)
        live["Writable"] = writable_document(policy)
        if "Service" in live:
            live["Service"] = {**live["Service"], "MaxResultCount": policy.max_result_count}
        return live

    async def uom(request: Request) -> Response:
        if "yaml" in request.headers.get("accept", ""):
            return Response(api.uom_yaml, media_type="application/x-yaml")
        return respond(200, {"apiVersion": API_VERSION, "statusCode": 200, "uom": api.uom})

    @endpoint
    async def secret(request: Request) -> Response:
        body = parse_json(await read_body(request, api.max_body_bytes))
        decode_one(body, SecretRequest)
        raise Unsupported(
            "storing secrets is not supported: edgemeta has no secret store "
            "(EdgeX in insecure mode refuses this too)"
        )

    return [
        *service_routes(SERVICE_NAME, store=api.deps.store, config=config, readiness=api.readiness),
        Route("/uom", uom, methods=["GET"]),
        Route("/secret", secret, methods=["POST"]),
    ]
