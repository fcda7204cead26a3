"""The one table of who may call what: every (API, method, route template) and the roles that
grant it. Deny by default: a route that is not in this table is refused for everyone (the
gate answers 403 and ``tests/security/test_role_table.py`` fails), so a new route cannot be
served unprotected by forgetting it here.

``admin`` holds every role. ``service`` is a device service's identity: a credential bound to
one service name. What such a credential may write is narrowed further by ``own`` (checked by
the route once the body is parsed, see ``edgemeta.api.authz``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

METADATA = "core-metadata"
DATA = "core-data"
KEEPER = "core-keeper"
COMMAND = "core-command"
BASE = "/api/v3"


class Role(StrEnum):
    """The roles a token's claims or an API key may carry."""

    READ = "read"
    DEVICE_WRITE = "device-write"
    PROFILE_WRITE = "profile-write"
    MOVE = "move"
    PROVISIONING_ADMIN = "provisioning-admin"
    EVENTS_READ = "events-read"
    COMMAND = "command"
    ADMIN = "admin"
    SERVICE = "service"
    METRICS = "metrics"  # read GET /metrics (a Prometheus scraper's credential)


ROLES: tuple[str, ...] = tuple(r.value for r in Role)


class Own(StrEnum):
    """What a credential bound to a service name must own to be let through a write."""

    NONE = ""  # nothing to check (reads, or routes a service role cannot reach)
    SERVICE_BODY = "service named in the body is its own"
    DEVICE_BODY = "every device in the body is (and stays) its own"
    DEVICE_PATH = "the device named in the path is its own"
    EVENT_PATH = "the serviceName in the path is its own"
    SERVICE_PATH = "the service named in the path is its own"


@dataclass(frozen=True, slots=True)
class Rule:
    """What a route needs: any one of ``roles`` (empty and ``open``: anyone, even anonymous)."""

    roles: frozenset[str]
    open: bool = False
    own: Own = Own.NONE
    note: str = ""
    deny: bool = False  # refused for everyone, admin and authentication off included

    def allows(self, roles: frozenset[str]) -> bool:
        """Whether a caller holding ``roles`` may call the route (before ownership checks)."""
        if self.deny:
            return False
        return self.open or Role.ADMIN in roles or not self.roles.isdisjoint(roles)


def _r(*roles: Role, own: Own = Own.NONE, note: str = "") -> Rule:
    return Rule(frozenset(r.value for r in roles), own=own, note=note)


OPEN = Rule(frozenset(), open=True)
# Health probes come from orchestrators and load balancers that hold no credential (as /ping
# does); they say up/down and migration numbers, nothing about the data.
PROBE = Rule(frozenset(), open=True, note="health probe (docs/operations.md#health)")
# The browsable page of the public contract and its static files (Swagger UI): as open as
# /openapi.yaml itself, which is all the page shows.
DOCS = Rule(frozenset(), open=True, note="API page of the public contract (Swagger UI)")
DENY = Rule(frozenset(), deny=True, note="not in the role table: refused for everyone")
READ = _r(Role.READ, Role.SERVICE)
DEVICE_WRITE = _r(Role.DEVICE_WRITE)
PROFILE_WRITE = _r(Role.PROFILE_WRITE)
PROVISIONING = _r(Role.PROVISIONING_ADMIN)
ADMIN = _r(Role.ADMIN)

_M = METADATA
_D = DATA
_K = KEEPER
_C = COMMAND

