"""Custom allocation webhooks over HTTP (the adapter of ``ports.AllocationHook``).

edgemeta POSTs ``{"registrationId", "enrollment", "candidates": [...], "report": {...}}`` and
expects ``{"serviceName": "<one of the candidates>"}`` within the enrolment's timeout. Any
failure (connection, TLS verification, status, timeout, oversized or malformed answer) is a
ServiceUnavailable; the registration then uses the enrolment's fallback policy.

The limits, because the webhook is a remote party edgemeta does not control:

- the URL is checked again before each call (``domain.enrollment.webhook_url_problem``), so
  an enrolment stored before the check existed cannot smuggle in credentials;
- ``https://`` is verified against the system's CAs, or ``EDGEMETA_WEBHOOK_CA_FILE``;
- redirects are not followed (a 3xx is a failure): the enrolment names the one URL trusted
  with the registration's report;
- the answer is read streamed and abandoned past ``EDGEMETA_WEBHOOK_MAX_BYTES``;
- the whole exchange (connect, TLS, send, every byte of the answer) runs under one deadline,
  the enrolment's timeout: httpx's timeouts are per operation, so a server dripping one byte
  just inside the read timeout could otherwise hold a registration for ever.

The POST body is built once, as bytes, by :func:`request_body`, and sent as is, with
``X-Edgemeta-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>`` over ``"<t>." + body`` keyed
by the enrolment's webhook secret (:mod:`edgemeta.security.signatures`), so the receiver can
tell edgemeta from anyone else who learned the URL, and refuse replays by the timestamp.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from pathlib import Path

import httpx

from edgemeta.domain.enrollment import webhook_url_problem
from edgemeta.domain.errors import ServiceUnavailable
from edgemeta.security import signatures

DEFAULT_MAX_BYTES = 65536


def verification(ca_file: Path | None) -> ssl.SSLContext:
    """How webhook servers are verified: against ``ca_file``, else the system's CAs.

    A ValueError naming the file when it cannot be used (so the service refuses to start).
    """
    try:
        ctx = ssl.create_default_context(cafile=None if ca_file is None else str(ca_file))
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(
            f"EDGEMETA_WEBHOOK_CA_FILE {ca_file}: not a readable PEM CA file ({exc})"
        ) from None
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def request_body(request: dict[str, object]) -> bytes:
    """The exact bytes POSTed to a webhook (compact JSON, UTF-8)."""
    return json.dumps(request, separators=(",", ":"), ensure_ascii=False).encode()


class _TooLarge(Exception):
    pass


class HttpAllocationHook:
    """Calls allocation webhooks with one shared HTTP client."""

    def __init__(
        self,
        client: httpx.AsyncClient | None = None,
        *,
        ca_file: Path | None = None,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        self.client = client or httpx.AsyncClient(
            verify=verification(ca_file),
            follow_redirects=False,  # httpx's default too; said here because it matters
        )
        self.max_bytes = max_bytes

    async def decide(
        self, url: str, time_limit: float, request: dict[str, object], *, secret: str = ""
    ) -> str:
        """Ask the webhook; the request is signed with ``secret`` (the enrolment's) if given."""
        problem = webhook_url_problem(url)
        if problem is not None:
            raise ServiceUnavailable(f"allocation webhook URL {problem}")
        body = request_body(request)
        headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            # The size limit counts the bytes on the wire; a compressed answer could inflate
            # far past it in one chunk, so none is accepted.
            "Accept-Encoding": "identity",
        }
        if secret:
            headers[signatures.HEADER] = signatures.sign(secret, body)
        try:
            async with asyncio.timeout(time_limit):
                raw = await self._exchange(url, body, headers, time_limit)
            answer = json.loads(raw)
        except TimeoutError:
            raise ServiceUnavailable(
                f"allocation webhook {url} did not answer within {time_limit:g} s"
            ) from None
        except _TooLarge:
            raise ServiceUnavailable(
                f"allocation webhook {url} answered more than {self.max_bytes} bytes"
            ) from None
        except (httpx.HTTPError, ValueError) as exc:
            raise ServiceUnavailable(f"allocation webhook {url} failed: {exc!r}") from None
        except RecursionError:  # JSON nested thousands deep fits in the byte limit
            raise ServiceUnavailable(f"allocation webhook {url} answered nested JSON") from None
        name = answer.get("serviceName") if isinstance(answer, dict) else None
        if not isinstance(name, str) or not name:
            raise ServiceUnavailable(f"allocation webhook {url} did not name a serviceName")
        return name

    async def _exchange(
        self, url: str, body: bytes, headers: dict[str, str], time_limit: float
    ) -> bytes:
        """POST ``body``; the answer's bytes, at most ``max_bytes`` of them."""
        limit = self.max_bytes
        async with self.client.stream(
            "POST", url, content=body, headers=headers, timeout=time_limit
        ) as r:
            if r.is_redirect:
                raise httpx.HTTPStatusError(
                    f"answered {r.status_code} (redirects are not followed)",
                    request=r.request,
                    response=r,
                )
            r.raise_for_status()
            encoding = r.headers.get("content-encoding", "identity").strip().lower()
            if encoding not in ("", "identity"):
                raise ValueError(f"answered with Content-Encoding {encoding!r}; none accepted")
            declared = r.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > limit:
                raise _TooLarge
            chunks: list[bytes] = []
            size = 0
            async for chunk in r.aiter_raw():
                size += len(chunk)
                if size > limit:
                    raise _TooLarge
                chunks.append(chunk)
        return b"".join(chunks)

    async def close(self) -> None:
        """Close the HTTP client."""
        await self.client.aclose()
