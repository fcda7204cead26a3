"""Registration: a device (or a device service on its behalf) asks where it belongs.

1. Find its enrolment: the individual one for its registration id, else the first group
   enrolment (highest priority) whose match covers what it reports.
2. Attest: a registration token signed with the device's key (derived from the group key for
   groups), not expired, not replayed; or (X.509, :func:`register_x509`) a certificate chain
   that validates up to a CA an enrolment names (or the device certificate an individual
   enrolment names), with the leaf's key proved by a signature over a server nonce or by the
   transport's TLS handshake, the registration id taken from the certificate. Any failure is a
   401 that says no more than "refused"; the reason goes to the log. A disabled enrolment or a
   revoked certificate is a 403, recorded.
3. Allocate: static, weighted hash, nearest (reported site or latencies) or a webhook (with a
   timeout and a fallback policy).
4. Assign: a first registration creates the device from the enrolment's initial state; a later
   one applies the reprovisioning policy through the move engine — ``migrate`` (current state
   moves), ``reset`` (the initial state is restored, moving or not), ``never`` (it stays).

Beyond DPS: an operator reprovisions one device or a whole enrolment from the server; a device
that is down (``operatingState`` DOWN) when that happens gets a **pending** move, made when it
next registers; a device may be **quarantined** (moved, reset, to a quarantine service) and let
out again; and a device moved less than the enrolment's hold-down ago is not moved again
(flapping protection).
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import Certificate

from edgemeta import documents as docs
from edgemeta.domain import events
from edgemeta.domain import x509 as certs
from edgemeta.domain.allocation import allocate
from edgemeta.domain.attestation import (
    AttestationError,
    derive_device_key,
    parse_token,
    verify,
)
from edgemeta.domain.enrollment import (
    AllocationPolicy,
    AttestationType,
    Candidate,
    Enrollment,
    EnrollmentKind,
    Registration,
    RegistrationStatus,
    Report,
    ReprovisionPolicy,
    Substatus,
)
from edgemeta.domain.errors import (
    Conflict,
    ContractInvalid,
    DuplicateName,
    EdgeMetaError,
    Forbidden,
    ServiceUnavailable,
    Unauthorized,
)
from edgemeta.domain.moves import Move, MoveReason, StatePolicy
from edgemeta.domain.patches import same_content
from edgemeta.domain.records import AdminState, Device, JSONObject, OperatingState
from edgemeta.ports import ListQuery, Page
from edgemeta.usecases import devices as device_uc
from edgemeta.usecases import moves
from edgemeta.usecases.common import new_id, not_found, now_ms
from edgemeta.usecases.deps import Deps

log = logging.getLogger("edgemeta.registration")

REFUSED = "registration refused"


@dataclass(frozen=True, slots=True)
class Outcome:
    """Where a registration (or a reprovisioning) left the device."""

    registration: Registration
    device: Device | None = None
    move: Move | None = None
    certificate: str = ""  # PEM: the operational certificate issued from the device's CSR


def _keys(e: Enrollment, registration_id: str) -> tuple[str, ...]:
    keys = tuple(k for k in (e.primary_key, e.secondary_key) if k)
    if e.kind == EnrollmentKind.GROUP:
        return tuple(derive_device_key(k, registration_id) for k in keys)
    return keys


async def _enrollment_for(deps: Deps, report: Report) -> Enrollment | None:
    """The symmetric-key enrolment covering a token registration (X.509 enrolments cover
    certificates only: a catch-all group of them must not capture token registrations)."""
    symmetric = AttestationType.SYMMETRIC_KEY
    async with deps.store.read() as tx:
        found = await tx.enrollments.individual(report.registration_id)
        if found is not None and found.attestation == symmetric:
            return found
        groups = await tx.enrollments.groups()
    props = report.flat_properties()
    for g in groups:
        if g.attestation == symmetric and g.match.matches(
            report.registration_id, report.labels, props
        ):
            return g
    return None


def _ignore() -> None:
    """The default ``attested`` callback: nobody is waiting for the attestation alone."""


async def register(
    deps: Deps,
    token: str,
    report: Report,
    correlation_id: str,
    attested: Callable[[], None] = _ignore,
) -> Outcome:
    """Attest, allocate and assign one registration. ``attested`` is called once the
    device is proven and admitted, before allocation and assignment (which may wait on a
    move): a caller may answer "still assigning" only after that point, never before a
    refusal is known."""
    try:
        outcome = await _register(deps, token, report, correlation_id, attested)
    except EdgeMetaError as exc:
        deps.meter.registration("refused", exc.kind.value)
        raise
    deps.meter.registration("registered", AttestationType.SYMMETRIC_KEY.value)
    return outcome


async def _register(
    deps: Deps, token: str, report: Report, correlation_id: str, attested: Callable[[], None]
) -> Outcome:
    rid = report.registration_id
    enrollment = await _enrollment_for(deps, report)
    if enrollment is None:
        log.warning("registration of '%s' refused: no enrollment covers it", rid)
        raise Unauthorized(REFUSED)
    try:
        parsed = parse_token(token)
        verify(parsed, rid, _keys(enrollment, rid), int(time.time()))
    except AttestationError as exc:
        log.warning("registration of '%s' refused (enrollment '%s'): %s", rid, enrollment.name, exc)
        raise Unauthorized(REFUSED) from None
    async with deps.store.write() as tx:
        fresh = await tx.registrations.use_nonce(rid, parsed.nonce, parsed.expiry)
    if not fresh:
        log.warning("registration of '%s' refused: the token was used before (replay)", rid)
        raise Unauthorized(REFUSED)
    if not enrollment.enabled:
        await _record(
            deps,
            rid,
            enrollment,
            status=RegistrationStatus.DISABLED,
            report=report,
            error=f"enrollment '{enrollment.name}' is disabled",
        )
        raise Forbidden(f"enrollment '{enrollment.name}' is disabled")
    attested()
    return await _assign_once_more(
        deps, enrollment, report, correlation_id, {"type": AttestationType.SYMMETRIC_KEY.value}
    )


async def _assign_once_more(
    deps: Deps, e: Enrollment, report: Report, cid: str, attestation: JSONObject
) -> Outcome:
    try:
        return await _assign(deps, e, report, cid, operator=False, attestation=attestation)
    except Conflict:
        # A concurrent registration of the same device got there first: decide again on
        # what it stored (the device now exists, the record has moved on).
        return await _assign(deps, e, report, cid, operator=False, attestation=attestation)


# X.509 ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NonceProof:
    """The leaf key's signature (base64) over a server nonce and the registration id."""

    nonce: str
    signature: str


