"""The admin CLI's HTTP client: a running service's base URL, the credentials, and EdgeX errors.

Every call goes through :meth:`AdminClient.call`, which turns the three ways a request can
go wrong into exceptions the commands map to exit codes:

- :class:`Refused` — the service answered with an error status; ``message`` is the EdgeX
  envelope's ``message`` (exit 1);
- :class:`Unreachable` — nothing answered at the URL (exit 3);
- a ``typer.BadParameter``/usage error is raised by the commands themselves (exit 2).
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Iterator, Mapping
from typing import Any

import httpx
import orjson

from edgemeta.client.auth import auth_headers

DEFAULT_URL = "http://127.0.0.1:59881"
HINT = "is `edgemeta serve` running? --url/EDGEMETA_URL"
TLS_HINT = (
    "a TLS handshake failed: the service's CA in EDGEMETA_CA_FILE (or SSL_CERT_FILE), "
    "a client certificate in EDGEMETA_CLIENT_CERT_FILE/EDGEMETA_CLIENT_KEY_FILE?"
)


class AdminError(Exception):
    """Base of the admin client's errors; ``exit_code`` is what the command exits with."""

    exit_code = 1


class Refused(AdminError):
    """The service answered with an error status (its EdgeX envelope's message)."""

    def __init__(self, status: int, message: str, body: Any = None) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message
        self.body = body


class Unreachable(AdminError):
    """Nothing answers at the URL (connection refused, DNS, timeout)."""

    exit_code = 3

    def __init__(self, url: str, cause: str, hint: str = HINT) -> None:
        super().__init__(f"cannot reach {url}: {cause} ({hint})")
        self.url = url


def tls_context(ca_file: str | None = None) -> ssl.SSLContext | None:
    """The TLS context ``EDGEMETA_CA_FILE`` / ``EDGEMETA_CLIENT_CERT_FILE`` /
    ``EDGEMETA_CLIENT_KEY_FILE`` ask for (None: httpx's default, the system's CAs or
    ``SSL_CERT_FILE``). ``ca_file`` (a command's ``--ca-file``) wins over
    ``EDGEMETA_CA_FILE``. ValueError naming the variable when a file is unusable."""
    ca = ca_file or os.environ.get("EDGEMETA_CA_FILE") or None
    cert = os.environ.get("EDGEMETA_CLIENT_CERT_FILE") or None
    key = os.environ.get("EDGEMETA_CLIENT_KEY_FILE") or None
    if not (ca or cert or key):
        return None
    if bool(cert) != bool(key):
        raise ValueError("EDGEMETA_CLIENT_CERT_FILE and EDGEMETA_CLIENT_KEY_FILE go together")
    try:
        ctx = ssl.create_default_context(cafile=ca)
    except (OSError, ssl.SSLError) as exc:
        where = "--ca-file/EDGEMETA_CA_FILE" if ca_file else "EDGEMETA_CA_FILE"
        raise ValueError(f"{where} {ca}: {exc}") from None
    if cert and key:
        try:
            ctx.load_cert_chain(cert, key)
        except (OSError, ssl.SSLError) as exc:
            raise ValueError(
                f"EDGEMETA_CLIENT_CERT_FILE/EDGEMETA_CLIENT_KEY_FILE {cert}, {key}: {exc}"
            ) from None
    return ctx


def api_base(url: str) -> str:
    """``http://host:port`` or ``.../api/v3`` given: the ``/api/v3`` base either way."""
    return url.rstrip("/").removesuffix("/api/v3") + "/api/v3"


def envelope_message(status: int, body: Any) -> str:
    """The ``message`` of an EdgeX envelope (or of the first failed batch item)."""
    if isinstance(body, dict) and body.get("message"):
        return str(body["message"])
    if isinstance(body, list):
        for item in body:
            if isinstance(item, dict) and item.get("message"):
                return str(item["message"])
    return f"HTTP {status}"


