"""MqttBus configuration (no broker needed)."""

from __future__ import annotations

import pytest

from edgemeta.bus.mqtt import MqttBus
from edgemeta.domain.errors import ContractInvalid


def test_url_and_description_hide_credentials() -> None:
    bus = MqttBus("mqtt://us%40er:p%3Ass@broker.example:8883", qos=2)
    assert (bus.host, bus.port, bus.username, bus.password) == (
        "broker.example",
        8883,
        "us@er",
        "p:ss",
    )
    assert bus.description == "mqtt broker broker.example:8883 (qos 2)"
    assert MqttBus("mqtt://localhost").port == 1883


def test_client_id_is_fixed_per_bus_and_unique() -> None:
    a = MqttBus("mqtt://localhost", client_id_prefix="core-metadata")
    b = MqttBus("mqtt://localhost", client_id_prefix="core-metadata")
    assert a.client_id.startswith("core-metadata-")
    assert a.client_id != b.client_id
    assert len(a.client_id) <= 23 + len("core-metadata") - len("edgemeta")


def test_bad_configuration() -> None:
    with pytest.raises(ValueError, match="mqtt://"):
        MqttBus("nats://localhost")
    with pytest.raises(ValueError, match="qos"):
        MqttBus("mqtt://localhost", qos=3)


async def test_refuses_topics_mosquitto_would_disconnect_for() -> None:
    bus = MqttBus("mqtt://localhost")  # never started: the check comes first
    for topic in ("a/+", "a/#", "", "tab\there", "nul\0", "c1\x85"):
        with pytest.raises(ContractInvalid):
            await bus.publish(topic, b"x")
    with pytest.raises(ContractInvalid):
        await bus.subscribe("tab\there/#")