@dataclass(frozen=True, slots=True)
class TransportProof:
    """The transport proved the leaf's key: a TLS handshake with this client certificate
    (DER). The chain's leaf must be that certificate; whatever the TLS layer verified,
    edgemeta validates the chain against the enrolments."""

    certificate: bytes
    via: str = "tls"


@dataclass(frozen=True, slots=True)
class X509Registration:
    """An X.509 registration: the chain (PEM, leaf first), how the key was proved, a CSR."""

    report: Report
    chain: tuple[str, ...]
    proof: NonceProof | TransportProof
    csr: str = ""


async def new_challenge(deps: Deps) -> tuple[str, int]:
    """A single-use server nonce and its expiry (unix s), for an X.509 proof of possession."""
    nonce = secrets.token_urlsafe(24)
    now_s = int(time.time())
    expiry = now_s + deps.x509.challenge_ttl
    async with deps.store.write() as tx:
        await tx.registrations.add_challenge(nonce, expiry, now_s)
    return nonce, expiry


@dataclass(frozen=True, slots=True)
class _Match:
    enrollment: Enrollment
    chain: list[Certificate]  # verified: leaf to the trust anchor
    anchor: str  # thumbprint of the enrolled certificate the chain ends in


def _anchors(e: Enrollment, leaf: Certificate) -> list[Certificate]:
    """What an enrolment trusts: its CA certificates; an individual one without CAs trusts
    the device certificate itself (a self-signed one, as DPS allows)."""
    assert e.x509 is not None
    if e.x509.ca_certificates:
        return [certs.load_pem(p) for p in e.x509.ca_certificates]
    return [leaf]


