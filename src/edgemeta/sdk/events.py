"""EdgeX events a device service sends to core-data over the bus.

An event (EdgeX's ``Event`` DTO: ``id``, ``deviceName``, ``profileName``, ``sourceName``,
``origin`` in nanoseconds, ``readings``) is published as an ``AddEventRequest`` in a
MessageEnvelope on ``<prefix>/events/device/<service>/<profile>/<device>/<source>``, the
topic core-data ingests (``docs/core-data.md``).
"""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Sequence
from typing import Any

import orjson

from edgemeta.bus.envelope import envelope
from edgemeta.bus.topics import level
from edgemeta.ports import Bus

API_VERSION = "v3"


def now_ns() -> int:
    """The current time in nanoseconds (EdgeX's ``origin``)."""
    return time.time_ns()


def event(
    device: str, profile: str, source: str, readings: Sequence[dict[str, Any]], origin: int
) -> dict[str, Any]:
    """The Event DTO of ``readings`` read together from ``source`` (a command or resource)."""
    return {
        "apiVersion": API_VERSION,
        "id": str(uuid.uuid4()),
        "deviceName": device,
        "profileName": profile,
        "sourceName": source,
        "origin": origin,
        "readings": list(readings),
    }


def event_topic(prefix: str, service: str, ev: dict[str, Any]) -> str:
    """Where core-data takes ``ev`` from this service."""
    parts = (service, ev["profileName"], ev["deviceName"], ev["sourceName"])
    return f"{prefix}/events/device/" + "/".join(level(p) for p in parts)


def payload(body: Any, *, base64_payload: bool) -> Any:
    """A message payload: the JSON object itself, or (EdgeX 3's ``[]byte`` payload) its JSON
    text base64-encoded."""
    if not base64_payload:
        return body
    return base64.b64encode(orjson.dumps(body)).decode()


async def publish_event(
    bus: Bus,
    prefix: str,
    service: str,
    ev: dict[str, Any],
    *,
    correlation_id: str = "",
    base64_payload: bool = False,
) -> None:
    """Publish ``ev`` to core-data as an AddEventRequest."""
    request_id = str(uuid.uuid4())
    request = {"apiVersion": API_VERSION, "requestId": request_id, "event": ev}
    await bus.publish(
        event_topic(prefix, service, ev),
        envelope(
            payload(request, base64_payload=base64_payload),
            correlation_id=correlation_id or str(uuid.uuid4()),
            request_id=request_id,
        ),
    )
