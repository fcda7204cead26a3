"""``edgemeta move DEVICE SERVICE``: a reassign, with its steps shown while it runs.

``POST /device/reassign`` answers when the move has ended, so the request runs in a thread
while the main thread polls the device's move history (``GET /device/name/{name}/moves``)
for the move carrying this request's correlation id, and redraws its steps. The final answer
is the reassign's own result. Exit 0 when the move is ``assigned``, 1 otherwise (failed,
rolled back, refused); with ``--dry-run``, 0 when every check passed.
"""

from __future__ import annotations

import contextlib
import threading
import uuid
from typing import Annotated, Any
from urllib.parse import quote

import typer
from rich.console import Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from edgemeta.admin.client import AdminClient, AdminError
from edgemeta.admin.common import (
    URL_DEFAULT,
    ApiKeyOption,
    JsonOption,
    TokenOption,
    UrlOption,
    connect,
    handled,
)
from edgemeta.admin.output import console, err_console, ms, print_json

DONE = "assigned"
ENDED = frozenset({"assigned", "failed", "rolledBack"})


def latest_move(client: AdminClient, device: str, correlation: str) -> dict[str, Any] | None:
    """The device's move made by the request with ``correlation`` (None until it exists)."""
    path = f"/device/name/{quote(device, safe='')}/moves"
    head = client.call("GET", path, params={"limit": 1}, accept=(404, 416))
    total = int(head.get("totalCount", 0)) if isinstance(head, dict) else 0
    if total == 0:
        return None
    # History is oldest first: the move asked for now is among the last few.
    body = client.call(
        "GET", path, params={"offset": max(total - 5, 0), "limit": 5}, accept=(404, 416)
    )
    for move in reversed(body.get("moves") or [] if isinstance(body, dict) else []):
        if move.get("correlationId") == correlation:
            result: dict[str, Any] = move
            return result
    return None


def render(move: dict[str, Any] | None, title: str) -> Group:
    """A move's state and steps."""
    if move is None:
        return Group(Text(f"{title}: requested, waiting for the move to start"))
    state = str(move.get("state", "?"))
    style = "green" if state == DONE else ("red" if state in ENDED else "yellow")
    head = Text.assemble(
        f"move {move.get('id', '')}: {move.get('fromService', '')} -> "
        f"{move.get('toService', '')} ({move.get('statePolicy', '')}) ",
        (state, f"bold {style}"),
    )
    steps = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    for col in ("AT", "STEP", "OUTCOME", "DETAIL"):
        steps.add_column(col, overflow="fold")
    for s in move.get("steps") or []:
        steps.add_row(
            *(
                Text(str(v or ""))
                for v in (ms(s.get("at")), s.get("step"), s.get("outcome"), s.get("detail"))
            )
        )
    parts: list[Any] = [head, steps]
    if move.get("error"):
        parts.append(Text(f"error: {move['error']}", style="red"))
    return Group(*parts)


def move_command(
    device: Annotated[str, typer.Argument(help="The device to move")],
    service: Annotated[str, typer.Argument(help="The device service to move it to")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only run the checks; change nothing")
    ] = False,
    policy: Annotated[
        str, typer.Option("--policy", help="migrate (current state) or reset (initial state)")
    ] = "migrate",
    expected_revision: Annotated[
        int | None,
        typer.Option("--expected-revision", help="Refuse if the device changed since (409)"),
    ] = None,
    note: Annotated[str, typer.Option("--note", help="Kept in the move's history")] = "",
    poll: Annotated[float, typer.Option("--poll", min=0.05, help="Seconds between polls")] = 0.2,
    as_json: JsonOption = False,
    url: UrlOption = URL_DEFAULT,
    api_key: ApiKeyOption = None,
    token: TokenOption = None,
) -> None:
    """Move a device to another device service (POST /device/reassign), showing its steps."""
    if policy not in ("migrate", "reset"):
        raise typer.BadParameter("migrate or reset", param_hint="--policy")
    reassign: dict[str, Any] = {"deviceName": device, "serviceName": service, "statePolicy": policy}
    if expected_revision is not None:
        reassign["expectedRevision"] = expected_revision
    if note:
        reassign["note"] = note
    body = [{"apiVersion": "v3", "reassign": reassign}]
    correlation = str(uuid.uuid4())
    with handled(), connect(url, api_key, token) as client:
        client.http.headers["X-Correlation-ID"] = correlation
        if dry_run:
            result = client.call("POST", "/device/reassign", params={"dryRun": "true"}, json=body)[
                0
            ]
            _dry_run_result(result, as_json)
        result = _run_live(client, body, device, service, correlation, poll, as_json)
    move = result.get("move") or {}
    if as_json:
        print_json(result)
    else:
        code = int(result.get("statusCode", 0))
        if move.get("state") != DONE:
            err_console.print(f"edgemeta: {code}: {result.get('message', '')}", markup=False)
    raise typer.Exit(0 if move.get("state") == DONE else 1)


def _dry_run_result(result: dict[str, Any], as_json: bool) -> None:
    code = int(result.get("statusCode", 0))
    if as_json:
        print_json(result)
    elif code < 300:
        console.print(Text(result.get("message") or "every check passed", style="green"))
    else:
        err_console.print(f"edgemeta: {code}: {result.get('message', '')}", markup=False)
        for check in result.get("checks") or []:
            err_console.print(f"  - {check}", markup=False)
    raise typer.Exit(0 if code < 300 else 1)


def _run_live(
    client: AdminClient,
    body: list[dict[str, Any]],
    device: str,
    service: str,
    correlation: str,
    poll: float,
    as_json: bool,
) -> dict[str, Any]:
    """The reassign in a thread, its move polled and drawn until the answer comes."""
    answer: dict[str, Any] = {}
    failure: list[AdminError] = []

    def request() -> None:
        try:
            answer.update(client.call("POST", "/device/reassign", json=body)[0])
        except AdminError as exc:
            failure.append(exc)

    worker = threading.Thread(target=request, name="edgemeta-move", daemon=True)
    worker.start()
    title = f"move {device} -> {service}"
    move: dict[str, Any] | None = None
    with (
        # Polls on a client of their own: the reassign holds the first one's connection.
        AdminClient(client.url, api_key=client.api_key, token=client.token) as poller,
        Live(render(None, title), console=console, transient=as_json, auto_refresh=False) as live,
    ):
        while worker.is_alive():
            worker.join(poll)
            if worker.is_alive():
                # The answer decides; a poll that fails only skips one redraw.
                with contextlib.suppress(AdminError):
                    move = latest_move(poller, device, correlation) or move
                live.update(render(move, title), refresh=True)
        if failure:
            raise failure[0]
        final = answer.get("move")
        live.update(render(final, title) if final else Text(f"{title}: refused"), refresh=True)
    if not console.is_terminal and not as_json:
        console.line()  # Live leaves its last line open when it is not drawing on a terminal
    return answer