async def _x509_enrollment(
    deps: Deps, chain: list[Certificate], report: Report, now: dt.datetime
) -> _Match:
    """The enrolment that covers this chain: the individual one naming the leaf's thumbprint,
    else the group naming the most specific CA of a chain that validates (the CA nearest to
    the leaf; among groups naming the same CA, the highest priority, then the oldest)."""
    rid = report.registration_id
    leaf = chain[0]
    thumb = certs.thumbprint(leaf)
    depth = deps.x509.max_chain_depth
    async with deps.store.read() as tx:
        individual = await tx.enrollments.individual(rid)
        groups = await tx.enrollments.groups()
    if (
        individual is not None
        and individual.x509 is not None
        and individual.x509.thumbprint == thumb
    ):
        verified = certs.validate_path(chain, _anchors(individual, leaf), now=now, max_depth=depth)
        return _Match(individual, verified, certs.thumbprint(verified[-1]))
    # Only groups naming a CA that issued a presented certificate can validate it.
    issuers = {c.issuer for c in chain}
    props = report.flat_properties()
    best: _Match | None = None
    best_at = len(chain) + depth + 2
    reasons: list[str] = []
    for g in groups:
        if g.x509 is None or not g.match.matches(rid, report.labels, props):
            continue
        anchors = [certs.load_pem(p) for p in g.x509.ca_certificates]
        if not any(a.subject in issuers for a in anchors):
            continue
        try:
            verified = certs.validate_path(chain, anchors, now=now, max_depth=depth)
        except AttestationError as exc:
            reasons.append(f"{g.name}: {exc}")
            continue
        named = {certs.thumbprint(a) for a in anchors}
        at = next(i for i, c in enumerate(verified) if certs.thumbprint(c) in named)
        if at < best_at:
            best, best_at = _Match(g, verified, certs.thumbprint(verified[at])), at
    if best is None:
        raise AttestationError(
            "no enrollment covers the certificate "
            + (f"({'; '.join(reasons)})" if reasons else f"{thumb}")
        )
    return best


async def register_x509(
    deps: Deps,
    request: X509Registration,
    correlation_id: str,
    attested: Callable[[], None] = _ignore,
) -> Outcome:
    """Attest an X.509 registration, then allocate and assign it like any other
    (``attested`` as for :func:`register`)."""
    try:
        outcome = await _register_x509(deps, request, correlation_id, attested)
    except EdgeMetaError as exc:
        deps.meter.registration("refused", exc.kind.value)
        raise
    deps.meter.registration("registered", "x509")
    return outcome


async def _register_x509(
    deps: Deps, request: X509Registration, correlation_id: str, attested: Callable[[], None]
) -> Outcome:
    report = request.report
    rid = report.registration_id
    now_s = int(time.time())
    now = dt.datetime.fromtimestamp(now_s, dt.UTC)
    try:
        chain = certs.load_chain(request.chain)
        if isinstance(request.proof, NonceProof):
            # Spent before anything is checked: a nonce answers one attempt, good or bad.
            async with deps.store.write() as tx:
                fresh = await tx.registrations.take_challenge(request.proof.nonce, now_s)
            if not fresh:
                raise AttestationError("the nonce is unknown, expired or spent")
            certs.verify_proof(
                chain[0],
                certs.signed_message(request.proof.nonce, rid),
                certs.decode_signature(request.proof.signature),
            )
        elif chain[0].public_bytes(Encoding.DER) != request.proof.certificate:
            raise AttestationError("the chain's leaf is not the TLS client certificate")
        found = await _x509_enrollment(deps, chain, report, now)
        e = found.enrollment
        assert e.x509 is not None
        names = certs.registration_ids(chain[0], e.x509.registration_id_from)
        if rid not in names:
            raise AttestationError(
                f"the certificate names {names} by {e.x509.registration_id_from}, not '{rid}'"
            )
    except AttestationError as exc:
        log.warning("x509 registration of '%s' refused: %s", rid, exc)
        raise Unauthorized(REFUSED) from None
    leaf = certs.attested(chain[0])
    attestation: JSONObject = {
        "type": AttestationType.X509.value,
        **leaf.doc(),
        "enrolledCertificate": found.anchor,
        "proof": "nonce" if isinstance(request.proof, NonceProof) else request.proof.via,
    }
    refusal = ""
    if not e.enabled:
        refusal = f"enrollment '{e.name}' is disabled"
    else:
        for cert in found.chain:
            serial, thumb = certs.serial_of(cert), certs.thumbprint(cert)
            if e.x509.revoked(serial, thumb):
                refusal = (
                    f"certificate {cert.subject.rfc4514_string()} (serial {serial}) is revoked"
                    f" by enrollment '{e.name}'"
                )
                break
    if refusal:
        log.warning("x509 registration of '%s' refused: %s", rid, refusal)
        await _record(
            deps,
            rid,
            e,
            status=RegistrationStatus.DISABLED,
            report=report,
            attestation=attestation,
            error=refusal,
        )
        raise Forbidden(refusal)
    issuer = deps.x509.issuer
    csr = None
    if request.csr and e.x509.issue_validity_days > 0:
        if issuer is None:
            raise ServiceUnavailable(
                f"enrollment '{e.name}' issues certificates, but no issuing CA is configured"
            )
        try:  # checked before anything changes: a bad CSR is a 400 that changes nothing
            csr = certs.load_csr(request.csr)
        except certs.CsrError as exc:
            raise ContractInvalid(str(exc)) from None
    attested()
    outcome = await _assign_once_more(deps, e, report, correlation_id, attestation)
    if csr is None or issuer is None:
        return outcome
    cert = issuer.issue(
        csr,
        rid,
        e.x509.registration_id_from,
        now=now,
        days=e.x509.issue_validity_days,
    )
    pem = certs.pem_of(cert)
    issued = {**certs.attested(cert).doc(), "certificate": pem}
    record = await _record(
        deps,
        rid,
        e,
        status=outcome.registration.status,
        issued=issued,
        error=outcome.registration.error,
    )
    return replace(outcome, registration=record, certificate=pem)


