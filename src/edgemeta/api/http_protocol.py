"""Canonical response header names on the wire (``Content-Type``, ``X-Correlation-Id``).

HTTP header names are case-insensitive, but EdgeX's services (Go's ``net/http``) always send
the canonical form, each dash-separated word capitalised, and EdgeX clients depend on it: its
Robot Framework API suite looks ``'Content-Type'`` up in a plain dict of the response headers.

Starlette emits lowercase names, and an ASGI middleware cannot fix that: uvicorn's httptools
protocol lowercases every name before it writes it, and adds ``transfer-encoding``,
``connection`` and ``date`` of its own. So the rewrite happens where the bytes leave: a
subclass of uvicorn's httptools protocol hands every request/response cycle a thin transport
wrapper that recases the names of the header block the cycle writes, then passes the body
through untouched. This covers every response of every port served by ``edgemeta serve``
(errors, 207s, SSE streams, uvicorn's own 400/500/503 answers) with one small cost per
response: one pass over the header block, a few hundred bytes.

Under TLS the same class also hands the app the verified client certificate's subject: when
the connection presented one (mutual TLS, ``EDGEMETA_TLS_CLIENT_CA_FILE``), every request's
scope carries ``scope["extensions"]["tls"] = {"client_subject": "CN=...,O=..."}`` (read it
with ``edgemeta.security.tls.client_subject``). The subject is read once per connection.

It leans on two uvicorn internals (``on_headers_complete`` creates ``self.cycle`` with the
protocol's transport; the cycle writes its status line and headers in one ``write``);
tests/e2e/test_header_case.py walks every route over a real socket and fails if that changes.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, cast

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from edgemeta.security.tls import peer_certificate, peer_subject

log = logging.getLogger("edgemeta.security")

_HEAD_END = b"\r\n\r\n"


def canonical_name(name: bytes) -> bytes:
    """Go's ``CanonicalMIMEHeaderKey``: ``x-correlation-id`` -> ``X-Correlation-Id``.

    The first letter and every letter after a dash uppercase, the rest lowercase. Like Go,
    a name holding anything but letters, digits and the token punctuation is left alone.
    """
    if not name or not all(c in _TOKEN for c in name):
        return name
    return b"-".join(word[:1].upper() + word[1:].lower() for word in name.split(b"-"))


_TOKEN = frozenset(b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


# Names already recased: responses send the same handful of names over and over, and a
# dict lookup costs far less than recasing each (bounded: a name may come from anywhere).
_CANONICAL: dict[bytes, bytes] = {}


def canonical_head(block: bytes) -> bytes:
    """A status line plus header lines (each ``name: value``) with canonical names."""
    lines = block.split(b"\r\n")
    known = _CANONICAL
    for i in range(1, len(lines)):
        line = lines[i]
        colon = line.find(b":")
        if colon > 0:
            name = line[:colon]
            canonical = known.get(name)
            if canonical is None:
                if len(known) >= 256:
                    known.clear()
                canonical = known[name] = canonical_name(name)
            lines[i] = canonical + line[colon:]
    return b"\r\n".join(lines)


class _CanonicalHeadTransport:
    """The transport one request/response cycle writes to: recases its header block.

    Everything before the final (non-1xx) header block is a header block too
    (``100 Continue``); once the final one has passed, writes go straight through.
    """

    __slots__ = ("_head_sent", "_transport")

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._head_sent = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Write ``data``, recasing header names while the response head is being sent."""
        if not self._head_sent and bytes(data[:5]) == b"HTTP/":
            raw = bytes(data)
            end = raw.find(_HEAD_END)
            if end >= 0:
                self._head_sent = raw[9:10] != b"1"  # "HTTP/1.1 1xx" is interim
                data = canonical_head(raw[:end]) + raw[end:]
        self._transport.write(data)

    def __getattr__(self, name: str) -> Any:
        # close(), is_closing(), get_extra_info() ... are the real transport's.
        return getattr(self._transport, name)


class CanonicalHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, sending canonical response header names (and passing a
    TLS client certificate's subject to the app)."""

    _tls_extension: dict[str, object] | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Accept the connection as uvicorn does; note a verified client certificate."""
        super().connection_made(transport)
        subject = peer_subject(transport)
        if subject is not None:
            self._tls_extension = {
                "client_subject": subject,
                "client_certificate": peer_certificate(transport),
            }
            log.debug("TLS client %s connected from %s", subject, self.client)

    def on_message_begin(self) -> None:
        """Start a request's scope as uvicorn does, plus the TLS extension when there is one."""
        super().on_message_begin()
        if self._tls_extension is not None:
            # A copy per request: the app may annotate its scope without touching the next one.
            self.scope["extensions"] = {"tls": dict(self._tls_extension)}  # type: ignore[dict-item]

    def on_headers_complete(self) -> None:
        """Parse the request as uvicorn does, then wrap the new cycle's transport."""
        before = self.cycle
        super().on_headers_complete()
        cycle = self.cycle
        if cycle is not None and cycle is not before:
            cycle.transport = cast(asyncio.Transport, _CanonicalHeadTransport(cycle.transport))

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to an unparseable request, with canonical names too."""
        transport = self.transport
        self.transport = cast(asyncio.Transport, _CanonicalHeadTransport(transport))
        try:
            super().send_400_response(msg)
        finally:
            self.transport = transport
