"""EdgeX's MessageEnvelope and the SystemEvent it carries (go-mod-messaging, contracts v4).

The SystemEvent ``payload`` is embedded as a JSON object (EdgeX 4's default). ``tags`` carries
``revision`` (the record's revision, for ordering and gap detection) and ``eventId`` (unique per
event, for dropping duplicates); EdgeX consumers ignore tags they do not know.
"""

from __future__ import annotations

import base64
import contextlib
from typing import Any

import orjson

from edgemeta.documents import API_VERSION
from edgemeta.ports import OutboxEvent

SOURCE = "core-metadata"
JSON_CONTENT = "application/json"


def system_event(ev: OutboxEvent) -> dict[str, Any]:
    """The SystemEvent DTO of an outbox row (``timestamp`` in nanoseconds)."""
    return {
        "apiVersion": API_VERSION,
        "type": ev.type,
        "action": ev.action,
        "source": SOURCE,
        "owner": ev.owner,
        "tags": {**dict(ev.tags), "revision": str(ev.revision), "eventId": ev.event_id},
        "details": orjson.Fragment(ev.details),
        "timestamp": ev.timestamp_ns,
    }


def envelope(
    payload: Any,
    *,
    correlation_id: str = "",
    request_id: str = "",
    error_code: int = 0,
    content_type: str = JSON_CONTENT,
    received_topic: str = "",
    proof: str = "",
    traceparent: str = "",
) -> bytes:
    """A serialized MessageEnvelope (note EdgeX's ``correlationID``/``requestID`` spelling).

    ``proof`` (a reply's proof of its sender, :mod:`edgemeta.security.proofs`) is a top-level
    field EdgeX's MessageEnvelope does not have; its decoders ignore unknown fields. So is
    ``traceparent``: the W3C trace context of the span that sent it (edgemeta.tracing)."""
    env: dict[str, Any] = {
        "apiVersion": API_VERSION,
        "receivedTopic": received_topic,
        "correlationID": correlation_id,
        "requestID": request_id,
        "errorCode": error_code,
        "payload": payload,
        "contentType": content_type,
    }
    if proof:
        env["proof"] = proof
    if traceparent:
        env["traceparent"] = traceparent
    return orjson.dumps(env)


def system_event_envelope(ev: OutboxEvent, traceparent: str = "") -> bytes:
    """The bytes published for an outbox row (``traceparent``: of the publishing span)."""
    return envelope(system_event(ev), correlation_id=ev.correlation_id, traceparent=traceparent)


def decode(raw: bytes) -> dict[str, Any]:
    """Parse an envelope; a base64 string payload (EDGEX_MSG_BASE64_PAYLOAD) is decoded too."""
    env = orjson.loads(raw)
    if not isinstance(env, dict):
        raise ValueError("a MessageEnvelope is a JSON object")
    payload = env.get("payload")
    if isinstance(payload, str):
        # A plain text payload (an error reply) is not base64 JSON and stays as it is.
        with contextlib.suppress(ValueError, orjson.JSONDecodeError):
            env["payload"] = orjson.loads(base64.b64decode(payload, validate=True))
    return env
