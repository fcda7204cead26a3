"""``edgemeta status``: is the service up, what does it hold, and what is moving.

From the API only: ``/ping``, ``/health`` (the store answers), ``/version``, the record
counts (each list route's ``totalCount``) and the moves in flight. There is no route for all
moves, so each device service's history (``/deviceservice/name/{name}/moves``) is read,
its last ``--recent`` moves per service, and the unfinished ones are listed (a move is
unfinished only briefly, so a recent window finds it). The system-event backlog (the
outbox's undelivered events and the oldest one's age) comes from ``GET /metrics``
(``edgemeta_outbox_backlog``, ``edgemeta_outbox_oldest_age_seconds``); it is left out when the
service serves no metrics or the credential lacks the ``metrics`` role.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

import typer
from prometheus_client.parser import text_string_to_metric_families

from edgemeta.admin.client import AdminClient, Refused
from edgemeta.admin.common import (
    URL_DEFAULT,
    ApiKeyOption,
    JsonOption,
    TokenOption,
    UrlOption,
    connect,
    handled,
)
from edgemeta.admin.output import console, print_json, record, table

ENDED = frozenset({"assigned", "failed", "rolledBack"})
COUNTED = {
    "devices": "/device/all",
    "services": "/deviceservice/all",
    "profiles": "/deviceprofile/all",
}


def total(client: AdminClient, route: str) -> int:
    """A list route's ``totalCount``."""
    body = client.call("GET", route, params={"limit": 1}, accept=(416,))
    return int(body.get("totalCount", 0)) if isinstance(body, dict) else 0


def moves_in_flight(client: AdminClient, recent: int) -> list[dict[str, Any]]:
    """Unfinished moves among each service's last ``recent`` moves (by id, once each)."""
    found: dict[str, dict[str, Any]] = {}
    for service in client.pages("/deviceservice/all", "services"):
        path = f"/deviceservice/name/{quote(str(service.get('name', '')), safe='')}/moves"
        n = total(client, path)
        if n == 0:
            continue
        body = client.call(
            "GET", path, params={"offset": max(n - recent, 0), "limit": recent}, accept=(416,)
        )
        for move in body.get("moves") or []:
            if move.get("state") not in ENDED:
                found[str(move.get("id"))] = move
    return list(found.values())


def outbox(client: AdminClient) -> dict[str, float] | None:
    """The outbox backlog and its oldest event's age, from ``/metrics`` (None: not served)."""
    text = client.metrics_text()
    if text is None:
        return None
    wanted = {
        "edgemeta_outbox_backlog": "backlog",
        "edgemeta_outbox_oldest_age_seconds": "oldestAgeSeconds",
    }
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in wanted:
                found[wanted[sample.name]] = sample.value
    return found


def status_command(
    recent: Annotated[
        int, typer.Option("--recent", min=1, help="Moves read per service for 'in flight'")
    ] = 100,
    as_json: JsonOption = False,
    url: UrlOption = URL_DEFAULT,
    api_key: ApiKeyOption = None,
    token: TokenOption = None,
) -> None:
    """Health, version, record counts and moves in flight; exit 1 when unhealthy."""
    with handled(), connect(url, api_key, token) as client:
        client.call("GET", "/ping")
        health = client.call("GET", "/health", accept=(503,))
        healthy = isinstance(health, dict) and int(health.get("statusCode", 0)) == 200
        report: dict[str, Any] = {"url": client.base, "ping": "ok", "health": health}
        try:
            version = client.call("GET", "/version")
            report["version"] = version.get("version", "")  # the EdgeX API release
            report["edgemetaVersion"] = version.get("edgemetaVersion", "")
            report["counts"] = {k: total(client, r) for k, r in COUNTED.items()}
            report["movesInFlight"] = moves_in_flight(client, recent)
        except Refused as exc:
            if exc.status not in (401, 403):
                raise
            # Health is open; the rest needs the read role: say so instead of failing all.
            report["refused"] = exc.message
        try:
            report["outbox"] = outbox(client)
        except Refused as exc:
            if exc.status not in (401, 403):
                raise
            report["outbox"] = None  # the credential lacks the metrics role
    if as_json:
        print_json(report)
    else:
        summary: dict[str, Any] = {
            "url": report["url"],
            "ping": "ok",
            "health": "ok" if healthy else f"FAILING: {health.get('message', '')}",
        }
        if "refused" in report:
            summary["details"] = f"refused: {report['refused']} (--api-key/--token)"
        else:
            summary["version"] = f"edgemeta {report['edgemetaVersion']} (EdgeX {report['version']})"
            summary.update(report["counts"])
            summary["moves in flight"] = len(report["movesInFlight"])
        box = report.get("outbox")
        if box:
            summary["events not yet published"] = int(box.get("backlog", 0))
            summary["oldest unpublished"] = f"{box.get('oldestAgeSeconds', 0.0):.1f}s"
        else:
            summary["events not yet published"] = "unknown (no /metrics, or no metrics role)"
        console.print(record(summary, "edgemeta status"))
        if report.get("movesInFlight"):
            console.print(
                table(
                    report["movesInFlight"],
                    [
                        ("MOVE", lambda m: m.get("id")),
                        ("DEVICE", lambda m: m.get("deviceName")),
                        ("FROM", lambda m: m.get("fromService")),
                        ("TO", lambda m: m.get("toService")),
                        ("STATE", lambda m: m.get("state")),
                    ],
                    "moves in flight",
                )
            )
    raise typer.Exit(0 if healthy else 1)
