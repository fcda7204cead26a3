"""Broker credentials and TLS against real private brokers the tests start themselves: a
Mosquitto and a nats-server with a password and a TLS listener signed by the test's own CA.

Right credentials and a trusted CA connect; a wrong password, no credentials and an untrusted
CA are refused at once with a message that says what to check; a device moves end to end
over each secured broker; ``edgemeta serve`` refuses to start against a broker that refuses
it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from edgemeta.bus.mqtt import MqttBus
from edgemeta.bus.nats import NatsBus
from edgemeta.bus.security import BrokerRefused, BusSecurity
from edgemeta.ports import Bus
from edgemeta.sdk import DeviceServiceParticipant
from tests.e2e import procs
from tests.support.api import Api, make_service
from tests.support.bushelp import recv
from tests.support.data import make_event
from tests.support.securebrokers import (
    PASSWORD,
    USER,
    SecureBroker,
    nats_password_only,
    secure_broker,
)

KINDS = [pytest.param("mqtt", marks=pytest.mark.mqtt), pytest.param("nats", marks=pytest.mark.nats)]


@pytest.fixture(scope="module", params=KINDS)
def broker(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SecureBroker]:
    """A private secured broker of each kind, shared by the module's tests."""
    with secure_broker(request.param, tmp_path_factory.mktemp(f"secure-{request.param}")) as b:
        yield b


def make_bus(broker: SecureBroker, url: str | None = None, **security: Any) -> Bus:
    """A bus to ``broker`` (TLS URL by default) with quick timeouts."""
    sec = BusSecurity(**security) if security else None
    target = url or broker.url()
    if broker.kind == "mqtt":
        return MqttBus(target, security=sec, connect_timeout=5, timeout=2)
    return NatsBus(target, security=sec, connect_timeout=5, timeout=2)


def good(broker: SecureBroker, **extra: Any) -> dict[str, Any]:
    return {"username": USER, "password": PASSWORD, "ca_file": broker.pki.ca, **extra}


async def roundtrip(bus: Bus, topic: str = "edgemeta-test/secure/ping") -> None:
    """Publish and receive one message: the connection really works."""
    sub = await bus.subscribe(topic)
    try:
        await bus.publish(topic, b"hello")
        assert (await recv(sub)).payload == b"hello"
    finally:
        await sub.close()


async def refused(bus: Bus) -> str:
    """Start ``bus`` expecting a refusal; its message. Must come well before the timeout."""
    began = time.monotonic()
    with pytest.raises(BrokerRefused) as info:
        await bus.start()
    await bus.close()
    assert time.monotonic() - began < 4, "a refusal must not wait out the connect timeout"
    return info.value.message


async def test_right_credentials_and_trusted_ca_connect(broker: SecureBroker) -> None:
    bus = make_bus(broker, **good(broker))
    await bus.start()
    try:
        assert bus.connected
        await roundtrip(bus)
    finally:
        await bus.close()


async def test_credentials_in_the_url_work_too(broker: SecureBroker) -> None:
    bus = make_bus(broker, broker.url(credentials=f"{USER}:{PASSWORD}@"), ca_file=broker.pki.ca)
    await bus.start()
    try:
        await roundtrip(bus)
    finally:
        await bus.close()


async def test_wrong_password_is_refused_with_what_to_check(broker: SecureBroker) -> None:
    message = await refused(make_bus(broker, **good(broker, password="wrong")))
    assert "EDGEMETA_BUS_PASSWORD" in message and "EDGEMETA_BUS_USERNAME" in message
    assert "wrong" not in message  # the password never appears in a message
    assert f"localhost:{broker.tls_port}" in message


async def test_anonymous_is_refused(broker: SecureBroker) -> None:
    message = await refused(make_bus(broker, ca_file=broker.pki.ca))
    assert "refused the connection" in message and "EDGEMETA_BUS_USERNAME" in message


async def test_untrusted_ca_is_refused(broker: SecureBroker) -> None:
    message = await refused(make_bus(broker, **good(broker, ca_file=broker.pki.rogue_ca)))
    assert "does not trust" in message and "EDGEMETA_BUS_CA_FILE" in message


async def test_system_trust_store_does_not_trust_a_private_ca(broker: SecureBroker) -> None:
    # TLS by the URL scheme alone: verified against the system's CAs, which do not know ours.
    message = await refused(make_bus(broker, username=USER, password=PASSWORD))
    assert "EDGEMETA_BUS_CA_FILE" in message


@pytest.mark.mqtt
async def test_mqtt_password_without_tls_on_the_plain_listener(tmp_path: Path) -> None:
    with secure_broker("mqtt", tmp_path) as b:
        bus = make_bus(b, b.url(tls=False), username=USER, password=PASSWORD)
        await bus.start()
        try:
            await roundtrip(bus)
        finally:
            await bus.close()
        message = await refused(make_bus(b, b.url(tls=False), username=USER, password="nope"))
        assert "bad user name or password" in message or "not authorised" in message


