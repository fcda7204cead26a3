"""Enrolment operations: add, change (revision-checked), read, delete."""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass, replace

from edgemeta.domain import x509 as certs
from edgemeta.domain.enrollment import AttestationType, Enrollment, EnrollmentKind, Webhook
from edgemeta.domain.errors import Conflict, ContractInvalid
from edgemeta.ports import ListQuery, Page
from edgemeta.usecases.common import new_id, not_found, now_ms
from edgemeta.usecases.deps import Deps


def new_key() -> str:
    """A fresh 64-byte symmetric key, base64 (the length DPS generates)."""
    return base64.b64encode(secrets.token_bytes(64)).decode()


def new_webhook_secret() -> str:
    """A fresh 32-byte webhook signing secret, base64."""
    return base64.b64encode(secrets.token_bytes(32)).decode()


def _with_secret(hook: Webhook | None, old: Webhook | None = None) -> Webhook | None:
    """``hook`` with a signing secret: the one given, else the old one, else a new one."""
    if hook is None or hook.secret:
        return hook
    return replace(
        hook, secret=old.secret if old is not None and old.secret else new_webhook_secret()
    )


def _check(e: Enrollment) -> None:
    if e.kind == EnrollmentKind.INDIVIDUAL and not e.registration_id:
        raise ContractInvalid("an individual enrollment needs a registrationId")
    if e.allocation.value == "custom" and e.webhook is None:
        raise ContractInvalid("a custom allocation needs a webhook")
    if e.allocation.value == "static" and len(e.candidates) != 1:
        raise ContractInvalid("a static allocation names exactly one device service")
    names = [c.service for c in e.candidates]
    if len(set(names)) != len(names):
        raise ContractInvalid("each device service may be named once in an allocation")


async def add_enrollment(deps: Deps, e: Enrollment) -> Enrollment:
    """Store a new enrolment (keys generated when not given); returns it, keys included."""
    _check(e)
    now = now_ms()
    symmetric = e.attestation == AttestationType.SYMMETRIC_KEY
    stored = replace(
        e,
        id=e.id or new_id(),
        primary_key=e.primary_key or (new_key() if symmetric else ""),
        secondary_key=e.secondary_key or (new_key() if symmetric else ""),
        webhook=_with_secret(e.webhook),
        created=now,
        modified=now,
        revision=1,
    )
    async with deps.store.write() as tx:
        await tx.enrollments.add(stored)
    return stored


@dataclass(frozen=True, slots=True, kw_only=True)
class EnrollmentChange:
    """A whole new definition of an enrolment, applied only at ``expected_revision`` if given."""

    enrollment: Enrollment
    expected_revision: int | None = None
    keep_attestation: bool = False  # the change leaves attestation out: it stays as it was


async def update_enrollment(deps: Deps, change: EnrollmentChange) -> Enrollment:
    """Replace an enrolment's definition (name, kind and id stay); keys kept if not given."""
    new = change.enrollment
    _check(new)
    async with deps.store.write() as tx:
        old = await tx.enrollments.get(new.name, for_update=True)
        if old is None:
            raise not_found("enrollment", new.name)
        if change.expected_revision is not None and change.expected_revision != old.revision:
            raise Conflict(
                f"enrollment '{old.name}' is at revision {old.revision}, "
                f"not {change.expected_revision}"
            )
        if new.kind != old.kind:
            raise ContractInvalid("an enrollment's kind cannot change")
        if change.keep_attestation or (
            new.attestation == old.attestation == AttestationType.SYMMETRIC_KEY
        ):
            # Keys left out are kept (they are never shown unless asked for).
            new = replace(
                new,
                attestation=old.attestation,
                x509=old.x509 if change.keep_attestation else new.x509,
                primary_key=new.primary_key or old.primary_key,
                secondary_key=new.secondary_key or old.secondary_key,
            )
        elif new.attestation == AttestationType.SYMMETRIC_KEY:
            new = replace(
                new,
                primary_key=new.primary_key or new_key(),
                secondary_key=new.secondary_key or new_key(),
            )
        stored = replace(
            new,
            id=old.id,
            webhook=_with_secret(new.webhook, old.webhook),
            created=old.created,
            modified=now_ms(),
            revision=old.revision + 1,
        )
        await tx.enrollments.update(stored)
    return stored


async def revoke_certificates(
    deps: Deps, name: str, *, serials: list[str], thumbprints: list[str]
) -> Enrollment:
    """Add certificates (serials in hex, SHA-256 thumbprints) to an X.509 enrolment's denylist;
    the next registration with one of them is refused (403) and recorded."""
    try:
        new_serials = [certs.normal_serial(s) for s in serials]
        new_thumbs = [certs.normal_thumbprint(t) for t in thumbprints]
    except ValueError as exc:
        raise ContractInvalid(str(exc)) from None
    async with deps.store.write() as tx:
        old = await tx.enrollments.get(name, for_update=True)
        if old is None:
            raise not_found("enrollment", name)
        if old.x509 is None:
            raise ContractInvalid(f"enrollment '{name}' does not attest with certificates")
        x = old.x509
        stored = replace(
            old,
            x509=replace(
                x,
                revoked_serials=tuple(dict.fromkeys((*x.revoked_serials, *new_serials))),
                revoked_thumbprints=tuple(dict.fromkeys((*x.revoked_thumbprints, *new_thumbs))),
            ),
            modified=now_ms(),
            revision=old.revision + 1,
        )
        await tx.enrollments.update(stored)
    return stored


async def get_enrollment(deps: Deps, name: str) -> Enrollment:
    """The enrolment called ``name``."""
    async with deps.store.read() as tx:
        found = await tx.enrollments.get(name)
    if found is None:
        raise not_found("enrollment", name)
    return found


async def list_enrollments(deps: Deps, query: ListQuery) -> Page[Enrollment]:
    """A page of enrolments."""
    async with deps.store.read() as tx:
        return await tx.enrollments.page(query)


async def delete_enrollment(deps: Deps, name: str) -> None:
    """Delete an enrolment; its devices and registration records stay (as in DPS)."""
    async with deps.store.write() as tx:
        if await tx.enrollments.get(name, for_update=True) is None:
            raise not_found("enrollment", name)
        await tx.enrollments.delete(name)
