"""``edgemeta health``: ask a running service whether it is ready (or alive), for a probe.

The container image's ``HEALTHCHECK`` runs it (``CMD ["edgemeta", "health"]``), so it must
work wherever the service does, TLS included, and answer in the exit code alone:

- 0: ``GET /api/v3/health/ready`` answered 200, ``ready`` or ``degraded`` (the bus is down and
  events wait in the outbox: the instance still takes writes, see
  :mod:`edgemeta.api.health`); with ``--live``, ``GET /api/v3/health/live`` answered 200;
- 1: anything else: nothing answers, a TLS handshake fails, 503 ``not-ready``, another status.
  Docker reads 1 as "unhealthy" and reserves 2, so even an unusable ``--ca-file`` is 1 here
  (the other admin commands make it a usage error, 2).

The service is found like every admin command finds it (``--url``/``EDGEMETA_URL``); without
either, from the ``serve`` settings in the same environment (``EDGEMETA_PORT``, and https
when ``EDGEMETA_TLS_CERT_FILE`` is set), which is what a probe inside the container wants.
The server's certificate is verified against ``--ca-file``/``EDGEMETA_CA_FILE`` (else the
system's CAs); mutual TLS takes ``EDGEMETA_CLIENT_CERT_FILE``/``EDGEMETA_CLIENT_KEY_FILE``,
as for the other commands (:func:`edgemeta.admin.client.tls_context`).

This module is imported on its own by :mod:`edgemeta.console` for ``edgemeta health``: it
must not import the service (``edgemeta.cli`` loads uvicorn, the stores and the app, several
times the start-up cost of the probe itself).
"""

from __future__ import annotations

import os
from typing import Annotated, Any, NoReturn

import typer

from edgemeta.admin.client import DEFAULT_URL, AdminClient, AdminError, Unreachable
from edgemeta.admin.output import console, err_console, print_json, record

__all__ = ["app", "default_url", "health_command"]

#: What readiness answers when the instance may take traffic (edgemeta.api.health).
SERVING = frozenset({"ready", "degraded"})
NEXT_STEP = "the service's log says why; docs/operations.md#health lists what readiness checks"


def default_url() -> str:
    """Where a probe beside the service finds it: loopback on ``EDGEMETA_PORT``, https when
    the service's own ``EDGEMETA_TLS_CERT_FILE`` is set (``EDGEMETA_HOST`` may be 0.0.0.0,
    which is no address to connect to, so loopback always)."""
    if not (os.environ.get("EDGEMETA_PORT") or os.environ.get("EDGEMETA_TLS_CERT_FILE")):
        return DEFAULT_URL
    scheme = "https" if os.environ.get("EDGEMETA_TLS_CERT_FILE") else "http"
    return f"{scheme}://127.0.0.1:{os.environ.get('EDGEMETA_PORT') or 59881}"


def _fail(message: str) -> NoReturn:
    err_console.print(f"edgemeta: {message}", highlight=False, markup=False)
    raise typer.Exit(1)


def _summary(url: str, body: dict[str, Any]) -> dict[str, Any]:
    """The answer as the field/value table shows it: one row per check."""
    rows: dict[str, Any] = {"url": url, "status": body.get("status", "-")}
    if body.get("message"):
        rows["message"] = body["message"]
    for name, check in (body.get("checks") or {}).items():
        if not isinstance(check, dict):
            continue
        extra = ", ".join(f"{k} {v}" for k, v in check.items() if k != "status")
        rows[name] = f"{check.get('status', '-')}" + (f" ({extra})" if extra else "")
    return rows


def health_command(
    live: Annotated[
        bool,
        typer.Option("--live", help="Liveness (/health/live) instead of readiness"),
    ] = False,
    url: Annotated[
        str | None,
        typer.Option(
            "--url",
            envvar="EDGEMETA_URL",
            # No [brackets]: typer's rich help would take them for markup.
            help="The service's address (default: 127.0.0.1 on EDGEMETA_PORT or 59881, "
            "https when EDGEMETA_TLS_CERT_FILE is set)",
            show_default=False,
        ),
    ] = None,
    ca_file: Annotated[
        str | None,
        typer.Option(
            "--ca-file",
            envvar="EDGEMETA_CA_FILE",
            help="PEM CA certificate(s) that sign the service's certificate",
            show_default=False,
        ),
    ] = None,
    timeout: Annotated[
        float,
        typer.Option("--timeout", min=0.1, help="Seconds to wait for the answer"),
    ] = 4.0,
    as_json: Annotated[
        bool, typer.Option("--json", help="Machine output: the service's JSON, unchanged")
    ] = False,
) -> None:
    """Readiness (or --live: liveness) of a running service; exit 0 ready or degraded, else 1."""
    target = url or default_url()
    # Readiness answers within 2 s even when the database hangs (edgemeta.api.health), so
    # the default 4 s stays under the image's 5 s HEALTHCHECK timeout with room to connect.
    try:
        client = AdminClient(target, timeout=timeout, ca_file=ca_file)
    except ValueError as exc:  # an unusable CA or client certificate file
        _fail(str(exc))
    path = "/health/live" if live else "/health/ready"
    with client:
        try:
            body = client.call("GET", path, accept=(503,))
        except AdminError as exc:  # unreachable, TLS refused, or a status other than 503
            # Unreachable already says what to check (the URL, EDGEMETA_CA_FILE, ...).
            _fail(str(exc) if isinstance(exc, Unreachable) else f"{exc}; {NEXT_STEP}")
    answer: dict[str, Any] = body if isinstance(body, dict) else {}
    code = int(answer.get("statusCode", 0) or 0)
    wanted = {"alive"} if live else SERVING
    serving = code == 200 and answer.get("status") in wanted
    if as_json:
        print_json(answer)
    else:
        title = "edgemeta liveness" if live else "edgemeta readiness"
        console.print(record(_summary(client.base + path, answer), title))
    if not serving:
        reason = answer.get("message") or f"status {answer.get('status', '-')}, HTTP {code}"
        _fail(f"{client.base}{path}: {answer.get('status', 'not ready')}: {reason}; {NEXT_STEP}")


#: ``edgemeta health`` alone, for :mod:`edgemeta.console` (the full CLI registers the same
#: function as one of its commands).
app = typer.Typer(add_completion=False, help="edgemeta health: is the service ready?")
app.command("health")(health_command)
