"""``edgemeta device|profile|service|watcher|enrollment list/get/add/delete``.

One table per record type says its routes, its keys in EdgeX's bodies and its table columns;
the four commands are made from it, so every type behaves the same way.
"""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import typer
from rich.text import Text

from edgemeta.admin.client import AdminClient, Refused
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
from edgemeta.admin.files import FileError, is_yaml_name, parse, read_text, records, wrap
from edgemeta.admin.output import Column, console, err_console, ms, print_json, record, table


@dataclass(frozen=True)
class Resource:
    """One record type of the API, as the CLI sees it."""

    cli: str  # the command group: "device"
    route: str  # "/device"
    key: str  # a request's and a get answer's key: "device"
    list_key: str  # a list answer's key: "devices"
    columns: list[Column] = field(default_factory=list)
    help: str = ""


def _labels(r: dict[str, Any]) -> Any:
    return r.get("labels")


DEVICE = Resource(
    "device",
    "/device",
    "device",
    "devices",
    [
        ("NAME", lambda r: r.get("name")),
        ("SERVICE", lambda r: r.get("serviceName")),
        ("PROFILE", lambda r: r.get("profileName")),
        ("ADMIN", lambda r: r.get("adminState")),
        ("OPERATING", lambda r: r.get("operatingState")),
        ("LABELS", _labels),
    ],
    "Devices (EdgeX /device routes).",
)
PROFILE = Resource(
    "profile",
    "/deviceprofile",
    "profile",
    "profiles",
    [
        ("NAME", lambda r: r.get("name")),
        ("MANUFACTURER", lambda r: r.get("manufacturer")),
        ("MODEL", lambda r: r.get("model")),
        ("RESOURCES", lambda r: len(r.get("deviceResources") or [])),
        ("LABELS", _labels),
    ],
    "Device profiles (EdgeX /deviceprofile routes; add takes JSON or EdgeX YAML).",
)
SERVICE = Resource(
    "service",
    "/deviceservice",
    "service",
    "services",
    [
        ("NAME", lambda r: r.get("name")),
        ("BASE ADDRESS", lambda r: r.get("baseAddress")),
        ("ADMIN", lambda r: r.get("adminState")),
        ("LABELS", _labels),
    ],
    "Device services (EdgeX /deviceservice routes).",
)
WATCHER = Resource(
    "watcher",
    "/provisionwatcher",
    "provisionWatcher",
    "provisionWatchers",
    [
        ("NAME", lambda r: r.get("name")),
        ("SERVICE", lambda r: r.get("serviceName")),
        ("PROFILE", lambda r: (r.get("discoveredDevice") or {}).get("profileName")),
        ("ADMIN", lambda r: r.get("adminState")),
        ("IDENTIFIERS", lambda r: r.get("identifiers")),
    ],
    "Provision watchers (EdgeX /provisionwatcher routes).",
)
ENROLLMENT = Resource(
    "enrollment",
    "/enrollment",
    "enrollment",
    "enrollments",
    [
        ("NAME", lambda r: r.get("name")),
        ("KIND", lambda r: r.get("kind")),
        ("MATCH", lambda r: r.get("registrationId") or r.get("match")),
        ("POLICY", lambda r: (r.get("allocation") or {}).get("policy")),
        (
            "SERVICES",
            lambda r: [s.get("name") for s in (r.get("allocation") or {}).get("services", [])],
        ),
        ("MODIFIED", lambda r: ms(r.get("modified"))),
    ],
    "Enrolments (edgemeta's provisioning, /enrollment routes).",
)
RESOURCES = [DEVICE, PROFILE, SERVICE, WATCHER, ENROLLMENT]

LimitOption = Annotated[
    int, typer.Option("--limit", min=-1, help="At most this many (-1: the service's maximum)")
]
OffsetOption = Annotated[int, typer.Option("--offset", min=0, help="Skip this many first")]
LabelOption = Annotated[
    list[str] | None,
    typer.Option("--label", help="Only records with this label (repeat for all of several)"),
]


def _path_name(name: str) -> str:
    return quote(name, safe="")


def list_records(
    client: AdminClient,
    res: Resource,
    *,
    limit: int,
    offset: int,
    labels: list[str] | None,
    route: str | None = None,
) -> dict[str, Any]:
    """One page of a list route (``route`` overrides ``/all``)."""
    params: dict[str, Any] = {"offset": offset, "limit": limit}
    if labels:
        params["labels"] = ",".join(labels)
    body: dict[str, Any] = client.call("GET", route or f"{res.route}/all", params=params)
    return body