TABLE: dict[tuple[str, str, str], Rule] = {
    # common
    (_M, "GET", "/ping"): OPEN,
    (_M, "GET", "/health"): OPEN,
    (_M, "GET", "/health/live"): PROBE,
    (_M, "GET", "/health/ready"): PROBE,
    (_M, "GET", "/openapi.yaml"): Rule(frozenset(), open=True, note="the public contract"),
    (_M, "GET", "/docs"): DOCS,
    (_M, "GET", "/docs/{asset}"): DOCS,
    (_M, "GET", "/version"): READ,
    (_M, "GET", "/config"): READ,
    (_M, "GET", "/uom"): READ,
    (_M, "POST", "/secret"): ADMIN,
    (_M, "GET", "/systemevent/stream"): _r(Role.EVENTS_READ),
    # Prometheus' conventional path, outside /api/v3 (see ROOT_ROUTES)
    (_M, "GET", "/metrics"): _r(Role.METRICS, note="served at /metrics, not under /api/v3"),
    # device services: a service registers and updates itself
    (_M, "POST", "/deviceservice"): _r(Role.DEVICE_WRITE, Role.SERVICE, own=Own.SERVICE_BODY),
    (_M, "PATCH", "/deviceservice"): _r(Role.DEVICE_WRITE, Role.SERVICE, own=Own.SERVICE_BODY),
    (_M, "GET", "/deviceservice/all"): READ,
    (_M, "GET", "/deviceservice/name/{name}"): READ,
    (_M, "DELETE", "/deviceservice/name/{name}"): DEVICE_WRITE,
    (_M, "GET", "/deviceservice/name/{name}/moves"): READ,
    # a device service's key for signing its bus replies: its own only (and the admin's)
    (_M, "GET", "/deviceservice/name/{name}/releasekey"): _r(Role.SERVICE, own=Own.SERVICE_PATH),
    # profiles: a device service may add the profiles it ships (as device-sdk-go does at
    # start), never change or delete one
    (_M, "POST", "/deviceprofile"): _r(Role.PROFILE_WRITE, Role.SERVICE),
    (_M, "PUT", "/deviceprofile"): PROFILE_WRITE,
    (_M, "POST", "/deviceprofile/uploadfile"): _r(Role.PROFILE_WRITE, Role.SERVICE),
    (_M, "PUT", "/deviceprofile/uploadfile"): PROFILE_WRITE,
    (_M, "GET", "/deviceprofile/all"): READ,
    (_M, "PATCH", "/deviceprofile/basicinfo"): PROFILE_WRITE,
    (_M, "GET", "/deviceprofile/basicinfo/all"): READ,
    (_M, "POST", "/deviceprofile/resource"): PROFILE_WRITE,
    (_M, "PATCH", "/deviceprofile/resource"): PROFILE_WRITE,
    (_M, "POST", "/deviceprofile/deviceCommand"): PROFILE_WRITE,
    (_M, "PATCH", "/deviceprofile/deviceCommand"): PROFILE_WRITE,
    (_M, "GET", "/deviceprofile/name/{name}"): READ,
    (_M, "DELETE", "/deviceprofile/name/{name}"): PROFILE_WRITE,
    (_M, "PATCH", "/deviceprofile/name/{name}/tags"): PROFILE_WRITE,
    (_M, "DELETE", "/deviceprofile/name/{name}/resource/{resourceName}"): PROFILE_WRITE,
    (_M, "DELETE", "/deviceprofile/name/{name}/deviceCommand/{commandName}"): PROFILE_WRITE,
    (_M, "GET", "/deviceprofile/manufacturer/{manufacturer}/model/{model}"): READ,
    (_M, "GET", "/deviceprofile/manufacturer/{manufacturer}"): READ,
    (_M, "GET", "/deviceprofile/model/{model}"): READ,
    (_M, "GET", "/deviceresource/profile/{profileName}/resource/{resourceName}"): READ,
    # devices: a service adds, updates and deletes its own
    (_M, "POST", "/device"): _r(Role.DEVICE_WRITE, Role.SERVICE, own=Own.DEVICE_BODY),
    (_M, "PATCH", "/device"): _r(Role.DEVICE_WRITE, Role.SERVICE, own=Own.DEVICE_BODY),
    (_M, "GET", "/device/all"): READ,
    (_M, "GET", "/device/name/{name}"): READ,
    (_M, "DELETE", "/device/name/{name}"): _r(Role.DEVICE_WRITE, Role.SERVICE, own=Own.DEVICE_PATH),
    (_M, "GET", "/device/id/{id}"): READ,
    (_M, "GET", "/device/check/name/{name}"): READ,
    (_M, "GET", "/device/service/name/{name}"): READ,
    (_M, "GET", "/device/profile/name/{name}"): READ,
    (_M, "GET", "/device/name/{name}/state"): READ,
    # moves
    (_M, "POST", "/device/reassign"): _r(Role.MOVE),
    (_M, "GET", "/device/move/id/{id}"): READ,
    (_M, "GET", "/device/name/{name}/moves"): READ,
    # provisioning: enrolments and their keys, reprovisioning and quarantine are the admin's;
    # a registration is made by (or for) a device, through its service or a device writer
    (_M, "POST", "/enrollment"): PROVISIONING,
    (_M, "PATCH", "/enrollment"): PROVISIONING,
    (_M, "GET", "/enrollment/all"): _r(Role.READ, Role.PROVISIONING_ADMIN),
    (_M, "GET", "/enrollment/name/{name}"): _r(
        Role.READ, Role.PROVISIONING_ADMIN, note="?showKeys=true: provisioning-admin only"
    ),
    (_M, "DELETE", "/enrollment/name/{name}"): PROVISIONING,
    (_M, "POST", "/enrollment/name/{name}/reprovision"): PROVISIONING,
    (_M, "POST", "/registration"): _r(Role.DEVICE_WRITE, Role.SERVICE),
    (_M, "GET", "/registration/challenge"): _r(Role.DEVICE_WRITE, Role.SERVICE),
    (_M, "GET", "/registration/all"): _r(Role.READ, Role.PROVISIONING_ADMIN),
    (_M, "GET", "/registration/name/{id}"): _r(Role.READ, Role.PROVISIONING_ADMIN),
    (_M, "POST", "/registration/name/{id}/reprovision"): PROVISIONING,
    (_M, "POST", "/registration/name/{id}/quarantine"): PROVISIONING,
    (_M, "POST", "/registration/name/{id}/release"): PROVISIONING,
    # provision watchers
    (_M, "POST", "/provisionwatcher"): DEVICE_WRITE,
    (_M, "PATCH", "/provisionwatcher"): DEVICE_WRITE,
    (_M, "GET", "/provisionwatcher/all"): READ,
    (_M, "GET", "/provisionwatcher/name/{name}"): READ,
    (_M, "DELETE", "/provisionwatcher/name/{name}"): DEVICE_WRITE,
    (_M, "GET", "/provisionwatcher/service/name/{name}"): READ,
    (_M, "GET", "/provisionwatcher/profile/name/{name}"): READ,
    # core-data
    (_D, "GET", "/ping"): OPEN,
    (_D, "GET", "/health"): OPEN,
    (_D, "GET", "/health/live"): PROBE,
    (_D, "GET", "/health/ready"): PROBE,
    (_D, "GET", "/version"): READ,
    (_D, "GET", "/config"): READ,
    (_D, "GET", "/event/all"): READ,
    (_D, "GET", "/event/count"): READ,
    (_D, "GET", "/event/count/device/name/{name}"): READ,
    (_D, "GET", "/event/device/name/{name}"): READ,
    (_D, "DELETE", "/event/device/name/{name}"): DEVICE_WRITE,
    (_D, "GET", "/event/id/{id}"): READ,
    (_D, "DELETE", "/event/id/{id}"): DEVICE_WRITE,
    (_D, "GET", "/event/start/{start}/end/{end}"): READ,
    (_D, "DELETE", "/event/age/{age}"): ADMIN,
    (_D, "POST", "/event/{serviceName}/{profileName}/{deviceName}/{sourceName}"): _r(
        Role.DEVICE_WRITE, Role.SERVICE, own=Own.EVENT_PATH
    ),
    (_D, "GET", "/reading/all"): READ,
    (_D, "GET", "/reading/count"): READ,
    (_D, "GET", "/openapi.yaml"): Rule(frozenset(), open=True, note="the public contract"),
    (_D, "GET", "/docs"): DOCS,
    (_D, "GET", "/docs/{asset}"): DOCS,
    (_D, "GET", "/reading/count/device/name/{name}"): READ,
    (_D, "GET", "/reading/device/name/{name}"): READ,
    (_D, "GET", "/reading/resourceName/{resourceName}"): READ,
    (_D, "GET", "/reading/device/name/{deviceName}/resourceName/{resourceName}"): READ,
    (_D, "GET", "/reading/start/{start}/end/{end}"): READ,
    (_D, "GET", "/reading/resourceName/{resourceName}/start/{start}/end/{end}"): READ,
    (
        _D,
        "GET",
        "/reading/device/name/{deviceName}/resourceName/{resourceName}/start/{start}/end/{end}",
    ): READ,
    (_D, "GET", "/reading/device/name/{deviceName}/start/{start}/end/{end}"): READ,
    # core-keeper (the key/value store): writing a key changes how the service runs
    (_K, "GET", "/ping"): OPEN,
    (_K, "GET", "/health"): OPEN,
    (_K, "GET", "/health/live"): PROBE,
    (_K, "GET", "/health/ready"): PROBE,
    (_K, "GET", "/version"): READ,
    (_K, "GET", "/openapi.yaml"): Rule(frozenset(), open=True, note="the public contract"),
    (_K, "GET", "/docs"): DOCS,
    (_K, "GET", "/docs/{asset}"): DOCS,
    (_K, "GET", "/kvs/key/{key}"): READ,
    (_K, "PUT", "/kvs/key/{key}"): ADMIN,
    (_K, "DELETE", "/kvs/key/{key}"): ADMIN,
    # core-command: listing commands is a read; issuing one (even a read: it makes the device
    # do I/O and can push an event) needs the command role
    (_C, "GET", "/ping"): OPEN,
    (_C, "GET", "/health"): OPEN,
    (_C, "GET", "/health/live"): PROBE,
    (_C, "GET", "/health/ready"): PROBE,
    (_C, "GET", "/version"): READ,
    (_C, "GET", "/config"): READ,
    (_C, "GET", "/openapi.yaml"): Rule(frozenset(), open=True, note="the public contract"),
    (_C, "GET", "/docs"): DOCS,
    (_C, "GET", "/docs/{asset}"): DOCS,
    (_C, "GET", "/device/all"): _r(Role.READ, Role.COMMAND),
    (_C, "GET", "/device/name/{name}"): _r(Role.READ, Role.COMMAND),
    (_C, "GET", "/device/name/{name}/{command}"): _r(
        Role.COMMAND, note="reads the device's values (device I/O)"
    ),
    (_C, "PUT", "/device/name/{name}/{command}"): _r(
        Role.COMMAND, note="values checked against the profile before anything is sent"
    ),
}


