"""edgemeta's provisioning resources: enrolments, registrations and quarantine.

Same conventions as :mod:`edgemeta.documents.common`. Keys are part of the stored enrolment
document; the API leaves them out unless asked.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, StringConstraints, model_validator

from edgemeta.documents.common import (
    NAME_MAX,
    AdminStateWire,
    AutoEvents,
    Doc,
    Envelope,
    Label,
    Labels,
    Name,
    Object,
    Protocols,
    Text,
    Uuid,
    Wire,
    auto_event_doc,
    auto_event_from,
    auto_events_of,
    given,
    labels_of,
    opt,
)
from edgemeta.domain import patterns
from edgemeta.domain import x509 as certs
from edgemeta.domain.enrollment import (
    AllocationPolicy,
    AttestationType,
    Candidate,
    Enrollment,
    EnrollmentKind,
    InitialState,
    Match,
    Registration,
    RegistrationStatus,
    Report,
    ReprovisionPolicy,
    Substatus,
    Webhook,
    X509Attestation,
    webhook_url_problem,
)
from edgemeta.domain.records import AdminState


def _regex(value: str) -> str:
    return patterns.check(value)  # PatternError is a ValueError: a 400 naming the field


def _b64_key(value: str) -> str:
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("must be base64") from None
    if not 16 <= len(raw) <= 64:
        raise ValueError("must be a key of 16 to 64 bytes")
    return value


def _http_url(value: str) -> str:
    problem = webhook_url_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


def _pem(value: str) -> str:
    return certs.check_pem(value)


def _thumbprint(value: str) -> str:
    return certs.normal_thumbprint(value)


def _serial(value: str) -> str:
    return certs.normal_serial(value)


def _template(value: str) -> str:
    return certs.check_template(value)


Pattern = Annotated[str, StringConstraints(max_length=1024), AfterValidator(_regex)]
Pem = Annotated[str, StringConstraints(max_length=certs.MAX_PEM), AfterValidator(_pem)]
Thumbprint = Annotated[str, StringConstraints(max_length=128), AfterValidator(_thumbprint)]
Serial = Annotated[str, StringConstraints(min_length=1, max_length=128), AfterValidator(_serial)]
Template = Annotated[str, StringConstraints(max_length=64), AfterValidator(_template)]
Key = Annotated[str, StringConstraints(max_length=256), AfterValidator(_b64_key)]
Policy = Literal["static", "hashed", "nearest", "custom"]


class CandidateDTO(Wire):
    """A device service an enrolment allocates to."""

    name: Name
    weight: Annotated[int, Field(ge=0, le=1_000_000)] | None = None
    site: Annotated[str, StringConstraints(max_length=NAME_MAX)] | None = None


class WebhookDTO(Wire):
    """A custom allocation webhook."""

    url: Annotated[str, StringConstraints(max_length=2048), AfterValidator(_http_url)]
    timeout: Annotated[float, Field(gt=0, le=60)] | None = None
    fallback: Literal["static", "hashed", "nearest"] | None = None
    secret: Key | None = None  # generated when not given


class AllocationDTO(Wire):
    """Allocation: a policy over candidate services."""

    policy: Policy
    services: Annotated[list[CandidateDTO], Field(min_length=1, max_length=256)]
    webhook: WebhookDTO | None = None


class MatchDTO(Wire):
    """Which devices a group enrolment covers."""

    name_pattern: Pattern | None = None
    labels: Labels | None = None
    identifiers: Annotated[dict[Name, Pattern], Field(max_length=64)] | None = None


class InitialStateDTO(Wire):
    """The state a new device starts with."""

    profile_name: Annotated[str, StringConstraints(max_length=NAME_MAX)] | None = None
    description: Text | None = None
    admin_state: AdminStateWire | None = None
    protocols: Protocols | None = None
    properties: Object | None = None
    tags: Object | None = None
    labels: Labels | None = None
    auto_events: AutoEvents | None = None


class RevokedDTO(Wire):
    """An enrolment's denylist: certificates refused even though their chain validates."""

    serials: Annotated[list[Serial], Field(max_length=10_000)] | None = None
    thumbprints: Annotated[list[Thumbprint], Field(max_length=10_000)] | None = None


class IssueCertificateDTO(Wire):
    """Sign the CSR a registration carries with the issuing CA, valid for ``validityDays``."""

    validity_days: Annotated[int, Field(ge=1, le=3650)]


