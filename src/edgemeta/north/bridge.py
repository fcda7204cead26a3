"""The north bridge: serves core-command's requests from an external MQTT broker.

It keeps its own connection to the external broker (an :class:`~edgemeta.bus.mqtt.MqttBus`:
reconnects with back-off and subscribes again after every reconnect), subscribes to the query
and command request topics, and serves each request in a task of its own (at most
``max_in_flight`` at once; the next waits for a free slot, so a flood queues in the bus's
bounded subscription instead of piling up tasks). Each request goes

1. topic and envelope read (:mod:`edgemeta.north.wire`): one that names no answer topic is
   logged and dropped (EdgeX does the same); any other malformed request is answered 400;
2. with authentication on, the credential in ``queryParams`` authenticated (401) and the
   principal's roles checked against ``roles.NORTH``, the same rules as the REST routes (403),
   before anything else happens;
3. served by the same use case as core-command's REST route (:mod:`edgemeta.usecases.commands`:
   404, 409 after the move wait, 423, 400, 503, 504 and the device service's own answer);
4. answered: publishing is retried while the broker is away, for up to ``answer_retry``
   seconds; an answer that still could not go is logged as an error, never dropped silently.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any

import orjson

from edgemeta.api.errors import status_of
from edgemeta.api.query import DEFAULT_LIMIT, MAX_OFFSET, int_param
from edgemeta.api.responses import base
from edgemeta.api.routes.command import command_query, device_core_command
from edgemeta.bus.security import BrokerRefused
from edgemeta.domain.errors import (
    ContractInvalid,
    EdgeMetaError,
    LimitExceeded,
    ServiceUnavailable,
)
from edgemeta.north import wire
from edgemeta.ports import Bus, ListQuery, Message, Subscription
from edgemeta.security.authn import Authenticator, NotAuthenticated
from edgemeta.security.principal import OPEN, Principal, act_as, reset
from edgemeta.security.roles import NORTH
from edgemeta.security.tokens import IssuerUnavailable
from edgemeta.usecases import commands as uc

log = logging.getLogger("edgemeta.north")


@dataclass(frozen=True, slots=True)
class NorthSettings:
    """How the bridge serves (``EDGEMETA_NORTH_*`` settings)."""

    topics: wire.Topics = field(default_factory=wire.Topics)
    max_in_flight: int = 64
    max_bytes: int = 16 * 1024 * 1024  # the largest request envelope (EDGEMETA_MAX_REQUEST_BYTES)
    command_url: str = "http://127.0.0.1:59882"  # the ``url`` of each listed core command
    answer_retry: float = 30.0  # seconds an answer is retried while the broker is away
    connect_retry_max: float = 30.0  # the longest wait between two connection attempts


class _Refusal(Exception):
    """A request refused before the use case: its status and message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class NorthBridge:
    """core-command over an external MQTT broker (see the module docstring)."""

    def __init__(
        self,
        cd: uc.CommandDeps,
        bus: Bus,
        settings: NorthSettings | None = None,
        authenticator: Authenticator | None = None,
    ) -> None:
        self.cd = cd
        self.bus = bus
        self.settings = settings or NorthSettings()
        self.authenticator = authenticator
        self.ready = asyncio.Event()  # set once both request topics are subscribed
        self.answered = 0
        self.dropped = 0  # requests that named no answer topic, or whose answer was lost
        self._slots = asyncio.Semaphore(self.settings.max_in_flight)
        self._tasks: set[asyncio.Task[None]] = set()
        self._runner: asyncio.Task[None] | None = None

    @property
    def description(self) -> str:
        """Where the bridge listens, for the start log line."""
        t = self.settings.topics
        return f"{self.bus.description}, {t.query_request} and {t.command_request}"

    def start(self) -> None:
        """Connect and serve in the background (a broker that is down is retried)."""
        if self._runner is None:
            self._runner = asyncio.create_task(self._run(), name="edgemeta-north")
            self._runner.add_done_callback(_report)

    async def stop(self, grace: float = 2.0) -> None:
        """Stop taking requests, give those in flight ``grace`` seconds to be answered, close."""
        runner, self._runner = self._runner, None
        if runner is not None:
            runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await runner
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=grace)
            for task in pending:
                task.cancel()
            for task in pending:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if pending:
                log.warning("north: %d requests were still in flight at stop", len(pending))
        await self.bus.close()

    # -- connection -----------------------------------------------------------------------

    async def _connect(self) -> tuple[Subscription, Subscription]:
        """Connect and subscribe; retried (with back-off) until it works."""
        delay = 0.5
        topics = self.settings.topics
        while True:
            try:
                await self.bus.start()
                queries = await self.bus.subscribe(topics.query_request)
                try:
                    commands = await self.bus.subscribe(topics.command_request)
                except BaseException:
                    await queries.close()
                    raise
                return queries, commands
            except BrokerRefused as exc:
                # A configuration error (credentials, certificates): loud, but retried, since
                # the operator may be fixing the broker's side; core-metadata runs on meanwhile.
                log.error("north: %s; retrying", exc.message)
            except ServiceUnavailable as exc:
                log.warning("north: %s; retrying", exc.message)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.settings.connect_retry_max)

    async def _run(self) -> None:
        queries, commands = await self._connect()
        log.info("north: serving commands from %s", self.description)
        self.ready.set()
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self._take(queries, self.settings.topics.query_request))
                group.create_task(self._take(commands, self.settings.topics.command_request))
        finally:
            self.ready.clear()
            await queries.close()
            await commands.close()

    async def _take(self, sub: Subscription, topic_filter: str) -> None:
        """Hand each request of one subscription to a task of its own, within the slots."""
        lost = 0
        async for message in sub:
            # The adapters' subscriptions count what their bounded queue had to drop.
            dropped: int = getattr(sub, "dropped", 0)
            if dropped != lost:
                # The subscription's queue overflowed: those requests got no answer.
                log.error(
                    "north: %d requests on %s were dropped unanswered (more than the queue "
                    "holds arrived while %d were being served)",
                    dropped - lost,
                    topic_filter,
                    self.settings.max_in_flight,
                )
                self.dropped += dropped - lost
                lost = dropped
            await self._slots.acquire()
            task = asyncio.create_task(self._serve(message))
            self._tasks.add(task)
            task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._slots.release()

    # -- one request ----------------------------------------------------------------------

    async def _serve(self, message: Message) -> None:
        try:
            reply = await self.handle(message)
        except Exception:  # a bug must not end the bridge; the request is at least logged
            log.exception("north: unexpected error serving a request on %s", message.topic)
            self.dropped += 1
            return
        if reply is None:
            self.dropped += 1
            return
        await self._publish(*reply)

    async def handle(self, message: Message) -> tuple[str, bytes] | None:
        """The answer to one request (its topic and envelope), or None: it names no answer
        topic, so it is logged and dropped."""
        r = wire.route(self.settings.topics, message.topic)
        if r is None:
            log.warning(
                "north: dropped a request on %r: no answer topic can be derived (expected "
                "<command request topic>/<device>/<command>/<get|set>)",
                message.topic,
            )
            return None
        request_id = ""
        correlation_id = ""
        try:
            if len(message.payload) > self.settings.max_bytes:
                # As the REST port refuses a body over EDGEMETA_MAX_REQUEST_BYTES. Only the
                # requestID is read (one linear parse), so the application can match the 413.
                request_id = wire.request_id_of(message.payload)
                raise LimitExceeded(
                    f"the request is {len(message.payload)} bytes, more than the "
                    f"{self.settings.max_bytes} allowed"
                )
            if r.problem:
                request_id = wire.request_id_of(message.payload)
                raise ContractInvalid(r.problem)
            try:
                request = wire.read_request(message.payload)
            except ContractInvalid:
                request_id = wire.request_id_of(message.payload)
                raise
            request_id, correlation_id = request.request_id, request.correlation_id
            principal = await self._principal(r, request)
            token = act_as(principal)
            try:
                status, body = await self._call(r, request)
            finally:
                reset(token)
        except _Refusal as exc:
            status, body = exc.status, wire.error_body(exc.status, exc.message, request_id)
        except EdgeMetaError as exc:
            status = status_of(exc)
            body = wire.error_body(status, exc.message, request_id)
        except Exception:
            log.exception("north: unexpected error serving %s on %s", r.operation, message.topic)
            status = 500
            body = wire.error_body(500, "unexpected server error; see the service log", request_id)
        if status >= 400:
            log.info(
                "north: %s on %s answered %d (request %s)",
                r.operation,
                message.topic,
                status,
                request_id or "without id",
            )
        return r.reply_topic, wire.answer(r.reply_topic, request_id, correlation_id, status, body)

    async def _principal(self, r: wire.Route, request: wire.Request) -> Principal:
        """Who asks (OPEN with authentication off); 401 or 403 before anything is done."""
        auth = self.authenticator
        if auth is None:
            return OPEN
        authorization, api_key = wire.credentials(request.query)
        try:
            principal = await auth.authenticate(authorization, api_key)
        except NotAuthenticated as exc:
            raise _Refusal(401, exc.message) from None
        except IssuerUnavailable as exc:
            raise _Refusal(503, str(exc)) from None
        _, rule = NORTH[r.operation.value]
        if not rule.allows(principal.roles):
            log.info(
                "north: refused %s of %r to %s (roles %s)",
                r.operation,
                r.device,
                principal.subject,
                sorted(principal.roles),
            )
            raise _Refusal(
                403,
                f"a command {r.operation} needs one of the roles "
                f"{', '.join(sorted(rule.roles))}; {principal.subject} has "
                f"{', '.join(sorted(principal.roles)) or 'none'}",
            )
        return principal

    async def _call(self, r: wire.Route, request: wire.Request) -> tuple[int, bytes]:
        """The use case's answer, as core-command's REST route gives it."""
        if r.operation is wire.Operation.QUERY:
            return 200, orjson.dumps(await self._query(r.device, request))
        values: dict[str, Any] | None = None
        if r.operation is wire.Operation.SET:
            if not isinstance(request.payload, dict):
                raise ContractInvalid(
                    "a set request's payload is a JSON object of resource names and values: "
                    '{"resource": "value"} (base64, or embedded)'
                )
            values = request.payload
        answer = await uc.issue(
            self.cd,
            r.device,
            r.command,
            "set" if r.operation is wire.Operation.SET else "get",
            values,
            command_query(request.query),
            request.correlation_id,
        )
        return answer.status, answer.body

    async def _query(self, device: str, request: wire.Request) -> dict[str, Any]:
        url = self.settings.command_url
        if device != wire.ALL:
            dc = await uc.by_device(self.cd.deps, device)
            body = base(200, request_id=request.request_id)
            body["deviceCoreCommand"] = device_core_command(dc, url)
            return body
        most = self.cd.deps.policy.max_result_count
        limit = int_param(request.query, "limit", DEFAULT_LIMIT, -1, most)
        if limit == -1:
            limit = most
        offset = int_param(request.query, "offset", 0, 0, MAX_OFFSET)
        page = await uc.list_all(self.cd.deps, ListQuery(offset=offset, limit=limit))
        body = base(200, request_id=request.request_id)
        body["totalCount"] = page.total
        body["deviceCoreCommands"] = [device_core_command(d, url) for d in page.items]
        return body

    async def _publish(self, topic: str, payload: bytes) -> None:
        """Publish an answer, retrying while the broker is away (at most ``answer_retry``)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.answer_retry
        delay = 0.1
        while True:
            try:
                await self.bus.publish(topic, payload)
                self.answered += 1
                return
            except ServiceUnavailable as exc:
                if loop.time() + delay > deadline:
                    self.dropped += 1
                    log.error(
                        "north: the answer on %s could not be published within %gs: %s",
                        topic,
                        self.settings.answer_retry,
                        exc.message,
                    )
                    return
            except ContractInvalid as exc:  # a topic MQTT cannot carry: no retry will help
                self.dropped += 1
                log.error("north: the answer on %r cannot be published: %s", topic, exc.message)
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)


def _report(task: asyncio.Task[None]) -> None:
    """Say so loudly if the bridge ever ends by itself: north requests go unanswered then."""
    if not task.cancelled() and task.exception() is not None:
        log.error("north: the bridge stopped serving", exc_info=task.exception())
