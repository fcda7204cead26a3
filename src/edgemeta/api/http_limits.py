"""HTTP limits every server ``edgemeta serve`` starts enforces, below the ASGI app.

uvicorn's httptools protocol sets no bound on a request's header block (httptools collects a
header name or value in memory however long it grows) and no deadline for reading it or the
body: twenty connections sending 20 MiB of headers each took the process from 215 to 552 MiB,
and a client that sends one byte a minute holds its connection forever (issue 15). These
limits need the bytes as they arrive, before any request exists, so they live in a subclass of
the protocol (:class:`LimitedHttpToolsProtocol`), not in an ASGI middleware:

- **header bytes**: the request line and header fields of one request may take at most
  ``max_header_bytes`` (counted as they are received, so a header is never buffered past the
  limit). More is ``431 Request Header Fields Too Large`` and the connection is closed.
- **header count**: more than ``max_headers`` fields is a 431 too.
- **header timeout**: a connection must deliver a complete header block within
  ``header_timeout`` seconds of opening (or of starting its next request): otherwise it is
  answered 408 and closed. This is what stops slowloris.
- **body timeout**: while a body is being received, at most ``body_timeout`` seconds may pass
  between two chunks (time the app spends not reading, with reading paused, does not count).

The maximum number of connections (``limit_concurrency``: a request beyond it is answered
503) and the keep-alive idle timeout are uvicorn's own (see ``edgemeta.cli``). The refusals
use the EdgeX error envelope, like every other answer.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import orjson
from uvicorn.protocols.http.flow_control import service_unavailable

from edgemeta.api.http_protocol import CanonicalHttpToolsProtocol, canonical_head

_HEAD_END = b"\r\n\r\n"
_REASONS = {
    408: b"Request Timeout",
    431: b"Request Header Fields Too Large",
}


@dataclass(frozen=True, slots=True)
class HttpLimits:
    """The limits of one server (from the ``EDGEMETA_HTTP_*`` settings)."""

    max_header_bytes: int = 64 * 1024
    max_headers: int = 100
    header_timeout: float = 10.0
    body_timeout: float = 30.0


async def _too_many_connections(scope: Any, receive: Any, send: Any) -> None:
    """uvicorn's answer past ``limit_concurrency``, in the EdgeX envelope."""
    body = orjson.dumps(
        {
            "apiVersion": "v3",
            "statusCode": 503,
            "message": "too many concurrent connections (EDGEMETA_HTTP_MAX_CONNECTIONS)",
        }
    )
    headers = [(b"content-type", b"application/json"), (b"connection", b"close")]
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class _TooManyHeaders(Exception):
    """Raised from the parser's header callback to stop parsing (see ``on_header``)."""