async def _record(
    deps: Deps,
    rid: str,
    enrollment: Enrollment,
    *,
    status: RegistrationStatus,
    report: Report | None = None,
    **changes: Any,
) -> Registration:
    """Write the registration record (read, change, write at the next revision)."""
    async with deps.store.write() as tx:
        old = await tx.registrations.get(rid, for_update=True)
        now = now_ms()
        base = old or Registration(registration_id=rid, created=now, revision=0)
        new = replace(
            base,
            enrollment=enrollment.name,
            status=status,
            modified=now,
            revision=base.revision + 1,
            report=docs.report_doc(report) if report is not None else base.report,
            error=changes.pop("error", ""),
            **changes,
        )
        await tx.registrations.save(new)
    return new


async def _candidates(deps: Deps, e: Enrollment) -> list[Candidate]:
    """The enrolment's device services that exist and are unlocked."""
    usable: list[Candidate] = []
    async with deps.store.read() as tx:
        for c in e.candidates:
            s = await tx.services.get(c.service)
            if s is not None and s.admin_state == AdminState.UNLOCKED:
                usable.append(c)
    return usable


async def _allocate(deps: Deps, e: Enrollment, report: Report) -> str:
    candidates = await _candidates(deps, e)
    if e.allocation == AllocationPolicy.CUSTOM and e.webhook is not None:
        request: dict[str, object] = {
            "registrationId": report.registration_id,
            "enrollment": e.name,
            "candidates": [c.service for c in candidates],
            "report": {**docs.report_doc(report), "payload": report.payload},
        }
        try:
            chosen = await deps.allocation_hook.decide(
                e.webhook.url, e.webhook.timeout, request, secret=e.webhook.secret
            )
            if chosen in {c.service for c in candidates}:
                return chosen
            log.warning("allocation webhook chose '%s', not a usable service; falling back", chosen)
        except EdgeMetaError as exc:
            log.warning(
                "allocation webhook failed (%s); falling back to %s",
                exc.message,
                e.webhook.fallback.value,
            )
        return allocate(e.webhook.fallback, report, candidates)
    return allocate(e.allocation, report, candidates)


def merge_protocols(
    initial: dict[str, JSONObject], reported: dict[str, JSONObject]
) -> dict[str, JSONObject]:
    """The initial protocols with the reported ones merged in: a protocol present in both
    keeps its initial properties, the reported value winning on the same key."""
    merged = {name: dict(props) for name, props in initial.items()}
    for name, props in reported.items():
        merged[name] = {**merged.get(name, {}), **props}
    return merged


