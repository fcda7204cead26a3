"""``edgemeta events``: follow the system-event stream (``GET /systemevent/stream``, SSE).

One line per event (time, topic, action, name), or ``--json`` for the raw MessageEnvelopes,
one per line. It reuses :func:`edgemeta.client.system_events`, which reconnects by itself
with ``Last-Event-ID``; Ctrl-C ends it with exit 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import AsyncGenerator
from typing import Annotated, Any, cast

import httpx
import orjson
import typer

from edgemeta.admin.client import AdminClient, Refused, envelope_message
from edgemeta.admin.common import (
    URL_DEFAULT,
    ApiKeyOption,
    JsonOption,
    TokenOption,
    UrlOption,
    connect,
    handled,
)
from edgemeta.admin.output import console, err_console
from edgemeta.client.events import GapError, ReceivedEvent, system_events


def line(ev: ReceivedEvent) -> str:
    """``time topic action name`` for one event."""
    event = ev.event
    ts = event.get("timestamp")
    when = (
        time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts / 1e9))
        + f".{int(ts % 1e9) // 1_000_000:03d}Z"
        if isinstance(ts, int | float) and ts > 0
        else "-"
    )
    details = event.get("details")
    name = details.get("name", "") if isinstance(details, dict) else ""
    return f"{when}  {ev.topic}  {event.get('action', '')}  {name}"


async def follow(
    client: AdminClient,
    topics: list[str],
    since: int | None,
    count: int | None,
    as_json: bool,
    allow_gaps: bool,
) -> None:
    """Print events until ``count`` have been printed (forever without)."""
    seen = 0
    http = client.async_http()
    # An async generator (typed as an iterator): closed here, so the connection ends now.
    stream = cast(
        AsyncGenerator[ReceivedEvent, None],
        system_events(
            client.base,
            topics,
            last_event_id=since,
            allow_gaps=allow_gaps,
            client=http,
            token=client.token,
            api_key=client.api_key,
        ),
    )
    try:
        async for ev in stream:
            if as_json:
                sys.stdout.write(orjson.dumps({"id": ev.position, **ev.envelope}).decode() + "\n")
                sys.stdout.flush()
            else:
                console.print(line(ev), markup=False, soft_wrap=True)
            seen += 1
            if count is not None and seen >= count:
                return
    finally:
        await stream.aclose()
        await http.aclose()


def events_command(
    topic: Annotated[
        list[str] | None,
        typer.Option(
            "--topic",
            help="An MQTT-style filter, e.g. 'edgex/system-events/core-metadata/device/#' "
            "(repeat for several; all events without)",
        ),
    ] = None,
    since: Annotated[
        int | None,
        typer.Option(
            "--since", min=0, help="Replay from after this stream position (0: all retained)"
        ),
    ] = None,
    count: Annotated[
        int | None, typer.Option("--count", min=1, help="Stop after this many events")
    ] = None,
    allow_gaps: Annotated[
        bool,
        typer.Option("--allow-gaps", help="Go on when events to replay are no longer retained"),
    ] = False,
    as_json: JsonOption = False,
    url: UrlOption = URL_DEFAULT,
    api_key: ApiKeyOption = None,
    token: TokenOption = None,
) -> None:
    """Follow system events as they happen (Ctrl-C to stop)."""
    with handled(), connect(url, api_key, token) as client:
        client.call("GET", "/ping")  # unreachable: exit 3 now, not retries forever
        try:
            asyncio.run(follow(client, topic or [], since, count, as_json, allow_gaps))
        except KeyboardInterrupt:
            pass
        except GapError as exc:
            err_console.print(f"edgemeta: {exc} (--allow-gaps to go on)", markup=False)
            raise typer.Exit(1) from None
        except httpx.HTTPStatusError as exc:
            body: Any = None
            with contextlib.suppress(orjson.JSONDecodeError):
                body = orjson.loads(exc.response.content)
            status = exc.response.status_code
            raise Refused(status, envelope_message(status, body)) from None