class AdminClient:
    """A synchronous httpx client bound to one service and one credential."""

    def __init__(
        self,
        url: str | None = None,
        *,
        api_key: str | None = None,
        token: str | None = None,
        timeout: float = 60.0,
        ca_file: str | None = None,
    ) -> None:
        self.url = url or os.environ.get("EDGEMETA_URL") or DEFAULT_URL
        self.base = api_base(self.url)
        self.api_key = api_key or None
        self.token = token or None
        # auth_headers refuses both at once: the same rule as the Python client.
        try:
            self.headers = auth_headers(self.token, self.api_key)
        except ValueError as exc:
            raise ValueError(
                f"{exc} (--api-key/EDGEMETA_API_KEY or --token/EDGEMETA_TOKEN)"
            ) from None
        self.tls = tls_context(ca_file)
        self.http = httpx.Client(headers=self.headers, timeout=timeout, verify=self.tls or True)

    def async_http(self) -> httpx.AsyncClient:
        """An async client with the same TLS settings, for the event stream."""
        return httpx.AsyncClient(timeout=httpx.Timeout(10.0, read=None), verify=self.tls or True)

    def close(self) -> None:
        """Close the connection pool."""
        self.http.close()

    def __enter__(self) -> AdminClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | list[tuple[str, Any]] | None = None,
        json: Any = None,
        files: Mapping[str, Any] | None = None,
        accept: tuple[int, ...] = (),
    ) -> Any:
        """Send one request; the decoded body. Statuses >= 400 not in ``accept`` raise Refused."""
        content = None
        headers: dict[str, str] = {}
        if json is not None:
            content = orjson.dumps(json)
            headers["Content-Type"] = "application/json"
        try:
            response = self.http.request(
                method,
                self.base + path,
                params=params,
                content=content,
                files=files,
                headers=headers,
            )
        except httpx.TransportError as exc:
            cause = str(exc) or type(exc).__name__
            # A service with mutual TLS drops a connection without a client certificate
            # after the handshake (TLS 1.3): no ssl error, but the same remedy.
            dropped = self.base.startswith("https://") and isinstance(
                exc, httpx.RemoteProtocolError | httpx.ReadError
            )
            if _tls_failure(exc) or dropped:
                raise Unreachable(self.url, cause, TLS_HINT) from None
            raise Unreachable(self.url, cause) from None
        body = _decode(response)
        if response.status_code >= 400 and response.status_code not in accept:
            raise Refused(response.status_code, envelope_message(response.status_code, body), body)
        return body

    def metrics_text(self) -> str | None:
        """``GET /metrics`` (at the port's root, not under ``/api/v3``); None when the service
        serves none (``EDGEMETA_METRICS=false``). Refused on 401/403 like any call."""
        root = self.base.removesuffix("/api/v3")
        try:
            response = self.http.get(root + "/metrics")
        except httpx.TransportError as exc:
            raise Unreachable(self.url, str(exc) or type(exc).__name__) from None
        if response.status_code == 404:
            return None
        if response.status_code >= 400:
            body = _decode(response)
            raise Refused(response.status_code, envelope_message(response.status_code, body), body)
        return response.text

    def get(self, path: str, **params: Any) -> Any:
        """GET with query parameters (None values left out)."""
        return self.call("GET", path, params={k: v for k, v in params.items() if v is not None})

    def pages(
        self, path: str, key: str, *, labels: str | None = None, size: int = 1000
    ) -> Iterator[dict[str, Any]]:
        """Every record of a paged list route, ``size`` at a time."""
        offset = 0
        while True:
            body = self.call("GET", path, params=_page_params(offset, size, labels), accept=(416,))
            items = body.get(key) or [] if isinstance(body, dict) else []
            yield from items
            offset += len(items)
            if not items or offset >= int(body.get("totalCount", 0)):
                return


def _page_params(offset: int, limit: int, labels: str | None) -> dict[str, Any]:
    params: dict[str, Any] = {"offset": offset, "limit": limit}
    if labels:
        params["labels"] = labels
    return params


def _tls_failure(exc: BaseException) -> bool:
    """Whether an ssl error is behind a transport error (httpx wraps httpcore wraps ssl)."""
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            return False
        if isinstance(seen, ssl.SSLError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _decode(response: httpx.Response) -> Any:
    if not response.content:
        return None
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return {"message": response.text.strip()[:500]}
