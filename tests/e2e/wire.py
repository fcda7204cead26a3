"""What end-to-end event tests need on the broker side, written with the plain client libraries
(aiomqtt, paho-mqtt, nats-py), not edgemeta's adapters: the code under test must not also be
the code that checks it.

- Subscribers that record every message with its arrival time: live ones (a plain MQTT or core
  NATS subscription) and durable ones (an MQTT persistent session with QoS 1; a durable
  JetStream consumer) that miss nothing while they or the broker are away.
- The outbox as the service stored it (SQLite file or PostgreSQL schema): the truth a
  subscriber's events are compared with.
- A small HTTP client for the EdgeX API, with one ``X-Correlation-ID`` per request.
- The checks every test makes: duplicates dropped by ``tags.eventId``, per-record order.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiomqtt
import httpx
import nats
import nats.errors
import orjson
import paho.mqtt.client as paho
from nats.js.api import ConsumerConfig, StorageType, StreamConfig
from paho.mqtt.enums import CallbackAPIVersion

from tests.e2e.procs import ServeProcess, start

# -- what arrives ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    """One message as a subscriber got it (``topic`` in MQTT form, also for NATS)."""

    topic: str
    payload: bytes
    at_ns: int  # time.time_ns() on arrival

    @cached_property
    def envelope(self) -> dict[str, Any]:
        env: dict[str, Any] = orjson.loads(self.payload)
        return env

    @property
    def event(self) -> dict[str, Any]:
        """The SystemEvent in the envelope's payload."""
        ev: dict[str, Any] = self.envelope["payload"]
        return ev

    @property
    def event_id(self) -> str:
        return str(self.event["tags"]["eventId"])

    @property
    def revision(self) -> int:
        return int(self.event["tags"]["revision"])

    @property
    def record(self) -> tuple[str, str]:
        """The record the event is about: (type, name)."""
        return self.event["type"], self.event["details"]["name"]


def first_copies(messages: Sequence[Received]) -> list[Received]:
    """The messages with repeats dropped by ``tags.eventId`` (first copy kept), in order."""
    seen: set[str] = set()
    out = []
    for m in messages:
        if m.event_id not in seen:
            seen.add(m.event_id)
            out.append(m)
    return out


def out_of_order(messages: Sequence[Received]) -> list[str]:
    """Where a record's events arrive with a revision lower than one already seen (none: [])."""
    last: dict[tuple[str, str], int] = {}
    wrong = []
    for m in messages:
        key = m.record
        if m.revision < last.get(key, 0):
            wrong.append(f"{key}: revision {m.revision} after {last[key]}")
        last[key] = max(last.get(key, 0), m.revision)
    return wrong


# -- subscribers ----------------------------------------------------------------------------


class Subscriber:
    """Records what arrives; subclasses connect."""

    def __init__(self) -> None:
        self.messages: list[Received] = []
        self._lock = threading.Lock()  # the paho subscriber adds from its network thread

    def add(self, topic: str, payload: bytes) -> None:
        with self._lock:
            self.messages.append(Received(topic, payload, time.time_ns()))

    def snapshot(self) -> list[Received]:
        with self._lock:
            return list(self.messages)

    def unique(self) -> list[Received]:
        return first_copies(self.snapshot())

    async def wait_unique(self, n: int, within: float = 20.0) -> list[Received]:
        """Until ``n`` distinct events arrived; fails with what did arrive otherwise."""
        deadline = time.monotonic() + within
        while True:
            got = self.unique()
            if len(got) >= n:
                return got
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{len(got)} distinct events arrived within {within}s, not {n}"
                )
            await asyncio.sleep(0.02)

    async def quiet(self, wait: float = 0.5) -> list[Received]:
        """Everything, once nothing more arrived for ``wait`` seconds."""
        count = -1
        while count != len(self.messages):
            count = len(self.messages)
            await asyncio.sleep(wait)
        return self.snapshot()

    async def start(self) -> None:
        raise NotImplementedError

    async def stop(self) -> None:
        raise NotImplementedError


def host_port(url: str, default: int) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or default


class LiveMqtt(Subscriber):
    """A plain aiomqtt subscriber (MQTT 3.1.1, QoS 1, clean session), as EdgeX services use."""

    def __init__(self, url: str, filters: Sequence[str]) -> None:
        super().__init__()
        self.host, self.port = host_port(url, 1883)
        self.filters = list(filters)
        self._client: aiomqtt.Client | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._client = aiomqtt.Client(self.host, self.port, identifier=f"probe-{uuid.uuid4()}")
        await self._client.__aenter__()
        for f in self.filters:
            await self._client.subscribe(f, qos=1)
        self._task = asyncio.create_task(self._read(self._client))

    async def _read(self, client: aiomqtt.Client) -> None:
        async for m in client.messages:
            payload = m.payload if isinstance(m.payload, bytes) else str(m.payload).encode()
            self.add(m.topic.value, payload)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                await self._task
        if self._client is not None:
            with contextlib.suppress(aiomqtt.MqttError):
                await self._client.__aexit__(None, None, None)


