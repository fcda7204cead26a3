"""The MQTT bus: an MQTT 5 (or 3.1.1) broker through aiomqtt.

One connection per bus, kept up by a background task that reconnects with exponential backoff
after the broker goes away. The session is clean (nothing is kept by the broker while we are
away), so the bus keeps a registry of its topic filters and subscribes to all of them again
after every reconnect. The client id is chosen once per bus (``<prefix>-<random>``) and reused
across reconnects, so the broker sees one client, and two buses never take over each other's
connection.

Publishing uses the configured QoS (default 1, at least once). ``publish`` waits for the
broker's PUBACK; ``publish_batch`` hands the messages to the client in order without waiting
for each acknowledgement (one connection keeps them in order), then counts how many from the
first the broker acknowledged. A lost connection or a missing acknowledgement is reported as
``ServiceUnavailable`` (or a short count), never as success.

Each filter is one MQTT subscription. With MQTT 5 every filter gets a subscription identifier
and an incoming message is routed by the identifiers the broker attached, so two local
subscriptions with overlapping filters each get exactly one copy whatever the broker's policy
on overlapping subscriptions. With MQTT 3.1.1 (no identifiers) a message goes to every local
subscription whose filter matches its topic.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import secrets
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import aiomqtt
import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from edgemeta.bus.security import BrokerRefused, BusSecurity, endpoint, mqtt_refusal
from edgemeta.bus.shared import BatchPublisher, QueueSubscription, valid_prefix
from edgemeta.bus.topics import matches, valid_filter
from edgemeta.domain.errors import ContractInvalid, EdgeMetaError, ServiceUnavailable
from edgemeta.domain.names import has_control_chars
from edgemeta.ports import Message

log = logging.getLogger("edgemeta.bus.mqtt")

DEFAULT_PORT = 1883
DEFAULT_TLS_PORT = 8883
# MQTT 5 subscription identifiers are variable byte integers of at most this value.
_MAX_SUBSCRIPTION_ID = 268_435_455


class _Client(aiomqtt.Client):
    """aiomqtt's client, keeping the Receive Maximum the broker announces in its CONNACK.

    paho-mqtt ignores it, and a broker may drop a client that has more QoS>0 publishes in
    flight than it allows; the bus keeps its window of unacknowledged publishes within it.
    """

    receive_maximum = 65_535  # MQTT 5's value when the broker says nothing

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.ConnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None = None,
    ) -> None:
        announced = getattr(properties, "ReceiveMaximum", None)
        if isinstance(announced, int) and announced > 0:
            self.receive_maximum = announced
        super()._on_connect(client, userdata, flags, reason_code, properties)

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.DisconnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None = None,
    ) -> None:
        # aiomqtt ignores a connection that ends before the CONNACK and waits out its
        # timeout; a broker that drops us there (e.g. for a missing client certificate) is
        # reported at once instead.
        # (Only while __aenter__ waits, which holds the lock: after a failed attempt aiomqtt
        # has replaced the future, and an exception nobody awaits would only be logged.)
        if not self._connected.done() and self._lock.locked():
            self._connected.set_exception(
                _ClosedBeforeConnack(
                    f"the broker closed the connection before accepting it ({reason_code})"
                )
            )
            return
        super()._on_disconnect(client, userdata, flags, reason_code, properties)


class _ClosedBeforeConnack(aiomqtt.MqttError):
    """The broker ended the connection before answering CONNECT."""


class MqttSubscription(QueueSubscription):
    """Messages matching one filter, queued until read (bounded; the oldest are dropped)."""

    def __init__(self, bus: MqttBus, topic_filter: str, queue_size: int) -> None:
        super().__init__(topic_filter, queue_size)
        self.bus = bus

    async def close(self) -> None:
        """Stop receiving (and unsubscribe from the broker if nobody else uses the filter)."""
        if self.closed:
            return
        self._end()
        await self.bus._release(self)


@dataclass(eq=False)
class _Filter:
    """One MQTT subscription and the local subscriptions it feeds."""

    topic_filter: str
    sub_id: int
    subs: list[MqttSubscription] = field(default_factory=list)


class MqttBus(BatchPublisher):
    """Publish/subscribe through an MQTT broker."""

    peer = "mqtt broker"
    _log = log

    def __init__(
        self,
        url: str,
        *,
        qos: int = 1,
        protocol: Literal["5", "3.1.1"] = "5",
        client_id_prefix: str = "edgemeta",
        client_id: str = "",
        timeout: float = 5.0,
        connect_timeout: float = 10.0,
        reconnect_min: float = 0.1,
        reconnect_max: float = 2.0,
        keepalive: int = 30,
        max_inflight: int = 20,
        queue_size: int = 10_000,
        security: BusSecurity | None = None,
    ) -> None:
        """Configure: ``url`` is ``mqtt://[user:pass@]host[:port]`` (``mqtts://`` for TLS,
        port 8883 by default); ``security`` adds credentials and TLS options. No network I/O,
        but the TLS files are read now, so a wrong path fails here.

        ``timeout`` bounds each wait for the broker (acknowledgements, subscriptions);
        ``connect_timeout`` is how long ``start`` keeps trying before giving up;
        ``max_inflight`` is how many publishes may await their acknowledgement at once (the
        broker's Receive Maximum lowers it). ``client_id``: exactly this id (an operator's
        choice, e.g. for broker ACLs) instead of ``<client_id_prefix>-<random>``.
        """
        self.endpoint = endpoint(
            url,
            security,
            plain="mqtt",
            secure="mqtts",
            plain_port=DEFAULT_PORT,
            secure_port=DEFAULT_TLS_PORT,
        )
        if qos not in (0, 1, 2):
            raise ValueError(f"mqtt qos must be 0, 1 or 2, not {qos}")
        self.host = self.endpoint.host
        self.port = self.endpoint.port
        self.username = self.endpoint.username
        self.password = self.endpoint.password
        self.qos = qos
        self.protocol = protocol
        self.client_id = client_id or f"{client_id_prefix}-{secrets.token_hex(6)}"
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.reconnect_min = reconnect_min
        self.reconnect_max = reconnect_max
        self.keepalive = keepalive
        # A window beyond a few dozen buys nothing on a LAN, and costs: aiomqtt and paho both
        # scan their pending publishes on every publish and every acknowledgement.
        self.max_inflight = max(1, max_inflight)
        self.queue_size = queue_size
        self.description = (
            f"mqtt broker {self.host}:{self.port} (qos {qos}"
            + (", tls" if self.endpoint.tls else "")
            + ")"
        )
        self.reconnects = 0

        self._filters: dict[str, _Filter] = {}
        self._by_id: dict[int, _Filter] = {}
        self._next_id = 0
        # Serializes SUBSCRIBE/UNSUBSCRIBE with the resubscription after a reconnect.
        self._sub_lock = asyncio.Lock()
        self._client: _Client | None = None
        # Set when the current connection is lost; a fresh event per connection, so a
        # publish waiting for acknowledgements stops waiting as soon as its connection dies.
        self._lost = asyncio.Event()
        self._lost.set()
        self._up = asyncio.Event()
        # Set (with the reason) when the broker refuses us before we were ever connected in a
        # way retrying will not change: start() gives up at once instead of after its timeout.
        self._refused = asyncio.Event()
        self._refusal = ""
        self._task: asyncio.Task[None] | None = None
        self._last_error = "not connected yet"

    @property
    def address(self) -> str:
        """``host:port`` of the broker (no credentials), for messages."""
        return f"{self.host}:{self.port}"

    @property
    def connected(self) -> bool:
        """Whether the bus is connected to the broker now."""
        return self._client is not None

    @property
    def window(self) -> int:
        """How many publishes may await acknowledgement at once on the current connection."""
        client = self._client
        return min(self.max_inflight, client.receive_maximum if client else self.max_inflight)

    # -- connection ---------------------------------------------------------------------

    async def start(self) -> None:
        """Connect; keep trying for ``connect_timeout`` seconds, then ServiceUnavailable.

        Wrong credentials or an untrusted certificate raise BrokerRefused at once (saying
        what to check): retrying would not help. Once connected, a lost connection is
        retried forever, whatever the broker says.
        """
        if self._task is not None:
            return
        self._refused.clear()
        self._task = asyncio.create_task(self._run(), name=f"edgemeta-mqtt-{self.client_id}")
        up = asyncio.ensure_future(self._up.wait())
        refused = asyncio.ensure_future(self._refused.wait())
        try:
            await asyncio.wait(
                (up, refused), timeout=self.connect_timeout, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            up.cancel()
            refused.cancel()
        if self._up.is_set():
            return
        await self._stop_task()
        if self._refused.is_set():
            raise BrokerRefused(self._refusal)
        raise ServiceUnavailable(
            f"cannot connect to mqtt broker {self.address}: {self._last_error}"
        )

    async def close(self) -> None:
        """Disconnect and end every subscription."""
        await self._stop_task()
        self._last_error = "closed"
        for entry in list(self._filters.values()):
            for sub in entry.subs:
                sub._end()
        self._filters.clear()
        self._by_id.clear()

    async def _stop_task(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _new_client(self) -> _Client:
        v5 = self.protocol == "5"
        client = _Client(
            self.host,
            self.port,
            username=self.username,
            password=self.password,
            tls_context=self.endpoint.context,
            identifier=self.client_id,
            protocol=aiomqtt.ProtocolVersion.V5 if v5 else aiomqtt.ProtocolVersion.V311,
            # MQTT 5 has no clean-session flag: a clean start with the default session expiry
            # of 0 means the same (nothing survives the connection).
            clean_session=None if v5 else True,
            clean_start=True if v5 else mqtt.MQTT_CLEAN_START_FIRST_ONLY,  # paho: v5 only
            keepalive=self.keepalive,
            timeout=self.timeout,
            max_inflight_messages=self.max_inflight,
            # Without it, Nagle's algorithm holds our small packets (PUBACKs for what we
            # receive, the next PUBLISH) until the broker's delayed ACK: ~40 ms stalls that
            # cut a batch on a connection that also receives to a few hundred messages/s.
            socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
        )
        # Pipelined publishes are normal here, not a symptom worth a warning each time.
        client.pending_calls_threshold = 1 << 30
        return client

    async def _run(self) -> None:
        """Stay connected: connect, resubscribe, route messages; on loss, back off and retry."""
        backoff = self.reconnect_min
        down_since: float | None = None
        ever_connected = False
        logged_refusal = ""
        while True:
            client = self._new_client()
            lost = asyncio.Event()
            try:
                async with client:
                    self._client = client
                    self._lost = lost
                    await self._resubscribe(client)
                    self._up.set()
                    ever_connected = True
                    if down_since is not None:
                        self.reconnects += 1
                        log.warning(
                            "reconnected to mqtt broker %s after %.1fs",
                            self.address,
                            time.monotonic() - down_since,
                        )
                    down_since = None
                    logged_refusal = ""
                    backoff = self.reconnect_min
                    async for m in client.messages:
                        self._route(m)
            except aiomqtt.MqttError as exc:
                # aiomqtt's "Disconnected during message iteration" hides the cause.
                cause = exc.__cause__ or exc
                self._last_error = str(cause) or type(cause).__name__
                refusal = mqtt_refusal(exc, self.address)
                if isinstance(exc, _ClosedBeforeConnack) and self.endpoint.tls:
                    # Over TLS 1.3 a broker checks the client certificate after the handshake
                    # and just closes the connection: the only sign we get.
                    refusal = (
                        f"mqtt broker {self.address} closed the TLS connection before "
                        "accepting it; if it requires a client certificate, check "
                        "EDGEMETA_BUS_CERT_FILE and EDGEMETA_BUS_KEY_FILE (signed by a CA the "
                        "broker trusts)"
                    )
                if refusal is not None:
                    self._last_error = refusal
                    if not ever_connected:
                        self._refusal = refusal
                        self._refused.set()
                        return
                    if refusal != logged_refusal:
                        # Credentials changed under us: say so loudly, but keep trying (an
                        # operator may be fixing the broker's side right now).
                        log.error("%s; retrying", refusal)
                        logged_refusal = refusal
            except Exception as exc:
                # Whatever went wrong, this task must not die: without it the bus never
                # reconnects. Log it loudly and start over.
                self._last_error = f"unexpected error: {exc!r}"
                log.exception("mqtt connection to %s failed unexpectedly", self.address)
            finally:
                self._client = None
                self._up.clear()
                lost.set()
            if down_since is None:
                down_since = time.monotonic()
                log.warning(
                    "%s mqtt broker %s (%s); retrying",
                    "lost connection to" if ever_connected else "cannot connect to",
                    self.address,
                    self._last_error,
                )
            else:
                log.debug("mqtt broker %s still unreachable: %s", self.address, self._last_error)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self.reconnect_max)

    async def _resubscribe(self, client: aiomqtt.Client) -> None:
        """Subscribe again to every filter (the clean session forgot them)."""
        async with self._sub_lock:
            for entry in list(self._filters.values()):
                refusal = await self._subscribe_entry(client, entry)
                if refusal:
                    # The broker took it before; reconnecting would not change its mind.
                    log.warning("%s; its subscribers get nothing until it is accepted", refusal)

    def _route(self, m: aiomqtt.Message) -> None:
        """Hand an incoming message to the local subscriptions it is meant for."""
        payload = m.payload if isinstance(m.payload, bytes) else str(m.payload or "").encode()
        message = Message(m.topic.value, payload)
        ids = getattr(m.properties, "SubscriptionIdentifier", None) if m.properties else None
        if ids:
            entries = [e for i in ids if (e := self._by_id.get(i)) is not None]
        else:
            entries = [e for e in self._filters.values() if matches(e.topic_filter, message.topic)]
        for entry in entries:
            for sub in entry.subs:
                sub.offer(message)

    def _require(self) -> tuple[_Client, asyncio.Event]:
        client = self._client
        if client is None:
            raise ServiceUnavailable(
                f"mqtt broker {self.address} is not connected ({self._last_error})"
            )
        return client, self._lost

    # -- subscriptions ------------------------------------------------------------------

    async def subscribe(self, topic_filter: str) -> MqttSubscription:
        """Subscribe to an MQTT filter; returns once the broker has confirmed it."""
        if not valid_filter(topic_filter) or has_control_chars(topic_filter):
            raise ContractInvalid(f"invalid topic filter {topic_filter!r}")
        async with self._sub_lock:
            client, _ = self._require()
            sub = MqttSubscription(self, topic_filter, self.queue_size)
            entry = self._filters.get(topic_filter)
            if entry is not None:
                entry.subs.append(sub)
                return sub
            entry = _Filter(topic_filter, self._allocate_id(), [sub])
            # Registered before SUBSCRIBE so that nothing the broker sends right after its
            # SUBACK finds the filter missing.
            self._filters[topic_filter] = entry
            self._by_id[entry.sub_id] = entry
            try:
                refusal = await self._subscribe_entry(client, entry)
            except aiomqtt.MqttError as exc:
                self._forget(entry)
                raise ServiceUnavailable(
                    f"mqtt broker {self.address} did not confirm the subscription to "
                    f"{topic_filter!r}: {exc}"
                ) from None
            except BaseException:
                self._forget(entry)
                raise
            if refusal:
                self._forget(entry)
                raise ServiceUnavailable(refusal)
            return sub

    def _allocate_id(self) -> int:
        while True:
            self._next_id = self._next_id % _MAX_SUBSCRIPTION_ID + 1
            if self._next_id not in self._by_id:
                return self._next_id

    async def _subscribe_entry(self, client: aiomqtt.Client, entry: _Filter) -> str:
        """SUBSCRIBE and wait for the SUBACK: "" if granted, else why not (MqttError: no answer)."""
        properties = None
        if self.protocol == "5":
            properties = Properties(PacketTypes.SUBSCRIBE)  # type: ignore[no-untyped-call]
            properties.SubscriptionIdentifier = entry.sub_id
        granted = await client.subscribe(entry.topic_filter, qos=self.qos, properties=properties)
        for code in granted:
            failed = code.is_failure if isinstance(code, ReasonCode) else code >= 0x80
            if failed:
                return (
                    f"mqtt broker {self.address} refused the subscription to "
                    f"{entry.topic_filter!r} ({code})"
                )
        return ""

    def _forget(self, entry: _Filter) -> None:
        if self._filters.get(entry.topic_filter) is entry:
            del self._filters[entry.topic_filter]
        self._by_id.pop(entry.sub_id, None)

    async def _release(self, sub: MqttSubscription) -> None:
        """A local subscription closed: drop the MQTT subscription when it was the last one."""
        async with self._sub_lock:
            entry = self._filters.get(sub.filter)
            if entry is None or sub not in entry.subs:
                return
            entry.subs.remove(sub)
            if entry.subs:
                return
            self._forget(entry)
            client = self._client
            if client is None:
                return  # the broker forgot it with the connection
            # Best effort: if this fails the connection is going anyway, and messages for a
            # forgotten filter are no longer routed.
            with contextlib.suppress(aiomqtt.MqttError):
                await client.unsubscribe(entry.topic_filter)

    # -- publishing ---------------------------------------------------------------------

    async def _publish(
        self, messages: Sequence[tuple[str, bytes]]
    ) -> tuple[int, EdgeMetaError | None]:
        """Publish in order; the acknowledged prefix and why the rest was not (or None)."""
        if not messages:
            return 0, None
        messages, refused = valid_prefix(messages, _check_topic)
        client, lost = self._require()
        window = self.window
        tasks: list[asyncio.Task[None]] = []
        confirmed = 0
        error: EdgeMetaError | None = None
        lost_wait = asyncio.ensure_future(lost.wait())
        try:
            for topic, payload in messages:
                # Keep at most `window` unacknowledged: wait for the oldest before adding one.
                # (A bounded window also keeps aiomqtt's per-publish bookkeeping, linear in
                # the number of publishes pending, cheap.)
                if len(tasks) - confirmed >= window:
                    error = await self._settle(tasks[confirmed], lost_wait, messages[confirmed][0])
                    if error is not None:
                        break
                    confirmed += 1
                # Tasks start in creation order, and each hands its message to the client
                # before its first suspension, so the wire order is the batch order.
                tasks.append(
                    asyncio.create_task(
                        client.publish(topic, payload, qos=self.qos, timeout=math.inf)
                    )
                )
            while error is None and confirmed < len(tasks):
                error = await self._settle(tasks[confirmed], lost_wait, messages[confirmed][0])
                if error is None:
                    confirmed += 1
        finally:
            lost_wait.cancel()
            for task in tasks[confirmed:]:
                if task.done():
                    if not task.cancelled():
                        task.exception()  # retrieved: the shortfall is reported instead
                else:
                    task.cancel()
        if error is None and confirmed < len(messages):
            error = ServiceUnavailable(f"mqtt broker {self.address} connection was lost")
        return confirmed, error or refused

    async def _settle(
        self, task: asyncio.Task[None], lost: asyncio.Future[Any], topic: str
    ) -> EdgeMetaError | None:
        """Wait for one publish to be acknowledged; the error if it was not."""
        if not task.done():
            await asyncio.wait(
                (task, lost), timeout=self.timeout, return_when=asyncio.FIRST_COMPLETED
            )
        if not task.done():
            why = (
                "connection was lost" if lost.done() else f"no acknowledgement in {self.timeout:g}s"
            )
            return ServiceUnavailable(
                f"mqtt broker {self.address} did not acknowledge the message on {topic!r}: {why}"
            )
        exc = None if task.cancelled() else task.exception()
        if task.cancelled() or exc is not None:
            return ServiceUnavailable(
                f"mqtt broker {self.address} did not take the message on {topic!r}: "
                f"{exc or 'cancelled'}"
            )
        return None

    def has_subscribers(self, topic: str) -> bool | None:
        """Unknowable through a broker: None."""
        return None


def _check_topic(topic: str) -> str:
    """``topic``, or ContractInvalid for what MQTT forbids in a topic name (before sending)."""
    # Mosquitto drops the connection of a client that sends control characters (MQTT says
    # topics "SHOULD NOT" contain them); refusing them up front keeps one bad topic from
    # cutting everyone off.
    if not topic or "+" in topic or "#" in topic or has_control_chars(topic):
        raise ContractInvalid(f"invalid mqtt topic {topic!r}")
    if len(topic.encode()) > 65535:
        raise ContractInvalid(f"mqtt topic is longer than 65535 bytes: {topic[:80]!r}...")
    return topic
