"""Structured logs (EDGEMETA_LOG_FORMAT=json), the access log (EDGEMETA_ACCESS_LOG) and
operations logged at DEBUG."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from edgemeta.bootstrap import Service, build
from edgemeta.logs import CORRELATION, JsonFormatter
from edgemeta.settings import Settings
from tests.support.api import Api


@pytest.fixture
async def api(tmp_path: Any) -> AsyncIterator[Api]:
    service: Service = await build(
        Settings(database_url=f"sqlite:///{tmp_path / 'logs.db'}", access_log=True),
        span_exporter=InMemorySpanExporter(),
    )
    transport = httpx.ASGITransport(app=service.app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://edgemeta") as client:
            yield Api(client, service)
    finally:
        await service.stop()


def test_a_json_line_has_the_fields_and_the_correlation_id() -> None:
    record = logging.LogRecord("edgemeta.x", logging.WARNING, __file__, 1, "a %s", ("b",), None)
    token = CORRELATION.set("cid-1")
    try:
        line = orjson.loads(JsonFormatter().format(record))
    finally:
        CORRELATION.reset(token)
    assert line["level"] == "WARNING" and line["logger"] == "edgemeta.x"
    assert line["message"] == "a b" and line["correlationId"] == "cid-1"
    assert line["time"].endswith("Z") and "traceId" not in line


async def test_access_log_operations_at_debug_and_trace_ids_in_json(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="edgemeta")
    lines: list[dict[str, Any]] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(orjson.loads(JsonFormatter().format(record)))

    handler = Collect()
    logging.getLogger("edgemeta").addHandler(handler)
    try:
        await api.add_service("ds")
        await api.add_profile("prof")
        r = await api.add_device("d1")
        assert r.json()[0]["statusCode"] == 201
        r = await api.client.get(
            "/api/v3/device/name/d1", headers={"X-Correlation-ID": "cid-access"}
        )
        assert r.status_code == 200
    finally:
        logging.getLogger("edgemeta").removeHandler(handler)
    access = [r.getMessage() for r in caplog.records if r.name == "edgemeta.access"]
    assert len(access) == 4
    assert access[-1].startswith("GET /api/v3/device/name/d1 200 ")
    assert "cid=cid-access" in access[-1]
    added = [ln for ln in lines if ln["message"] == "device 'd1' added to service 'ds'"]
    assert len(added) == 1 and added[0]["level"] == "DEBUG"
    # Logged inside the request's span: the line names its trace and its correlation id.
    assert len(added[0]["traceId"]) == 32 and len(added[0]["spanId"]) == 16
    assert added[0]["correlationId"]