@pytest.mark.nats
async def test_nats_tls_wanted_but_server_plain_is_refused_before_credentials(
    tmp_path: Path,
) -> None:
    with nats_password_only(tmp_path) as port:
        plain = NatsBus(f"nats://127.0.0.1:{port}", security=BusSecurity(USER, PASSWORD))
        await plain.start()
        await plain.close()
        message = await refused(
            NatsBus(
                f"nats://127.0.0.1:{port}",
                security=BusSecurity(USER, PASSWORD, tls=True),
                connect_timeout=5,
            )
        )
        assert "does not require tls" in message


@pytest.mark.parametrize("kind", KINDS)
async def test_client_certificate(kind: str, tmp_path: Path) -> None:
    with secure_broker(kind, tmp_path, client_certs=True) as b:
        with_cert = good(b, cert_file=b.pki.client_cert, key_file=b.pki.client_key)
        bus = make_bus(b, **with_cert)
        await bus.start()
        try:
            await roundtrip(bus)
        finally:
            await bus.close()
        # Without one, the broker ends the handshake (NATS) or closes the connection right
        # after it (Mosquitto, TLS 1.3): refused, with the settings to check.
        message = await refused(make_bus(b, **good(b)))
        assert "EDGEMETA_BUS_CERT_FILE" in message and "EDGEMETA_BUS_KEY_FILE" in message


@pytest.mark.parametrize("kind", KINDS)
async def test_outage_after_start_still_reconnects(kind: str, tmp_path: Path) -> None:
    with secure_broker(kind, tmp_path) as b:
        bus = make_bus(b, **good(b))
        if isinstance(bus, MqttBus):
            bus.reconnect_max = 0.2
        else:
            bus.reconnect_time_wait = 0.2
        await bus.start()
        try:
            b.stop()
            await asyncio.sleep(0.5)
            b.start()
            async with asyncio.timeout(15):
                while not bus.connected or getattr(bus, "reconnects", 0) < 1:
                    await asyncio.sleep(0.05)
            await roundtrip(bus, "edgemeta-test/secure/after-outage")
        finally:
            await bus.close()


# -- a device move end to end over each secured broker ---------------------------------------


