"""Delivering a command to its device service: over the bus (EdgeX's messaging contract) or
to the service's REST ``baseAddress``.

Bus: the request goes to ``<prefix>/device/command/request/<svc>/<device>/<command>/<get|set>``
in a MessageEnvelope (``requestID``, ``correlationID``, ``queryParams`` with ``ds-pushevent``
and ``ds-returnevent``, ``payload`` the base64 JSON of a set's ``{resource: value}`` map, null
for a get); the answer comes on ``<prefix>/response/<svc>/<requestID>`` (taken from one
standing subscription on ``<prefix>/response/#``): ``errorCode`` 0 and an
EventResponse (or a BaseResponse) as payload, or ``errorCode`` 1 and the error text.

REST: ``GET``/``PUT {baseAddress}/api/v3/device/name/{device}/{command}`` with the same query
parameters; the device service's status and body are passed on as they are.

Nobody listening (the bus can tell, or the address refuses the connection) is 503; asked and
no answer within the timeout is 504 (:class:`~edgemeta.domain.errors.PeerTimeout`).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import re
import uuid
from typing import Any
from urllib.parse import quote

import httpx
import orjson

from edgemeta.bus.envelope import JSON_CONTENT, decode
from edgemeta.bus.topics import command_topic
from edgemeta.documents import API_VERSION
from edgemeta.domain.errors import PeerTimeout, ServiceUnavailable
from edgemeta.ports import Bus, CommandAnswer, CommandCall, Subscription

_OK = orjson.dumps({"apiVersion": API_VERSION, "statusCode": 200})


def request_envelope(call: CommandCall, request_id: str, topic: str) -> bytes:
    """The MessageEnvelope of a command request (EdgeX's field names and payload encoding)."""
    payload: str | None = None
    if call.settings is not None:
        payload = base64.b64encode(orjson.dumps(dict(call.settings))).decode()
    env: dict[str, Any] = {
        "apiVersion": API_VERSION,
        "receivedTopic": topic,
        "correlationID": call.correlation_id,
        "requestID": request_id,
        "errorCode": 0,
        "payload": payload,
        "contentType": JSON_CONTENT,
        "queryParams": dict(call.query),
    }
    return orjson.dumps(env)


# A refusal text that leads with an HTTP status of the 4xx/5xx families, then its message.
_LEADING_STATUS = re.compile(r"([45][0-9]{2}) (.+)", re.DOTALL)


def answer_of(envelope: dict[str, Any], service: str) -> CommandAnswer:
    """core-command's answer from a device service's reply envelope (already decoded)."""
    payload = envelope.get("payload")
    if envelope.get("errorCode", 0) != 0:
        status = 500
        message = payload if isinstance(payload, str) else orjson.dumps(payload).decode()
        if isinstance(payload, dict):
            # A device service that answers with an EdgeX BaseResponse keeps its status.
            status = int(payload.get("statusCode") or 500)
            message = str(payload.get("message") or message)
        elif isinstance(payload, str) and (found := _LEADING_STATUS.match(payload)):
            # edgemeta.sdk's refusals lead with their status ("423 device 'x' was released"):
            # the caller gets that 404/405/400/423, not a bare 500 (docs/commands.md).
            status, message = int(found.group(1)), found.group(2)
        body = {
            "apiVersion": API_VERSION,
            "statusCode": status,
            "message": f"device service '{service}': {message}",
        }
        return CommandAnswer(status, orjson.dumps(body))
    if payload is None or payload == "":
        return CommandAnswer(200, _OK)
    if isinstance(payload, dict):
        status = int(payload.get("statusCode") or 200)
        return CommandAnswer(status, orjson.dumps(payload))
    return CommandAnswer(200, _OK)


class BusCommander:
    """Commands over the message bus, EdgeX's default for core-command.

    Answers are taken from one standing subscription on ``<prefix>/response/#``, made before
    the first request is published and kept for the commander's life, and handed to the
    waiting request by its ``requestID`` (the topic's last level). A subscription per request
    cost a SUBSCRIBE/UNSUBSCRIBE round trip to the broker on every command; answers to other
    requests (other services', or ones that timed out) are dropped unread.
    """

    def __init__(self, bus: Bus, *, prefix: str = "edgex", name_escape: bool = False) -> None:
        self.bus = bus
        self.prefix = prefix
        self.name_escape = name_escape
        self._pending: dict[str, asyncio.Future[CommandAnswer]] = {}
        self._services: dict[str, str] = {}  # request id -> service, for the answer's text
        self._sub: Subscription | None = None
        self._reader: asyncio.Task[None] | None = None
        self._listening = asyncio.Lock()

    async def _listen(self) -> None:
        """Make the standing subscription once (again, if the last one ended)."""
        if self._reader is not None and not self._reader.done():
            return
        async with self._listening:
            if self._reader is not None and not self._reader.done():
                return
            self._sub = await self.bus.subscribe(f"{self.prefix}/response/#")
            self._reader = asyncio.create_task(self._read(self._sub), name="command-answers")

    async def _read(self, sub: Subscription) -> None:
        try:
            while True:
                message = await sub.get()
                request_id = message.topic.rsplit("/", 1)[-1].rsplit(".", 1)[-1]
                waiting = self._pending.get(request_id)
                if waiting is None or waiting.done():
                    continue  # not ours, or already given up on
                try:
                    envelope = decode(message.payload)
                except ValueError:
                    continue  # not an envelope: keep waiting for the real answer
                waiting.set_result(answer_of(envelope, self._services.get(request_id, "")))
        finally:
            # The subscription ended (bus closed): nobody waits for an answer that cannot come.
            for waiting in self._pending.values():
                if not waiting.done():
                    waiting.set_exception(
                        ServiceUnavailable("the bus subscription for command answers ended")
                    )

    async def call(self, call: CommandCall, wait_s: float) -> CommandAnswer:
        """Publish the request and wait for its answer."""
        topic = command_topic(
            self.prefix,
            call.service,
            call.device,
            call.command,
            call.method,
            name_escape=self.name_escape,
        )
        if self.bus.has_subscribers(topic) is False:
            raise ServiceUnavailable(
                f"device service '{call.service}' does not listen for commands (topic {topic})"
            )
        await self._listen()  # before publishing, so no answer is missed
        request_id = str(uuid.uuid4())
        answer: asyncio.Future[CommandAnswer] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = answer
        self._services[request_id] = call.service
        try:
            await self.bus.publish(topic, request_envelope(call, request_id, topic))
            try:
                async with asyncio.timeout(wait_s):
                    return await answer
            except TimeoutError:
                raise PeerTimeout(
                    f"device service '{call.service}' did not answer command '{call.command}' "
                    f"({call.method}) of device '{call.device}' within {wait_s:g}s"
                ) from None
        finally:
            self._pending.pop(request_id, None)
            self._services.pop(request_id, None)

    async def close(self) -> None:
        """Drop the standing subscription."""
        reader, sub = self._reader, self._sub
        self._reader = self._sub = None
        if reader is not None:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
        if sub is not None:
            with contextlib.suppress(Exception):  # the bus may be closed already
                await sub.close()


class RestCommander:
    """Commands to the device service's REST ``baseAddress`` (EdgeX's device-service API)."""

    def __init__(self, client: httpx.AsyncClient | None = None) -> None:
        self.client = client or httpx.AsyncClient()

    async def call(self, call: CommandCall, wait_s: float) -> CommandAnswer:
        """``GET``/``PUT`` on the device service and its answer, as it is."""
        url = (
            f"{call.base_address.rstrip('/')}/api/v3/device/name/"
            f"{quote(call.device, safe='')}/{quote(call.command, safe='')}"
        )
        headers = {"X-Correlation-ID": call.correlation_id}
        try:
            if call.method == "get":
                r = await self.client.get(
                    url, params=dict(call.query), headers=headers, timeout=wait_s
                )
            else:
                r = await self.client.put(
                    url,
                    params=dict(call.query),
                    content=orjson.dumps(dict(call.settings or {})),
                    headers={**headers, "Content-Type": JSON_CONTENT},
                    timeout=wait_s,
                )
        except httpx.TimeoutException:
            raise PeerTimeout(
                f"device service '{call.service}' did not answer command '{call.command}' "
                f"at {call.base_address} within {wait_s:g}s"
            ) from None
        except httpx.HTTPError as exc:
            raise ServiceUnavailable(
                f"device service '{call.service}' cannot be reached at {call.base_address}: {exc}"
            ) from None
        return CommandAnswer(r.status_code, r.content or _OK)

    async def close(self) -> None:
        """Close the HTTP client."""
        await self.client.aclose()