# Commands from the north (edgemeta.north): core-command's requests over an external MQTT
# broker, keyed by operation and the default topic shape. The same rules as the REST routes
# they mirror, so a credential may do over MQTT exactly what it may do over HTTP.
NORTH_QUERY = "query"
NORTH_GET = "get"
NORTH_SET = "set"
NORTH: dict[str, tuple[str, Rule]] = {
    NORTH_QUERY: (
        "edgex/commandquery/request/{device or all}",
        TABLE[(_C, "GET", "/device/name/{name}")],
    ),
    NORTH_GET: (
        "edgex/command/request/{device}/{command}/get",
        TABLE[(_C, "GET", "/device/name/{name}/{command}")],
    ),
    NORTH_SET: (
        "edgex/command/request/{device}/{command}/set",
        TABLE[(_C, "PUT", "/device/name/{name}/{command}")],
    ),
}


#: Templates served at the root of the port rather than under ``/api/v3``.
ROOT_ROUTES = frozenset({"/metrics"})


def full_path(template: str) -> str:
    """The path a template is served at."""
    return template if template in ROOT_ROUTES else BASE + template


def rule_for(api: str, method: str, template: str) -> Rule:
    """The rule of a route (``template`` without the ``/api/v3`` base); DENY if not listed.

    HEAD is answered as GET (Starlette serves HEAD on every GET route).
    """
    if method == "HEAD":
        method = "GET"
    return TABLE.get((api, method, template), DENY)