async def test_a_device_moves_over_the_secured_broker(broker: SecureBroker, tmp_path: Path) -> None:
    # edgemeta reads its password from a file; the device services (SDK participants)
    # connect to the broker themselves with the same options as constructor arguments.
    password_file = tmp_path / "bus-password"
    password_file.write_text(PASSWORD + "\n")
    service, _ = await make_service(
        "sqlite",
        tmp_path,
        bus_url=broker.url(),
        bus_username=USER,
        bus_password_file=password_file,
        bus_ca_file=broker.pki.ca,
        move_ack_timeout=3.0,
        move_release_deadline=0.1,
        validation_timeout=3.0,
        device_validation="auto",
    )
    await service.start()
    participants: list[DeviceServiceParticipant] = []
    try:
        assert service.bus.connected
        transport = httpx.ASGITransport(app=service.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://edgemeta") as client:
            api = Api(client, service)
            await api.add_profile("wearable")
            security = BusSecurity(USER, PASSWORD, ca_file=broker.pki.ca)
            for name in ("ds1", "ds2"):
                p = DeviceServiceParticipant(
                    name,
                    api_url="http://edgemeta",
                    bus=broker.url(),
                    bus_security=security,
                    http=client,
                )
                await p.start()
                participants.append(p)
            ds1, ds2 = participants
            r = await api.add_device("badge", service="ds1", profile="wearable")
            assert r.json()[0]["statusCode"] == 201, r.text
            await until(lambda: "badge" in ds1.serving)
            body = {"deviceName": "badge", "serviceName": "ds2"}
            r = await api.post("/device/reassign", [{"apiVersion": "v3", "reassign": body}])
            result = r.json()[0]
            assert result["statusCode"] == 200, result
            steps = {s["step"]: s["outcome"] for s in result["move"]["steps"]}
            # The old owner's release confirmation came back over the secured broker.
            assert steps["release"] == "confirmed", result
            await until(lambda: "badge" in ds2.serving and "badge" not in ds1.serving)
            assert ds1.released == ["badge"]
    finally:
        for p in participants:
            await p.stop()
        await service.stop()


async def until(condition: Any, within: float = 10.0) -> None:
    """Wait until ``condition()`` holds."""
    async with asyncio.timeout(within):
        while not condition():
            await asyncio.sleep(0.02)


# -- edgemeta serve ---------------------------------------------------------------------------


def test_serve_refuses_to_start_against_a_broker_that_refuses_it(
    broker: SecureBroker, tmp_path: Path
) -> None:
    env = {
        "EDGEMETA_BUS_URL": broker.url(),
        "EDGEMETA_BUS_USERNAME": USER,
        "EDGEMETA_BUS_PASSWORD": "not-the-password",
        "EDGEMETA_BUS_CA_FILE": str(broker.pki.ca),
    }
    proc = procs.start(tmp_path, env=env)
    try:
        code = proc.proc.wait(30)
    finally:
        proc.stop()
    log = proc.log()
    assert code == 2, log
    assert "edgemeta: cannot start:" in log and "EDGEMETA_BUS_PASSWORD" in log, log
    assert "Traceback" not in log and "not-the-password" not in log, log

    env.update(EDGEMETA_BUS_PASSWORD=PASSWORD, EDGEMETA_BUS_CA_FILE=str(broker.pki.rogue_ca))
    proc = procs.start(tmp_path, env=env)
    try:
        code = proc.proc.wait(30)
    finally:
        proc.stop()
    assert code == 2 and "EDGEMETA_BUS_CA_FILE" in proc.log(), proc.log()


def test_serve_with_url_credentials_redacts_them_everywhere(
    broker: SecureBroker, tmp_path: Path
) -> None:
    url = broker.url(credentials=f"{USER}:{PASSWORD}@")
    proc = procs.start(
        tmp_path, env={"EDGEMETA_BUS_URL": url, "EDGEMETA_BUS_CA_FILE": str(broker.pki.ca)}
    )
    try:
        proc.wait_ready()
        config = httpx.get(f"{proc.url}/config", timeout=5).json()
        bus = config["config"]["MessageBus"] if "config" in config else config["MessageBus"]
        assert bus["Url"] == broker.url(credentials=f"{USER}:***@")
        assert bus["Security"]["Tls"] is True
        assert PASSWORD not in str(config)
    finally:
        proc.stop()
    assert PASSWORD not in proc.log()
    assert f"localhost:{broker.tls_port}" in proc.log()  # the startup line names the broker


# -- core-data's ingest over the secured broker ------------------------------------------------


async def test_core_data_ingest_uses_the_same_credentials(
    broker: SecureBroker, tmp_path: Path
) -> None:
    # On MQTT the ingest has a connection (a persistent session) of its own: it must carry
    # the same credentials and TLS as the service's bus, or events would never arrive.
    service, _ = await make_service(
        "sqlite",
        tmp_path,
        bus_url=broker.url(),
        bus_username=USER,
        bus_password=PASSWORD,
        bus_ca_file=broker.pki.ca,
        data_client_id=f"ingest-{tmp_path.name[-20:]}",
        # The ingest on this test's loop, so that its counters and readiness can be awaited
        # here; on the background thread it is built from the same settings (bootstrap).
        background_thread=False,
    )
    await service.start()
    publisher = make_bus(broker, **good(broker))
    try:
        assert service.ingest is not None
        async with asyncio.timeout(10):
            await service.ingest.ready.wait()
        transport = httpx.ASGITransport(app=service.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://edgemeta") as client:
            api = Api(client, service)
            await api.add_service("ds")
            await api.add_profile("prof")
            assert (await api.add_device("dev")).json()[0]["statusCode"] == 201
        await publisher.start()
        request = {"apiVersion": "v3", "event": make_event()}
        message = {"apiVersion": "v3", "payload": request, "contentType": "application/json"}
        await publisher.publish("edgex/events/device/ds/prof/dev/temp", orjson.dumps(message))
        await until(lambda: service.ingest is not None and service.ingest.stored == 1)
    finally:
        await publisher.close()
        await service.stop()


# -- per-service ACLs (the Mosquitto example in docs/security.md) ------------------------------


@pytest.mark.mqtt
async def test_mosquitto_acl_from_the_docs_keeps_a_service_to_its_own_topics(
    tmp_path: Path,
) -> None:
    acl = """user edgemeta
topic readwrite edgex/#

pattern read  edgex/system-events/core-metadata/+/+/%u/#
pattern read  edgex/%u/validate/device
pattern read  edgex/device/command/request/%u/#
pattern write edgex/response/%u/#
pattern write edgex/events/device/%u/#
"""
    users = {"edgemeta": "core-pass", "ds1": "ds1-pass", "ds2": "ds2-pass"}
    with secure_broker("mqtt", tmp_path, users=users, acl=acl) as b:

        async def bus(user: str) -> Bus:
            made = make_bus(b, username=user, password=users[user], ca_file=b.pki.ca)
            await made.start()
            return made

        core, ds1, ds2 = await bus("edgemeta"), await bus("ds1"), await bus("ds2")
        try:
            replies = await core.subscribe("edgex/response/#")
            await ds1.publish("edgex/response/ds1/move-1", b"ds1 confirms its own release")
            assert (await recv(replies)).payload == b"ds1 confirms its own release"
            # ds2 pretending to be ds1: Mosquitto drops the message (the publish itself does
            # not fail), so edgemeta never hears it; the marker after it proves the order.
            await ds2.publish("edgex/response/ds1/move-1", b"forged by ds2")
            await ds1.publish("edgex/response/ds1/move-2", b"marker")
            assert (await recv(replies)).payload == b"marker"
            # A service hears its own validation requests, not another's.
            own = await ds1.subscribe("edgex/ds1/validate/device")
            other = await ds1.subscribe("edgex/ds2/validate/device")
            await core.publish("edgex/ds2/validate/device", b"for ds2")
            await core.publish("edgex/ds1/validate/device", b"for ds1")
            assert (await recv(own)).payload == b"for ds1"
            with pytest.raises(TimeoutError):
                await recv(other, within=0.5)
            # ... and its own command requests from core-command, not another's.
            mine = await ds1.subscribe("edgex/device/command/request/ds1/#")
            theirs = await ds1.subscribe("edgex/device/command/request/ds2/#")
            await core.publish("edgex/device/command/request/ds2/d/c/get", b"for ds2")
            await core.publish("edgex/device/command/request/ds1/d/c/get", b"cmd for ds1")
            assert (await recv(mine)).payload == b"cmd for ds1"
            with pytest.raises(TimeoutError):
                await recv(theirs, within=0.5)
        finally:
            for made in (core, ds1, ds2):
                await made.close()


@pytest.mark.nats
async def test_nats_permissions_from_the_docs_keep_a_service_to_its_own_subjects(
    tmp_path: Path,
) -> None:
    # The docs' example, with plain passwords instead of bcrypt hashes.
    def service(name: str) -> str:
        return f"""
    {{ user: {name}, password: "{name}-pass",
      permissions: {{
        publish:   ["edgex.response.{name}.>", "edgex.events.device.{name}.>"]
        subscribe: ["edgex.system-events.core-metadata.*.*.{name}",
                    "edgex.system-events.core-metadata.*.*.{name}.>",
                    "edgex.{name}.validate.device",
                    "edgex.device.command.request.{name}.>"]
      }} }}"""

    authorization = (
        "authorization {\n  users = [\n"
        '    { user: edgemeta, password: "edgemeta-pass" }'
        + service("ds1")
        + service("ds2")
        + "\n  ]\n}"
    )
    with secure_broker("nats", tmp_path, acl=authorization) as b:

        async def bus(user: str) -> Bus:
            made = make_bus(b, username=user, password=f"{user}-pass", ca_file=b.pki.ca)
            await made.start()
            return made

        core, ds1, ds2 = await bus("edgemeta"), await bus("ds1"), await bus("ds2")
        try:
            replies = await core.subscribe("edgex/response/#")
            await ds1.publish("edgex/response/ds1/move-1", b"ds1 confirms its own release")
            assert (await recv(replies)).payload == b"ds1 confirms its own release"
            # ds2 pretending to be ds1: the server drops it with a permissions violation.
            with contextlib.suppress(Exception):
                await ds2.publish("edgex/response/ds1/move-1", b"forged by ds2")
            await ds1.publish("edgex/response/ds1/move-2", b"marker")
            assert (await recv(replies)).payload == b"marker"
            own = await ds1.subscribe("edgex/ds1/validate/device")
            await core.publish("edgex/ds1/validate/device", b"for ds1")
            assert (await recv(own)).payload == b"for ds1"
        finally:
            for made in (core, ds1, ds2):
                await made.close()


@pytest.mark.mqtt
async def test_a_refusal_after_start_is_logged_and_retried(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # The broker comes back from an outage with another password: nothing to fail any more,
    # so the bus says so loudly and keeps trying; once the password is put back, it is in.
    with secure_broker("mqtt", tmp_path) as b:
        bus = make_bus(b, **good(b))
        assert isinstance(bus, MqttBus)
        bus.reconnect_max = 0.2
        await bus.start()
        try:
            b.stop()
            b.set_password(USER, "changed")
            b.start()
            await until(lambda: "refused the connection" in caplog.text, within=10)
            assert not bus.connected
            assert any(r.levelname == "ERROR" for r in caplog.records if "refused" in r.message)
            b.stop()
            b.set_password(USER, PASSWORD)
            b.start()
            await until(lambda: bus.connected, within=10)
            await roundtrip(bus, "edgemeta-test/secure/after-refusal")
        finally:
            await bus.close()
