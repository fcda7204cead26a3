"""GET /metrics after scripted work: device adds, a move, a rollback; the values moved as they
should, and the output parses with prometheus_client's own parser."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from edgemeta.bus.envelope import decode
from tests.api.world import moves_world
from tests.support import servers
from tests.support.api import Api, make_service
from tests.support.tcpproxy import TcpProxy


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def _get(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def _scrape(client: httpx.AsyncClient) -> dict[Any, float]:
    r = await client.get("/metrics")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    return _samples(r.text)


async def test_metrics_follow_adds_a_move_and_a_rollback(tmp_path: Any) -> None:
    async with moves_world("sqlite", tmp_path) as w:
        client = w.api.client
        before = await _scrape(client)
        assert _get(before, "edgemeta_bus_connected") == 1.0
        ds1 = await w.participant("ds1")
        await w.participant("ds2")
        for name in ("a", "b", "c"):
            r = await w.api.add_device(name, service="ds1", profile="wearable")
            assert r.json()[0]["statusCode"] == 201
        await w.settle("c", ["ds1"])
        assert (await w.reassign("a", "ds2"))["move"]["state"] == "assigned"
        await ds1.stop()  # confirms releases, but is gone: the next move rolls back
        result = await w.reassign("b", "ds2")
        assert result["move"]["state"] == "rolledBack"
        refused = await client.post(
            "/api/v3/registration",
            json={"apiVersion": "v3", "registration": {"registrationId": "x", "token": "bad"}},
        )
        assert refused.status_code == 401
        await w.api.service.relay.drain()
        after = await _scrape(client)

    adds = {"app": "core-metadata", "route": "/api/v3/device", "method": "POST"}
    assert _get(after, "edgemeta_http_requests_total", **adds, status="207") == 3
    assert _get(after, "edgemeta_http_request_duration_seconds_count", **adds) == 3
    by_name = {
        "app": "core-metadata",
        "route": "/api/v3/device/name/{name}",
        "method": "GET",
        "status": "404",
    }
    assert _get(after, "edgemeta_http_requests_total", **by_name) == 0  # templates, not paths
    assert _get(after, "edgemeta_devices", service="ds1") == 2
    assert _get(after, "edgemeta_devices", service="ds2") == 1
    assert _get(after, "edgemeta_moves_total", state="assigned", reason="operator") == 1
    assert _get(after, "edgemeta_moves_total", state="rolledBack", reason="operator") == 1
    assert _get(after, "edgemeta_move_rollbacks_total", reason="operator") == 1
    assert _get(after, "edgemeta_move_ack_timeouts_total") == 1
    assert _get(after, "edgemeta_moves_in_flight") == 0
    for step in ("accept", "release", "assign"):
        # accept: both moves; release and assign: the move that got that far
        want = 2 if step == "accept" else 1
        assert _get(after, "edgemeta_move_step_duration_seconds_count", step=step) == want
    published = _get(after, "edgemeta_events_published_total")
    assert published > _get(before, "edgemeta_events_published_total")
    assert _get(after, "edgemeta_relay_lag_seconds_count") == published
    assert _get(after, "edgemeta_outbox_backlog") == 0
    assert _get(after, "edgemeta_outbox_oldest_age_seconds") == 0
    assert (
        _get(after, "edgemeta_registrations_total", outcome="refused", reason="Unauthorized") == 1
    )


async def test_backlog_shows_events_the_relay_has_not_published(tmp_path: Any) -> None:
    service, _ = await make_service("sqlite", tmp_path)  # not started: nothing is relayed
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=service.app), base_url="http://t"
        ) as client:
            await Api(client, service).add_service("s")
            samples = await _scrape(client)
    finally:
        await service.stop()
    assert _get(samples, "edgemeta_outbox_backlog") == 1
    assert _get(samples, "edgemeta_outbox_oldest_age_seconds") > 0


async def test_metrics_off_serves_no_route(tmp_path: Any) -> None:
    service, _ = await make_service("sqlite", tmp_path, metrics=False)
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=service.app), base_url="http://t"
        ) as client:
            assert (await client.get("/metrics")).status_code == 404
    finally:
        await service.stop()


async def _until(condition: Any, seconds: float = 10.0) -> None:
    # The bus adapter has no event for "connection lost": look at its state, briefly.
    async with asyncio.timeout(seconds):
        while not condition():
            await asyncio.sleep(0.02)


@pytest.mark.mqtt
async def test_a_broker_outage_shows_in_bus_connected_reconnects_and_backlog(
    tmp_path: Any,
) -> None:
    servers.require(servers.MQTT_URL, "MQTT broker")
    host, port = servers.MQTT_URL.removeprefix("mqtt://").split(":")
    proxy = TcpProxy(host, int(port))
    await proxy.start()
    service, _ = await make_service(
        "sqlite",
        tmp_path,
        bus_url=f"mqtt://127.0.0.1:{proxy.port}",
        bus_prefix=servers.unique("metrics"),
    )
    await service.start()
    bus: Any = service.bus
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=service.app), base_url="http://t"
        ) as client:
            api = Api(client, service)
            up = await _scrape(client)
            assert _get(up, "edgemeta_bus_connected") == 1
            await proxy.stop()
            await _until(lambda: not bus.connected)
            await api.add_service("during-outage")
            down = await _scrape(client)
            assert _get(down, "edgemeta_bus_connected") == 0
            assert _get(down, "edgemeta_outbox_backlog") == 1
            await proxy.start()
            await _until(lambda: bus.connected)
            # The relay runs on the background thread (a file database and a real broker):
            # scrape until it has delivered what piled up.
            async with asyncio.timeout(15):
                while _get(back := await _scrape(client), "edgemeta_outbox_backlog") != 0:
                    await asyncio.sleep(0.05)
    finally:
        await service.stop()
        await proxy.stop()
    assert _get(back, "edgemeta_bus_connected") == 1
    assert _get(back, "edgemeta_bus_reconnects_total") == 1
    assert _get(back, "edgemeta_outbox_backlog") == 0
    assert _get(back, "edgemeta_events_published_total") >= 1


async def test_telemetry_publishes_edgex_metric_dtos_on_the_bus(tmp_path: Any) -> None:
    service, _ = await make_service("sqlite", tmp_path, telemetry_interval=0.05)
    sub = await service.bus.subscribe("edgex/telemetry/core-metadata/#")
    await service.start()
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=service.app), base_url="http://t"
        ) as client:
            await Api(client, service).add_service("s")
        seen: dict[str, dict[str, Any]] = {}
        async with asyncio.timeout(5):
            while not {
                "OutboxBacklog",
                "Devices",
                "OutboxOldestAgeSeconds",
                "EventsPublished",
            } <= set(seen):
                m = await sub.get()
                env = decode(m.payload)
                assert m.topic == f"edgex/telemetry/core-metadata/{env['payload']['name']}"
                seen[env["payload"]["name"]] = env["payload"]
    finally:
        await sub.close()
        await service.stop()
    backlog = seen["OutboxBacklog"]
    assert set(backlog) == {"apiVersion", "name", "fields", "tags", "timestamp"}
    assert backlog["apiVersion"] == "v3"
    # go-mod-bootstrap's reporter names: an integer gauge, a float gauge, a counter
    assert backlog["fields"][0]["name"] == "gauge-value"
    assert isinstance(backlog["fields"][0]["value"], int)
    assert {"name": "service", "value": "core-metadata"} in backlog["tags"]
    assert backlog["timestamp"] > 10**18  # nanoseconds
    assert seen["Devices"]["fields"] == [{"name": "gauge-value", "value": 0}]
    assert seen["OutboxOldestAgeSeconds"]["fields"][0]["name"] == "gaugeFloat64-value"
    assert isinstance(seen["OutboxOldestAgeSeconds"]["fields"][0]["value"], float)
    assert seen["EventsPublished"]["fields"][0]["name"] == "counter-count"
    assert isinstance(seen["EventsPublished"]["fields"][0]["value"], int)


async def test_telemetry_off_by_interval_zero(tmp_path: Any) -> None:
    service, _ = await make_service("sqlite", tmp_path, telemetry_interval=0)
    assert service.telemetry is None
    await service.stop()


async def test_a_metrics_port_of_its_own_serves_metrics_instead(tmp_path: Any) -> None:
    service, _ = await make_service("sqlite", tmp_path, metrics_port=59999)
    assert service.metrics_app is not None
    try:
        async with (
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=service.app), base_url="http://t"
            ) as main,
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=service.metrics_app), base_url="http://m"
            ) as own,
        ):
            assert (await main.get("/metrics")).status_code == 404
            await main.get("/api/v3/ping")
            samples = await _scrape(own)
    finally:
        await service.stop()
    ping = {"app": "core-metadata", "route": "/api/v3/ping", "method": "GET", "status": "200"}
    assert _get(samples, "edgemeta_http_requests_total", **ping) == 1


async def test_every_port_counts_its_requests_under_its_app(tmp_path: Any) -> None:
    """core-data, core-keeper and core-command have the middleware too: the same route on two
    ports is two series (``app``), and core-metadata's ``/metrics`` shows them all."""
    service, _ = await make_service("sqlite", tmp_path)
    apps = {
        "core-metadata": service.app,
        "core-data": service.data_app,
        "core-keeper": service.keeper_app,
        "core-command": service.command_app,
    }
    try:
        for name, app in apps.items():
            assert app is not None, name
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://t"
            ) as client:
                for _ in range({"core-metadata": 1, "core-data": 2}.get(name, 3)):
                    assert (await client.get("/api/v3/ping")).status_code == 200
                assert (await client.get("/no/such/route")).status_code == 404
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=service.command_app), base_url="http://t"
        ) as command:
            r = await command.get("/api/v3/device/name/absent/temperature")
            assert r.status_code == 404
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=service.app), base_url="http://t"
        ) as main:
            samples = await _scrape(main)
        assert service.telemetry is not None
        figures = await service.telemetry.figures()
    finally:
        await service.stop()
    # EdgeX telemetry is tagged service=core-metadata: its ping, its 404 and the scrape.
    assert figures["HttpRequests"] == 3
    pings = {"route": "/api/v3/ping", "method": "GET", "status": "200"}
    seen = {"core-metadata": 1, "core-data": 2, "core-keeper": 3, "core-command": 3}
    for name, n in seen.items():
        assert _get(samples, "edgemeta_http_requests_total", app=name, **pings) == n, name
        timed = {"app": name, "route": "/api/v3/ping", "method": "GET"}
        assert _get(samples, "edgemeta_http_request_duration_seconds_count", **timed) == n
        unmatched = {"app": name, "route": "unmatched", "method": "GET", "status": "404"}
        assert _get(samples, "edgemeta_http_requests_total", **unmatched) == 1, name
    command = {
        "app": "core-command",
        "route": "/api/v3/device/name/{name}/{command}",
        "method": "GET",
        "status": "404",
    }
    assert _get(samples, "edgemeta_http_requests_total", **command) == 1
    # Every request series names its app: none is left without the label.
    apps_seen = {
        dict(labels).get("app")
        for (metric, labels) in samples
        if metric == "edgemeta_http_requests_total"
    }
    assert apps_seen == set(seen)