def _new_device(e: Enrollment, report: Report, service: str) -> Device:
    s = e.initial
    labels = tuple(dict.fromkeys((*s.labels, *report.labels)))
    return Device(
        id=new_id(),
        name=report.registration_id,
        service_name=service,
        profile_name=s.profile_name,
        description=s.description,
        admin_state=s.admin_state,
        operating_state=OperatingState.UP,
        protocols=merge_protocols(s.protocols, report.protocols),
        properties=dict(s.properties),
        tags=dict(s.tags),
        labels=labels,
        auto_events=s.auto_events,
    )


async def _assign(
    deps: Deps,
    e: Enrollment,
    report: Report,
    cid: str,
    *,
    operator: bool,
    attestation: JSONObject | None = None,
) -> Outcome:
    """Allocate and assign; ``attestation`` (how the device proved itself) goes on its record,
    which keeps the last one when an operator reprovisions."""
    proved: dict[str, Any] = {} if attestation is None else {"attestation": attestation}
    rid = report.registration_id
    async with deps.store.read() as tx:
        reg = await tx.registrations.get(rid)
        device = await tx.devices.get(rid)
    if reg is not None and reg.quarantined_from and device is not None:
        # Quarantined: registrations do not take it out; an operator does.
        record = await _record(
            deps,
            rid,
            e,
            status=RegistrationStatus.ASSIGNED,
            report=report,
            assigned_service=device.service_name,
            pending_service="",
            **proved,
        )
        return Outcome(record, device)
    target = reg.pending_service if reg is not None and reg.pending_service else None
    if target is None:
        target = await _allocate(deps, e, report)
    if device is None:
        return await _first(deps, e, report, target, cid, proved)
    return await _again(deps, e, reg, device, report, target, cid, operator=operator, proved=proved)


async def _first(
    deps: Deps, e: Enrollment, report: Report, target: str, cid: str, proved: dict[str, Any]
) -> Outcome:
    # Creating a device is one transaction: there is no "assigning" moment worth recording.
    rid = report.registration_id
    try:
        stored = await device_uc.create_device(deps, _new_device(e, report, target), cid)
    except DuplicateName:
        raise Conflict(f"device '{rid}' was registered concurrently") from None
    except EdgeMetaError as exc:
        await _record(
            deps,
            rid,
            e,
            status=RegistrationStatus.FAILED,
            report=report,
            error=exc.message,
            **proved,
        )
        raise
    # This registration created the device, so its record says so, even when a concurrent
    # registration (which found the device already there) wrote the first record meanwhile:
    # the insert of revision 1 then fails, and the record is read again and updated.
    for attempt in range(3):
        try:
            record = await _record(
                deps,
                rid,
                e,
                status=RegistrationStatus.ASSIGNED,
                report=report,
                substatus=Substatus.INITIAL_ASSIGNMENT,
                assigned_service=target,
                initial_service=target,
                pending_service="",
                **proved,
            )
            break
        except Conflict:
            if attempt == 2:
                raise
    return Outcome(record, stored)


async def _reset_in_place(deps: Deps, device: Device, cid: str) -> Device:
    """Restore the device's initial configuration without changing its owner."""
    async with deps.store.write() as tx:
        await moves.ensure_not_moving(tx, device.name)
        current = await tx.devices.get(device.name, for_update=True)
        initial = await tx.moves.initial(device.name)
        if current is None or initial is None:
            raise ContractInvalid(f"device '{device.name}' has no initial configuration")
        after = replace(
            initial,
            id=current.id,
            service_name=current.service_name,
            created=current.created,
            modified=current.modified,
            revision=current.revision,
        )
        if same_content(current, after):
            return current
        after = replace(after, modified=now_ms(), revision=current.revision + 1)
        await tx.devices.update(after)
        await tx.outbox.append(events.device_updated(current, after), cid)
    return after


