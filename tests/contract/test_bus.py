"""One contract for every bus: the in-process bus, a real MQTT broker and a real NATS server.

Each test gets its own topic prefix, so tests never see each other's messages on a shared
broker. Where a test needs two processes' worth of clients (a device service answering a
validation request), ``bus_factory`` gives a second connection; on the in-process bus the
"second connection" is the same bus, as it would be inside one process.

The fault tests (``slow``) put a TCP proxy between a bus and its broker and cut it: the
machine's broker itself is never stopped.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from urllib.parse import unquote

import pytest

from edgemeta.bus.envelope import decode, envelope
from edgemeta.bus.mqtt import MqttBus
from edgemeta.bus.nats import NatsBus
from edgemeta.bus.topics import level, response_topic, system_event_topic, validate_topic
from edgemeta.domain.errors import (
    ContractInvalid,
    LimitExceeded,
    ServerError,
    ServiceUnavailable,
)
from edgemeta.domain.records import AdminState, Device, OperatingState
from edgemeta.peers.validation import BusDeviceValidator
from edgemeta.ports import Bus, Message, Subscription
from tests.support import servers
from tests.support.buses import BROKERS
from tests.support.bushelp import BusFactory, Collector, eventually_publish, recv, recv_until
from tests.support.tcpproxy import TcpProxy

# -- publish / subscribe -----------------------------------------------------------------


async def test_exact_topic(bus: Bus, prefix: str) -> None:
    sub = await bus.subscribe(f"{prefix}/a/b")
    await bus.publish(f"{prefix}/a/c", b"other level")
    await bus.publish(f"{prefix}/a/b/c", b"deeper")
    await bus.publish(f"{prefix}/a", b"shallower")
    await bus.publish(f"{prefix}/a/b", b"one")
    await bus.publish(f"{prefix}/a/b", b"end")
    got = await recv_until(sub, b"end")
    assert [(m.topic, m.payload) for m in got] == [
        (f"{prefix}/a/b", b"one"),
        (f"{prefix}/a/b", b"end"),
    ]


async def test_wildcards(bus: Bus, prefix: str) -> None:
    plus = await bus.subscribe(f"{prefix}/+/x")
    hash_all = await bus.subscribe(f"{prefix}/#")
    hash_a = await bus.subscribe(f"{prefix}/a/#")
    topics = [f"{prefix}/a/x", f"{prefix}/b/x", f"{prefix}/a", f"{prefix}/a/y/z", f"{prefix}/c"]
    for t in topics:
        await bus.publish(t, t.encode())
    await bus.publish(f"{prefix}/a/end", b"end")

    def seen(msgs: list[Message]) -> list[str]:
        return [m.topic for m in msgs]

    # A "#" filter also matches its parent level ("p/a/#" matches "p/a"), as in MQTT.
    assert seen(await recv_until(hash_a, b"end")) == [
        f"{prefix}/a/x",
        f"{prefix}/a",
        f"{prefix}/a/y/z",
        f"{prefix}/a/end",
    ]
    assert seen(await recv_until(hash_all, b"end")) == [*topics, f"{prefix}/a/end"]
    await bus.publish(f"{prefix}/z/x", b"end")
    assert seen(await recv_until(plus, b"end")) == [
        f"{prefix}/a/x",
        f"{prefix}/b/x",
        f"{prefix}/z/x",
    ]


async def test_device_service_sees_only_its_events(bus: Bus, prefix: str) -> None:
    # The subscription device-sdk-go makes for a service called device-virtual.
    sub = await bus.subscribe(f"{prefix}/system-events/core-metadata/+/+/device-virtual/#")
    events = [
        ("device", "add", "device-virtual", "Random-Integer-Device", True),
        ("device", "add", "device-modbus", "Modbus-Device", False),
        ("device", "delete", "device-virtual", "", True),  # a device without a profile
        ("deviceprofile", "update", "core-metadata", "Simple-Thermostat", False),
        ("deviceprofile", "update", "device-virtual", "Simple-Thermostat", True),
        ("deviceservice", "update", "device-virtual-2", "", False),  # a longer name
        ("deviceservice", "update", "device-virtual", "", True),
        ("provisionwatcher", "add", "device-onvif-camera", "onvif-camera", False),
    ]
    expected = []
    for i, (type_, action, owner, profile, mine) in enumerate(events):
        topic = system_event_topic(prefix, type_, action, owner, profile)
        await bus.publish(topic, str(i).encode())
        if mine:
            expected.append((topic, str(i).encode()))
    end = system_event_topic(prefix, "device", "update", "device-virtual", "end")
    await bus.publish(end, b"end")
    got = await recv_until(sub, b"end")
    assert [(m.topic, m.payload) for m in got] == [*expected, (end, b"end")]


async def test_batch_of_1000_keeps_order(bus: Bus, prefix: str) -> None:
    sub = await bus.subscribe(f"{prefix}/#")
    batch = [(f"{prefix}/system-events/e/{i % 7}", f"{i}".encode()) for i in range(1000)]
    assert await bus.publish_batch(batch) == 1000
    got = [await recv(sub) for _ in range(1000)]
    assert [(m.topic, m.payload) for m in got] == batch


async def test_empty_batch(bus: Bus) -> None:
    assert await bus.publish_batch([]) == 0


async def test_overlapping_filters_each_get_one_copy(bus: Bus, prefix: str) -> None:
    subs = [
        await bus.subscribe(f"{prefix}/a/+"),
        await bus.subscribe(f"{prefix}/#"),
        await bus.subscribe(f"{prefix}/a/b"),
        await bus.subscribe(f"{prefix}/a/b"),  # the same filter twice
    ]
    await bus.publish(f"{prefix}/a/b", b"one")
    await bus.publish(f"{prefix}/a/b", b"end")
    for sub in subs:
        got = await recv_until(sub, b"end")
        assert [m.payload for m in got] == [b"one", b"end"]


async def test_close_stops_delivery(bus: Bus, prefix: str) -> None:
    closing = await bus.subscribe(f"{prefix}/a")
    staying = await bus.subscribe(f"{prefix}/a")
    other = await bus.subscribe(f"{prefix}/+")
    await bus.publish(f"{prefix}/a", b"before")
    assert (await recv(closing)).payload == b"before"
    await closing.close()
    await bus.publish(f"{prefix}/a", b"after")
    assert [m.payload for m in await recv_until(staying, b"after")] == [b"before", b"after"]
    assert [m.payload for m in await recv_until(other, b"after")] == [b"before", b"after"]
    # A closed subscription ends its iteration without anything published after the close.
    async with asyncio.timeout(2):
        assert [m async for m in closing] == []


async def test_resubscribe_after_last_close(bus: Bus, prefix: str) -> None:
    first = await bus.subscribe(f"{prefix}/a")
    await first.close()
    again = await bus.subscribe(f"{prefix}/a")
    await bus.publish(f"{prefix}/a", b"end")
    assert [m.payload for m in await recv_until(again, b"end")] == [b"end"]


async def test_invalid_filter_is_refused(bus: Bus, prefix: str) -> None:
    for bad in (f"{prefix}/#/a", f"{prefix}/a+", "", f"{prefix}/a#"):
        with pytest.raises(ContractInvalid):
            await bus.subscribe(bad)


async def test_has_subscribers(bus_factory: BusFactory, prefix: str) -> None:
    bus = await bus_factory()
    topic = f"{prefix}/svc/validate/device"
    if bus_factory.kind == "memory":
        assert bus.has_subscribers(topic) is False
        sub = await bus.subscribe(f"{prefix}/+/validate/device")
        assert bus.has_subscribers(topic) is True
        await sub.close()
        assert bus.has_subscribers(topic) is False
    else:
        assert bus.has_subscribers(topic) is None


# Names cannot hold control characters (the API refuses them), so none are tried here. A name
# holding a literal escape like "%2E" is ambiguous on NATS (see tests/unit/test_nats_subjects).
NAMES = ["a/b", "c+d", "e#f", "g.h", "i j", "k*l>m", "100%", "ümlaut", "/", ".", "*", ">", "a b.c"]


@pytest.mark.parametrize("name_escape", [False, True])
async def test_names_survive_as_levels(bus: Bus, prefix: str, name_escape: bool) -> None:
    wildcard = await bus.subscribe(f"{prefix}/names/+/x")
    for name in NAMES:
        topic = f"{prefix}/names/{level(name, name_escape=name_escape)}/x"
        exact = await bus.subscribe(topic)
        await bus.publish(topic, name.encode())
        got = await recv(exact)
        assert got.payload == name.encode()
        received_level = got.topic.split("/")[-2]
        if not name_escape:
            assert got.topic == topic
        # EdgeX-escaped names keep their %XX on NATS subjects (so that EdgeX services built
        # in Go meet them there) and may come back decoded: unescaping gives the name.
        assert unquote(received_level) == unquote(level(name, name_escape=name_escape))
        if name_escape:
            assert unquote(received_level) == name
        await exact.close()
    got = [await recv(wildcard) for _ in NAMES]
    assert [m.payload for m in got] == [n.encode() for n in NAMES]


# -- request / reply (device validation) --------------------------------------------------


def _device(service: str) -> Device:
    return Device(
        id=str(uuid.uuid4()),
        name="thermo-1",
        service_name=service,
        admin_state=AdminState.UNLOCKED,
        operating_state=OperatingState.UP,
        protocols={"other": {"Address": "1"}},
        profile_name="Simple-Thermostat",
    )


async def _device_service(
    bus: Bus, prefix: str, service: str, verdict: str | None
) -> tuple[asyncio.Task[None], Subscription]:
    """A device service answering validation requests the way device-sdk-go does."""
    sub = await bus.subscribe(validate_topic(prefix, service))

    async def serve() -> None:
        async for request in sub:
            env = decode(request.payload)
            request_id = env["requestID"]
            assert env["payload"]["device"]["serviceName"] == service
            assert env["payload"]["requestId"] == request_id
            if verdict is None:
                reply = envelope({}, request_id=request_id, correlation_id=env["correlationID"])
            else:
                reply = envelope(
                    verdict,
                    request_id=request_id,
                    correlation_id=env["correlationID"],
                    error_code=1,
                    content_type="text/plain",
                )
            await bus.publish(response_topic(prefix, service, request_id), reply)

    return asyncio.create_task(serve()), sub


@pytest.mark.parametrize("service", ["device-virtual", "device virtual.v2"])
async def test_validation_round_trip(bus_factory: BusFactory, prefix: str, service: str) -> None:
    core = await bus_factory()
    device_service = await bus_factory()  # another connection, as another process would have
    validator = BusDeviceValidator(core, prefix=prefix, timeout=5, mode="always")
    task, sub = await _device_service(device_service, prefix, service, None)
    try:
        await validator.validate(service, _device(service), "corr-1")
        await validator.validate(service, _device(service), "corr-2")
    finally:
        await sub.close()
        await task

    task, sub = await _device_service(device_service, prefix, service, "no such address")
    try:
        with pytest.raises(ServerError, match="validation failed: no such address"):
            await validator.validate(service, _device(service), "corr-3")
    finally:
        await sub.close()
        await task


async def test_validation_without_answer(bus: Bus, prefix: str) -> None:
    validator = BusDeviceValidator(bus, prefix=prefix, timeout=0.3, mode="always")
    with pytest.raises(ServiceUnavailable, match="did not answer"):
        await validator.validate("device-absent", _device("device-absent"), "corr")


# -- faults (real brokers only) ---------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("bus_factory", BROKERS, indirect=True)
async def test_outage_is_reported_and_recovered(
    bus_factory: BusFactory, proxy: TcpProxy, prefix: str
) -> None:
    kind = bus_factory.kind
    bus = await bus_factory.through(proxy)
    observer = await bus_factory()  # straight to the broker
    sub = await bus.subscribe(f"{prefix}/#")
    seen = await observer.subscribe(f"{prefix}/#")
    await bus.publish(f"{prefix}/a", b"before")
    assert (await recv(sub)).payload == b"before"
    assert (await recv(seen)).payload == b"before"

    await proxy.stop()
    started = time.monotonic()
    with pytest.raises(ServiceUnavailable, match=f"{kind}"):
        await bus.publish(f"{prefix}/a", b"lost?")
    batch = [(f"{prefix}/system-events/b/{i}", b"%d" % i) for i in range(50)]
    try:
        confirmed = await bus.publish_batch(batch)
    except ServiceUnavailable:
        confirmed = 0
    assert confirmed < len(batch)
    assert time.monotonic() - started < 5  # reported promptly, not after a long hang
    with pytest.raises(ServiceUnavailable):
        await bus.subscribe(f"{prefix}/while-down")

    await proxy.start()
    await eventually_publish(bus, f"{prefix}/a", b"back")
    # The subscription made before the outage works again (re-established by the adapter):
    # a message from another connection reaches it.
    await observer.publish(f"{prefix}/a", b"end")
    got = await recv_until(sub, b"end", within=10)
    assert got[-2:] == [Message(f"{prefix}/a", b"back"), Message(f"{prefix}/a", b"end")]
    # Whatever the adapter reported as confirmed did reach the broker.
    observed = [m.payload for m in await recv_until(seen, b"end", within=10)]
    assert [p for p in observed if p.isdigit()][:confirmed] == [p for _, p in batch[:confirmed]]


@pytest.mark.slow
@pytest.mark.parametrize("bus_factory", BROKERS, indirect=True)
async def test_cut_during_batch_loses_nothing_confirmed(
    bus_factory: BusFactory, proxy: TcpProxy, prefix: str
) -> None:
    kind = bus_factory.kind
    bus = await bus_factory.through(proxy)
    # QoS 0 for the observer: mosquitto drops QoS 1 messages queued for a subscriber beyond
    # max_queued_messages (1000 by default), which a fast publisher overruns here.
    observer = await bus_factory(**({"qos": 0} if kind == "mqtt" else {}))
    seen = Collector(await observer.subscribe(f"{prefix}/#"))
    batch = [(f"{prefix}/system-events/e/{i % 5}", b"%d" % i) for i in range(20_000)]
    publishing = asyncio.create_task(bus.publish_batch(batch))
    await seen.wait_for(200)  # then cut, in the middle of the batch
    await proxy.stop()
    try:
        confirmed = await publishing
    except ServiceUnavailable:
        confirmed = 0
    assert confirmed < len(batch), "the cut came too late to test anything"
    # Everything confirmed reached the broker, in order, with nothing missing in between
    # (and what went after the confirmed prefix, if anything, is in order too).
    await seen.wait_for(confirmed)
    await asyncio.sleep(0.2)
    await seen.stop()
    received = [m.payload for m in seen.messages]
    assert received == [p for _, p in batch[: len(received)]]
    assert getattr(seen.sub, "dropped", 0) == 0


@pytest.mark.slow
@pytest.mark.parametrize("bus_factory", BROKERS, indirect=True)
async def test_a_hanging_broker_times_out(
    bus_factory: BusFactory, proxy: TcpProxy, prefix: str
) -> None:
    bus = await bus_factory.through(proxy)  # timeout 1s
    sub = await bus.subscribe(f"{prefix}/#")
    proxy.pause()
    started = time.monotonic()
    with pytest.raises(ServiceUnavailable, match=bus_factory.kind):
        await bus.publish(f"{prefix}/system-events/a", b"held")
    try:
        confirmed = await bus.publish_batch([(f"{prefix}/b", b"held")] * 10)
    except ServiceUnavailable:
        confirmed = 0
    assert confirmed == 0
    assert time.monotonic() - started < 4
    proxy.resume()
    # The bus serves again once traffic flows (NATS reconnects after a flush timeout; MQTT
    # keeps the connection, and what was held arrives), subscriptions included.
    await eventually_publish(bus, f"{prefix}/c", b"end")
    payloads = [m.payload for m in await recv_until(sub, b"end", within=10)]
    assert payloads[-1] == b"end"
    if bus_factory.kind == "mqtt":
        assert payloads[0] == b"held"


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["mqtt", "nats"])
async def test_start_without_broker_fails(kind: str) -> None:
    p = TcpProxy("127.0.0.1", 9)  # any target: it is stopped before anyone connects
    await p.start()
    await p.stop()
    url = f"{kind}://127.0.0.1:{p.port}"
    bus: Bus = (
        MqttBus(url, connect_timeout=0.5) if kind == "mqtt" else NatsBus(url, connect_timeout=0.5)
    )
    started = time.monotonic()
    with pytest.raises(ServiceUnavailable, match=f"cannot connect to {kind}"):
        await bus.start()
    assert time.monotonic() - started < 3
    with pytest.raises(ServiceUnavailable):
        await bus.publish("a/b", b"x")
    await bus.close()


# -- adapter specifics ----------------------------------------------------------------------


@pytest.mark.parametrize("bus_factory", [BROKERS[1]], indirect=True)
async def test_nats_system_events_are_stored_in_jetstream(
    bus_factory: BusFactory, prefix: str
) -> None:
    import nats

    bus = await bus_factory()
    assert isinstance(bus, NatsBus)
    assert bus.jetstream == [f"{prefix}.system-events.>", f"{prefix}.system-events"]
    sub = await bus.subscribe(f"{prefix}/#")
    events = [
        (system_event_topic(prefix, "device", "add", "svc", f"p{i}"), b"%d" % i) for i in range(300)
    ]
    others = [(f"{prefix}/svc/validate/device", b"request")]
    assert await bus.publish_batch(events[:150] + others + events[150:]) == 301
    # Live subscribers get everything, in order, whichever way it went.
    got = [(m.topic, m.payload) for m in [await recv(sub) for _ in range(301)]]
    assert got == events[:150] + others + events[150:]
    # The system events (and only they) were stored by JetStream.
    nc = await nats.connect(servers.NATS_URL)
    try:
        info = await nc.jetstream().stream_info(bus.stream)
    finally:
        await nc.close()
    assert info.state.messages == 300
    # A second bus with the same settings finds the stream and leaves it as it is.
    again = await bus_factory()
    assert isinstance(again, NatsBus)
    assert again.jetstream == bus.jetstream


@pytest.mark.parametrize("bus_factory", [BROKERS[0]], indirect=True)
async def test_mqtt_window_respects_receive_maximum(bus_factory: BusFactory, prefix: str) -> None:
    bus = await bus_factory(max_inflight=1000)
    assert isinstance(bus, MqttBus)
    announced = bus.window  # mosquitto announces a Receive Maximum of 20 by default
    assert 1 <= announced <= 1000
    sub = await bus.subscribe(f"{prefix}/#")
    batch = [(f"{prefix}/w/{i}", b"%d" % i) for i in range(200)]
    assert await bus.publish_batch(batch) == 200
    assert [(m.topic, m.payload) for m in [await recv(sub) for _ in range(200)]] == batch


@pytest.mark.parametrize("bus_factory", [BROKERS[1]], indirect=True)
async def test_nats_recreates_a_deleted_stream(bus_factory: BusFactory, prefix: str) -> None:
    import nats

    bus = await bus_factory()
    assert isinstance(bus, NatsBus)
    nc = await nats.connect(servers.NATS_URL)
    try:
        js = nc.jetstream()
        await js.delete_stream(bus.stream)  # an operator's doing
        topic = system_event_topic(prefix, "device", "add", "svc", "p")
        # The first publish finds no stream and says so (the relay retries) ...
        with pytest.raises(ServiceUnavailable, match="refused"):
            await bus.publish(topic, b"1")
        # ... and the next one sets the stream up again.
        assert await bus.publish_batch([(topic, b"2"), (topic, b"3")]) == 2
        assert (await js.stream_info(bus.stream)).state.messages == 2
    finally:
        await nc.close()


@pytest.mark.parametrize("bus_factory", [BROKERS[0]], indirect=True)
@pytest.mark.parametrize(("protocol", "qos"), [("5", 0), ("5", 2), ("3.1.1", 1)])
async def test_mqtt_protocols_and_qos(
    bus_factory: BusFactory, prefix: str, protocol: str, qos: int
) -> None:
    bus = await bus_factory(protocol=protocol, qos=qos)
    subs = [await bus.subscribe(f"{prefix}/a/+"), await bus.subscribe(f"{prefix}/#")]
    batch = [(f"{prefix}/a/{i % 3}", b"%d" % i) for i in range(300)]
    assert await bus.publish_batch(batch) == 300
    await bus.publish(f"{prefix}/a/end", b"end")
    for sub in subs:
        got = await recv_until(sub, b"end")
        assert [(m.topic, m.payload) for m in got[:-1]] == batch


@pytest.mark.parametrize("bus_factory", BROKERS, indirect=True)
async def test_unpublishable_message_ends_the_batch(bus_factory: BusFactory, prefix: str) -> None:
    bus = await bus_factory()
    sub = await bus.subscribe(f"{prefix}/#")
    # Each broker has its own: MQTT refuses control characters, NATS empty levels.
    bad = f"{prefix}/tab\there" if bus_factory.kind == "mqtt" else f"{prefix}//empty"
    batch = [(f"{prefix}/a", b"1"), (f"{prefix}/b", b"2"), (bad, b"3"), (f"{prefix}/c", b"4")]
    assert await bus.publish_batch(batch) == 2
    assert [(await recv(sub)).payload for _ in range(2)] == [b"1", b"2"]
    with pytest.raises(ContractInvalid):
        await bus.publish_batch(batch[2:])
    with pytest.raises(ContractInvalid):
        await bus.publish(bad, b"3")


@pytest.mark.parametrize("bus_factory", [BROKERS[1]], indirect=True)
async def test_nats_payload_over_the_server_limit(bus_factory: BusFactory, prefix: str) -> None:
    bus = await bus_factory()
    assert isinstance(bus, NatsBus)
    huge = b"x" * (2 << 20)  # the server's default max_payload is 1 MiB
    assert await bus.publish_batch([(f"{prefix}/a", b"small"), (f"{prefix}/a", huge)]) == 1
    with pytest.raises(LimitExceeded):
        await bus.publish(f"{prefix}/a", huge)
