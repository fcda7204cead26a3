"""edgemeta's move resource: the reassign request, the move document (API and store) and
the stored row (the move with the target and origin devices beside it).
"""

from __future__ import annotations

from typing import Annotated, Literal

import orjson
from pydantic import Field

from edgemeta.documents.common import Doc, Envelope, Name, RefName, Text, Wire
from edgemeta.documents.devices import device_doc, device_from
from edgemeta.domain.moves import Move, MoveReason, MoveState, MoveStep, StatePolicy


class ReassignDTO(Wire):
    """One device to move (edgemeta's reassign request)."""

    device_name: Name
    service_name: Name
    expected_revision: Annotated[int, Field(ge=1, le=2**63 - 1)] | None = None
    state_policy: Literal["migrate", "reset"] | None = None
    requested_by: RefName | None = None
    note: Text | None = None


class ReassignRequest(Envelope):
    """A ReassignDeviceRequest of seed option 2: move a named device to a named service."""

    reassign: ReassignDTO


def move_doc(m: Move) -> Doc:
    """A move, as the API shows it and the store keeps it."""
    doc: Doc = {
        "id": m.id,
        "deviceName": m.device_name,
        "fromService": m.from_service,
        "toService": m.to_service,
        "statePolicy": m.policy.value,
        "reason": m.reason.value,
        "state": m.state.value,
    }
    if m.note:
        doc["note"] = m.note
    if m.requested_by:
        doc["requestedBy"] = m.requested_by
    if m.correlation_id:
        doc["correlationId"] = m.correlation_id
    doc["deviceRevision"] = m.device_revision
    if m.error:
        doc["error"] = m.error
    doc["steps"] = [
        {
            "step": s.step,
            "at": s.at,
            "outcome": s.outcome,
            **({"detail": s.detail} if s.detail else {}),
        }
        for s in m.steps
    ]
    doc["created"] = m.created
    doc["modified"] = m.modified
    doc["revision"] = m.revision
    return doc


def move_from(doc: Doc, target: Doc | None = None, origin: Doc | None = None) -> Move:
    """Read a move document (the target and origin devices are stored beside it)."""
    return Move(
        id=doc["id"],
        device_name=doc["deviceName"],
        from_service=doc["fromService"],
        to_service=doc["toService"],
        policy=StatePolicy(doc["statePolicy"]),
        reason=MoveReason(doc["reason"]),
        state=MoveState(doc["state"]),
        note=doc.get("note", ""),
        requested_by=doc.get("requestedBy", ""),
        correlation_id=doc.get("correlationId", ""),
        device_revision=doc.get("deviceRevision", 0),
        target=device_from(target) if target else None,
        origin=device_from(origin) if origin else None,
        error=doc.get("error", ""),
        steps=tuple(
            MoveStep(s["step"], s["at"], s["outcome"], s.get("detail", ""))
            for s in doc.get("steps") or ()
        ),
        created=doc.get("created", 0),
        modified=doc.get("modified", 0),
        revision=doc.get("revision", 1),
    )


def move_content(m: Move) -> str:
    """The stored row of a move: its document with the target and origin devices beside it."""
    body: Doc = {"move": move_doc(m)}
    if m.target is not None:
        body["target"] = device_doc(m.target)
    if m.origin is not None:
        body["origin"] = device_doc(m.origin)
    return orjson.dumps(body).decode()


def move_from_content(raw: str) -> Move:
    """Read a stored move row (:func:`move_content`)."""
    body = orjson.loads(raw)
    return move_from(body["move"], body.get("target"), body.get("origin"))