async def _again(
    deps: Deps,
    e: Enrollment,
    reg: Registration | None,
    device: Device,
    report: Report,
    target: str,
    cid: str,
    *,
    operator: bool,
    proved: dict[str, Any],
) -> Outcome:
    rid = device.name
    current = device.service_name
    policy = e.reprovision

    async def record(status: RegistrationStatus, **changes: Any) -> Registration:
        # Only what this decision changes: the rest is kept from the record as stored now
        # (a concurrent registration may have written it since it was read above).
        changes.setdefault("assigned_service", current)
        changes.update(proved)
        return await _record(deps, rid, e, status=status, report=report, **changes)

    if policy == ReprovisionPolicy.NEVER or target == current:
        changes: dict[str, Any] = {"pending_service": ""}
        if policy == ReprovisionPolicy.RESET:
            device = await _reset_in_place(deps, device, cid)
            changes["substatus"] = Substatus.DATA_RESET
        return Outcome(await record(RegistrationStatus.ASSIGNED, **changes), device)
    hold_ms = int(e.hold_down_s * 1000)
    if reg is not None and reg.last_moved and now_ms() - reg.last_moved < hold_ms:
        left = (reg.last_moved + hold_ms - now_ms()) / 1000
        note = f"held down: not moved to '{target}' for another {left:.0f}s (flapping protection)"
        return Outcome(
            await record(RegistrationStatus.ASSIGNED, pending_service="", error=note), device
        )
    if operator and device.operating_state == OperatingState.DOWN:
        # The device is away: move it when it is next seen (its next registration).
        return Outcome(await record(RegistrationStatus.ASSIGNED, pending_service=target), device)
    await record(RegistrationStatus.ASSIGNING)
    state = StatePolicy.RESET if policy == ReprovisionPolicy.RESET else StatePolicy.MIGRATE
    try:
        move = await moves.move_device(
            deps,
            moves.MoveRequest(
                device_name=rid,
                to_service=target,
                policy=state,
                reason=MoveReason.POLICY,
                requested_by=f"enrollment '{e.name}'",
                note="operator reprovisioning" if operator else "registration",
            ),
            cid,
        )
    except EdgeMetaError as exc:
        await record(RegistrationStatus.FAILED, error=exc.message)
        raise
    if reg is not None and target == reg.initial_service:
        sub: Substatus = Substatus.REPROVISIONED_TO_INITIAL
    elif state == StatePolicy.RESET:
        sub = Substatus.DATA_RESET
    else:
        sub = Substatus.DATA_MIGRATED
    rec = await record(
        RegistrationStatus.ASSIGNED,
        substatus=sub,
        assigned_service=target,
        last_move=move.id,
        last_moved=now_ms(),
        pending_service="",
    )
    async with deps.store.read() as tx:
        moved = await tx.devices.get(rid)
    return Outcome(rec, moved, move)


async def _enrollment_of(deps: Deps, reg: Registration) -> Enrollment:
    async with deps.store.read() as tx:
        e = await tx.enrollments.get(reg.enrollment)
    if e is None:
        raise not_found("enrollment", reg.enrollment)
    return e


async def get_registration(deps: Deps, registration_id: str) -> Registration:
    """A device's registration record."""
    async with deps.store.read() as tx:
        found = await tx.registrations.get(registration_id)
    if found is None:
        raise not_found("registration", registration_id)
    return found


async def list_registrations(
    deps: Deps, query: ListQuery, *, enrollment: str | None = None
) -> Page[Registration]:
    """Registration records, all or of one enrolment."""
    async with deps.store.read() as tx:
        return await tx.registrations.page(query, enrollment=enrollment)


async def reprovision_device(deps: Deps, registration_id: str, cid: str) -> Outcome:
    """Re-run allocation and the reprovisioning policy for one device, from the server."""
    reg = await get_registration(deps, registration_id)
    e = await _enrollment_of(deps, reg)
    if not e.enabled:
        raise Forbidden(f"enrollment '{e.name}' is disabled")
    return await _assign(deps, e, docs.report_from(registration_id, reg.report), cid, operator=True)


