"""The NATS bus: core NATS for everything, JetStream for system events where the server has it.

**Subjects.** EdgeX maps topic levels to subject tokens (``/`` becomes ``.``) and MQTT wildcards
to NATS ones (``+`` becomes ``*``, ``#`` becomes ``>``). A level may hold characters a subject
token cannot (whitespace, ``.``, ``*``, ``>``); those are percent-encoded in the token
(``%20``, ``%2E``, ``%2A``, ``%3E``; control characters likewise) and decoded on receipt.
``%`` itself is left alone, on purpose: names that EdgeX escapes itself
(``EnableNameFieldEscape``, e.g. ``foo%2Ebar``) then give the very subject an EdgeX service
built in Go uses, so they still meet on the bus. The price is that such a level comes back
decoded (``foo.bar``), which is what unescaping the name would give anyway. An empty level
has no subject form and is refused. A filter ending in ``/#`` also matches its parent topic in
MQTT, so it becomes two NATS subscriptions (``a.>`` and ``a``).

**Delivery.** Core publishes are confirmed by a flush (a PING answered after the server has
processed everything before it). Topics covered by ``jetstream_subjects`` are published with
JetStream when the server has it: the server stores them in a stream (created if missing) and
acknowledges each one, which is at-least-once across consumer restarts. ``publish_batch``
sends everything in order without waiting, then counts the acknowledged prefix.

**Connection.** nats-py reconnects by itself (forever, ``reconnect_time_wait`` apart) and
re-establishes subscriptions. While it is disconnected, publishing raises
``ServiceUnavailable`` instead of letting the client buffer silently. Credentials and TLS come
from the URL and a :class:`~edgemeta.bus.security.BusSecurity`; with TLS asked for, a server
that does not require TLS is refused before the credentials are sent (nats-py would otherwise
carry on in clear).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import re
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription as NatsSub
from nats.js import JetStreamContext
from nats.js.api import StorageType, StreamConfig

from edgemeta.bus.security import BrokerRefused, BusSecurity, endpoint, nats_refusal
from edgemeta.bus.shared import BatchPublisher, QueueSubscription, valid_prefix
from edgemeta.bus.topics import valid_filter
from edgemeta.domain.errors import (
    ContractInvalid,
    EdgeMetaError,
    LimitExceeded,
    ServiceUnavailable,
)
from edgemeta.ports import Message

log = logging.getLogger("edgemeta.bus.nats")

DEFAULT_PORT = 4222

# Characters a subject token cannot carry: the separator, the wildcards, and whitespace and
# control characters (the protocol splits on whitespace; CR/LF would end the command).
_ESCAPED = frozenset(" .*>\x7f" + "".join(chr(c) for c in range(0x20)))
_ESCAPE_TABLE = str.maketrans({c: f"%{ord(c):02X}" for c in _ESCAPED})
_NEEDS_ESCAPE = re.compile("[" + re.escape("".join(sorted(_ESCAPED))) + "]")
_UNESCAPE = re.compile("%(" + "|".join(f"{ord(c):02X}" for c in sorted(_ESCAPED)) + ")")


# -- topic <-> subject ----------------------------------------------------------------------


def level_to_token(level: str) -> str:
    """One topic level as a subject token (forbidden characters percent-encoded)."""
    if not level:
        raise ContractInvalid("a topic level is empty, which a nats subject cannot carry")
    return level.translate(_ESCAPE_TABLE)


def token_to_level(token: str) -> str:
    """The topic level a subject token stands for (the inverse of :func:`level_to_token`)."""
    if "%" not in token:
        return token
    return _UNESCAPE.sub(lambda m: chr(int(m.group(1), 16)), token)


def topic_to_subject(topic: str) -> str:
    """The subject a topic is published on: ``a/b c/d`` → ``a.b%20c.d``."""
    if not topic or "//" in topic or topic[0] == "/" or topic[-1] == "/":
        raise ContractInvalid(f"topic {topic!r} has an empty level")
    if _NEEDS_ESCAPE.search(topic) is None:
        return topic.replace("/", ".")  # the usual case, and the hot path of publishing
    return ".".join(lv.translate(_ESCAPE_TABLE) for lv in topic.split("/"))


def subject_to_topic(subject: str) -> str:
    """The topic a received subject stands for: ``a.b%20c.d`` → ``a/b c/d``."""
    return "/".join(token_to_level(t) for t in subject.split("."))


def filter_to_subjects(topic_filter: str) -> list[str]:
    """The NATS subscriptions covering an MQTT filter (two when it ends in ``/#``)."""
    if not valid_filter(topic_filter):
        raise ContractInvalid(f"invalid topic filter {topic_filter!r}")
    levels = topic_filter.split("/")
    tokens = [
        "*" if lv == "+" else ">" if lv == "#" else level_to_token(lv) if lv else ""
        for lv in levels
    ]
    if "" in tokens:
        raise ContractInvalid(f"topic filter {topic_filter!r} has an empty level")
    subjects = [".".join(tokens)]
    if len(tokens) > 1 and tokens[-1] == ">":
        # MQTT's "a/#" matches "a" itself; NATS's "a.>" needs at least one more token.
        subjects.append(".".join(tokens[:-1]))
    return subjects


def subject_matches(subject_filter: str, subject: str) -> bool:
    """Whether ``subject`` matches the NATS ``subject_filter`` (``*`` one token, ``>`` the rest)."""
    f = subject_filter.split(".")
    s = subject.split(".")
    for i, tok in enumerate(f):
        if tok == ">":
            return len(s) > i
        if i >= len(s) or (tok != "*" and tok != s[i]):
            return False
    return len(f) == len(s)


def subject_covers(outer: str, inner: str) -> bool:
    """Whether every subject matching filter ``inner`` also matches filter ``outer``."""
    o = outer.split(".")
    n = inner.split(".")
    for i, tok in enumerate(o):
        if tok == ">":
            return len(n) > i
        if i >= len(n) or n[i] == ">":
            return False
        if tok != "*" and (n[i] == "*" or n[i] != tok):
            return False
    return len(o) == len(n)


# -- subscriptions -----------------------------------------------------------------------


class NatsSubscription(QueueSubscription):
    """Messages matching one filter, queued until read (bounded; the oldest are dropped)."""

    def __init__(self, bus: NatsBus, topic_filter: str, queue_size: int) -> None:
        super().__init__(topic_filter, queue_size)
        self.bus = bus
        self.nats_subs: list[NatsSub] = []

    async def _on_msg(self, msg: Msg) -> None:
        self.offer(Message(subject_to_topic(msg.subject), msg.data))

    async def close(self) -> None:
        """Stop receiving."""
        if self.closed:
            return
        self._end()
        self.bus._subs.discard(self)
        for s in self.nats_subs:
            # Fails only when the connection is closed or draining, when it no longer matters.
            with contextlib.suppress(nats.errors.Error):
                await s.unsubscribe()


# -- the bus -------------------------------------------------------------------------------


class _Client(NatsClient):
    """nats-py's client, refusing to send CONNECT (the credentials) in clear when TLS is wanted.

    nats-py upgrades to TLS only when the server's INFO says ``tls_required``; against a
    server without TLS it would quietly go on unencrypted.
    """

    require_tls = False

    def _connect_command(self) -> bytes:
        if self.require_tls and not self._server_info.get("tls_required"):
            raise nats.errors.Error(
                "nats: the server does not require tls, but edgemeta was told to use tls "
                "(EDGEMETA_BUS_TLS, a tls:// url or a CA file); not sending credentials in clear"
            )
        return super()._connect_command()


class NatsBus(BatchPublisher):
    """Publish/subscribe through a NATS server, with JetStream for the configured subjects."""

    peer = "nats server"
    _log = log

    def __init__(
        self,
        url: str,
        *,
        jetstream_subjects: list[str] | None = None,
        stream: str = "EDGEMETA",
        stream_max_age: float = 7 * 24 * 3600,
        timeout: float = 5.0,
        connect_timeout: float = 10.0,
        reconnect_time_wait: float = 1.0,
        name: str = "edgemeta",
        queue_size: int = 10_000,
        security: BusSecurity | None = None,
    ) -> None:
        """Configure: ``url`` is ``nats://[user:pass@|token@]host[:port]`` (``tls://`` for
        TLS); ``security`` adds credentials and TLS options. No network I/O, but the TLS files
        are read now, so a wrong path fails here.

        ``jetstream_subjects`` are topic filters (e.g. ``edgex/system-events/#``) whose
        messages go through JetStream into ``stream`` (kept ``stream_max_age`` seconds).
        ``timeout`` bounds each wait for the server; ``connect_timeout`` is how long ``start``
        keeps trying before giving up.
        """
        self.endpoint = endpoint(
            url,
            security,
            plain="nats",
            secure="tls",
            plain_port=DEFAULT_PORT,
            secure_port=DEFAULT_PORT,
        )
        self.host = self.endpoint.host
        self.port = self.endpoint.port
        # Credentials go as connect options, never inside the URL nats-py may log.
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.url = f"nats://{host}:{self.port}"
        self.jetstream_filters = list(jetstream_subjects or [])
        for f in self.jetstream_filters:
            filter_to_subjects(f)  # fail now on a malformed filter, not at start
        self.stream = stream
        self.stream_max_age = stream_max_age
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.reconnect_time_wait = reconnect_time_wait
        self.name = name
        self.queue_size = queue_size
        self.description = f"nats server {self.host}:{self.port}" + (
            " (tls)" if self.endpoint.tls else ""
        )
        self.reconnects = 0
        #: The subject filters published through JetStream (known after ``start``).
        self.jetstream: list[str] = []

        self._nc: NatsClient | None = None
        self._js: JetStreamContext | None = None
        self._subs: set[NatsSubscription] = set()
        self._js_cache: dict[str, bool] = {}
        # Set when JetStream said no stream takes a subject (deleted behind our back, or
        # JetStream turned off): the next publish sets JetStream up again first.
        self._js_recheck = False
        self._closing = False
        # Set when the connection is lost; replaced on reconnect, so a publish waiting for
        # acknowledgements notices the loss of its own connection at once.
        self._lost = asyncio.Event()
        self._lost.set()
        # The reason, when the server refused us for good while start() was connecting.
        self._refusal = ""
        self._refused = asyncio.Event()
        self._starting = False
        self._logged_refusal = ""

    @property
    def address(self) -> str:
        """``host:port`` of the server (no credentials), for messages."""
        return f"{self.host}:{self.port}"

    @property
    def connected(self) -> bool:
        """Whether the bus is connected to the server now."""
        return self._nc is not None and self._nc.is_connected

    # -- connection ---------------------------------------------------------------------

    async def start(self) -> None:
        """Connect (trying for ``connect_timeout`` seconds) and set up JetStream if present.

        Wrong credentials or an untrusted certificate raise BrokerRefused at once (saying
        what to check); once connected, a lost connection is retried forever.
        """
        if self._nc is not None:
            return
        nc = _Client()
        nc.require_tls = self.endpoint.tls
        ep = self.endpoint
        auth: dict[str, Any] = {}
        if ep.username is not None and ep.password is None:
            auth["token"] = ep.username  # nats://token@host
        elif ep.username is not None:
            auth.update(user=ep.username, password=ep.password)
        if ep.context is not None:
            auth.update(tls=ep.context, tls_hostname=ep.host)
        self._refused.clear()
        self._starting = True
        # With unlimited reconnects nats-py also retries the first connection forever, so the
        # deadline is ours; a refusal (seen by the error callback) ends the wait early.
        connecting = asyncio.ensure_future(
            nc.connect(
                servers=[self.url],
                name=self.name,
                allow_reconnect=True,
                max_reconnect_attempts=-1,
                reconnect_time_wait=self.reconnect_time_wait,  # type: ignore[arg-type]
                connect_timeout=max(1, round(self.timeout)),
                disconnected_cb=self._on_disconnected,
                reconnected_cb=self._on_reconnected,
                error_cb=self._on_error,
                **auth,
            )
        )
        refused = asyncio.ensure_future(self._refused.wait())
        try:
            await asyncio.wait(
                (connecting, refused),
                timeout=self.connect_timeout,
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            self._starting = False
            refused.cancel()
            if not connecting.done():
                connecting.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await connecting
            if connecting.cancelled() or connecting.exception() is not None:
                # Not connected (refused, out of time, or our own task cancelled): the
                # half-made client must not linger with its reconnection task.
                self._closing = True  # nothing was connected: no "lost connection" warning
                with contextlib.suppress(Exception):
                    await nc.close()
        if self._refused.is_set():
            raise BrokerRefused(self._refusal)
        if connecting.cancelled() or connecting.exception() is not None:
            failure = None if connecting.cancelled() else connecting.exception()
            failure = failure or nc.last_error
            why = _describe(failure) if failure is not None else "no connection in time"
            raise ServiceUnavailable(f"cannot connect to nats server {self.address}: {why}")
        self._nc = nc
        self._lost = asyncio.Event()
        self._closing = False
        # No cap on outstanding JetStream publishes beyond the batch itself: the relay's
        # batches are bounded, and a cap would stall a batch with no way to time out cheaply.
        self._js = nc.jetstream(timeout=self.timeout, publish_async_max_pending=1 << 30)
        await self._setup_jetstream(self._js)

    async def close(self) -> None:
        """Disconnect and end every subscription."""
        self._closing = True
        for sub in list(self._subs):
            sub._end()
        self._subs.clear()
        nc, self._nc, self._js = self._nc, None, None
        self._lost.set()
        if nc is None:
            return
        try:
            await nc.close()
        except (nats.errors.Error, OSError, TimeoutError):
            pass
        except asyncio.CancelledError:
            # nats-py cancels its reconnection task while that task awaits the socket's close
            # waiter, which cancels the waiter that close() then awaits too. Only a
            # cancellation of our own task is real.
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise

    async def _on_disconnected(self) -> None:
        self._lost.set()
        if not self._closing:
            log.warning("lost connection to nats server %s; reconnecting", self.address)

    async def _on_reconnected(self) -> None:
        self._lost = asyncio.Event()
        self._logged_refusal = ""
        self.reconnects += 1
        log.warning("reconnected to nats server %s", self.address)

    async def _on_error(self, exc: Exception) -> None:
        # Called for every failed (re)connection attempt too: the disconnect was logged
        # already, so only a refusal is worth more than a debug line.
        refusal = nats_refusal(exc, self.address)
        if refusal is not None and self._starting:
            self._refusal = refusal
            self._refused.set()
        elif refusal is not None and refusal != self._logged_refusal:
            log.error("%s; retrying", refusal)
            self._logged_refusal = refusal
        else:
            log.debug("nats server %s: %r", self.address, exc)

    async def _setup_jetstream(self, js: JetStreamContext) -> None:
        """Make sure a stream captures the JetStream subjects; fall back to core without one."""
        self.jetstream = []
        self._js_cache.clear()
        if not self.jetstream_filters:
            return
        wanted = [s for f in self.jetstream_filters for s in filter_to_subjects(f)]
        try:
            await js.account_info()
        except (nats.errors.Error, TimeoutError) as exc:
            log.info(
                "nats server %s has no jetstream (%r): system events go over core nats",
                self.address,
                exc,
            )
            return
        try:
            streams = await js.streams_info()
            existing = [s for info in streams for s in info.config.subjects or []]
            missing = [w for w in wanted if not any(subject_covers(s, w) for s in existing)]
            if missing:
                ours = next((i for i in streams if i.config.name == self.stream), None)
                if ours is not None:
                    subjects = [*(ours.config.subjects or []), *missing]
                    await js.update_stream(config=replace(ours.config, subjects=subjects))
                else:
                    await js.add_stream(
                        config=StreamConfig(
                            name=self.stream,
                            subjects=missing,
                            max_age=self.stream_max_age,
                            storage=StorageType.FILE,
                        )
                    )
                log.info(
                    "jetstream stream %s on %s now captures %s",
                    self.stream,
                    self.address,
                    ", ".join(missing),
                )
        except (nats.errors.Error, TimeoutError) as exc:
            # E.g. the subjects overlap another stream's without being covered by it. Core
            # publishing still delivers to live subscribers; say so instead of failing.
            log.warning(
                "cannot set up jetstream stream %s on %s (%r): %s go over core nats",
                self.stream,
                self.address,
                exc,
                ", ".join(wanted),
            )
            return
        self.jetstream = wanted
        self._js_cache.clear()

    def _require(self) -> tuple[NatsClient, asyncio.Event]:
        nc = self._nc
        if nc is None or not nc.is_connected:
            state = "not started" if nc is None else "reconnecting"
            raise ServiceUnavailable(f"nats server {self.address} is not connected ({state})")
        return nc, self._lost

    async def _flush(self, nc: NatsClient, lost: asyncio.Event) -> None:
        """Wait until the server has processed everything sent so far (a PING's PONG)."""
        try:
            await _race(nc.flush(max(1, round(self.timeout))), lost)
        except nats.errors.TimeoutError:
            # On a flush timeout nats-py cancels the PONG future it was waiting for, and when
            # the PONG does come, setting that future kills the client's read loop (nats-py
            # 2.16): the connection would look up but hear nothing. A server that does not
            # answer within the timeout is treated as gone instead: a fresh connection.
            log.warning(
                "nats server %s did not answer within %gs; reconnecting", self.address, self.timeout
            )
            await nc.force_reconnect()
            raise

    # -- subscriptions ------------------------------------------------------------------

    async def subscribe(self, topic_filter: str) -> NatsSubscription:
        """Subscribe to an MQTT-style filter; returns once the server has registered it."""
        subjects = filter_to_subjects(topic_filter)
        nc, lost = self._require()
        sub = NatsSubscription(self, topic_filter, self.queue_size)
        try:
            for subject in subjects:
                sub.nats_subs.append(await nc.subscribe(subject, cb=sub._on_msg))
            # SUB has no acknowledgement; a flush returns once the server has processed it,
            # so a message published after this returns (from anywhere) is delivered.
            await self._flush(nc, lost)
        except (nats.errors.Error, _Lost, TimeoutError) as exc:
            await sub.close()
            raise ServiceUnavailable(
                f"nats server {self.address} did not confirm the subscription to "
                f"{topic_filter!r}: {_describe(exc)}"
            ) from None
        self._subs.add(sub)
        return sub

    # -- publishing ---------------------------------------------------------------------

    def uses_jetstream(self, subject: str) -> bool:
        """Whether messages on ``subject`` are published through JetStream."""
        known = self._js_cache.get(subject)
        if known is None:
            known = any(subject_matches(f, subject) for f in self.jetstream)
            if len(self._js_cache) >= 10_000:
                self._js_cache.clear()  # topics repeat a lot; a crude bound is enough
            self._js_cache[subject] = known
        return known

    async def _publish(
        self, messages: Sequence[tuple[str, bytes]]
    ) -> tuple[int, EdgeMetaError | None]:
        """Publish in order; the confirmed prefix and why the rest was not (or None)."""
        if not messages:
            return 0, None
        # A topic or payload NATS cannot carry ends the batch there: what comes before still
        # goes (the first one alone is an error).
        prepared, refused = valid_prefix(messages, topic_to_subject)
        error: EdgeMetaError | None = refused
        nc, lost = self._require()
        js = self._js
        if self._js_recheck and js is not None:
            self._js_recheck = False
            await self._setup_jetstream(js)
        limit = nc.max_payload
        for i, (_, payload) in enumerate(prepared):
            if len(payload) > limit:
                error = LimitExceeded(
                    f"message on {messages[i][0]!r} is {len(payload)} bytes, over nats server "
                    f"{self.address}'s limit of {limit}"
                )
                prepared = prepared[:i]
                break
        confirmed = 0
        # Consecutive messages of one kind go together; a run starts only once the previous
        # one is confirmed, which keeps the order between core and JetStream messages.
        for use_js, group in itertools.groupby(prepared, key=lambda m: self.uses_jetstream(m[0])):
            run = list(group)
            if use_js and js is not None:
                n, run_error = await self._publish_js(nc, js, run, lost)
            else:
                n, run_error = await self._publish_core(nc, run, lost)
            confirmed += n
            if run_error is not None:
                return confirmed, run_error
        return confirmed, error

    async def _publish_core(
        self, nc: NatsClient, run: list[tuple[str, bytes]], lost: asyncio.Event
    ) -> tuple[int, EdgeMetaError | None]:
        """Core publishes, then one flush: all of them confirmed, or none."""
        try:
            for subject, payload in run:
                await nc.publish(subject, payload)
            await self._flush(nc, lost)
        except (nats.errors.Error, _Lost, TimeoutError) as exc:
            return 0, ServiceUnavailable(
                f"nats server {self.address} did not confirm {len(run)} message(s) "
                f"from {subject_to_topic(run[0][0])!r} on: {_describe(exc)}"
            )
        return len(run), None

    async def _publish_js(
        self,
        nc: NatsClient,
        js: JetStreamContext,
        run: list[tuple[str, bytes]],
        lost: asyncio.Event,
    ) -> tuple[int, EdgeMetaError | None]:
        """JetStream publishes, all sent before any acknowledgement is awaited."""
        futures: list[asyncio.Future[Any]] = []
        error: EdgeMetaError | None = None
        try:
            for subject, payload in run:
                if lost.is_set():
                    break
                futures.append(await js.publish_async(subject, payload))
        except nats.errors.Error as exc:
            error = ServiceUnavailable(
                f"nats server {self.address} did not take a jetstream message: {_describe(exc)}"
            )
        confirmed = 0
        lost_wait = asyncio.ensure_future(lost.wait())
        try:
            for fut in futures:
                if not fut.done():
                    await asyncio.wait(
                        (fut, lost_wait), timeout=self.timeout, return_when=asyncio.FIRST_COMPLETED
                    )
                if not fut.done():
                    why = (
                        "connection was lost"
                        if lost_wait.done()
                        else f"no acknowledgement in {self.timeout:g}s"
                    )
                    error = ServiceUnavailable(
                        f"nats server {self.address} did not acknowledge the jetstream message "
                        f"on {subject_to_topic(run[confirmed][0])!r}: {why}"
                    )
                    break
                failure = None if fut.cancelled() else fut.exception()
                if isinstance(failure, nats.js.errors.NoStreamResponseError):
                    self._js_recheck = True
                if fut.cancelled() or failure is not None:
                    error = ServiceUnavailable(
                        f"jetstream on nats server {self.address} refused the message on "
                        f"{subject_to_topic(run[confirmed][0])!r}: {_describe(failure)}"
                    )
                    break
                confirmed += 1
        finally:
            lost_wait.cancel()
            for fut in futures[confirmed:]:
                if fut.done():
                    if not fut.cancelled():
                        fut.exception()  # retrieved: the shortfall is reported instead
                else:
                    fut.cancel()  # also releases its slot in the client's pending table
        if error is None and confirmed < len(run):
            error = ServiceUnavailable(f"nats server {self.address} connection was lost")
        return confirmed, error

    def has_subscribers(self, topic: str) -> bool | None:
        """Unknowable through a server: None."""
        return None


class _Lost(Exception):
    """The connection went away while waiting."""


async def _race(awaitable: Any, lost: asyncio.Event) -> None:
    """Await ``awaitable``, but give up with _Lost as soon as ``lost`` is set."""
    task = asyncio.ensure_future(awaitable)
    lost_wait = asyncio.ensure_future(lost.wait())
    try:
        await asyncio.wait((task, lost_wait), return_when=asyncio.FIRST_COMPLETED)
    finally:
        lost_wait.cancel()
        unfinished = not task.done()
        if unfinished:
            # A flush's PING is orphaned by a reconnect and would wait out its timeout.
            task.cancel()
    if unfinished:
        raise _Lost("connection was lost")
    task.result()


def _describe(exc: BaseException | None) -> str:
    """An exception as a short lower-case phrase for an error message."""
    if exc is None:
        return "cancelled"
    return (str(exc) or type(exc).__name__).removeprefix("nats: ")
