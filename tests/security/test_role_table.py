"""The role table is complete (every served route and every OpenAPI operation is in it), the
generated doc is up to date, and every operation times every role answers as the table says:
allowed -> neither 401 nor 403; refused -> 403 and nothing in the database changed."""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import yaml
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from edgemeta.api.app import (
    API_BASE,
    command_openapi_document,
    coredata_openapi_document,
    create_app,
    keeper_openapi_document,
    openapi_document,
    route_template,
)
from edgemeta.api.handlers import ApiContext
from edgemeta.bootstrap import Service
from edgemeta.security.roles import (
    COMMAND,
    DATA,
    KEEPER,
    METADATA,
    ROLES,
    TABLE,
    full_path,
    markdown,
    rule_for,
)
from tests.support import servers
from tests.support.api import make_service
from tests.support.auth import api_key, auth_app, bearer

ROOT = Path(__file__).resolve().parents[2]
DOC = yaml.safe_load(openapi_document())
KEEPER_DOC = yaml.safe_load(keeper_openapi_document())
COMMAND_DOC = yaml.safe_load(command_openapi_document())
DATA_DOC = yaml.safe_load(coredata_openapi_document())
METHODS = {"get", "put", "post", "patch", "delete"}


def _served(app: Any) -> set[tuple[str, str]]:
    starlette_app = app.app  # inside the correlation middleware
    return {
        (m, route_template(r.path).removeprefix(API_BASE))
        for r in starlette_app.routes
        if isinstance(r, Route)
        for m in r.methods or ()
        if m != "HEAD"
    }


def _documented(doc: dict[str, Any] = DOC) -> set[tuple[str, str]]:
    return {(m.upper(), p) for p, item in doc["paths"].items() for m in item if m in METHODS}


async def test_every_route_is_in_the_table_and_the_table_has_nothing_else(
    tmp_path: Any,
) -> None:
    async with auth_app("sqlite", tmp_path) as (service, _, _d):
        meta = _served(service.app)
        data = _served(service.data_app)
        keeper = _served(service.keeper_app)
        command = _served(service.command_app)
    listed_meta = {(m, t) for (api, m, t) in TABLE if api == METADATA}
    listed_data = {(m, t) for (api, m, t) in TABLE if api == DATA}
    listed_keeper = {(m, t) for (api, m, t) in TABLE if api == KEEPER}
    listed_command = {(m, t) for (api, m, t) in TABLE if api == COMMAND}
    assert meta == listed_meta
    assert data == listed_data
    assert keeper == listed_keeper
    assert command == listed_command
    assert _documented() == listed_meta
    assert _documented(KEEPER_DOC) == listed_keeper
    assert _documented(COMMAND_DOC) == listed_command
    assert _documented(DATA_DOC) == listed_data
    assert len(TABLE) == len(meta) + len(data) + len(keeper) + len(command)


def test_the_generated_doc_is_up_to_date() -> None:
    doc = (ROOT / "docs" / "security-roles.md").read_text()
    assert doc == markdown(), "run: edgemeta roles --markdown > docs/security-roles.md"


@pytest.mark.parametrize("auth", ["on", "off"])
async def test_a_route_missing_from_the_table_is_denied(auth: str, tmp_path: Any) -> None:
    rule = rule_for(METADATA, "GET", "/not/listed")
    assert not rule.open and not rule.allows(frozenset(ROLES))
    service, _ = await make_service("sqlite", tmp_path, auth=auth)
    reached: list[str] = []

    async def unlisted(request: Request) -> Response:
        reached.append("yes")
        return Response("reached")

    authenticator = service.authenticator
    app = create_app(
        ApiContext(deps=service.deps),
        extra_routes=[Route("/not/listed", unlisted, methods=["POST"])],
        authenticator=authenticator,
    )
    headers = {}
    if authenticator is not None:
        headers = bearer(await api_key(service, "admin"))
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t"
        ) as client:
            r = await client.post(f"{API_BASE}/not/listed", headers=headers)
    finally:
        await service.stop()
    assert r.status_code == 403 and "not in the role table" in r.json()["message"]
    assert reached == []