async def reprovision_enrollment(
    deps: Deps, name: str, cid: str
) -> list[tuple[str, Outcome | EdgeMetaError]]:
    """Reprovision every device registered through an enrolment; per device, its outcome."""
    async with deps.store.read() as tx:
        if await tx.enrollments.get(name) is None:
            raise not_found("enrollment", name)
    results: list[tuple[str, Outcome | EdgeMetaError]] = []
    offset = 0
    while True:
        page = await list_registrations(deps, ListQuery(offset=offset, limit=500), enrollment=name)
        for reg in page.items:
            try:
                results.append(
                    (reg.registration_id, await reprovision_device(deps, reg.registration_id, cid))
                )
            except EdgeMetaError as exc:
                results.append((reg.registration_id, exc))
        offset += len(page.items)
        if not page.items or offset >= page.total:
            return results


def _held_certificates(reg: Registration) -> tuple[str, ...]:
    """The thumbprints of the certificates a device holds by its record: the one it last
    presented, and the one last issued to it."""
    held = [reg.attestation.get("thumbprint"), reg.issued.get("thumbprint")]
    return tuple(t for t in held if isinstance(t, str) and t)


async def quarantine(
    deps: Deps,
    registration_id: str,
    service: str,
    note: str,
    cid: str,
    *,
    require_reissue: bool = False,
) -> Outcome:
    """Move a device to a quarantine service, reset to its initial state; registrations keep it
    there until it is let out (and, with ``require_reissue``, until it holds a new
    certificate)."""
    reg = await get_registration(deps, registration_id)
    reissue_of = _held_certificates(reg) if require_reissue else ()
    if require_reissue and not reissue_of:
        raise ContractInvalid(
            f"requireReissue needs a device that attested with a certificate; "
            f"'{registration_id}' did not"
        )
    e = await _enrollment_of(deps, reg)
    async with deps.store.read() as tx:
        device = await tx.devices.get(registration_id)
    if device is None:
        raise not_found("device", registration_id)
    if reg.quarantined_from:
        raise Conflict(f"device '{registration_id}' is already in quarantine")
    move = await moves.move_device(
        deps,
        moves.MoveRequest(
            device_name=registration_id,
            to_service=service,
            policy=StatePolicy.RESET,
            reason=MoveReason.POLICY,
            requested_by="operator",
            note=note or "quarantine",
        ),
        cid,
    )
    record = await _record(
        deps,
        registration_id,
        e,
        status=RegistrationStatus.ASSIGNED,
        substatus=Substatus.DATA_RESET,
        assigned_service=service,
        last_move=move.id,
        last_moved=now_ms(),
        quarantined_from=device.service_name,
        pending_service="",
        reissue_of=reissue_of,
    )
    return Outcome(record, None, move)


async def release_quarantine(deps: Deps, registration_id: str, cid: str) -> Outcome:
    """Move a quarantined device back to the service it came from, with its current state."""
    reg = await get_registration(deps, registration_id)
    if not reg.quarantined_from:
        raise Conflict(f"device '{registration_id}' is not in quarantine")
    if reg.reissue_of and set(_held_certificates(reg)) <= set(reg.reissue_of):
        raise Conflict(
            f"device '{registration_id}' must get a new certificate before it leaves quarantine:"
            " it registers with a CSR (or another device certificate) first; it still holds "
            + ", ".join(reg.reissue_of)
        )
    e = await _enrollment_of(deps, reg)
    move = await moves.move_device(
        deps,
        moves.MoveRequest(
            device_name=registration_id,
            to_service=reg.quarantined_from,
            policy=StatePolicy.MIGRATE,
            reason=MoveReason.POLICY,
            requested_by="operator",
            note="out of quarantine",
        ),
        cid,
    )
    substatus = (
        Substatus.REPROVISIONED_TO_INITIAL
        if reg.quarantined_from == reg.initial_service
        else Substatus.DATA_MIGRATED
    )
    record = await _record(
        deps,
        registration_id,
        e,
        status=RegistrationStatus.ASSIGNED,
        substatus=substatus,
        assigned_service=reg.quarantined_from,
        last_move=move.id,
        last_moved=now_ms(),
        quarantined_from="",
        pending_service="",
        reissue_of=(),
    )
    return Outcome(record, None, move)


async def device_state(deps: Deps, name: str) -> tuple[Device | None, Device]:
    """A device's initial configuration (as first provisioned) and its current state."""
    async with deps.store.read() as tx:
        current = await tx.devices.get(name)
        initial = await tx.moves.initial(name)
    if current is None:
        raise not_found("device", name)
    return initial, current
