"""Enrolments and registration records as documents (the API shape; the store keeps the same).

Kept apart from ``documents.py`` (EdgeX's shapes) because these are edgemeta's own resources.
Keys are part of the stored document; the API leaves them out unless asked.
"""

from __future__ import annotations

from typing import Any

from edgemeta.documents import auto_event_doc, auto_event_from
from edgemeta.domain.enrollment import (
    AllocationPolicy,
    Candidate,
    Enrollment,
    EnrollmentKind,
    InitialState,
    Match,
    Registration,
    RegistrationStatus,
    ReprovisionPolicy,
    Substatus,
    Webhook,
)
from edgemeta.domain.records import AdminState

Doc = dict[str, Any]


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
        admin_state=AdminState(doc.get("adminState", "UNLOCKED")),
        protocols=doc.get("protocols") or {},
        properties=doc.get("properties") or {},
        tags=doc.get("tags") or {},
        labels=tuple(doc.get("labels") or ()),
        auto_events=tuple(auto_event_from(a) for a in doc.get("autoEvents") or ()),
    )


def enrollment_doc(e: Enrollment, *, keys: bool = True) -> Doc:
    """An enrolment; ``keys=False`` leaves the attestation keys out."""
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
    doc["allocation"] = allocation
    doc["reprovisionPolicy"] = e.reprovision.value
    doc["initialState"] = initial_doc(e.initial)
    attestation: Doc = {"type": "symmetricKey"}
    if keys:
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
        allocation=AllocationPolicy(allocation.get("policy", "hashed")),
        candidates=tuple(
            Candidate(service=c["name"], weight=c.get("weight", 1), site=c.get("site", ""))
            for c in allocation.get("services") or ()
        ),
        webhook=None
        if not hook
        else Webhook(
            url=hook["url"],
            timeout=hook.get("timeout", 2.0),
            fallback=AllocationPolicy(hook.get("fallback", "hashed")),
        ),
        reprovision=ReprovisionPolicy(doc.get("reprovisionPolicy", "migrate")),
        initial=initial_from(doc.get("initialState") or {}),
        primary_key=att.get("primaryKey", ""),
        secondary_key=att.get("secondaryKey", ""),
        enabled=bool(doc.get("enabled", True)),
        hold_down_s=float(doc.get("holdDownSeconds", 60.0)),
        priority=int(doc.get("priority", 0)),
        created=doc.get("created", 0),
        modified=doc.get("modified", 0),
        revision=doc.get("revision", 1),
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
        error=doc.get("error", ""),
        created=doc.get("created", 0),
        modified=doc.get("modified", 0),
        revision=doc.get("revision", 1),
    )