class AttestationDTO(Wire):
    """Symmetric keys (generated when left out), or X.509: a device certificate (individual:
    ``thumbprint`` or ``certificate``) or CA certificates (group: ``caCertificates``)."""

    type: Literal["symmetricKey", "x509"] = "symmetricKey"
    primary_key: Key | None = None
    secondary_key: Key | None = None
    thumbprint: Thumbprint | None = None
    certificate: Pem | None = None
    ca_certificates: Annotated[list[Pem], Field(max_length=16)] | None = None
    registration_id_from: Template | None = None
    revoked: RevokedDTO | None = None
    issue_certificate: IssueCertificateDTO | None = None

    @model_validator(mode="after")
    def _shape(self) -> AttestationDTO:
        x509_fields = (
            self.thumbprint,
            self.certificate,
            self.ca_certificates,
            self.registration_id_from,
            self.revoked,
            self.issue_certificate,
        )
        if self.type == "symmetricKey" and any(f is not None for f in x509_fields):
            raise ValueError("certificate fields need type x509")
        if self.type == "x509":
            if self.primary_key is not None or self.secondary_key is not None:
                raise ValueError("an x509 attestation has no keys")
            if self.thumbprint and self.certificate:
                cert = certs.load_pem(self.certificate)
                if certs.thumbprint(cert) != self.thumbprint:
                    raise ValueError("thumbprint is not the certificate's")
        return self

    def x509(self) -> X509Attestation:
        """The X.509 attestation this describes (``type`` x509)."""
        thumb = self.thumbprint or ""
        if not thumb and self.certificate:
            thumb = certs.thumbprint(certs.load_pem(self.certificate))
        revoked = self.revoked or RevokedDTO()
        return X509Attestation(
            thumbprint=thumb,
            ca_certificates=tuple(self.ca_certificates or ()),
            revoked_serials=tuple(dict.fromkeys(revoked.serials or ())),
            revoked_thumbprints=tuple(dict.fromkeys(revoked.thumbprints or ())),
            issue_validity_days=0
            if self.issue_certificate is None
            else self.issue_certificate.validity_days,
            **given(registration_id_from=self.registration_id_from),
        )


class EnrollmentDTO(Wire):
    """An enrolment, individual (``registrationId``) or group (``match``)."""

    id: Uuid | None = None
    name: Name
    kind: Literal["individual", "group"]
    registration_id: Name | None = None
    match: MatchDTO | None = None
    allocation: AllocationDTO
    reprovision_policy: Literal["migrate", "reset", "never"] | None = None
    initial_state: InitialStateDTO | None = None
    attestation: AttestationDTO | None = None
    enabled: bool | None = None
    hold_down_seconds: Annotated[float, Field(ge=0, le=7 * 86400)] | None = None
    priority: Annotated[int, Field(ge=-1000, le=1000)] | None = None

    @model_validator(mode="after")
    def _shape(self) -> EnrollmentDTO:
        if self.kind == "individual" and not self.registration_id:
            raise ValueError("an individual enrollment needs registrationId")
        if self.kind == "group" and self.registration_id:
            raise ValueError("a group enrollment has a match, not a registrationId")
        if self.allocation.policy == "custom" and self.allocation.webhook is None:
            raise ValueError("a custom allocation needs allocation.webhook")
        if self.allocation.policy == "static" and len(self.allocation.services) != 1:
            raise ValueError("a static allocation names exactly one service")
        att = self.attestation
        if att is not None and att.type == "x509":
            if self.kind == "individual" and not (att.thumbprint or att.certificate):
                raise ValueError(
                    "an individual x509 enrollment names its device's thumbprint or certificate"
                )
            if self.kind == "group" and not att.ca_certificates:
                raise ValueError("a group x509 enrollment names caCertificates")
            if self.kind == "group" and (att.thumbprint or att.certificate):
                raise ValueError("a group x509 enrollment names CA certificates, not a device's")
        return self


class AddEnrollmentRequest(Envelope):
    """Add an enrolment."""

    enrollment: EnrollmentDTO


class UpdateEnrollmentRequest(Envelope):
    """Replace an enrolment's definition; ``expectedRevision`` gives If-Match semantics."""

    enrollment: EnrollmentDTO
    expected_revision: Annotated[int, Field(ge=1, le=2**63 - 1)] | None = None


