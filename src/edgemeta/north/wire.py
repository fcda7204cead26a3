"""The north's wire format: EdgeX core-command's external MQTT topics and envelopes.

Requests (EdgeX 3 ``ExternalMQTT.Topics``):

- a **query** on ``<QueryRequestTopic>/<device>`` (default ``edgex/commandquery/request/#``),
  the last level a device name or ``all`` (any case); answered on the one
  ``QueryResponseTopic`` (``edgex/commandquery/response``) with a DeviceCoreCommandResponse or
  a MultiDeviceCoreCommandsResponse (``offset``/``limit`` from ``queryParams``);
- a **command** on ``<CommandRequestTopic>/<device>/<command>/<get|set>`` (default
  ``edgex/command/request/#``); answered on
  ``<CommandResponseTopicPrefix>/<device>/<command>/<method>`` (``edgex/command/response``),
  the levels as they came.

Both are MessageEnvelopes (``requestID``, ``correlationID``, ``queryParams``; a set's
``{resource: value}`` map as ``payload``, base64 JSON as EdgeX 3 sends it or an embedded
object as EdgeX 4 does). Answers echo ``requestID`` and ``correlationID``, with the body as
base64 JSON (``contentType`` ``application/json``): ``errorCode`` 0 and the answer, or
``errorCode`` 1 and an EdgeX BaseResponse with the status and message. (EdgeX puts only the
error text there; the BaseResponse holds that text too, and the status besides.)

A level is percent-decoded once, as core-command's REST path is, so a name holding ``/``,
``+`` or ``#`` travels as ``%2F``, ``%2B``, ``%23``.
"""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from urllib.parse import unquote

import orjson

from edgemeta.bus.envelope import JSON_CONTENT, decode, envelope
from edgemeta.documents import API_VERSION
from edgemeta.domain.errors import ContractInvalid

ALL = "all"


class Operation(StrEnum):
    """What a north request asks for (the keys of ``roles.NORTH``)."""

    QUERY = "query"
    GET = "get"
    SET = "set"


@dataclass(frozen=True, slots=True)
class Topics:
    """The external topics (``EDGEMETA_NORTH_*_TOPIC`` settings)."""

    query_request: str = "edgex/commandquery/request/#"
    query_response: str = "edgex/commandquery/response"
    command_request: str = "edgex/command/request/#"
    command_response_prefix: str = "edgex/command/response"


def _base(topic_filter: str) -> str:
    """The levels a request topic starts with: the filter without ``/#`` and without an MQTT 5
    shared-subscription prefix (``$share/<group>/``), which the broker strips from the topics
    it delivers."""
    if topic_filter.startswith("$share/"):
        topic_filter = topic_filter.split("/", 2)[2]
    return topic_filter.removesuffix("#").removesuffix("/")


@dataclass(frozen=True, slots=True)
class Route:
    """Where a request came and where its answer goes; ``problem``: why it cannot be served
    (answered 400 on ``reply_topic``)."""

    operation: Operation
    reply_topic: str
    device: str = ""
    command: str = ""
    problem: str = ""


def _name(raw: str, what: str) -> str:
    try:
        value = unquote(raw, errors="strict")
    except UnicodeDecodeError:
        raise ContractInvalid(f"the {what} level is not valid UTF-8 once decoded") from None
    if not value or "\x00" in value:
        raise ContractInvalid(f"the {what} level is empty or holds NUL")
    return value


