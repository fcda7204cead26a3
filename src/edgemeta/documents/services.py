"""The DeviceService shape: request DTOs, request to record or patch, document both ways."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import AfterValidator, PrivateAttr, StringConstraints, model_validator

from edgemeta.documents.common import (
    AdminStateWire,
    Doc,
    Envelope,
    Labels,
    Name,
    Object,
    Targeted,
    Text,
    Uuid,
    Wire,
    labels_of,
    opt_labels_of,
    stamps,
)
from edgemeta.domain.moves import RELEASE_BY_DELETE
from edgemeta.domain.names import has_control_chars
from edgemeta.domain.patches import DeviceServicePatch, Target
from edgemeta.domain.records import AdminState, DeviceService


def _base_address(value: str) -> str:
    # go-playground's `uri` check is url.ParseRequestURI: an absolute URI or an absolute path.
    if not value or " " in value or has_control_chars(value):
        raise ValueError("must be a URI, e.g. http://device-virtual:59900")
    parts = urlsplit(value)
    if not parts.scheme and not value.startswith("/"):
        raise ValueError("must be a URI, e.g. http://device-virtual:59900")
    return value


class DeviceServiceDTO(Wire):
    """DeviceService (add)."""

    id: Uuid | None = None
    name: Name
    description: Text | None = None
    labels: Labels | None = None
    base_address: Annotated[str, StringConstraints(max_length=2048), AfterValidator(_base_address)]
    admin_state: AdminStateWire
    properties: Object | None = None
    # Set when the key was spelled ``baseaddress``: EdgeX's C device SDK registers so (its
    # JSON writer lowercases that one key), and C-SDK services must be moved by delete/add.
    _c_sdk_spelling: bool = PrivateAttr(default=False)

    @model_validator(mode="wrap")
    @classmethod
    def _spelling(cls, data: Any, handler: Any) -> Any:
        made = handler(data)
        if isinstance(data, dict) and "baseaddress" in data and isinstance(made, cls):
            made._c_sdk_spelling = True
        return made


class UpdateDeviceServiceDTO(Targeted):
    """UpdateDeviceService (patch)."""

    description: Text | None = None
    labels: Labels | None = None
    base_address: (
        Annotated[str, StringConstraints(max_length=2048), AfterValidator(_base_address)] | None
    ) = None
    admin_state: AdminStateWire | None = None
    properties: Object | None = None


class AddDeviceServiceRequest(Envelope):
    """AddDeviceServiceRequest."""

    service: DeviceServiceDTO


class UpdateDeviceServiceRequest(Envelope):
    """UpdateDeviceServiceRequest."""

    service: UpdateDeviceServiceDTO


def service_record(s: DeviceServiceDTO) -> DeviceService:
    """DeviceService from an add request. A C-SDK registration (see ``_c_sdk_spelling``) is
    marked ``properties.edgemeta.releaseBy: "delete"`` unless it says otherwise."""
    properties = dict(s.properties or {})
    if s._c_sdk_spelling:
        own = properties.get("edgemeta")
        own = dict(own) if isinstance(own, dict) else {}
        own.setdefault("releaseBy", RELEASE_BY_DELETE)
        properties["edgemeta"] = own
    return DeviceService(
        id=s.id or "",
        name=s.name,
        description=s.description or "",
        labels=labels_of(s.labels),
        base_address=s.base_address,
        admin_state=AdminState(s.admin_state),
        properties=properties,
    )


def service_patch(s: UpdateDeviceServiceDTO) -> DeviceServicePatch:
    """DeviceServicePatch from a patch request."""
    return DeviceServicePatch(
        target=Target(id=s.id, name=s.name),
        description=s.description,
        base_address=s.base_address,
        labels=opt_labels_of(s.labels),
        admin_state=None if s.admin_state is None else AdminState(s.admin_state),
        properties=s.properties,
    )


def service_doc(s: DeviceService) -> Doc:
    """The DeviceService DTO."""
    doc: Doc = {}
    stamps(doc, s.created, s.modified)
    if s.id:
        doc["id"] = s.id
    doc["name"] = s.name
    if s.description:
        doc["description"] = s.description
    if s.labels:
        doc["labels"] = list(s.labels)
    doc["baseAddress"] = s.base_address
    doc["adminState"] = s.admin_state.value
    doc["properties"] = s.properties
    doc["revision"] = s.revision
    return doc


def service_from(doc: Doc) -> DeviceService:
    """Read a DeviceService document."""
    return DeviceService(
        id=doc.get("id", ""),
        name=doc["name"],
        description=doc.get("description", ""),
        labels=tuple(doc.get("labels") or ()),
        base_address=doc["baseAddress"],
        admin_state=AdminState(doc["adminState"]),
        properties=doc.get("properties") or {},
        created=doc.get("created", 0),
        modified=doc.get("modified", 0),
        revision=doc.get("revision", 1),
    )