class DurableMqtt(Subscriber):
    """A persistent MQTT session (clean session off, QoS 1) on paho's own network thread.

    paho acknowledges a QoS 1 message only after ``on_message`` returned, so whatever the
    broker counts as delivered to this client is in ``messages``: nothing acknowledged is lost
    in a client-side queue when the connection drops. It reconnects by itself; ``sessions``
    holds the broker's ``session present`` flag of every connection (True after a restart
    means the broker kept the subscription and the queued messages).
    """

    def __init__(self, url: str, filters: Sequence[str], client_id: str) -> None:
        super().__init__()
        self.host, self.port = host_port(url, 1883)
        self.filters = list(filters)
        self.sessions: list[bool] = []
        self._subscribed = threading.Event()
        self._client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=False,
            protocol=paho.MQTTv311,
        )
        # paho types the delays as int but sleeps for any number of seconds.
        self._client.reconnect_delay_set(0.05, 0.3)  # type: ignore[arg-type]
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = lambda *_: self._subscribed.set()
        self._client.on_message = lambda _c, _u, msg: self.add(msg.topic, bytes(msg.payload))

    def _on_connect(self, client: paho.Client, _u: Any, flags: Any, rc: Any, _p: Any) -> None:
        if rc.is_failure:
            return
        self.sessions.append(bool(flags.session_present))
        if not flags.session_present:
            client.subscribe([(f, 1) for f in self.filters])

    async def start(self) -> None:
        await asyncio.to_thread(self._client.connect, self.host, self.port, 30)
        self._client.loop_start()
        if not await asyncio.to_thread(self._subscribed.wait, 10):
            raise TimeoutError("the broker did not confirm the subscription")

    async def stop(self) -> None:
        self._client.disconnect()
        await asyncio.to_thread(self._client.loop_stop)


def subject(topic_filter: str) -> str:
    """An MQTT filter or topic as a NATS subject (EdgeX's mapping, for plain names)."""
    return topic_filter.replace("/", ".").replace("+", "*").replace("#", ">")


class LiveNats(Subscriber):
    """Plain core NATS subscriptions (``subjects`` in NATS form)."""

    def __init__(self, url: str, subjects: Sequence[str]) -> None:
        super().__init__()
        self.url = url
        self.subjects = list(subjects)
        self._nc: Any = None

    async def start(self) -> None:
        self._nc = await nats.connect(self.url)
        for s in self.subjects:
            await self._nc.subscribe(s, cb=self._on_msg)
        await self._nc.flush()

    async def _on_msg(self, msg: Any) -> None:
        self.add(msg.subject.replace(".", "/"), msg.data)

    async def stop(self) -> None:
        if self._nc is not None:
            await self._nc.close()


class DurableNats(Subscriber):
    """A durable JetStream pull consumer that acknowledges each message after recording it.

    It outlives a restart of the server (the consumer is stored with the stream) and picks up
    where its acknowledgements left off; an acknowledgement lost in the restart only means the
    message comes again, which the eventId check drops.
    """

    def __init__(self, url: str, stream: str, subjects: Sequence[str]) -> None:
        super().__init__()
        self.url = url
        self.stream = stream
        self.subjects = list(subjects)
        self._nc: Any = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._nc = await nats.connect(
            self.url, max_reconnect_attempts=-1, reconnect_time_wait=0.1, connect_timeout=2
        )
        js = self._nc.jetstream()
        # The stream exists before the service starts (the service then uses it as it is),
        # so the consumer sees every event from the first one.
        await js.add_stream(
            StreamConfig(name=self.stream, subjects=self.subjects, storage=StorageType.FILE)
        )
        psub = await js.pull_subscribe(
            self.subjects[0],
            durable="probe",
            stream=self.stream,
            config=ConsumerConfig(ack_wait=5),
        )
        self._task = asyncio.create_task(self._read(psub))

    async def _read(self, psub: Any) -> None:
        while True:
            try:
                batch = await psub.fetch(256, timeout=0.3)
            except (nats.errors.Error, OSError, TimeoutError):
                await asyncio.sleep(0.02)  # no message yet, or the server is away
                continue
            for m in batch:
                self.add(m.subject.replace(".", "/"), m.data)
                with contextlib.suppress(nats.errors.Error, OSError, TimeoutError):
                    await m.ack()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._nc is not None:
            with contextlib.suppress(Exception):
                await self._nc.close()