class LimitedHttpToolsProtocol(CanonicalHttpToolsProtocol):
    """uvicorn's httptools protocol with canonical header names and :class:`HttpLimits`."""

    limits = HttpLimits()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = True  # receiving a request line and headers (or waiting for one)
        self._head_bytes = 0
        self._head_tail = b""  # the last bytes of the head so far, to find an end split in two
        self._header_count = 0
        self._refusal: tuple[int, str] | None = None
        self._head_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None

    # -- connection ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Start the clock for the first request's headers."""
        super().connection_made(transport)
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        """Stop the timers."""
        self._cancel_timers()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        """Count the bytes of the header block before the parser sees them; restart the body
        clock on every chunk of a body."""
        if self._refusal is not None:
            return  # answered and closing: ignore whatever else arrives
        if self._in_head:
            if self._head_timer is None:
                self._arm_head_timer()  # a keep-alive connection starts its next request
            self._head_bytes += self._head_part(data)
            if self._head_bytes > self.limits.max_header_bytes:
                self._refuse(
                    431,
                    "request header fields exceed the limit of"
                    f" {self.limits.max_header_bytes} bytes (EDGEMETA_HTTP_MAX_HEADER_BYTES)",
                )
                return
        elif self._body_timer is not None:
            self._arm_body_timer()
        super().data_received(data)

    def _head_part(self, data: bytes) -> int:
        """How many bytes of ``data`` belong to the header block being received."""
        end = data.find(_HEAD_END)
        if end >= 0:
            return end + len(_HEAD_END)
        if self._head_tail:
            joined = self._head_tail + data[:3]
            end = joined.find(_HEAD_END)
            if end >= 0:
                return end + len(_HEAD_END) - len(self._head_tail)
        self._head_tail = (self._head_tail + data[-3:])[-3:]
        return len(data)

    # -- parser callbacks ----------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        """Refuse the request once it has more header fields than allowed."""
        self._header_count += 1
        if self._header_count > self.limits.max_headers:
            self._refusal = (
                431,
                f"request has more than {self.limits.max_headers} header fields"
                " (EDGEMETA_HTTP_MAX_HEADERS)",
            )
            raise _TooManyHeaders  # the parser stops; uvicorn calls send_400_response
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        """The head is in: stop its clock, start the body's."""
        self._in_head = False
        self._head_bytes = 0
        self._head_tail = b""
        self._header_count = 0
        self._cancel(self._head_timer)
        self._head_timer = None
        super().on_headers_complete()
        self._arm_body_timer()

    def _start_asgi_task(self, cycle: Any, app: Any) -> None:
        """Start the request; past the connection limit, with the enveloped 503."""
        if app is service_unavailable:
            app = _too_many_connections
        super()._start_asgi_task(cycle, app)

    def on_message_complete(self) -> None:
        """The body is in: the next bytes are the next request's head."""
        self._cancel(self._body_timer)
        self._body_timer = None
        self._in_head = True
        super().on_message_complete()

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to a request the parser refused: a 431 when a limit stopped it."""
        if self._refusal is not None:
            self._write_refusal(*self._refusal)
            return
        super().send_400_response(msg)

    # -- refusals and timers -------------------------------------------------------------

    def _refuse(self, status: int, message: str) -> None:
        self._refusal = (status, message)
        self._write_refusal(status, message)

    def _write_refusal(self, status: int, message: str) -> None:
        """Answer ``status`` in the EdgeX envelope and close the connection."""
        self._cancel_timers()
        if self.transport.is_closing():
            return
        body = orjson.dumps({"apiVersion": "v3", "statusCode": status, "message": message})
        head = [b"HTTP/1.1 %d %s" % (status, _REASONS.get(status, b""))]
        head.extend(name + b": " + value for name, value in self.server_state.default_headers)
        head += [
            b"content-type: application/json",
            b"content-length: %d" % len(body),
            b"connection: close",
        ]
        self.transport.write(canonical_head(b"\r\n".join(head)) + _HEAD_END + body)
        self.transport.close()

    def _arm_head_timer(self) -> None:
        self._cancel(self._head_timer)
        self._head_timer = self.loop.call_later(self.limits.header_timeout, self._head_timed_out)

    def _arm_body_timer(self) -> None:
        self._cancel(self._body_timer)
        self._body_timer = self.loop.call_later(self.limits.body_timeout, self._body_timed_out)

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if not self._in_head or self._refusal is not None:
            return
        if self._head_bytes == 0 and self.cycle is not None:
            # Nothing of a next request yet, on a connection that has served one: idle
            # keep-alive, closed quietly by uvicorn's own keep-alive timeout instead.
            return
        self._refuse(
            408,
            "request headers not received within"
            f" {self.limits.header_timeout:g} s (EDGEMETA_HTTP_HEADER_TIMEOUT)",
        )

    def _body_timed_out(self) -> None:
        self._body_timer = None
        if self._in_head or self.transport.is_closing():
            return
        cycle = self.cycle
        if self.flow.read_paused or (cycle is not None and cycle.waiting_for_100_continue):
            # The app is not reading yet (or has not asked for the body a client sending
            # "Expect: 100-continue" waits for): the client is not to blame.
            self._arm_body_timer()
            return
        self.logger.info(
            "closing a connection: no request body data within %g s", self.limits.body_timeout
        )
        self.transport.close()

    def _cancel_timers(self) -> None:
        self._cancel(self._head_timer)
        self._cancel(self._body_timer)
        self._head_timer = self._body_timer = None

    @staticmethod
    def _cancel(timer: asyncio.TimerHandle | None) -> None:
        if timer is not None:
            timer.cancel()


def limited_protocol(limits: HttpLimits) -> type[LimitedHttpToolsProtocol]:
    """The protocol class for uvicorn's ``http=``, bound to ``limits``."""
    return type("LimitedHttpToolsProtocol", (LimitedHttpToolsProtocol,), {"limits": limits})
