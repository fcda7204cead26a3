"""Follow system events over HTTP (Server-Sent Events) as an async iterator.

    async for ev in system_events("http://127.0.0.1:59881", ["edgex/system-events/#"]):
        print(ev.position, ev.topic, ev.event["type"], ev.event["action"])

The iterator reconnects by itself after a dropped connection, sending ``Last-Event-ID`` so no
event is missed, and raises :class:`GapError` if the service no longer retains events it
would have to replay (unless ``allow_gaps``). Delivery is at least once: an event may repeat
after a reconnect; its ``event_id`` identifies it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from edgemeta.client.auth import auth_headers


class GapError(Exception):
    """The service no longer retains positions ``first``..``last``."""

    def __init__(self, first: int, last: int) -> None:
        super().__init__(f"system events {first}..{last} are no longer retained")
        self.first = first
        self.last = last


@dataclass(frozen=True, slots=True)
class ReceivedEvent:
    """A system event as the stream delivered it."""

    position: int
    topic: str
    envelope: dict[str, Any]

    @property
    def event(self) -> dict[str, Any]:
        """The SystemEvent (``type``, ``action``, ``owner``, ``details``, ...)."""
        payload: dict[str, Any] = self.envelope["payload"]
        return payload

    @property
    def event_id(self) -> str:
        """Unique per event: drop an event whose id was seen already."""
        return str(self.event["tags"]["eventId"])

    @property
    def revision(self) -> int:
        """The revision of the record the event is about."""
        return int(self.event["tags"]["revision"])


async def _frames(response: httpx.Response) -> AsyncIterator[dict[str, str]]:
    fields: dict[str, str] = {}
    async for line in response.aiter_lines():
        if line == "":
            if "data" in fields or "event" in fields:
                yield fields
            fields = {}
        elif line.startswith(":"):
            continue
        else:
            key, _, value = line.partition(":")
            value = value.removeprefix(" ")
            fields[key] = fields[key] + "\n" + value if key == "data" and key in fields else value


async def system_events(
    base_url: str,
    topics: Sequence[str] | None = None,
    *,
    last_event_id: int | None = None,
    allow_gaps: bool = False,
    client: httpx.AsyncClient | None = None,
    retry_delay: float = 1.0,
    token: str | None = None,
    api_key: str | None = None,
) -> AsyncIterator[ReceivedEvent]:
    """Yield system events matching ``topics`` after ``last_event_id`` (None: from now on).

    With authentication on, pass a ``token`` (JWT) or ``api_key`` with the events-read role.
    """
    credential = auth_headers(token, api_key)
    own = client is None
    http = client or httpx.AsyncClient(timeout=httpx.Timeout(10.0, read=None))
    url = base_url.rstrip("/").removesuffix("/api/v3") + "/api/v3/systemevent/stream"
    params = httpx.QueryParams([("topic", t) for t in topics or ()])
    last = last_event_id
    try:
        while True:
            headers = {"Accept": "text/event-stream", **credential}
            if last is not None:
                headers["Last-Event-ID"] = str(last)
            try:
                async with http.stream("GET", url, params=params, headers=headers) as response:
                    if response.status_code != 200:
                        body = await response.aread()
                        raise httpx.HTTPStatusError(
                            f"event stream refused: {response.status_code} {body!r}",
                            request=response.request,
                            response=response,
                        )
                    async for frame in _frames(response):
                        pos = int(frame.get("id", "0") or 0)
                        if frame.get("event") == "gap":
                            gap = orjson.loads(frame["data"])
                            last = pos
                            if not allow_gaps:
                                raise GapError(int(gap["from"]), int(gap["to"]))
                            continue
                        envelope = orjson.loads(frame["data"])
                        last = pos
                        yield ReceivedEvent(pos, envelope.get("receivedTopic", ""), envelope)
            except (httpx.TransportError, httpx.RemoteProtocolError):
                await asyncio.sleep(retry_delay)  # reconnect with Last-Event-ID
    finally:
        if own:
            await http.aclose()
