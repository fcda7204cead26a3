"""``edgemeta import FILE...``: bulk loads of services, profiles and devices, resumable.

Files: JSON or YAML (one record, a list, EdgeX request forms, or a mapping with
``services``/``profiles``/``devices`` lists) and CSV (devices: a header row of EdgeX field
names; ``labels`` comma- or semicolon-separated in its cell; ``protocols``, ``properties``,
``autoEvents``, ``tags``, ``location`` as JSON text). A YAML profile file goes through
``/deviceprofile/uploadfile`` as EdgeX's tools send it.

Records go in kind order (services, then profiles, then devices: each may name the one
before), in EdgeX batches of ``--batch``; the 207 answer has one result per item: 2xx is
*created*, 409 (the name exists) is *skipped*, anything else is *refused* with the service's
reason. Counting 409 as skipped is what makes a re-run after an interruption resume without
duplicates. A whole batch refused (400: EdgeX decodes a batch as one, so one malformed item
refuses all; 413: too large) is split in halves until the bad items stand alone, so the rest
are still created.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from edgemeta.admin.client import AdminClient, AdminError, Refused, Unreachable
from edgemeta.admin.common import (
    URL_DEFAULT,
    ApiKeyOption,
    JsonOption,
    TokenOption,
    UrlOption,
    connect,
    handled,
    usage,
)
from edgemeta.admin.files import FileError, is_yaml_name, parse, read_text, wrap
from edgemeta.admin.output import console, err_console, print_json, table

KINDS = ("service", "profile", "device")
ROUTES = {"service": "/deviceservice", "profile": "/deviceprofile", "device": "/device"}
# A mapping file's list keys, and EdgeX's request keys, per kind.
LIST_KEYS = {
    "service": ("services", "deviceServices"),
    "profile": ("profiles", "deviceProfiles"),
    "device": ("devices",),
}
JSON_COLUMNS = frozenset({"protocols", "properties", "autoEvents", "tags", "location"})
LABEL_SPLIT = re.compile(r"[;,]")


@dataclass
class Item:
    """One record to import, and where it came from (``file:line`` or ``file[i]``)."""

    kind: str
    record: dict[str, Any]
    source: str
    yaml: bytes | None = None  # a YAML profile file: uploaded as it is

    @property
    def name(self) -> str:
        """The record's name ('' when it has none: the service says so)."""
        return str(self.record.get("name", ""))


@dataclass
class Outcome:
    """What happened to one item."""

    kind: str
    name: str
    source: str
    status: int
    message: str

    def doc(self) -> dict[str, Any]:
        """As the report file writes it."""
        return {
            "kind": self.kind,
            "name": self.name,
            "source": self.source,
            "statusCode": self.status,
            "message": self.message,
        }


@dataclass
class Tally:
    """Created, skipped and refused, per kind."""

    created: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    skipped: list[Outcome] = field(default_factory=list)
    refused: list[Outcome] = field(default_factory=list)

    def add(self, item: Item, status: int, message: str) -> None:
        """Count one result."""
        if 200 <= status < 300:
            self.created[item.kind] += 1
        elif status == 409:
            self.skipped.append(Outcome(item.kind, item.name, item.source, status, message))
        else:
            self.refused.append(Outcome(item.kind, item.name, item.source, status, message))

    def report(self, interrupted: bool) -> dict[str, Any]:
        """The whole outcome, as ``--report`` and ``--json`` write it."""
        return {
            "interrupted": interrupted,
            "created": self.created,
            "skipped": {k: sum(1 for o in self.skipped if o.kind == k) for k in KINDS},
            "refused": {k: sum(1 for o in self.refused if o.kind == k) for k in KINDS},
            "refusedItems": [o.doc() for o in self.refused],
            "skippedItems": [o.doc() for o in self.skipped],
        }


# -- reading -----------------------------------------------------------------------------------


def kind_of(record: dict[str, Any]) -> str | None:
    """A bare record's kind, from the fields only that kind has."""
    if "deviceResources" in record or "deviceCommands" in record:
        return "profile"
    if "serviceName" in record or "protocols" in record or "profileName" in record:
        return "device"
    if "baseAddress" in record:
        return "service"
    return None