# -- the walk ------------------------------------------------------------------------------

_VALUES = {
    "id": str(uuid.uuid4()),
    "start": "0",
    "end": "1",
    "age": str(2**62),  # purging events older than ~146 years: nothing
    "serviceName": "walk-service",  # the service key's own (the ownership check passes)
}


def _url(template: str) -> str:
    path = template
    if template.endswith("/releasekey"):  # the service key's own (the ownership check passes)
        path = path.replace("{name}", _VALUES["serviceName"])
    while "{" in path:
        head, _, rest = path.partition("{")
        key, _, tail = rest.partition("}")
        path = head + _VALUES.get(key, f"walk-{key}") + tail
    return full_path(path)


def _request(method: str, template: str) -> dict[str, Any]:
    """A request that reaches the endpoint but is refused by it or finds nothing: the point
    is who gets past the gate, not what the operation does."""
    kw: dict[str, Any] = {"method": method, "url": _url(template)}
    if template == "/systemevent/stream":
        kw["params"] = {"since": "-1"}  # 400 before the stream starts
    if method in ("POST", "PUT", "PATCH"):
        kw["json"] = {} if template in ("/registration", "/secret") else []
        if "uploadfile" in template or template.startswith("/event/"):
            kw["json"] = None
            kw["content"] = b"not yaml: [\x00"
    return kw


async def _snapshot(service: Service, backend: str) -> list[Any]:
    """Every row of every table (the test database is small)."""
    url = service.settings.database_url
    if backend == "sqlite":
        conn = sqlite3.connect(url.removeprefix("sqlite:///"))
        try:
            tables = [
                r[0]
                for r in conn.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
                )
            ]
            return [(t, sorted(map(repr, conn.execute(f'SELECT * FROM "{t}"')))) for t in tables]
        finally:
            conn.close()
    schema = url.rpartition("schema=")[2]
    pg = await asyncpg.connect(servers.POSTGRES_URL)
    try:
        tables = [
            r[0]
            for r in await pg.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = $1 ORDER BY 1", schema
            )
        ]
        return [
            (t, sorted(repr(tuple(r)) for r in await pg.fetch(f'SELECT * FROM "{schema}"."{t}"')))
            for t in tables
        ]
    finally:
        await pg.close()


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
async def test_every_operation_times_every_role(backend: str, tmp_path: Any) -> None:
    async with auth_app(backend, tmp_path) as (service, meta, data):
        keys = {
            role: await api_key(
                service, role, service_name="walk-service" if role == "service" else ""
            )
            for role in ROLES
        }
        assert service.keeper_app is not None
        keeper = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=service.keeper_app), base_url="http://k"
        )
        assert service.command_app is not None
        command = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=service.command_app), base_url="http://c"
        )
        clients: dict[str, httpx.AsyncClient] = {
            METADATA: meta,
            DATA: data,
            KEEPER: keeper,
            COMMAND: command,
        }
        allowed_count = refused_count = 0
        for (api, method, template), rule in TABLE.items():
            client = clients[api]
            req = _request(method, template)
            refused = [r for r in ROLES if not rule.allows(frozenset({r}))]
            allowed = [r for r in ROLES if rule.allows(frozenset({r}))]
            before = await _snapshot(service, backend)
            for role in refused:
                r = await client.request(**req, headers=bearer(keys[role]))
                assert r.status_code == 403, (method, template, role, r.status_code, r.text)
                assert r.json()["statusCode"] == 403
                refused_count += 1
            if not rule.open:
                r = await client.request(**req)
                assert r.status_code == 401, (method, template, "anonymous", r.text)
            assert await _snapshot(service, backend) == before, (method, template)
            for role in allowed:
                r = await client.request(**req, headers=bearer(keys[role]))
                assert r.status_code not in (401, 403), (method, template, role, r.text)
                assert r.status_code < 500, (method, template, role, r.text)
                allowed_count += 1
        await keeper.aclose()
        await command.aclose()
        assert allowed_count > 0 and refused_count > 0
