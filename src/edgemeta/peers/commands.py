"""Delivering a command to its device service: over the bus (EdgeX's messaging contract) or
to the service's REST ``baseAddress``.

Bus: the request goes to ``<prefix>/device/command/request/<svc>/<device>/<command>/<get|set>``
in a MessageEnvelope (``requestID``, ``correlationID``, ``queryParams`` with ``ds-pushevent``
and ``ds-returnevent``, ``payload`` the base64 JSON of a set's ``{resource: value}`` map, null
for a get); the answer comes on ``<prefix>/response/<svc>/<requestID>``: ``errorCode`` 0 and an
EventResponse (or a BaseResponse) as payload, or ``errorCode`` 1 and the error text.

REST: ``GET``/``PUT {baseAddress}/api/v3/device/name/{device}/{command}`` with the same query
parameters; the device service's status and body are passed on as they are.

Nobody listening (the bus can tell, or the address refuses the connection) is 503; asked and
no answer within the timeout is 504 (:class:`~edgemeta.domain.errors.PeerTimeout`).
"""

from __future__ import annotations

import asyncio
import base64
import re
import uuid
from typing import Any
from urllib.parse import quote

import httpx
import orjson

from edgemeta.bus.envelope import JSON_CONTENT, decode
from edgemeta.bus.topics import command_topic, response_topic
from edgemeta.documents import API_VERSION
from edgemeta.domain.errors import PeerTimeout, ServiceUnavailable
from edgemeta.ports import Bus, CommandAnswer, CommandCall

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
    """Commands over the message bus, EdgeX's default for core-command."""

    def __init__(self, bus: Bus, *, prefix: str = "edgex", name_escape: bool = False) -> None:
        self.bus = bus
        self.prefix = prefix
        self.name_escape = name_escape

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
        request_id = str(uuid.uuid4())
        reply = response_topic(self.prefix, call.service, request_id, name_escape=self.name_escape)
        sub = await self.bus.subscribe(reply)  # before publishing, so no answer is missed
        try:
            await self.bus.publish(topic, request_envelope(call, request_id, topic))
            try:
                async with asyncio.timeout(wait_s):
                    while True:
                        message = await sub.get()
                        try:
                            return answer_of(decode(message.payload), call.service)
                        except ValueError:
                            continue  # not an envelope: keep waiting for the real answer
            except TimeoutError:
                raise PeerTimeout(
                    f"device service '{call.service}' did not answer command '{call.command}' "
                    f"({call.method}) of device '{call.device}' within {wait_s:g}s"
                ) from None
        finally:
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