class X509ProofDTO(Wire):
    """A certificate chain (leaf first) and the leaf key's signature over a server nonce; or
    the chain alone, when the request came over mutual TLS with that leaf (the handshake is
    the proof)."""

    type: Literal["x509"]
    chain: Annotated[list[Pem], Field(min_length=1, max_length=certs.MAX_CHAIN)]
    nonce: Annotated[str, StringConstraints(min_length=1, max_length=128)] | None = None
    signature: Annotated[str, StringConstraints(min_length=1, max_length=2048)] | None = None

    @model_validator(mode="after")
    def _both_or_neither(self) -> X509ProofDTO:
        if (self.nonce is None) != (self.signature is None):
            raise ValueError("nonce and signature go together (or neither, over mutual TLS)")
        return self


Csr = Annotated[str, StringConstraints(min_length=1, max_length=certs.MAX_PEM)]


class RegistrationDTO(Wire):
    """What a device (or its device service) reports when it registers, and its proof: a
    symmetric-key ``token`` or an X.509 ``attestation``."""

    registration_id: Name
    token: Annotated[str, StringConstraints(min_length=1, max_length=2048)] | None = None
    attestation: X509ProofDTO | None = None
    csr: Csr | None = None
    labels: Annotated[list[Label], Field(max_length=256)] | None = None
    protocols: Protocols | None = None
    site: Annotated[str, StringConstraints(max_length=NAME_MAX)] | None = None
    latencies: (
        Annotated[dict[Name, Annotated[float, Field(ge=0)]], Field(max_length=256)] | None
    ) = None
    payload: Object | None = None

    @model_validator(mode="after")
    def _proof(self) -> RegistrationDTO:
        if (self.token is None) == (self.attestation is None):
            raise ValueError("a registration carries either a token or an attestation")
        if self.csr is not None and self.attestation is None:
            raise ValueError("a csr comes with an x509 attestation")
        return self


class RegistrationRequest(Envelope):
    """A registration."""

    registration: RegistrationDTO


class QuarantineDTO(Wire):
    """Where to quarantine a device, and why."""

    service_name: Name
    note: Text | None = None
    # X.509 devices: leaving quarantine needs a new certificate (a CSR issuance or another
    # device certificate) first.
    require_reissue: bool | None = None


class QuarantineRequest(Envelope):
    """Send a device to quarantine."""

    quarantine: QuarantineDTO


def enrollment_record(e: EnrollmentDTO) -> Enrollment:
    """Enrollment from a request."""
    alloc = e.allocation
    hook = alloc.webhook
    init = e.initial_state or InitialStateDTO()
    att = e.attestation or AttestationDTO()
    match = e.match or MatchDTO()
    return Enrollment(
        id=e.id or "",
        name=e.name,
        kind=EnrollmentKind(e.kind),
        registration_id=e.registration_id or "",
        match=Match(
            name_pattern=match.name_pattern or "",
            labels=labels_of(match.labels),
            identifiers=match.identifiers or {},
        ),
        allocation=AllocationPolicy(alloc.policy),
        candidates=tuple(
            Candidate(service=c.name, site=c.site or "", **given(weight=c.weight))
            for c in alloc.services
        ),
        webhook=None
        if hook is None
        else Webhook(
            url=hook.url,
            secret=hook.secret or "",
            **given(timeout=hook.timeout, fallback=opt(AllocationPolicy, hook.fallback)),
        ),
        initial=InitialState(
            profile_name=init.profile_name or "",
            description=init.description or "",
            protocols=init.protocols or {},
            properties=init.properties or {},
            tags=init.tags or {},
            labels=labels_of(init.labels),
            auto_events=auto_events_of(init.auto_events),
            **given(admin_state=opt(AdminState, init.admin_state)),
        ),
        attestation=AttestationType(att.type),
        x509=att.x509() if att.type == "x509" else None,
        primary_key=att.primary_key or "",
        secondary_key=att.secondary_key or "",
        priority=e.priority or 0,
        **given(
            reprovision=opt(ReprovisionPolicy, e.reprovision_policy),
            enabled=e.enabled,
            hold_down_s=e.hold_down_seconds,
        ),
    )


def report_record(r: RegistrationDTO) -> Report:
    """Report from a registration request."""
    return Report(
        registration_id=r.registration_id,
        labels=labels_of(r.labels),
        protocols=r.protocols or {},
        site=r.site or "",
        latencies=r.latencies or {},
        payload=r.payload,
    )