def route(topics: Topics, topic: str) -> Route | None:
    """The request a topic names, or None when it names none with an answer topic (not under
    either request topic, or a command topic without exactly device/command/method)."""
    query_base = _base(topics.query_request)
    command_base = _base(topics.command_request)
    # The longer base first, in case one request topic lies below the other.
    bases = sorted(
        [(query_base, Operation.QUERY), (command_base, Operation.GET)], key=lambda b: -len(b[0])
    )
    for base_levels, kind in bases:
        if not topic.startswith(base_levels + "/"):
            continue
        levels = topic[len(base_levels) + 1 :].split("/")
        if kind is Operation.QUERY:
            reply = topics.query_response
            if len(levels) != 1:
                return Route(
                    Operation.QUERY,
                    reply,
                    problem=f"a command query topic ends in one device name or '{ALL}': {topic!r}",
                )
            try:
                device = _name(levels[0], "device")
            except ContractInvalid as exc:
                return Route(Operation.QUERY, reply, problem=exc.message)
            return Route(Operation.QUERY, reply, device=ALL if device.lower() == ALL else device)
        if len(levels) != 3:
            return None
        reply = "/".join([topics.command_response_prefix, *levels])
        method = levels[2].lower()
        operation = Operation.SET if method == "set" else Operation.GET
        if method not in ("get", "set"):
            return Route(
                operation, reply, problem=f"the method level must be get or set, not {levels[2]!r}"
            )
        try:
            device, command = _name(levels[0], "device"), _name(levels[1], "command")
        except ContractInvalid as exc:
            return Route(operation, reply, problem=exc.message)
        return Route(operation, reply, device=device, command=command)
    return None


@dataclass(frozen=True, slots=True)
class Request:
    """A request envelope's fields the north uses."""

    request_id: str
    correlation_id: str
    query: dict[str, str] = field(default_factory=dict)
    payload: Any = None


def read_request(raw: bytes) -> Request:
    """The envelope's fields (ContractInvalid: not a MessageEnvelope, or bad ``queryParams``).

    A missing ``correlationID`` gets a fresh one, as EdgeX's decoder does.
    """
    try:
        env = decode(raw)
    except (ValueError, orjson.JSONDecodeError) as exc:
        raise ContractInvalid(
            f"the request is not a MessageEnvelope (JSON object): {exc}"
        ) from None
    request_id = env.get("requestID")
    correlation_id = env.get("correlationID")
    params = env.get("queryParams")
    if params is None:
        params = {}
    if not isinstance(params, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in params.items()
    ):
        raise ContractInvalid("queryParams must be an object of strings")
    return Request(
        request_id=request_id if isinstance(request_id, str) else "",
        correlation_id=(
            correlation_id if isinstance(correlation_id, str) and correlation_id else ""
        )
        or str(uuid.uuid4()),
        query=params,
        payload=env.get("payload"),
    )


def request_id_of(raw: bytes) -> str:
    """The ``requestID`` of a request refused before it was read whole ("" if none)."""
    try:
        env = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return ""
    rid = env.get("requestID") if isinstance(env, dict) else None
    return rid if isinstance(rid, str) else ""


def credentials(query: dict[str, str]) -> tuple[str | None, str | None]:
    """``Authorization`` and ``X-API-Key`` from ``queryParams`` (keys in any case), as the
    REST gate reads the headers of the same names."""
    authorization = api_key = None
    for key, value in query.items():
        lowered = key.lower()
        if lowered == "authorization":
            authorization = value
        elif lowered == "x-api-key":
            api_key = value
    return authorization, api_key


def answer(
    reply_topic: str, request_id: str, correlation_id: str, status: int, body: bytes
) -> bytes:
    """The answer envelope: ``errorCode`` 1 for a status of 400 or more, the body as base64."""
    return envelope(
        base64.b64encode(body).decode(),
        correlation_id=correlation_id or str(uuid.uuid4()),
        request_id=request_id,
        error_code=0 if status < 400 else 1,
        content_type=JSON_CONTENT,
        received_topic=reply_topic,
    )


def error_body(status: int, message: str, request_id: str) -> bytes:
    """An EdgeX BaseResponse for a refusal."""
    body: dict[str, Any] = {"apiVersion": API_VERSION}
    if request_id:
        body["requestId"] = request_id
    body["message"] = message
    body["statusCode"] = status
    return orjson.dumps(body)
