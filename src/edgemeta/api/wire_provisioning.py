"""Request DTOs of edgemeta's provisioning API: enrolments, registrations, quarantine.

Same conventions as :mod:`edgemeta.api.wire` (EdgeX envelope, strict types, case-insensitive
keys, bounded lengths).
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, StringConstraints, model_validator

from edgemeta.api.wire import (
    NAME_MAX,
    AdminStateWire,
    AutoEvents,
    Envelope,
    Label,
    Labels,
    Name,
    Object,
    Protocols,
    Text,
    Uuid,
    Wire,
)


def _regex(value: str) -> str:
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"is not a valid regular expression: {exc}") from None
    return value


def _b64_key(value: str) -> str:
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("must be base64") from None
    if not 16 <= len(raw) <= 64:
        raise ValueError("must be a key of 16 to 64 bytes")
    return value


def _http_url(value: str) -> str:
    if not re.fullmatch(r"https?://[^\s]+", value):
        raise ValueError("must be an http:// or https:// URL")
    return value


Pattern = Annotated[str, StringConstraints(max_length=1024), AfterValidator(_regex)]
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


class AttestationDTO(Wire):
    """Symmetric keys (generated when left out)."""

    type: Literal["symmetricKey"] = "symmetricKey"
    primary_key: Key | None = None
    secondary_key: Key | None = None


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
        return self


class AddEnrollmentRequest(Envelope):
    """Add an enrolment."""

    enrollment: EnrollmentDTO


class UpdateEnrollmentRequest(Envelope):
    """Replace an enrolment's definition; ``expectedRevision`` gives If-Match semantics."""

    enrollment: EnrollmentDTO
    expected_revision: Annotated[int, Field(ge=1, le=2**63 - 1)] | None = None


class RegistrationDTO(Wire):
    """What a device (or its device service) reports when it registers."""

    registration_id: Name
    token: Annotated[str, StringConstraints(min_length=1, max_length=2048)]
    labels: Annotated[list[Label], Field(max_length=256)] | None = None
    protocols: Protocols | None = None
    site: Annotated[str, StringConstraints(max_length=NAME_MAX)] | None = None
    latencies: (
        Annotated[dict[Name, Annotated[float, Field(ge=0)]], Field(max_length=256)] | None
    ) = None
    payload: Object | None = None


class RegistrationRequest(Envelope):
    """A registration."""

    registration: RegistrationDTO


class QuarantineDTO(Wire):
    """Where to quarantine a device, and why."""

    service_name: Name
    note: Text | None = None


class QuarantineRequest(Envelope):
    """Send a device to quarantine."""

    quarantine: QuarantineDTO