def show_page(res: Resource, body: dict[str, Any], offset: int, as_json: bool) -> None:
    """A page as a table with a 'shown of total' line, or as the service's JSON."""
    if as_json:
        print_json(body)
        return
    rows = body.get(res.list_key) or []
    total = int(body.get("totalCount", len(rows)))
    console.print(table(rows, res.columns))
    more = " (--offset/--limit for more)" if offset + len(rows) < total else ""
    console.print(f"{len(rows)} of {total} {res.list_key}{more}", style="dim")


def add_records(client: AdminClient, res: Resource, source: str, as_json: bool) -> int:
    """Add the records of one file (``-`` for stdin); the exit code (1 if any was refused)."""
    try:
        name, data = read_text(source)
        if res is PROFILE and (is_yaml_name(name) or not _looks_like_json(data)):
            answers = [_upload_profile(client, name, data)]
        else:
            items = records(parse(name, data), res.key, name)
            if not items:
                usage(f"{name}: no records")
            answers = client.call("POST", res.route, json=[wrap(res.key, r) for r in items])
            answers = [
                {"name": r.get("name", ""), **a} for r, a in zip(items, answers, strict=False)
            ]
    except FileError as exc:
        usage(str(exc))
    if as_json:
        print_json(answers)
    failed = 0
    for a in answers:
        code = int(a.get("statusCode", 0))
        if code >= 400:
            failed += 1
        if not as_json:
            style = "red" if code >= 400 else "green"
            what = a.get("message") or (f"id {a['id']}" if a.get("id") else "")
            console.print(
                Text.assemble((str(code), style), f" {res.cli} {a.get('name', '')}: {what}")
            )
            _print_secrets(a)
    return 1 if failed else 0


def _print_secrets(answer: dict[str, Any]) -> None:
    """An enrolment's generated keys and webhook secret: the add's answer is the only time
    the service shows them without ``showKeys``, so they must not be lost in a table."""
    enrollment = answer.get("enrollment")
    if not isinstance(enrollment, dict):
        return
    attestation = enrollment.get("attestation") or {}
    webhook = (enrollment.get("allocation") or {}).get("webhook") or {}
    for label, value in (
        ("primaryKey", attestation.get("primaryKey")),
        ("secondaryKey", attestation.get("secondaryKey")),
        ("webhook secret", webhook.get("secret")),
    ):
        if value:
            # soft_wrap: a key broken over lines by the terminal width cannot be copied
            console.print(f"  {label}: {value}", markup=False, soft_wrap=True)
    if attestation.get("primaryKey") or webhook.get("secret"):
        console.print("  (shown only now; keep them)", style="dim")


def _looks_like_json(data: bytes) -> bool:
    return data.lstrip()[:1] in (b"{", b"[")


def _upload_profile(client: AdminClient, name: str, data: bytes) -> dict[str, Any]:
    """An EdgeX YAML profile through ``POST /deviceprofile/uploadfile`` (multipart ``file``)."""
    filename = Path(name).name if name != "<stdin>" else "profile.yaml"
    try:
        body: dict[str, Any] = client.call(
            "POST",
            "/deviceprofile/uploadfile",
            files={"file": (filename, data, "application/x-yaml")},
        )
    except Refused as exc:
        return {"name": name, "statusCode": exc.status, "message": exc.message}
    doc = parse(name, data)
    return {"name": doc.get("name", name) if isinstance(doc, dict) else name, **body}


