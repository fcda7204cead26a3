"""Command requests over the bus, as EdgeX's core-command sends them to a device service.

A request arrives on ``<prefix>/device/command/request/<service>/<device>/<command>/<get|set>``
(the service subscribes to ``<prefix>/device/command/request/<service>/#``) in a
MessageEnvelope: ``requestID``, ``correlationID``, ``queryParams`` (``ds-pushevent``,
``ds-returnevent``) and, for a set, a payload ``{resourceName: value}`` (a JSON object, or
its JSON text base64-encoded as EdgeX 3 sends it).

The answer goes to ``<prefix>/response/<service>/<requestID>``:

- success: ``errorCode`` 0; a get's payload is an ``EventResponse`` (``apiVersion``,
  ``requestId``, ``statusCode`` 200, ``event``; no ``event`` with ``ds-returnevent=false``),
  a set's a ``BaseResponse`` (statusCode 200);
- refusal or failure: ``errorCode`` 1 and the error text as a ``text/plain`` payload. The text
  begins with the HTTP status the REST route would answer (``"423 device 'x' was released
  ..."``), so a core-command can answer with it instead of a bare 500.

Requests run concurrently, at most ``max_inflight`` at a time; beyond that a request is
answered at once with ``503 device service busy`` (as the Go SDK does), never queued without
bound. A request that cannot be parsed (no ``requestID``) is logged and dropped: there is
nowhere to answer it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
from typing import Any
from urllib.parse import unquote

from edgemeta.bus.envelope import decode, envelope
from edgemeta.bus.topics import level, response_topic
from edgemeta.domain.errors import EdgeMetaError
from edgemeta.ports import Bus, Message, Subscription
from edgemeta.sdk.commands import CommandRunner, Options
from edgemeta.sdk.driver import CommandError
from edgemeta.sdk.events import API_VERSION, payload

log = logging.getLogger("edgemeta.sdk.commands")

COMMAND_REQUEST = "device/command/request"


def request_filter(prefix: str, service: str) -> str:
    """What a device service subscribes to for its command requests."""
    return f"{prefix}/{COMMAND_REQUEST}/{level(service)}/#"


def request_topic(prefix: str, service: str, device: str, command: str, method: str) -> str:
    """Where a command request for ``device`` is sent (``method``: ``get`` or ``set``)."""
    return f"{prefix}/{COMMAND_REQUEST}/{level(service)}/{level(device)}/{level(command)}/{method}"


class BusCommands:
    """Serves one device service's command requests from the bus until stopped."""

    def __init__(
        self,
        bus: Bus,
        runner: CommandRunner,
        *,
        prefix: str,
        service: str,
        base64_payload: bool = False,
        max_inflight: int = 32,
    ) -> None:
        self.bus = bus
        self.runner = runner
        self.prefix = prefix
        self.service = service
        self.base64_payload = base64_payload
        self.max_inflight = max_inflight
        self.answered = 0
        self._sub: Subscription | None = None
        self._pump: asyncio.Task[None] | None = None
        self._running: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Subscribe (requests are served once this returns)."""
        self._sub = await self.bus.subscribe(request_filter(self.prefix, self.service))
        self._pump = asyncio.create_task(self._serve(self._sub), name=f"{self.service}-commands")

    async def stop(self) -> None:
        """Stop taking requests; those being run are cancelled."""
        tasks = [t for t in (self._pump, *self._running) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._sub is not None:
            with contextlib.suppress(EdgeMetaError):
                await self._sub.close()
        self._sub = self._pump = None

    async def _serve(self, sub: Subscription) -> None:
        async for message in sub:
            try:
                parsed = self._parse(message)
            except ValueError as exc:
                log.warning(
                    "%s: dropping a command request on %s: %s", self.service, message.topic, exc
                )
                continue
            if len(self._running) >= self.max_inflight:
                await self._answer_error(
                    parsed[0], CommandError(503, "device service busy: too many commands at once")
                )
                continue
            task = asyncio.create_task(self._run(*parsed))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    def _parse(self, message: Message) -> tuple[dict[str, Any], str, str, str]:
        env = decode(message.payload)
        # EdgeX spells it requestID; a client written from the DTO docs may send requestId.
        env["requestID"] = env.get("requestID") or env.get("requestId")
        if not env["requestID"]:
            raise ValueError("no requestID")
        levels = message.topic.split("/")
        if len(levels) < 4:
            raise ValueError("not .../<device>/<command>/<method>")
        device, command, method = unquote(levels[-3]), unquote(levels[-2]), levels[-1].lower()
        return env, device, command, method

    async def _run(self, env: dict[str, Any], device: str, command: str, method: str) -> None:
        request_id = str(env["requestID"])
        correlation = str(env.get("correlationID") or env.get("correlationId") or "")
        try:
            if method == "get":
                options = Options.of(env.get("queryParams"))
                ev = await self.runner.get(device, command, options, correlation)
                body: dict[str, Any] = {
                    "apiVersion": API_VERSION,
                    "requestId": request_id,
                    "statusCode": 200,
                }
                if options.return_event:
                    body["event"] = ev
            elif method == "set":
                given = env.get("payload")
                if given is None or given == "":
                    given = {}
                await self.runner.set(device, command, given)
                body = {"apiVersion": API_VERSION, "requestId": request_id, "statusCode": 200}
            else:
                raise CommandError(400, f"unknown command method '{method}' (get or set)")
        except CommandError as exc:
            await self._answer_error(env, exc)
            return
        except Exception as exc:  # never leave a request unanswered
            log.exception("%s: command %s/%s failed", self.service, device, command)
            await self._answer_error(env, CommandError(500, f"command failed: {exc}"))
            return
        await self.bus.publish(
            response_topic(self.prefix, self.service, request_id),
            envelope(
                payload(body, base64_payload=self.base64_payload),
                request_id=request_id,
                correlation_id=correlation,
            ),
        )
        self.answered += 1

    async def _answer_error(self, env: dict[str, Any], exc: CommandError) -> None:
        request_id = str(env["requestID"])
        text = f"{exc.status} {exc.message}"
        await self.bus.publish(
            response_topic(self.prefix, self.service, request_id),
            envelope(
                base64.b64encode(text.encode()).decode() if self.base64_payload else text,
                request_id=request_id,
                correlation_id=str(env.get("correlationID") or ""),
                error_code=1,
                content_type="text/plain",
            ),
        )
        self.answered += 1
