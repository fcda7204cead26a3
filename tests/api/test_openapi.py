"""edgemeta's OpenAPI document: it names exactly the routes the app serves, is what
``/openapi.yaml`` serves, loads in schemathesis, and accepts the bodies the tests know are
valid (so the document cannot drift from the code without a test failing)."""

from __future__ import annotations

from typing import Any

import httpx
import jsonschema_rs
import pytest
import schemathesis
import yaml
from starlette.routing import Route

from edgemeta.api.app import API_BASE, openapi_document
from edgemeta.bootstrap import build
from edgemeta.settings import Settings
from tests.api.templates import ALL, Template

METHODS = {"get", "put", "post", "patch", "delete", "head", "options", "trace"}
DOC: dict[str, Any] = yaml.safe_load(openapi_document())


def documented_operations() -> set[tuple[str, str]]:
    """(METHOD, full path) for every operation in the document (a path's own ``servers``,
    as ``/metrics`` at the root has, replaces the document's base)."""
    base = DOC["servers"][0]["url"]
    return {
        (
            method.upper(),
            (item["servers"][0]["url"].rstrip("/") if "servers" in item else base) + path,
        )
        for path, item in DOC["paths"].items()
        for method in item
        if method in METHODS
    }


async def test_document_names_exactly_the_served_routes(tmp_path: Any) -> None:
    service = await build(
        Settings(database_url=f"sqlite:///{tmp_path / 't.db'}", device_validation="never")
    )
    try:
        starlette_app = service.app.app  # type: ignore[attr-defined]  # inside the middleware
        served = {
            (method, route.path)
            for route in starlette_app.routes
            if isinstance(route, Route)
            for method in route.methods or ()
            if method != "HEAD"  # Starlette adds HEAD to every GET
        }
    finally:
        await service.stop()
    assert DOC["servers"][0]["url"] == API_BASE
    assert documented_operations() == served


async def test_the_served_document_is_the_file(tmp_path: Any) -> None:
    service = await build(
        Settings(database_url=f"sqlite:///{tmp_path / 't.db'}", device_validation="never")
    )
    try:
        transport = httpx.ASGITransport(app=service.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            resp = await client.get(f"{API_BASE}/openapi.yaml")
    finally:
        await service.stop()
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("application/yaml")
    assert resp.content == openapi_document()


def test_document_loads_and_every_operation_is_well_formed() -> None:
    schema = schemathesis.openapi.from_dict(DOC)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == len(documented_operations())
    ids = [op.definition.raw["operationId"] for op in operations]
    assert len(set(ids)) == len(ids)
    for op in operations:
        responses = op.definition.raw["responses"]
        assert any(code.startswith("2") for code in responses) or op.path == "/secret", op.label
        if op.method.upper() != "GET" or "{" in op.path or "all" in op.path:
            # Everything that reads a body, a path or a query can be refused; a docs asset's
            # name is only a key into a fixed list (an unknown one is a 404, never a 400).
            assert "400" in responses or op.path in ("/ping", "/docs/{asset}"), op.label


def _validator(component: str) -> Any:
    return jsonschema_rs.Draft202012Validator(
        {"$ref": f"#/components/schemas/{component}", "components": DOC["components"]}
    )


@pytest.mark.parametrize("template", ALL, ids=lambda t: t.label)
def test_document_accepts_the_valid_bodies(template: Template) -> None:
    _validator(template.schema).validate(template.element())


@pytest.mark.parametrize(
    ("component", "value"),
    [
        ("Name", ""),
        ("Name", "   "),
        ("Name", "a\x00b"),
        ("Name", "a\nb"),
        ("Name", "x" * 257),
        ("Text", "a\x00"),
        ("Text", "x" * 16385),
        ("Uuid", "not-a-uuid"),
        ("Interval", "15"),
        ("AdminState", "locked"),
        ("Labels", ["a"] * 257),
        ("BaseAddress", "no scheme"),
    ],
)
def test_document_refuses_what_the_service_refuses(component: str, value: Any) -> None:
    assert not _validator(component).is_valid(value)


@pytest.mark.parametrize(
    ("component", "value"),
    [
        ("Name", "a/b #+$!.~_ \u00e9"),
        ("Name", "x" * 256),
        ("RefName", ""),
        ("Text", "line\nbreak"),
        ("Uuid", ""),
        ("Uuid", "6B1A6C3E-2F5E-4C1C-9A55-2A0C7A1C0B11"),
        ("Interval", "1h30m"),
        ("Interval", "250µs"),
        ("BaseAddress", "/local/path"),
    ],
)
def test_document_accepts_what_the_service_accepts(component: str, value: Any) -> None:
    assert _validator(component).is_valid(value)