def _commands(res: Resource) -> typer.Typer:
    """The list/get/add/delete commands of one record type."""
    group = typer.Typer(help=res.help, no_args_is_help=True)

    def list_(
        limit: LimitOption = 20,
        offset: OffsetOption = 0,
        label: LabelOption = None,
        as_json: JsonOption = False,
        url: UrlOption = URL_DEFAULT,
        api_key: ApiKeyOption = None,
        token: TokenOption = None,
    ) -> None:
        with handled(), connect(url, api_key, token) as client:
            body = list_records(client, res, limit=limit, offset=offset, labels=label)
            show_page(res, body, offset, as_json)

    list_.__doc__ = f"List {res.list_key} (a table; --json for the service's answer)."

    def device_list(
        service: Annotated[
            str | None, typer.Option("--service", help="Only the devices of this service")
        ] = None,
        profile: Annotated[
            str | None, typer.Option("--profile", help="Only the devices of this profile")
        ] = None,
        limit: LimitOption = 20,
        offset: OffsetOption = 0,
        label: LabelOption = None,
        as_json: JsonOption = False,
        url: UrlOption = URL_DEFAULT,
        api_key: ApiKeyOption = None,
        token: TokenOption = None,
    ) -> None:
        if service and profile:
            usage("--service and --profile cannot be combined (EdgeX has one route for each)")
        route = None
        if service:
            route = f"/device/service/name/{_path_name(service)}"
        elif profile:
            route = f"/device/profile/name/{_path_name(profile)}"
        with handled(), connect(url, api_key, token) as client:
            body = list_records(client, res, limit=limit, offset=offset, labels=label, route=route)
            show_page(res, body, offset, as_json)

    device_list.__doc__ = "List devices, all or of one --service / --profile."

    def get(
        name: Annotated[str, typer.Argument(help=f"The {res.cli}'s name")],
        as_json: JsonOption = False,
        url: UrlOption = URL_DEFAULT,
        api_key: ApiKeyOption = None,
        token: TokenOption = None,
    ) -> None:
        with handled(), connect(url, api_key, token) as client:
            body = client.call("GET", f"{res.route}/name/{_path_name(name)}")
        if as_json:
            print_json(body)
        else:
            console.print(record(body.get(res.key) or {}, f"{res.cli} {name}"))

    get.__doc__ = f"Show one {res.cli} by name."

    def enrollment_get(
        name: Annotated[str, typer.Argument(help="The enrolment's name")],
        show_keys: Annotated[
            bool,
            typer.Option(
                "--show-keys", help="Include the attestation keys (needs provisioning-admin)"
            ),
        ] = False,
        as_json: JsonOption = False,
        url: UrlOption = URL_DEFAULT,
        api_key: ApiKeyOption = None,
        token: TokenOption = None,
    ) -> None:
        params = {"showKeys": "true"} if show_keys else None
        with handled(), connect(url, api_key, token) as client:
            body = client.call("GET", f"{res.route}/name/{_path_name(name)}", params=params)
        if as_json:
            print_json(body)
        else:
            console.print(record(body.get(res.key) or {}, f"{res.cli} {name}"))

    enrollment_get.__doc__ = "Show one enrolment by name (keys only with --show-keys)."

    def add(
        files: Annotated[
            list[str], typer.Argument(help="JSON or YAML files (one record or a list); - for stdin")
        ],
        as_json: JsonOption = False,
        url: UrlOption = URL_DEFAULT,
        api_key: ApiKeyOption = None,
        token: TokenOption = None,
    ) -> None:
        code = 0
        with handled(), connect(url, api_key, token) as client:
            for source in files:
                code = max(code, add_records(client, res, source, as_json))
        raise typer.Exit(code)

    add.__doc__ = f"Add {res.list_key} from files (exit 1 if the service refused any)." + (
        " A YAML file goes through /deviceprofile/uploadfile, as EdgeX's UI does."
        if res is PROFILE
        else ""
    )

    def delete(
        names: Annotated[list[str], typer.Argument(help=f"The {res.cli} names")],
        url: UrlOption = URL_DEFAULT,
        api_key: ApiKeyOption = None,
        token: TokenOption = None,
    ) -> None:
        failed = False
        with handled(), connect(url, api_key, token) as client:
            for name in names:
                try:
                    client.call("DELETE", f"{res.route}/name/{_path_name(name)}")
                    console.print(f"deleted {res.cli} {name}", markup=False)
                except Refused as exc:
                    failed = True
                    err_console.print(f"edgemeta: {res.cli} {name}: {exc}", markup=False)
        raise typer.Exit(1 if failed else 0)

    delete.__doc__ = f"Delete {res.list_key} by name (exit 1 if any was refused)."

    group.command("list")(device_list if res is DEVICE else list_)
    group.command("get")(enrollment_get if res is ENROLLMENT else get)
    group.command("add")(add)
    group.command("delete")(delete)
    return group


def register(app: typer.Typer) -> dict[str, typer.Typer]:
    """Add the record commands to the ``edgemeta`` app; the groups, by name (so commands with
    direct database access, such as ``enrollment revoke``, can join them)."""
    groups = {}
    for res in RESOURCES:
        groups[res.cli] = group = _commands(res)
        app.add_typer(group, name=res.cli)
    return groups
