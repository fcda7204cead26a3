"""An edgemeta under test: the in-process API client, a wired service, a real HTTP server."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn

from edgemeta.bootstrap import Service, build
from edgemeta.settings import Settings
from tests.support import servers


@dataclass
class Api:
    """A client bound to a running service, with helpers for EdgeX requests."""

    client: httpx.AsyncClient
    service: Service

    async def post(self, path: str, items: list[dict[str, Any]], **params: str) -> httpx.Response:
        return await self.client.post(f"/api/v3{path}", json=items, params=params)

    async def patch(self, path: str, items: list[dict[str, Any]], **params: str) -> httpx.Response:
        return await self.client.patch(f"/api/v3{path}", json=items, params=params)

    async def get(self, path: str, **params: Any) -> httpx.Response:
        return await self.client.get(f"/api/v3{path}", params=params)

    async def delete(self, path: str) -> httpx.Response:
        return await self.client.delete(f"/api/v3{path}")

    async def add_service(self, name: str = "ds", **extra: Any) -> httpx.Response:
        body = {"name": name, "baseAddress": "http://127.0.0.1:59999", "adminState": "UNLOCKED"}
        body.update(extra)
        r = await self.post("/deviceservice", [{"apiVersion": "v3", "service": body}])
        assert r.status_code == 207, r.text
        return r

    async def add_profile(self, name: str = "prof", **extra: Any) -> httpx.Response:
        body: dict[str, Any] = {
            "name": name,
            "deviceResources": [
                {"name": "temp", "properties": {"valueType": "Float32", "readWrite": "R"}},
                {"name": "switch", "properties": {"valueType": "Bool", "readWrite": "RW"}},
            ],
            "deviceCommands": [
                {
                    "name": "all",
                    "readWrite": "R",
                    "resourceOperations": [
                        {"deviceResource": "temp"},
                        {"deviceResource": "switch"},
                    ],
                }
            ],
        }
        body.update(extra)
        r = await self.post("/deviceprofile", [{"apiVersion": "v3", "profile": body}])
        assert r.status_code == 207, r.text
        return r

    async def add_device(
        self, name: str = "dev", service: str = "ds", profile: str = "prof", **extra: Any
    ) -> httpx.Response:
        body: dict[str, Any] = {
            "name": name,
            "serviceName": service,
            "profileName": profile,
            "adminState": "UNLOCKED",
            "operatingState": "UP",
            "protocols": {"other": {"Address": name}},
        }
        body.update(extra)
        return await self.post("/device", [{"apiVersion": "v3", "device": body}])

    async def events(self) -> list[tuple[str, str, str, str]]:
        """Undelivered system events as (type, action, owner, profile), oldest first."""
        async with self.service.store.read() as tx:
            return [
                (e.type, e.action, e.owner, e.profile_name) for e in await tx.feed.pending(10_000)
            ]

    async def clear_events(self) -> None:
        """Mark every pending event delivered (so a test sees only what follows)."""
        async with self.service.store.read() as tx:
            pending = await tx.feed.pending(10_000)
        if pending:
            async with self.service.store.write() as tx:
                await tx.feed.mark_delivered([e.seq for e in pending], 1)


async def make_service(backend: str, tmp_path: Any, **settings: Any) -> tuple[Service, str | None]:
    """A built (not started) service on ``backend``; returns it and its PostgreSQL schema."""
    schema = None
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'api.db'}"
    else:
        servers.require(servers.POSTGRES_URL, "PostgreSQL")
        schema = servers.unique("api")
        url = f"{servers.POSTGRES_URL}?schema={schema}"
    settings.setdefault("device_validation", "never")
    return await build(Settings(database_url=url, **settings)), schema


class _TestServer(uvicorn.Server):
    """uvicorn in the test's event loop, leaving signal handling to pytest."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@contextlib.asynccontextmanager
async def serve_http(
    app: Any, *, tls: ssl.SSLContext | None = None, **config: Any
) -> AsyncIterator[str]:
    """Serve ``app`` over real HTTP on a free port (for streaming responses, which httpx's
    ASGI transport buffers whole); yields the base URL. ``tls``: HTTPS with that context;
    ``config``: more ``uvicorn.Config`` options."""
    from tests.e2e.procs import free_port

    port = free_port()
    server = _TestServer(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            lifespan="off",
            log_level="warning",
            ssl_context_factory=None if tls is None else (lambda _config, _default: tls),
            **config,
        )
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield f"{'http' if tls is None else 'https'}://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        server.force_exit = True  # don't wait for open event streams to end
        await task


BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]


async def stuck_move(service: Service, move_id: str, device: str = "dev") -> None:
    """Record a move of ``device`` from ds1 to ds2 that never goes on (nothing drives it):
    a command for the device waits for it and then gives up."""
    import time

    from edgemeta.domain.moves import Move, MoveReason, StatePolicy

    now = int(time.time() * 1000)
    move = Move(
        id=move_id,
        device_name=device,
        from_service="ds1",
        to_service="ds2",
        policy=StatePolicy.MIGRATE,
        reason=MoveReason.OPERATOR,
        created=now,
        modified=now,
    )
    async with service.store.write() as tx:
        await tx.moves.add(move)