def initial_doc(s: InitialState) -> Doc:
    """The initial device state of an enrolment."""
    doc: Doc = {"adminState": s.admin_state.value}
    if s.profile_name:
        doc["profileName"] = s.profile_name
    if s.description:
        doc["description"] = s.description
    doc["protocols"] = s.protocols
    doc["properties"] = s.properties
    if s.tags:
        doc["tags"] = s.tags
    if s.labels:
        doc["labels"] = list(s.labels)
    if s.auto_events:
        doc["autoEvents"] = [auto_event_doc(a) for a in s.auto_events]
    return doc


def initial_from(doc: Doc) -> InitialState:
    """Read an initial state."""
    return InitialState(
        profile_name=doc.get("profileName", ""),
        description=doc.get("description", ""),
        protocols=doc.get("protocols") or {},
        properties=doc.get("properties") or {},
        tags=doc.get("tags") or {},
        labels=tuple(doc.get("labels") or ()),
        auto_events=tuple(auto_event_from(a) for a in doc.get("autoEvents") or ()),
        **given(admin_state=opt(AdminState, doc.get("adminState"))),
    )


def enrollment_doc(e: Enrollment, *, keys: bool = True) -> Doc:
    """An enrolment; ``keys=False`` leaves the secrets out (attestation keys, webhook secret)."""
    doc: Doc = {"id": e.id, "name": e.name, "kind": e.kind.value}
    if e.kind == EnrollmentKind.INDIVIDUAL:
        doc["registrationId"] = e.registration_id
    else:
        match: Doc = {}
        if e.match.name_pattern:
            match["namePattern"] = e.match.name_pattern
        if e.match.labels:
            match["labels"] = list(e.match.labels)
        if e.match.identifiers:
            match["identifiers"] = e.match.identifiers
        doc["match"] = match
    allocation: Doc = {
        "policy": e.allocation.value,
        "services": [
            {"name": c.service, "weight": c.weight, **({"site": c.site} if c.site else {})}
            for c in e.candidates
        ],
    }
    if e.webhook is not None:
        allocation["webhook"] = {
            "url": e.webhook.url,
            "timeout": e.webhook.timeout,
            "fallback": e.webhook.fallback.value,
        }
        if keys and e.webhook.secret:
            allocation["webhook"]["secret"] = e.webhook.secret
    doc["allocation"] = allocation
    doc["reprovisionPolicy"] = e.reprovision.value
    doc["initialState"] = initial_doc(e.initial)
    attestation: Doc = {"type": e.attestation.value}
    if e.x509 is not None:
        attestation.update(x509_doc(e.x509))
    elif keys:
        attestation["primaryKey"] = e.primary_key
        if e.secondary_key:
            attestation["secondaryKey"] = e.secondary_key
    doc["attestation"] = attestation
    doc["enabled"] = e.enabled
    doc["holdDownSeconds"] = e.hold_down_s
    doc["priority"] = e.priority
    doc["created"] = e.created
    doc["modified"] = e.modified
    doc["revision"] = e.revision
    return doc


def x509_doc(a: X509Attestation) -> Doc:
    """An X.509 attestation (public material only: certificates, thumbprints, serials)."""
    doc: Doc = {}
    if a.thumbprint:
        doc["thumbprint"] = a.thumbprint
    if a.ca_certificates:
        doc["caCertificates"] = list(a.ca_certificates)
    doc["registrationIdFrom"] = a.registration_id_from
    doc["revoked"] = {
        "serials": list(a.revoked_serials),
        "thumbprints": list(a.revoked_thumbprints),
    }
    if a.issue_validity_days:
        doc["issueCertificate"] = {"validityDays": a.issue_validity_days}
    return doc


def x509_from(doc: Doc) -> X509Attestation:
    """Read an X.509 attestation."""
    revoked = doc.get("revoked") or {}
    issue = doc.get("issueCertificate") or {}
    return X509Attestation(
        thumbprint=doc.get("thumbprint", ""),
        ca_certificates=tuple(doc.get("caCertificates") or ()),
        revoked_serials=tuple(revoked.get("serials") or ()),
        revoked_thumbprints=tuple(revoked.get("thumbprints") or ()),
        issue_validity_days=int(issue.get("validityDays", 0)),
        **given(registration_id_from=doc.get("registrationIdFrom")),
    )


