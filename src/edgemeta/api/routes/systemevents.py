"""``GET /api/v3/systemevent/stream``: system events as Server-Sent Events, without a broker.

Query: ``topic`` (an MQTT-style filter, repeatable; default every system event), ``since`` (a
delivery position). A reconnecting client sends ``Last-Event-ID`` and resumes after it. Each
event is ``id: <position>``, ``event: systemevent``, ``data: <EdgeX MessageEnvelope>`` with
``receivedTopic`` set. If retained events no longer reach back to the position asked for, an
``event: gap`` says which positions are gone. A comment line every 15 s keeps proxies open.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from urllib.parse import unquote_plus

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from edgemeta.api.handlers import ApiContext, bind
from edgemeta.api.query import MAX_OFFSET, int_param
from edgemeta.api.stream import StreamItem, follow
from edgemeta.bus.topics import valid_filter
from edgemeta.domain.errors import ContractInvalid

KEEPALIVE_S = 15.0


_LEVEL_EDGE = re.compile(r"(?:/|%2[fF])")


def _decode_filter(raw: str) -> str:
    """One raw ``topic`` value decoded, a bare ``+`` level kept as MQTT's wildcard.

    Form decoding (``request.query_params``) turns every ``+`` into a space, so the filter
    ``a/+/b`` typed into curl would silently match nothing. A ``+`` that is a whole level is
    always the wildcard (names in topics never are: their ``+`` is percent-encoded); a ``+``
    inside a level is a form-encoded space, as clients such as httpx send it."""
    levels = []
    pos = 0
    for edge in [*_LEVEL_EDGE.finditer(raw), None]:
        end = edge.start() if edge is not None else len(raw)
        level = raw[pos:end]
        levels.append("+" if level == "+" else unquote_plus(level))
        if edge is not None:
            levels.append("/")
            pos = edge.end()
    return "".join(levels)


def _topic_filters(request: Request) -> list[str]:
    """The ``topic`` parameters, decoded by :func:`_decode_filter`."""
    found: list[str] = []
    for pair in request.url.query.split("&"):
        key, sep, value = pair.partition("=")
        if sep and unquote_plus(key) == "topic":
            found.append(_decode_filter(value))
    return found


def _frame(item: StreamItem) -> bytes:
    if item.gap_from:
        data = orjson.dumps({"from": item.gap_from, "to": item.pos})
        return b"id: %d\nevent: gap\ndata: %s\n\n" % (item.pos, data)
    return b"id: %d\nevent: systemevent\ndata: %s\n\n" % (item.pos, item.data)


async def stream(api: ApiContext, request: Request) -> Response:
    """``GET /systemevent/stream``: Server-Sent Events until the client or the service stops."""
    filters = _topic_filters(request) or [f"{api.bus_prefix}/system-events/#"]
    for f in filters:
        if len(f) > 1024 or not valid_filter(f):
            raise ContractInvalid(f"topic filter {f!r} is not a valid MQTT-style filter")
    since: int | None = None
    last_id = request.headers.get("last-event-id")
    if last_id is not None:
        if not last_id.isdigit() or int(last_id) > MAX_OFFSET * 2**32:
            raise ContractInvalid("Last-Event-ID must be a delivery position (an integer)")
        since = int(last_id)
    elif "since" in request.query_params:
        since = int_param(request.query_params, "since", 0, 0, MAX_OFFSET * 2**32)

    async def body() -> AsyncIterator[bytes]:
        queue: asyncio.Queue[StreamItem | None] = asyncio.Queue(1000)

        async def pump() -> None:
            async for item in follow(
                api.deps.store,
                api.notifier,
                filters,
                prefix=api.bus_prefix,
                name_escape=api.name_escape,
                since=since,
            ):
                await queue.put(item)
            await queue.put(None)  # the service is stopping: end the response

        task = asyncio.create_task(pump())
        try:
            yield b": edgemeta system events\n\n"
            while True:
                try:
                    async with asyncio.timeout(KEEPALIVE_S):
                        item = await queue.get()
                except TimeoutError:
                    if task.done():
                        task.result()  # surface the pump's error
                    yield b": keepalive\n\n"
                    continue
                if item is None:
                    return
                yield _frame(item)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    return StreamingResponse(
        body(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def routes(api: ApiContext) -> list[Route]:
    """The system event stream route."""
    return [Route("/systemevent/stream", bind(api, stream), methods=["GET"])]
