"""Security test helpers: apps with authentication on, API keys, the bearer header."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx

from edgemeta.bootstrap import Service
from edgemeta.usecases.apikeys import create_key
from tests.security.issuer import AUDIENCE, ISSUER, Issuer
from tests.support.api import make_service
from tests.support.schema import drop_schema


@contextlib.asynccontextmanager
async def auth_app(
    backend: str, tmp_path: Any, issuer: Issuer | None = None, **settings: Any
) -> AsyncIterator[tuple[Service, httpx.AsyncClient, httpx.AsyncClient]]:
    """A service with authentication on (JWTs from ``issuer`` if given), and in-process
    clients of its core-metadata and core-data apps."""
    settings.setdefault("auth", "on")
    if issuer is not None:
        settings.setdefault("auth_jwks_url", issuer.jwks_url)
        settings.setdefault("auth_issuer", ISSUER)
        settings.setdefault("auth_audience", AUDIENCE)
    service, schema = await make_service(backend, tmp_path, **settings)
    assert service.data_app is not None
    meta = httpx.AsyncClient(transport=httpx.ASGITransport(app=service.app), base_url="http://m")
    data = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=service.data_app), base_url="http://d"
    )
    try:
        yield service, meta, data
    finally:
        await meta.aclose()
        await data.aclose()
        await service.stop()
        if schema:
            await drop_schema(schema)


async def api_key(service: Service, *roles: str, service_name: str = "", **kw: Any) -> str:
    """A new API key on ``service``'s store."""
    key, _ = await create_key(
        service.store,
        list(roles),
        lifetime_s=kw.pop("lifetime_s", 3600),
        service=service_name,
        **kw,
    )
    return key


def bearer(credential: str) -> dict[str, str]:
    """The Authorization header for a credential."""
    return {"Authorization": f"Bearer {credential}"}