def enrollment_from(doc: Doc) -> Enrollment:
    """Read an enrolment."""
    match = doc.get("match") or {}
    allocation = doc.get("allocation") or {}
    hook = allocation.get("webhook")
    att = doc.get("attestation") or {}
    return Enrollment(
        id=doc["id"],
        name=doc["name"],
        kind=EnrollmentKind(doc["kind"]),
        registration_id=doc.get("registrationId", ""),
        match=Match(
            name_pattern=match.get("namePattern", ""),
            labels=tuple(match.get("labels") or ()),
            identifiers=match.get("identifiers") or {},
        ),
        candidates=tuple(
            Candidate(service=c["name"], site=c.get("site", ""), **given(weight=c.get("weight")))
            for c in allocation.get("services") or ()
        ),
        webhook=None
        if not hook
        else Webhook(
            url=hook["url"],
            secret=hook.get("secret", ""),
            **given(
                timeout=hook.get("timeout"),
                fallback=opt(AllocationPolicy, hook.get("fallback")),
            ),
        ),
        initial=initial_from(doc.get("initialState") or {}),
        attestation=AttestationType(att.get("type", "symmetricKey")),
        x509=x509_from(att) if att.get("type") == "x509" else None,
        primary_key=att.get("primaryKey", ""),
        secondary_key=att.get("secondaryKey", ""),
        priority=int(doc.get("priority", 0)),
        created=doc.get("created", 0),
        modified=doc.get("modified", 0),
        revision=doc.get("revision", 1),
        **given(
            allocation=opt(AllocationPolicy, allocation.get("policy")),
            reprovision=opt(ReprovisionPolicy, doc.get("reprovisionPolicy")),
            enabled=opt(bool, doc.get("enabled")),
            hold_down_s=opt(float, doc.get("holdDownSeconds")),
        ),
    )


def registration_doc(r: Registration) -> Doc:
    """A registration record."""
    doc: Doc = {
        "registrationId": r.registration_id,
        "enrollment": r.enrollment,
        "status": r.status.value,
    }
    if r.substatus is not None:
        doc["substatus"] = r.substatus.value
    if r.assigned_service:
        doc["assignedService"] = r.assigned_service
    if r.initial_service:
        doc["initialService"] = r.initial_service
    if r.last_move:
        doc["lastMoveId"] = r.last_move
    if r.last_moved:
        doc["lastMoved"] = r.last_moved
    if r.pending_service:
        doc["pendingService"] = r.pending_service
    if r.quarantined_from:
        doc["quarantinedFrom"] = r.quarantined_from
    if r.report:
        doc["lastReport"] = r.report
    if r.attestation:
        doc["attestation"] = r.attestation
    if r.issued:
        doc["issuedCertificate"] = r.issued
    if r.reissue_of:
        doc["reissueRequiredFor"] = list(r.reissue_of)
    if r.error:
        doc["error"] = r.error
    doc["created"] = r.created
    doc["modified"] = r.modified
    doc["revision"] = r.revision
    return doc


def registration_from(doc: Doc) -> Registration:
    """Read a registration record."""
    sub = doc.get("substatus")
    return Registration(
        registration_id=doc["registrationId"],
        enrollment=doc.get("enrollment", ""),
        status=RegistrationStatus(doc["status"]),
        substatus=None if sub is None else Substatus(sub),
        assigned_service=doc.get("assignedService", ""),
        initial_service=doc.get("initialService", ""),
        last_move=doc.get("lastMoveId", ""),
        last_moved=doc.get("lastMoved", 0),
        pending_service=doc.get("pendingService", ""),
        quarantined_from=doc.get("quarantinedFrom", ""),
        report=doc.get("lastReport") or {},
        attestation=doc.get("attestation") or {},
        issued=doc.get("issuedCertificate") or {},
        reissue_of=tuple(doc.get("reissueRequiredFor") or ()),
        error=doc.get("error", ""),
        created=doc.get("created", 0),
        modified=doc.get("modified", 0),
        revision=doc.get("revision", 1),
    )


def report_doc(report: Report) -> Doc:
    """A registration's report as stored on it (the payload is kept only in its event)."""
    doc: Doc = {}
    if report.labels:
        doc["labels"] = list(report.labels)
    if report.protocols:
        doc["protocols"] = report.protocols
    if report.site:
        doc["site"] = report.site
    if report.latencies:
        doc["latencies"] = report.latencies
    return doc


def report_from(registration_id: str, doc: Doc) -> Report:
    """Read a stored report (:func:`report_doc`)."""
    return Report(
        registration_id=registration_id,
        labels=tuple(doc.get("labels") or ()),
        protocols=doc.get("protocols") or {},
        site=doc.get("site", ""),
        latencies=doc.get("latencies") or {},
    )