def markdown() -> str:
    """The route-by-role table as Markdown (``edgemeta roles --markdown``)."""
    lines = [
        "# Route and role table",
        "",
        "Generated by `edgemeta roles --markdown > docs/security-roles.md` from",
        "`src/edgemeta/security/roles.py` (a test fails when this file is out of date).",
        "`admin` holds every role; *open* routes need no credential. A credential bound to a",
        "device service (`--service NAME`, or the token's service claim) is further limited",
        "on the routes with an ownership rule.",
        "",
        f"{len(TABLE)} routes.",
        "",
        "| API | Method | Route | Roles (any of) | Service-bound credential | Note |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for (api, method, template), rule in TABLE.items():
        roles = "*open*" if rule.open else ", ".join(sorted(rule.roles))
        own = rule.own.value if rule.own else ""
        lines.append(
            f"| {api} | {method} | `{full_path(template)}` | {roles} | {own} | {rule.note} |"
        )
    lines += [
        "",
        "## Commands from the north (external MQTT)",
        "",
        "core-command's requests on the external broker (docs/commands.md, \"Commands from the",
        "north\"); the credential travels in the request envelope's `queryParams`. Topics as by",
        "default (`EDGEMETA_NORTH_*_TOPIC` change them).",
        "",
        "| Operation | Request topic | Roles (any of) | Note |",
        "| --- | --- | --- | --- |",
    ]
    for operation, (topic, rule) in NORTH.items():
        roles = ", ".join(sorted(rule.roles))
        lines.append(f"| {operation} | `{topic}` | {roles} | {rule.note} |")
    return "\n".join(lines) + "\n"
