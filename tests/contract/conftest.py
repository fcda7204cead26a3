"""Bus fixtures: every test runs on the in-process bus, a real MQTT broker and real NATS."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from edgemeta.ports import Bus
from tests.support import servers
from tests.support.buses import KINDS
from tests.support.bushelp import BusFactory
from tests.support.tcpproxy import TcpProxy

#: For ``@pytest.mark.parametrize("bus_factory", BROKERS, indirect=True)``.


@pytest.fixture
def prefix() -> str:
    """A topic prefix no other test uses."""
    return servers.unique("edgemeta-test")


@pytest.fixture(params=KINDS)
async def bus_factory(request: pytest.FixtureRequest, prefix: str) -> AsyncIterator[BusFactory]:
    """Makes started buses of one kind (skips or fails when its server is down)."""
    kind: str = request.param
    if kind == "mqtt":
        servers.require(servers.MQTT_URL, "MQTT broker")
    elif kind == "nats":
        servers.require(servers.NATS_URL, "NATS server")
    factory = BusFactory(kind, prefix)
    yield factory
    await factory.close()


@pytest.fixture
async def bus(bus_factory: BusFactory) -> Bus:
    """A started bus of each kind."""
    return await bus_factory()


@pytest.fixture
async def proxy(bus_factory: BusFactory) -> AsyncIterator[TcpProxy]:
    """A started TCP proxy in front of the bus kind's broker (to cut the connection)."""
    p = bus_factory.proxy()
    await p.start()
    yield p
    await p.stop()