def _unwrap(doc: Any, source: str) -> Iterator[Item]:
    if isinstance(doc, dict) and any(k in doc for keys in LIST_KEYS.values() for k in keys):
        for kind, keys in LIST_KEYS.items():
            for key in keys:
                for i, rec in enumerate(doc.get(key) or []):
                    yield from _one(rec, f"{source}:{key}[{i}]", kind)
        return
    items = doc if isinstance(doc, list) else [doc]
    for i, rec in enumerate(items):
        yield from _one(rec, f"{source}[{i}]" if isinstance(doc, list) else source, None)


def _one(rec: Any, source: str, kind: str | None) -> Iterator[Item]:
    if not isinstance(rec, dict):
        raise FileError(f"{source}: not an object")
    if "apiVersion" in rec:  # EdgeX request form
        for k in KINDS:
            if isinstance(rec.get(k), dict):
                yield Item(k, rec[k], source)
                return
    found = kind or kind_of(rec)
    if found is None:
        raise FileError(
            f"{source}: cannot tell a service, profile or device apart (no baseAddress, "
            "deviceResources or serviceName)"
        )
    yield Item(found, rec, source)


def csv_devices(name: str, data: bytes, bad: Callable[[Item, str], None]) -> Iterator[Item]:
    """The devices of a CSV file; a row that cannot be read goes to ``bad`` with its reason."""
    text = data.decode("utf-8-sig")
    reader = csv.DictReader(io.StringIO(text, newline=""))
    if not reader.fieldnames or "name" not in reader.fieldnames:
        raise FileError(f"{name}: the header row must name EdgeX fields, 'name' among them")
    for row in reader:
        source = f"{name}:{reader.line_num}"
        device: dict[str, Any] = {}
        problem = ""
        if None in row:  # more cells than the header names
            problem = f"{len(row[None])} cell(s) more than the header has"
        for key, value in row.items():
            if key is None or value is None or value == "":
                continue
            if key == "labels":
                device["labels"] = [x.strip() for x in LABEL_SPLIT.split(value) if x.strip()]
            elif key in JSON_COLUMNS:
                try:
                    device[key] = orjson.loads(value)
                except orjson.JSONDecodeError as exc:
                    problem = problem or f"{key}: not valid JSON ({exc})"
            else:
                device[key] = value
        item = Item("device", device, source)
        if problem:
            bad(item, problem)
        else:
            yield item


def load(sources: list[str], bad: Callable[[Item, str], None]) -> list[Item]:
    """Every item of every file, in file order."""
    out: list[Item] = []
    for source in sources:
        name, data = read_text(source)
        if name.lower().endswith(".csv"):
            out.extend(csv_devices(name, data, bad))
            continue
        doc = parse(name, data)
        if is_yaml_name(name) and isinstance(doc, dict) and kind_of(doc) == "profile":
            out.append(Item("profile", doc, name, yaml=data))
            continue
        out.extend(_unwrap(doc, name))
    return out


# -- sending -----------------------------------------------------------------------------------


def send(client: AdminClient, kind: str, batch: list[Item], tally: Tally) -> None:
    """One batch; a batch refused whole is split until the bad items stand alone."""
    try:
        answers = client.call("POST", ROUTES[kind], json=[wrap(kind, i.record) for i in batch])
    except Refused as exc:
        if exc.status in (400, 413) and len(batch) > 1:
            half = len(batch) // 2
            send(client, kind, batch[:half], tally)
            send(client, kind, batch[half:], tally)
            return
        for item in batch:
            tally.add(item, exc.status, exc.message)
        return
    if not isinstance(answers, list) or len(answers) != len(batch):
        for item in batch:
            tally.add(item, 500, "the service's answer does not list one result per item")
        return
    for item, answer in zip(batch, answers, strict=True):
        tally.add(item, int(answer.get("statusCode", 500)), str(answer.get("message", "")))


def upload(client: AdminClient, item: Item, tally: Tally) -> None:
    """A YAML profile file through ``/deviceprofile/uploadfile``."""
    assert item.yaml is not None
    filename = Path(item.source).name
    try:
        body = client.call(
            "POST",
            "/deviceprofile/uploadfile",
            files={"file": (filename, item.yaml, "application/x-yaml")},
        )
    except Refused as exc:
        tally.add(item, exc.status, exc.message)
        return
    tally.add(item, int(body.get("statusCode", 201)), str(body.get("message", "")))