def system_event_subjects(prefix: str) -> list[str]:
    """The subjects of every system event under ``prefix`` (``a.>`` misses ``a`` itself)."""
    return [f"{prefix}.system-events.>", f"{prefix}.system-events"]


@contextlib.asynccontextmanager
async def jetstream_stream(url: str, prefix: str) -> AsyncIterator[str]:
    """A stream of the test's own capturing ``prefix``'s system events on a shared server,
    deleted afterwards. A service finds its subjects covered and leaves the server's own
    ``EDGEMETA`` stream alone."""
    name = f"E2E_{uuid.uuid4().hex[:12]}"
    nc = await nats.connect(url)
    js = nc.jetstream()
    await js.add_stream(
        StreamConfig(name=name, subjects=system_event_subjects(prefix), storage=StorageType.MEMORY)
    )
    try:
        yield name
    finally:
        with contextlib.suppress(Exception):
            await js.delete_stream(name)
        await nc.close()


@contextlib.asynccontextmanager
async def running(subscriber: Subscriber) -> AsyncIterator[Subscriber]:
    """A started subscriber, stopped afterwards."""
    await subscriber.start()
    try:
        yield subscriber
    finally:
        await subscriber.stop()


# -- the service ----------------------------------------------------------------------------


@contextlib.contextmanager
def serving(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> Iterator[ServeProcess]:
    """``edgemeta serve`` with ``args``, ready; stopped (or killed) afterwards."""
    p = start(tmp_path, *args, env=env)
    try:
        p.wait_ready(30)
        yield p
    finally:
        p.stop()


@dataclass(frozen=True)
class StoredEvent:
    """One outbox row: an event the service committed."""

    event_id: str
    type: str
    action: str
    owner: str
    record_key: str
    revision: int


def sqlite_outbox(db: Path) -> list[StoredEvent]:
    """Every event in an SQLite store's outbox, in commit order (readable while it runs)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            "SELECT event_id, type, action, owner, record_key, revision FROM outbox ORDER BY seq"
        ).fetchall()
    finally:
        conn.close()
    return [StoredEvent(*r) for r in rows]


async def postgres_outbox(url: str, schema: str) -> list[StoredEvent]:
    """Every event in a PostgreSQL schema's outbox, in insertion order."""
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            f'SELECT event_id, type, action, owner, record_key, revision FROM "{schema}".outbox'
            " ORDER BY seq"
        )
    finally:
        await conn.close()
    return [StoredEvent(*r) for r in rows]


# -- the API --------------------------------------------------------------------------------


@dataclass
class Api:
    """EdgeX API calls, each with a fresh ``X-Correlation-ID`` (kept in ``last_cid``)."""

    url: str
    http: httpx.AsyncClient = field(init=False)
    last_cid: str = ""

    def __post_init__(self) -> None:
        self.http = httpx.AsyncClient(base_url=self.url, timeout=30)

    async def close(self) -> None:
        await self.http.aclose()

    async def call(self, method: str, path: str, body: Any = None) -> httpx.Response:
        self.last_cid = str(uuid.uuid4())
        return await self.http.request(
            method, path, json=body, headers={"X-Correlation-ID": self.last_cid}
        )

    async def batch(
        self, method: str, path: str, key: str, items: list[dict[str, Any]]
    ) -> list[int]:
        """A batch request: the per-item status codes."""
        r = await self.call(method, path, [{"apiVersion": "v3", key: item} for item in items])
        assert r.status_code == 207, r.text
        return [int(x["statusCode"]) for x in r.json()]

    async def one(
        self, method: str, path: str, key: str, item: Mapping[str, Any]
    ) -> dict[str, Any]:
        """A one-item batch request: its result (``statusCode``, ``message``, ...)."""
        r = await self.call(method, path, [{"apiVersion": "v3", key: item}])
        assert r.status_code == 207, r.text
        result: dict[str, Any] = r.json()[0]
        return result


def service_doc(name: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "baseAddress": "http://127.0.0.1:59999",
        "adminState": "UNLOCKED",
        **extra,
    }


def profile_doc(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "deviceResources": [
            {"name": "temp", "properties": {"valueType": "Float32", "readWrite": "R"}}
        ],
        "deviceCommands": [
            {"name": "all", "readWrite": "R", "resourceOperations": [{"deviceResource": "temp"}]}
        ],
    }


def device_doc(name: str, service: str, profile: str) -> dict[str, Any]:
    return {
        "name": name,
        "serviceName": service,
        "profileName": profile,
        "adminState": "UNLOCKED",
        "operatingState": "UP",
        "protocols": {"other": {"Address": name}},
    }
