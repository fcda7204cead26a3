"""Traces: one move is one trace across edgemeta and an edgemeta.sdk participant; an incoming
traceparent on HTTP becomes the parent of the request's span."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from edgemeta.bootstrap import build
from edgemeta.settings import Settings
from tests.api.world import World
from tests.support.api import Api


@pytest.fixture
async def traced(tmp_path: Any) -> AsyncIterator[tuple[World, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    service = await build(
        Settings(
            database_url=f"sqlite:///{tmp_path / 'traces.db'}",
            move_ack_timeout=1.0,
            move_release_deadline=0.1,
            validation_timeout=1.0,
            device_validation="auto",
        ),
        span_exporter=exporter,
    )
    await service.start()
    transport = httpx.ASGITransport(app=service.app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://edgemeta") as client:
            w = World(Api(client, service))
            await w.api.add_profile("wearable")
            yield w, exporter
            for p in w.participants.values():
                await p.stop()
    finally:
        await service.stop()


def participant_provider(name: str, exporter: InMemorySpanExporter) -> TracerProvider:
    """The device service's own provider (its own service.name), exporting to the same place."""
    provider = TracerProvider(resource=Resource.create({"service.name": name}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


def service_of(span: ReadableSpan) -> str:
    return str(span.resource.attributes["service.name"])


async def test_one_move_is_one_trace_across_edgemeta_and_the_participants(
    traced: tuple[World, InMemorySpanExporter],
) -> None:
    world, exporter = traced
    await world.participant("ds1", tracer_provider=participant_provider("ds1", exporter))
    await world.participant("ds2", tracer_provider=participant_provider("ds2", exporter))
    assert (await world.api.add_device("badge", service="ds1", profile="wearable")).status_code
    await world.settle("badge", ["ds1"])
    await world.api.service.relay.drain()
    exporter.clear()

    result = await world.reassign("badge", "ds2")
    assert result["statusCode"] == 200, result
    await world.settle("badge", ["ds2"])
    await world.api.service.relay.drain()

    spans = exporter.get_finished_spans()
    request = next(s for s in spans if s.name == "POST /api/v3/device/reassign")
    trace_id = request.context.trace_id
    in_trace = [s for s in spans if s.context.trace_id == trace_id]
    names = {(service_of(s), s.name) for s in in_trace}
    for expected in [
        ("core-metadata", "POST /api/v3/device/reassign"),
        ("core-metadata", "move"),
        ("core-metadata", "move.accept"),
        ("core-metadata", "move.commit"),
        ("core-metadata", "move.release"),
        ("core-metadata", "move.assign"),
        ("core-metadata", "db.transaction"),
        ("core-metadata", "publish device update"),
        ("ds2", "participant.validate"),
        ("ds1", "participant.event"),
        ("ds1", "participant.release"),
        ("ds2", "participant.event"),
    ]:
        assert expected in names, (expected, sorted(names))
    # Every span of the move's steps, on both sides, is in that one trace.
    step_names = {"move", "move.accept", "move.commit", "move.release", "move.assign"}
    assert {s.context.trace_id for s in spans if s.name in step_names} == {trace_id}
    assert {s.context.trace_id for s in spans if s.name.startswith("participant.")} == {trace_id}
    move = next(s for s in in_trace if s.name == "move")
    assert (
        move.attributes is not None
        and move.attributes["edgemeta.move.id"] == (result["move"]["id"])
    )
    # The old owner's release answers the publish of its release notice (commit A's event).
    by_id = {s.context.span_id: s for s in in_trace}
    release = next(s for s in in_trace if s.name == "participant.release")
    assert release.parent is not None
    event = by_id[release.parent.span_id]
    assert event.name == "participant.event" and event.parent is not None
    assert by_id[event.parent.span_id].name == "publish device update"


async def test_a_rollback_is_a_step_of_the_move_trace(
    traced: tuple[World, InMemorySpanExporter],
) -> None:
    world, exporter = traced
    ds1 = await world.participant("ds1")
    await world.participant("ds2", tracer_provider=participant_provider("ds2", exporter))
    await world.api.add_device("badge", service="ds1", profile="wearable")
    await world.settle("badge", ["ds1"])
    ds1.acks_release = False  # it stays silent: the move rolls back after the ack timeout
    exporter.clear()
    result = await world.reassign("badge", "ds2")
    assert result["statusCode"] == 503, result
    spans = exporter.get_finished_spans()
    rollback = next(s for s in spans if s.name == "move.rollback")
    move = next(s for s in spans if s.name == "move")
    assert rollback.context.trace_id == move.context.trace_id
    assert not move.status.is_ok


def _device(name: str, service: str) -> list[dict[str, Any]]:
    body = {
        "name": name,
        "serviceName": service,
        "profileName": "wearable",
        "adminState": "UNLOCKED",
        "operatingState": "UP",
        "protocols": {"other": {"Address": name}},
    }
    return [{"apiVersion": "v3", "device": body}]


async def test_a_single_add_is_its_server_span_and_its_publish(
    traced: tuple[World, InMemorySpanExporter],
) -> None:
    """The request is its one transaction: the server span times it, no db span repeats it
    (a move's transactions, steps among others, keep theirs: the test above)."""
    world, exporter = traced
    await world.participant("ds1")
    exporter.clear()
    r = await world.api.client.post("/api/v3/device", json=_device("badge", "ds1"))
    assert r.status_code == 207 and r.json()[0]["statusCode"] == 201, r.text
    await world.api.service.relay.drain()
    spans = exporter.get_finished_spans()
    request = next(s for s in spans if s.name == "POST /api/v3/device")
    names = sorted(s.name for s in spans if s.context.trace_id == request.context.trace_id)
    assert names == ["POST /api/v3/device", "publish device add"], names


async def test_an_unsampled_caller_records_nothing_and_its_decision_is_passed_on(
    traced: tuple[World, InMemorySpanExporter],
) -> None:
    world, exporter = traced
    await world.participant("ds1")
    sub = await world.api.service.bus.subscribe("edgex/system-events/core-metadata/device/#")
    exporter.clear()
    traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"
    r = await world.api.client.post(
        "/api/v3/device", json=_device("badge", "ds1"), headers={"traceparent": traceparent}
    )
    assert r.status_code == 207 and r.json()[0]["statusCode"] == 201, r.text
    await world.api.service.relay.drain()
    message = await anext(aiter(sub))
    # The event carries the caller's trace with its "not sampled" flag (and the id of the
    # request's unrecorded span), for a consumer to follow the same decision; no span of that
    # trace was recorded.
    sent = json.loads(message.payload)["traceparent"]
    assert sent.startswith(traceparent[:36]) and sent.endswith("-00"), sent
    assert not [
        s
        for s in exporter.get_finished_spans()
        if s.context.trace_id == 0x4BF92F3577B34DA6A3CE929D0E0E4736
    ]
    await sub.close()


async def test_an_incoming_traceparent_is_the_parent_of_the_request_span(
    traced: tuple[World, InMemorySpanExporter],
) -> None:
    world, exporter = traced
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    parent = "00f067aa0ba902b7"
    r = await world.api.client.get(
        "/api/v3/device/name/nothing",
        headers={"traceparent": f"00-{trace_id}-{parent}-01", "tracestate": "vendor=1"},
    )
    assert r.status_code == 404
    span = next(s for s in exporter.get_finished_spans() if s.name.startswith("GET "))
    assert span.name == "GET /api/v3/device/name/{name}"
    assert f"{span.context.trace_id:032x}" == trace_id
    assert span.parent is not None and f"{span.parent.span_id:016x}" == parent
    assert span.parent.is_remote
    assert span.attributes is not None
    assert span.attributes["http.response.status_code"] == 404
    assert span.attributes["http.route"] == "/api/v3/device/name/{name}"
    assert span.context.trace_state.get("vendor") == "1"


async def test_a_malformed_traceparent_starts_a_new_trace(
    traced: tuple[World, InMemorySpanExporter],
) -> None:
    world, exporter = traced
    r = await world.api.client.get("/api/v3/ping", headers={"traceparent": "00-zz-yy-01"})
    assert r.status_code == 200
    span = next(s for s in exporter.get_finished_spans() if s.name == "GET /api/v3/ping")
    assert span.parent is None and span.context.is_valid


def test_tracing_off_loads_no_opentelemetry(tmp_path: Any) -> None:
    """A service with tracing off (the default) builds and answers without importing it."""
    import subprocess
    import sys

    script = (
        "import asyncio, sys, httpx\n"
        "from edgemeta.bootstrap import build\n"
        "from edgemeta.settings import Settings\n"
        "async def main():\n"
        f"    s = await build(Settings(database_url='sqlite:///{tmp_path / 'off.db'}'))\n"
        "    t = httpx.ASGITransport(app=s.app)\n"
        "    async with httpx.AsyncClient(transport=t, base_url='http://x') as c:\n"
        "        assert (await c.get('/api/v3/ping')).status_code == 200\n"
        "    await s.stop()\n"
        "asyncio.run(main())\n"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]", out.stdout
