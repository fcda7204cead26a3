"""core-data's bus ingest: events that device services publish, stored in batches.

Device services publish each event as an EdgeX MessageEnvelope whose payload is an
``AddEventRequest`` on ``<prefix>/events/device/<service>/<profile>/<device>/<source>``.
Messages are taken in batches (whatever has arrived, up to ``batch_max``), stored in one
transaction with a savepoint per event (a bad event is logged and skipped, it does not spoil
its batch), and only then acknowledged.

With MQTT the ingest has a connection of its own: a persistent session (``clean_session``
off, a fixed client id) at QoS 1 with **manual acknowledgement**, so the broker redelivers
every message whose batch had not committed when edgemeta was killed, and keeps what is
published while edgemeta is down or busy. The broker bounds what it keeps for a session:
Mosquitto's default ``max_queued_messages 1000`` drops the excess, also while edgemeta is up
but slower than a burst of publishers (measured: 41-69 % of a burst lost), so a deployment
sets ``max_queued_messages 0`` (or a bound it can afford). A redelivered event has an id
already stored and is skipped, so every event is stored once. On another bus (in-process,
NATS core) ingest subscribes through the bus and what a crash interrupts is lost with the
process, as on EdgeX.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
from typing import Any
from urllib.parse import unquote

import aiomqtt
import orjson

from edgemeta.bus.mqtt import DEFAULT_PORT, DEFAULT_TLS_PORT
from edgemeta.bus.security import BusSecurity, endpoint, mqtt_refusal
from edgemeta.documents.coredata import parse_request
from edgemeta.domain.errors import EdgeMetaError
from edgemeta.domain.readings import EventAddress
from edgemeta.ports import Bus, Message
from edgemeta.usecases.coredata import IngestResult, ingest
from edgemeta.usecases.deps import Deps

log = logging.getLogger("edgemeta.coredata.ingest")

Item = tuple[dict[str, Any] | None, EventAddress | None, str]


def events_filter(prefix: str) -> str:
    """The topic filter of device events."""
    return f"{prefix}/events/device/#"


def decode_message(prefix: str, message: Message) -> Item:
    """(event object or None, address from the topic, label for logs) of one message."""
    label = message.topic
    head = f"{prefix}/events/device/"
    address = None
    if message.topic.startswith(head):
        levels = message.topic[len(head) :].split("/")
        if len(levels) == 4:
            address = EventAddress(*(unquote(x) for x in levels))
    if address is None:
        log.warning("ignoring a message on %s: not <prefix>/events/device/4 levels", label)
        return None, None, label
    try:
        data = orjson.loads(message.payload)
        if isinstance(data, dict) and "event" not in data:
            payload = next((v for k, v in data.items() if k.lower() == "payload"), None)
            if isinstance(payload, str):  # EDGEX_MSG_BASE64_PAYLOAD
                payload = orjson.loads(base64.b64decode(payload, validate=True))
            data = payload
        raw, _ = parse_request(data)
    except (orjson.JSONDecodeError, binascii.Error, ValueError) as exc:
        log.warning("ignoring a message on %s: not a JSON AddEventRequest (%s)", label, exc)
        return None, address, label
    except EdgeMetaError as exc:
        log.warning("ignoring a message on %s: %s", label, exc.message)
        return None, address, label
    return raw, address, label


class EventIngest:
    """Stores the events published on the bus, until stopped."""

    def __init__(
        self,
        deps: Deps,
        bus: Bus,
        *,
        prefix: str,
        bus_url: str,
        security: BusSecurity | None = None,
        client_id: str = "edgemeta-core-data",
        qos: int = 1,
        batch_max: int = 500,
    ) -> None:
        self.deps = deps
        self.bus = bus
        self.prefix = prefix
        self.bus_url = bus_url
        self.security = security
        self.client_id = client_id
        self.qos = qos
        self.batch_max = batch_max
        self.stored = 0
        self.duplicates = 0
        self.refused = 0
        self._task: asyncio.Task[None] | None = None
        self.ready = asyncio.Event()  # set once subscribed (first time)

    def start(self) -> None:
        """Begin ingesting in the background."""
        durable = self.bus_url.lower().startswith(("mqtt://", "mqtts://"))
        run = self._run_mqtt() if durable else self._run_bus()
        self._task = asyncio.create_task(run, name="edgemeta-core-data-ingest")

    async def stop(self) -> None:
        """Stop (a batch being stored finishes first only if it already committed)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _count(self, result: IngestResult) -> None:
        self.stored += result.stored
        self.duplicates += result.duplicates
        self.refused += result.refused
        self.deps.meter.ingested(result.stored, result.duplicates, result.refused)

    async def _run_bus(self) -> None:
        """Through the bus's own subscription (no redelivery after a crash)."""
        sub = await self.bus.subscribe(events_filter(self.prefix))
        self.ready.set()
        try:
            while True:
                first = await sub.get()
                batch = [decode_message(self.prefix, first)]
                queue = getattr(sub, "queue", None)
                while queue is not None and len(batch) < self.batch_max and queue.qsize():
                    nxt = queue.get_nowait()
                    if nxt is None:
                        break
                    batch.append(decode_message(self.prefix, nxt))
                await self._store(batch)
        finally:
            await sub.close()

    async def _store(self, batch: list[Item]) -> None:
        delay = 0.1
        while True:
            try:
                self._count(await ingest(self.deps, batch))
                return
            except Exception as exc:
                # The database refused the batch (busy, gone): keep it and try again; the
                # messages stay unacknowledged meanwhile.
                reason = exc.message if isinstance(exc, EdgeMetaError) else repr(exc)
                log.warning("storing %d events failed (%s); retrying", len(batch), reason)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

    async def _run_mqtt(self) -> None:
        """A persistent MQTT session, acknowledging each message after its batch commits."""
        # The same credentials and TLS as the service's own bus connection.
        ep = endpoint(
            self.bus_url,
            self.security,
            plain="mqtt",
            secure="mqtts",
            plain_port=DEFAULT_PORT,
            secure_port=DEFAULT_TLS_PORT,
        )
        backoff = 0.2
        logged = ""
        while True:
            client = aiomqtt.Client(
                ep.host,
                ep.port,
                username=ep.username,
                password=ep.password,
                tls_context=ep.context,
                identifier=self.client_id,
                protocol=aiomqtt.ProtocolVersion.V311,
                clean_session=False,
                keepalive=30,
                max_queued_incoming_messages=0,
            )
            # paho acknowledges a QoS 1 PUBLISH as it arrives unless told not to; we
            # acknowledge once the batch holding it is committed.
            client._client.manual_ack_set(True)
            try:
                async with client:
                    await client.subscribe(events_filter(self.prefix), qos=self.qos)
                    self.ready.set()
                    backoff = 0.2
                    messages = client.messages
                    async for first in messages:
                        batch = [first]
                        while len(batch) < self.batch_max and len(messages):
                            batch.append(await anext(messages))
                        items = [
                            decode_message(self.prefix, Message(m.topic.value, _bytes(m)))
                            for m in batch
                        ]
                        await self._store(items)
                        for m in batch:  # in the order received, as MQTT asks
                            if m.qos > 0:
                                client._client.ack(m.mid, m.qos)
            except aiomqtt.MqttError as exc:
                refusal = mqtt_refusal(exc, ep.address)
                if refusal is None:
                    log.warning(
                        "core-data ingest lost mqtt broker %s (%s); retrying", ep.address, exc
                    )
                elif refusal != logged:
                    log.error("core-data ingest: %s; retrying", refusal)
                    logged = refusal
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 2.0)


def _bytes(m: aiomqtt.Message) -> bytes:
    payload = m.payload
    if isinstance(payload, bytes):
        return payload
    return str(payload or "").encode()