def run_import(
    client: AdminClient, items: list[Item], tally: Tally, batch_size: int, progress: Progress
) -> None:
    """Send the items, services first, then profiles, then devices."""
    for kind in KINDS:
        todo = [i for i in items if i.kind == kind]
        if not todo:
            continue
        task = progress.add_task(f"{kind}s", total=len(todo))
        pending: list[Item] = []
        for item in todo:
            if item.yaml is not None:
                upload(client, item, tally)
                progress.advance(task)
                continue
            pending.append(item)
            if len(pending) >= batch_size:
                send(client, kind, pending, tally)
                progress.advance(task, len(pending))
                pending = []
        if pending:
            send(client, kind, pending, tally)
            progress.advance(task, len(pending))


def _summary(tally: Tally, report: dict[str, Any], show: int) -> None:
    rows = [
        {
            "kind": k,
            "created": report["created"][k],
            "skipped": report["skipped"][k],
            "refused": report["refused"][k],
        }
        for k in KINDS
        if report["created"][k] or report["skipped"][k] or report["refused"][k]
    ]
    console.print(
        table(
            rows,
            [
                ("KIND", lambda r: r["kind"]),
                ("CREATED", lambda r: str(r["created"])),
                ("SKIPPED (exist)", lambda r: str(r["skipped"])),
                ("REFUSED", lambda r: str(r["refused"])),
            ],
            "import" + (" (interrupted)" if report["interrupted"] else ""),
        )
    )
    if tally.refused:
        first = tally.refused[:show]
        console.print(
            table(
                [o.doc() for o in first],
                [
                    ("WHERE", lambda r: r["source"]),
                    ("KIND", lambda r: r["kind"]),
                    ("NAME", lambda r: r["name"]),
                    ("STATUS", lambda r: str(r["statusCode"])),
                    ("REASON", lambda r: r["message"]),
                ],
                f"refused: first {len(first)} of {len(tally.refused)}",
            )
        )


def import_command(
    files: Annotated[list[str], typer.Argument(help="JSON, YAML or CSV files; - for stdin")],
    batch: Annotated[int, typer.Option("--batch", min=1, help="Records per request")] = 500,
    report: Annotated[
        Path | None,
        typer.Option("--report", help="Write every outcome (all refused, with reasons) as JSON"),
    ] = None,
    show: Annotated[int, typer.Option("--show", min=0, help="Refused items listed")] = 10,
    as_json: JsonOption = False,
    url: UrlOption = URL_DEFAULT,
    api_key: ApiKeyOption = None,
    token: TokenOption = None,
) -> None:
    """Bulk-load services, profiles and devices; exit 1 if any was refused.

    Existing names (409) are counted as skipped, so running the same import again after an
    interruption finishes it without duplicates.
    """
    tally = Tally()

    def bad_row(item: Item, reason: str) -> None:
        tally.refused.append(Outcome(item.kind, item.name, item.source, 400, reason))

    try:
        items = load(files, bad_row)
    except FileError as exc:
        usage(str(exc))
    interrupted = False
    lost: AdminError | None = None
    with handled(), connect(url, api_key, token) as client:
        progress = Progress(
            TextColumn("{task.description:>9}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=err_console,
            transient=as_json,
        )
        try:
            with progress:
                run_import(client, items, tally, batch, progress)
        except KeyboardInterrupt:
            interrupted = True
        except Unreachable as exc:  # the service went away: say what was done first
            interrupted, lost = True, exc
    result = tally.report(interrupted)
    if report is not None:
        report.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    if as_json:
        print_json(result)
    else:
        _summary(tally, result, show)
        if report is not None:
            console.print(f"report: {report}", style="dim", markup=False)
    if interrupted:
        if lost is not None:
            err_console.print(f"edgemeta: {lost}", markup=False)
        err_console.print("interrupted: run the same import again to finish it")
        raise typer.Exit(lost.exit_code if lost is not None else 130)
    raise typer.Exit(1 if tally.refused else 0)
