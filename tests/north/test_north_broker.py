"""The north bridge and its external broker: a private Mosquitto with a password and TLS (the
bridge's own credentials and CA, another broker than the internal bus), a broker outage the
bridge rides out (reconnect with back-off, then serving again), and the settings that keep it
off by default and refuse an unprotected north."""

from __future__ import annotations

import asyncio
import base64
import uuid
from pathlib import Path
from typing import Any

import aiomqtt
import orjson
import pytest
from pydantic import ValidationError

from edgemeta.security.config import InsecureExposure, check_exposure
from edgemeta.settings import Settings
from tests.north.kit import north, north_settings
from tests.support import servers
from tests.support.api import make_service
from tests.support.brokers import private_broker
from tests.support.securebrokers import PASSWORD, USER, secure_broker

pytestmark = pytest.mark.mqtt


async def test_a_credentialed_tls_broker_of_its_own(tmp_path: Path) -> None:
    with secure_broker("mqtt", tmp_path / "broker") as broker:
        async with north(
            "sqlite",
            tmp_path,
            url=broker.url(tls=True),
            north_mqtt_username=USER,
            north_mqtt_password=PASSWORD,
            north_mqtt_ca_file=broker.pki.ca,
            cloud={
                "hostname": "127.0.0.1",
                "port": broker.plain_port,
                "username": USER,
                "password": PASSWORD,
            },
        ) as n:
            assert n.service.north is not None
            assert "tls" in n.service.north.bus.description
            a = await n.cloud.ask("command/request/dev/setpoint/set", payload={"setpoint": 12})
            assert a.error_code == 0 and a.status == 200, a.body
            assert n.ds1.received[-1].settings == {"setpoint": "12"}


async def _ask_once(port: int, root: str, timeout: float = 5.0) -> dict[str, Any]:
    """A query of every device's commands on a fresh connection; the answer's body."""
    rid = str(uuid.uuid4())
    async with aiomqtt.Client("127.0.0.1", port, identifier=servers.unique("cloud")) as c:
        await c.subscribe(f"{root}/commandquery/response", qos=1)
        env = {"apiVersion": "v3", "requestID": rid, "queryParams": {}}
        await c.publish(f"{root}/commandquery/request/all", orjson.dumps(env), qos=1)
        async with asyncio.timeout(timeout):
            async for m in c.messages:
                got = orjson.loads(m.payload if isinstance(m.payload, bytes) else b"{}")
                if got.get("requestID") == rid:
                    body: dict[str, Any] = orjson.loads(base64.b64decode(got["payload"]))
                    return body
    raise AssertionError("no answer")


async def test_the_bridge_rides_out_a_broker_outage(tmp_path: Path) -> None:
    with private_broker("mqtt", tmp_path) as broker:
        root = servers.unique("north")
        service, _ = await make_service("sqlite", tmp_path, **north_settings(root, broker.url))
        await service.start()
        bridge = service.north
        assert bridge is not None
        try:
            await asyncio.wait_for(bridge.ready.wait(), 10)
            assert (await _ask_once(broker.port, root))["statusCode"] == 200
            broker.stop()
            await asyncio.sleep(0.5)  # the bridge sees the loss and backs off, alive
            assert bridge._runner is not None and not bridge._runner.done()
            broker.start()
            # the bus reconnects by itself and subscribes again (clean session)
            async with asyncio.timeout(15):
                while bridge.bus.reconnects == 0:  # type: ignore[attr-defined]
                    await asyncio.sleep(0.05)
            body = await _ask_once(broker.port, root)
            assert body["statusCode"] == 200 and body["totalCount"] == 0
        finally:
            await service.stop()


def test_off_by_default_and_checked_settings(tmp_path: Path) -> None:
    assert Settings().north_mqtt_url == ""
    with pytest.raises(ValidationError, match="ending in /#"):
        Settings(north_command_request_topic="edgex/command/request")
    with pytest.raises(ValidationError, match="without wildcards"):
        Settings(north_query_response_topic="edgex/+/response")
    with pytest.raises(ValidationError, match="mqtt:// or mqtts://"):
        Settings(north_mqtt_url="nats://127.0.0.1:4222")
    with pytest.raises(ValidationError, match="NORTH_MQTT_USERNAME"):
        Settings(north_mqtt_password="x")
    secret = tmp_path / "pw"
    secret.write_text("s3cret\n")
    security = Settings(north_mqtt_username="u", north_mqtt_password_file=secret).north_security()
    assert (security.username, security.password) == ("u", "s3cret")


def test_auth_off_with_a_north_broker_beyond_this_machine_refuses_to_start() -> None:
    with pytest.raises(InsecureExposure, match="EDGEMETA_NORTH_MQTT_URL"):
        check_exposure(Settings(north_mqtt_url="mqtt://broker.example:1883"))
    check_exposure(Settings(north_mqtt_url="mqtt://127.0.0.1:1883"))  # loopback: allowed
    check_exposure(Settings(north_mqtt_url="mqtt://broker.example:1883", auth="on"))
    check_exposure(
        Settings(north_mqtt_url="mqtt://broker.example:1883", auth_allow_insecure_off=True)
    )
