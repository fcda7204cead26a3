"""Enrolments and registrations: how a device finds its device service, and what moves with
it when it is sent elsewhere (after Azure DPS, seed 001).

An **enrolment** says which devices may register (one device by name: *individual*; devices
matched by name pattern, labels or protocol properties: *group*), how they prove who they are
(symmetric keys or X.509 certificates), which device service they go to (the **allocation
policy**), what state a new device starts with (**initial state**), and what happens when a
registered device registers again and is allocated elsewhere (the **reprovisioning policy**):

- ``migrate`` (default): the device moves with its current state;
- ``reset``: it moves (or stays) and is reset to its initial state;
- ``never``: it stays where it is (sticky).

A **registration record** per device says where it stands: status ``unassigned``,
``assigning``, ``assigned``, ``failed`` or ``disabled``, and, once assigned, how it got there
(substatus ``initialAssignment``, ``deviceDataMigrated``, ``deviceDataReset`` or
``reprovisionedToInitialAssignment``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from urllib.parse import urlsplit

from edgemeta.domain import patterns
from edgemeta.domain.records import JSON, AdminState, AutoEvent, JSONObject


class EnrollmentKind(StrEnum):
    """One device, or a group of devices."""

    INDIVIDUAL = "individual"
    GROUP = "group"


class AllocationPolicy(StrEnum):
    """How a registration chooses its device service."""

    STATIC = "static"  # always the one service named
    HASHED = "hashed"  # a weighted, stable hash of the registration id over the services
    NEAREST = "nearest"  # the service at the reported site, or with the lowest reported latency
    CUSTOM = "custom"  # a webhook decides; a fallback policy when it fails


class ReprovisionPolicy(StrEnum):
    """What a registration of an already registered device does."""

    MIGRATE = "migrate"
    RESET = "reset"
    NEVER = "never"


class RegistrationStatus(StrEnum):
    """Where a device's registration stands."""

    UNASSIGNED = "unassigned"
    ASSIGNING = "assigning"
    ASSIGNED = "assigned"
    FAILED = "failed"
    DISABLED = "disabled"


class Substatus(StrEnum):
    """How an assigned device got where it is."""

    INITIAL_ASSIGNMENT = "initialAssignment"
    DATA_MIGRATED = "deviceDataMigrated"
    DATA_RESET = "deviceDataReset"
    REPROVISIONED_TO_INITIAL = "reprovisionedToInitialAssignment"


@dataclass(frozen=True, slots=True, kw_only=True)
class Candidate:
    """A device service an enrolment may allocate to."""

    service: str
    weight: int = 1
    site: str = ""  # for the nearest policy: the site this service serves


def webhook_url_problem(url: str) -> str | None:
    """What is wrong with an allocation webhook URL, or None when it is acceptable.

    ``http://`` or ``https://`` (lower case, as the OpenAPI pattern says), with a host; no
    ``user:password@`` (credentials in a URL end up in logs and in the enrolment document every
    reader sees), no fragment (never sent, so it can only mislead), nothing unprintable.
    """
    if any(c.isspace() or not c.isprintable() for c in url):
        return "must not contain whitespace or control characters"
    if not url.startswith(("http://", "https://")):
        return "must be an http:// or https:// URL"
    try:
        parts = urlsplit(url)
        port = parts.port  # raises on a port that is not a number in range
    except ValueError:
        return "is not a valid URL"
    if not parts.hostname:
        return "must name a host"
    if "@" in parts.netloc:
        return "must not carry a user name or password (user:password@)"
    if "#" in url:
        return "must not have a fragment (#...)"
    if port == 0:
        return "must not use port 0"
    return None


