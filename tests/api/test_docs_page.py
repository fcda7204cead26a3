"""The browsable API page (``/api/v3/docs``) on every port that serves an OpenAPI document:
open to anonymous callers even with authentication on, every file it loads served by the same
port with its content type, and no URL in the page or its initializer that leaves the port
(no CDN: the page must work on an air-gapped node)."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
import pytest

from edgemeta.api.app import (
    API_BASE,
    command_openapi_document,
    coredata_openapi_document,
    keeper_openapi_document,
    openapi_document,
)
from tests.support.auth import auth_app

PAGE = f"{API_BASE}/docs"
REF = re.compile(rb"""(?:src|href)\s*=\s*["']([^"']+)["']""")
SPEC_URL = re.compile(rb"""url:\s*["']([^"']+)["']""")
EXTERNAL = re.compile(rb"""(?:https?:)?//[\w.-]+""")
TYPES = {".css": "text/css", ".js": "text/javascript", ".png": "image/png"}


async def _check_port(client: httpx.AsyncClient, document: bytes) -> None:
    page = await client.get(PAGE)  # anonymous: no credential
    assert page.status_code == 200, page.text
    assert page.headers["content-type"].startswith("text/html")
    assert not EXTERNAL.search(page.content), "the page names an outside URL"
    refs = [r.decode() for r in REF.findall(page.content)]
    assert any(r.endswith(".js") for r in refs) and any(r.endswith(".css") for r in refs)
    initializer = b""
    for ref in refs:
        url = urljoin(f"http://host{PAGE}", ref)
        assert urlsplit(url).netloc == "host", ref  # relative: served by this port
        assert urlsplit(url).path.startswith(f"{PAGE}/"), ref
        r = await client.get(urlsplit(url).path)
        assert r.status_code == 200, (ref, r.status_code)
        suffix = ref[ref.rindex(".") :]
        assert r.headers["content-type"].startswith(TYPES[suffix]), (ref, r.headers)
        assert len(r.content) > 0
        if ref.endswith("edgemeta-docs.js"):
            initializer = r.content
    # Our own script: it renders this port's document and turns the outside validator off.
    assert initializer, refs
    assert not EXTERNAL.search(initializer), "the initializer names an outside URL"
    assert b"validatorUrl: null" in initializer
    (spec,) = SPEC_URL.findall(initializer)
    spec_path = urlsplit(urljoin(f"http://host{PAGE}", spec.decode())).path
    assert spec_path == f"{API_BASE}/openapi.yaml"
    served = await client.get(spec_path)
    assert served.status_code == 200
    assert served.content == document
    # An asset name that is not on the list is a 404 in the EdgeX envelope, not a file read.
    for name in ("index.html", "..%2Fopenapi.yaml", "swagger-ui.js"):
        missing = await client.get(f"{PAGE}/{name}")
        assert missing.status_code == 404, name
        assert missing.json()["statusCode"] == 404


@pytest.mark.parametrize("port", ["core-metadata", "core-data", "core-keeper", "core-command"])
async def test_the_docs_page_and_its_files_are_served_locally(port: str, tmp_path: Any) -> None:
    async with auth_app("sqlite", tmp_path) as (service, meta, _data):
        if port == "core-metadata":
            await _check_port(meta, openapi_document())
            return
        app, document = {
            "core-data": (service.data_app, coredata_openapi_document()),
            "core-keeper": (service.keeper_app, keeper_openapi_document()),
            "core-command": (service.command_app, command_openapi_document()),
        }[port]
        assert app is not None
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://p"
        ) as client:
            await _check_port(client, document)
