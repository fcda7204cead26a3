"""Throughput of ``publish_batch`` against the raw client libraries (the ceiling), one run.

    python -m tests.bench_bus [--count 10000] [--rounds 3]

Publishes ``count`` small messages (a ~200-byte envelope-like payload) on system-event topics,
with nobody subscribed, and prints messages/s (median of ``rounds``) for:

- the adapters: ``MqttBus.publish_batch`` (QoS 1), ``NatsBus.publish_batch`` through JetStream
  (the relay's path) and through core NATS;
- the raw libraries doing the same job: aiomqtt awaiting each publish, aiomqtt with every
  publish in flight at once, paho-mqtt on its own network thread; nats-py core publish + one
  flush, JetStream ``publish_async`` + waiting for every ack, and JetStream ``publish`` one by
  one.

Not collected by pytest (no ``test_`` prefix); needs the servers of ``tests/servers.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import statistics
import threading
import time
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

import aiomqtt
import nats
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from edgemeta.bus.mqtt import MqttBus
from edgemeta.bus.nats import NatsBus, topic_to_subject
from tests.support import servers

PAYLOAD = b'{"apiVersion":"v3","type":"device","action":"add","owner":"device-virtual",' + (
    b'"details":{"name":"' + b"x" * 100 + b'"}}'
)


def _messages(prefix: str, n: int) -> list[tuple[str, bytes]]:
    return [
        (f"{prefix}/system-events/core-metadata/device/add/device-virtual/p{i % 10}", PAYLOAD)
        for i in range(n)
    ]


async def _rate(
    rounds: int, n: int, run: Callable[[], Awaitable[object]]
) -> tuple[float, list[float]]:
    rates = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        await run()
        rates.append(n / (time.perf_counter() - t0))
    return statistics.median(rates), rates


async def bench(count: int, rounds: int) -> list[tuple[str, float]]:
    """Run every measurement; returns (label, median messages/s)."""
    results: list[tuple[str, float]] = []
    prefix = servers.unique("bench")
    msgs = _messages(prefix, count)
    core_msgs = [(t.replace("/system-events/", "/other/"), p) for t, p in msgs]

    async def measure(label: str, run: Callable[[], Awaitable[object]]) -> None:
        median, rates = await _rate(rounds, count, run)
        results.append((label, median))
        print(f"{label:58s} {median:>10,.0f} msg/s   ({', '.join(f'{r:,.0f}' for r in rates)})")

    # -- MQTT ------------------------------------------------------------------------------
    mqtt_url = urlsplit(servers.MQTT_URL)
    host, port = mqtt_url.hostname or "127.0.0.1", mqtt_url.port or 1883
    bus = MqttBus(servers.MQTT_URL, qos=1)
    await bus.start()

    async def adapter_mqtt() -> None:
        assert await bus.publish_batch(msgs) == count

    await measure("MqttBus.publish_batch (qos 1)", adapter_mqtt)
    await bus.close()

    async with aiomqtt.Client(host, port, protocol=aiomqtt.ProtocolVersion.V5) as client:
        client.pending_calls_threshold = 1 << 30

        async def aiomqtt_each() -> None:
            for t, p in msgs:
                await client.publish(t, p, qos=1)

        async def aiomqtt_all() -> None:
            # No timeout: with everything in flight the last acks take long (see the report).
            await asyncio.gather(*(client.publish(t, p, qos=1, timeout=math.inf) for t, p in msgs))

        await measure("raw aiomqtt, await each publish (qos 1)", aiomqtt_each)
        await measure("raw aiomqtt, all publishes in flight (qos 1)", aiomqtt_all)

    def paho_run() -> None:
        done = threading.Event()
        acked = 0

        def on_publish(*_: object) -> None:
            nonlocal acked
            acked += 1
            if acked == count:
                done.set()

        c = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
        c.max_inflight_messages_set(128)
        c.max_queued_messages_set(0)
        c.on_publish = on_publish
        c.connect(host, port)
        c.loop_start()
        try:
            t0 = time.perf_counter()
            for t, p in msgs:
                c.publish(t, p, qos=1)
            if not done.wait(60):
                raise RuntimeError("paho: not every publish was acknowledged")
            paho_times.append(time.perf_counter() - t0)
        finally:
            c.disconnect()
            c.loop_stop()

    paho_times: list[float] = []
    for _ in range(rounds):
        await asyncio.to_thread(paho_run)
    rates = [count / t for t in paho_times]
    results.append(("raw paho-mqtt, own thread, 128 in flight (qos 1)", statistics.median(rates)))
    print(
        f"{'raw paho-mqtt, own thread, 128 in flight (qos 1)':58s} "
        f"{statistics.median(rates):>10,.0f} msg/s   ({', '.join(f'{r:,.0f}' for r in rates)})"
    )

    # -- NATS ------------------------------------------------------------------------------
    stream = servers.unique("BENCH")
    nbus = NatsBus(
        servers.NATS_URL, jetstream_subjects=[f"{prefix}/system-events/#"], stream=stream
    )
    await nbus.start()
    assert nbus.jetstream, "the nats server has no jetstream"

    async def adapter_js() -> None:
        assert await nbus.publish_batch(msgs) == count

    async def adapter_core() -> None:
        assert await nbus.publish_batch(core_msgs) == count

    await measure("NatsBus.publish_batch (jetstream)", adapter_js)
    await measure("NatsBus.publish_batch (core + flush)", adapter_core)
    await nbus.close()

    nc = await nats.connect(servers.NATS_URL)
    js = nc.jetstream(publish_async_max_pending=1 << 30)
    subjects = [(topic_to_subject(t), p) for t, p in msgs]
    core_subjects = [(topic_to_subject(t), p) for t, p in core_msgs]

    async def raw_core() -> None:
        for s, p in core_subjects:
            await nc.publish(s, p)
        await nc.flush()

    async def raw_js_async() -> None:
        futures = [await js.publish_async(s, p) for s, p in subjects]
        await asyncio.gather(*futures)

    async def raw_js_each() -> None:
        for s, p in subjects:
            await js.publish(s, p)

    await measure("raw nats-py core publish + one flush", raw_core)
    await measure("raw nats-py jetstream publish_async, then all acks", raw_js_async)
    await measure("raw nats-py jetstream publish, await each", raw_js_each)
    await js.delete_stream(stream)
    await nc.close()
    return results


def main() -> None:
    """Parse arguments and run."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"{args.count:,} messages of {len(PAYLOAD)} bytes, median of {args.rounds} rounds")
    asyncio.run(bench(args.count, args.rounds))


if __name__ == "__main__":
    main()