@dataclass(frozen=True, slots=True, kw_only=True)
class Webhook:
    """Custom allocation: POSTs the registration, expects ``{"serviceName": ...}`` back."""

    url: str
    timeout: float = 2.0
    fallback: AllocationPolicy = AllocationPolicy.HASHED
    # base64; signs each request (X-Edgemeta-Signature) so the receiver can trust it. Sealed
    # at rest and shown only with the enrolment keys.
    secret: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class InitialState:
    """The configuration a device starts with (and a reset returns to)."""

    profile_name: str = ""
    description: str = ""
    admin_state: AdminState = AdminState.UNLOCKED
    protocols: dict[str, JSONObject] = field(default_factory=dict)
    properties: JSONObject = field(default_factory=dict)
    tags: JSONObject = field(default_factory=dict)
    labels: tuple[str, ...] = ()
    auto_events: tuple[AutoEvent, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Match:
    """Which devices a group enrolment covers: all given conditions must hold."""

    name_pattern: str = ""  # a regular expression the whole registration id must match
    labels: tuple[str, ...] = ()  # labels the registration must report
    identifiers: dict[str, str] = field(default_factory=dict)  # protocol property → regex

    def matches(self, registration_id: str, labels: tuple[str, ...], props: JSONObject) -> bool:
        """Whether a registration with these reported facts is covered."""
        if self.name_pattern and not patterns.fullmatch(self.name_pattern, registration_id):
            return False
        if any(label not in labels for label in self.labels):
            return False
        for key, pattern in self.identifiers.items():
            value = props.get(key)
            if not isinstance(value, str) or not patterns.fullmatch(pattern, value):
                return False
        return True


class AttestationType(StrEnum):
    """How the devices of an enrolment prove who they are."""

    SYMMETRIC_KEY = "symmetricKey"
    X509 = "x509"


@dataclass(frozen=True, slots=True, kw_only=True)
class X509Attestation:
    """Certificates: an individual enrolment names the device certificate (its thumbprint);
    a group enrolment names CA certificates (PEM), a root or any intermediate."""

    thumbprint: str = ""  # individual: SHA-256 of the device certificate, lower-case hex
    ca_certificates: tuple[str, ...] = ()  # PEM; for an individual: what its chain ends in
    registration_id_from: str = "subject:CN"  # where the registration id is in the certificate
    revoked_serials: tuple[str, ...] = ()  # lower-case hex, any certificate of the chain
    revoked_thumbprints: tuple[str, ...] = ()
    issue_validity_days: int = 0  # > 0: sign a CSR the registration carries, for that long

    def revoked(self, serial: str, thumb: str) -> bool:
        """Whether a certificate with this serial or thumbprint is on the denylist."""
        return serial in self.revoked_serials or thumb in self.revoked_thumbprints


@dataclass(frozen=True, slots=True, kw_only=True)
class Enrollment:
    """Who may register, how they prove it, where they go, what state moves with them."""

    id: str
    name: str
    kind: EnrollmentKind
    registration_id: str = ""  # individual: the device's name
    match: Match = field(default_factory=Match)  # group
    allocation: AllocationPolicy = AllocationPolicy.HASHED
    candidates: tuple[Candidate, ...] = ()
    webhook: Webhook | None = None
    reprovision: ReprovisionPolicy = ReprovisionPolicy.MIGRATE
    initial: InitialState = field(default_factory=InitialState)
    attestation: AttestationType = AttestationType.SYMMETRIC_KEY
    x509: X509Attestation | None = None  # when attestation is x509
    primary_key: str = ""  # base64; the group key for groups, the device key for individuals
    secondary_key: str = ""
    enabled: bool = True
    hold_down_s: float = 60.0  # flapping protection: no second move within this time
    priority: int = 0  # among matching groups, the highest wins (then the oldest)
    created: int = 0
    modified: int = 0
    revision: int = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class Registration:
    """A device's registration record."""

    registration_id: str
    enrollment: str = ""
    status: RegistrationStatus = RegistrationStatus.UNASSIGNED
    substatus: Substatus | None = None
    assigned_service: str = ""
    initial_service: str = ""  # where the first registration put it
    last_move: str = ""  # the id of the last move made for it
    last_moved: int = 0  # ms; for flapping protection
    pending_service: str = ""  # a move decided while the device was away, made when next seen
    quarantined_from: str = ""  # the service it returns to when let out of quarantine
    report: JSONObject = field(default_factory=dict)  # the last report (hints for reprovisioning)
    # How the device last attested: type, and for a certificate its thumbprint, serial,
    # subject, issuer, the CA the enrolment named, how the key was proved; never a secret.
    attestation: JSONObject = field(default_factory=dict)
    issued: JSONObject = field(default_factory=dict)  # the last certificate issued to it
    # Quarantined with requireReissue: the thumbprints of the certificates it held then; it
    # may leave quarantine only once it holds another (presented, or issued from a CSR).
    reissue_of: tuple[str, ...] = ()
    error: str = ""
    created: int = 0
    modified: int = 0
    revision: int = 1

    @property
    def name(self) -> str:
        """Registrations are keyed by registration id (the device name)."""
        return self.registration_id


@dataclass(frozen=True, slots=True, kw_only=True)
class Report:
    """What a registering device (or the device service on its behalf) reports."""

    registration_id: str
    labels: tuple[str, ...] = ()
    protocols: dict[str, JSONObject] = field(default_factory=dict)
    site: str = ""
    latencies: dict[str, float] = field(default_factory=dict)  # service → measured latency (ms)
    payload: JSON = None  # passed to a custom allocation webhook

    def flat_properties(self) -> JSONObject:
        """Every protocol property, flattened (``{"Address": ..., "MAC": ...}``)."""
        out: JSONObject = {}
        for props in self.protocols.values():
            out.update(props)
        return out
