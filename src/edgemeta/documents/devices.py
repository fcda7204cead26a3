"""The Device shape: request DTOs, request to record or patch, record to document and back.

A new Device field goes here (the DTOs, ``device_record``/``device_patch``, ``device_doc`` and
``device_from``), in ``domain/records.py`` (the record) and in ``api/openapi.yaml``.
"""

from __future__ import annotations

from typing import Any, cast

from edgemeta.documents.common import (
    AdminStateWire,
    AutoEvents,
    Doc,
    Envelope,
    Labels,
    Name,
    Object,
    OperatingStateWire,
    Protocols,
    RefName,
    Targeted,
    Text,
    Uuid,
    Wire,
    auto_event_doc,
    auto_event_from,
    auto_events_of,
    labels_of,
    opt_auto_events_of,
    opt_labels_of,
    stamps,
)
from edgemeta.domain.patches import DevicePatch, Target
from edgemeta.domain.records import JSON, AdminState, Device, OperatingState


class DeviceDTO(Wire):
    """Device (add). ``protocols`` must be present; ``{}`` is accepted, as in EdgeX."""

    id: Uuid | None = None
    name: Name
    parent: RefName | None = None
    description: Text | None = None
    admin_state: AdminStateWire
    operating_state: OperatingStateWire
    labels: Labels | None = None
    location: Any = None
    service_name: Name
    profile_name: RefName | None = None
    auto_events: AutoEvents | None = None
    protocols: Protocols
    tags: Object | None = None
    properties: Object | None = None


class UpdateDeviceDTO(Targeted):
    """UpdateDevice (patch); ``profileName: ""`` detaches the profile."""

    parent: RefName | None = None
    description: Text | None = None
    admin_state: AdminStateWire | None = None
    operating_state: OperatingStateWire | None = None
    labels: Labels | None = None
    location: Any = None
    service_name: Name | None = None
    profile_name: RefName | None = None
    auto_events: AutoEvents | None = None
    protocols: Protocols | None = None
    tags: Object | None = None
    properties: Object | None = None


class AddDeviceRequest(Envelope):
    """AddDeviceRequest."""

    device: DeviceDTO


class UpdateDeviceRequest(Envelope):
    """UpdateDeviceRequest."""

    device: UpdateDeviceDTO


def device_record(d: DeviceDTO) -> Device:
    """Device from an add request."""
    return Device(
        id=d.id or "",
        name=d.name,
        parent=d.parent or "",
        description=d.description or "",
        admin_state=AdminState(d.admin_state),
        operating_state=OperatingState(d.operating_state),
        labels=labels_of(d.labels),
        location=d.location,
        service_name=d.service_name,
        profile_name=d.profile_name or "",
        auto_events=auto_events_of(d.auto_events),
        protocols=d.protocols,
        tags=d.tags or {},
        properties=d.properties or {},
    )


def device_patch(d: UpdateDeviceDTO) -> DevicePatch:
    """DevicePatch from a patch request."""
    return DevicePatch(
        target=Target(id=d.id, name=d.name),
        description=d.description,
        admin_state=None if d.admin_state is None else AdminState(d.admin_state),
        operating_state=None if d.operating_state is None else OperatingState(d.operating_state),
        labels=opt_labels_of(d.labels),
        location=d.location,
        location_set=d.location is not None,
        service_name=d.service_name,
        profile_name=d.profile_name,
        auto_events=opt_auto_events_of(d.auto_events),
        protocols=d.protocols,
        parent=d.parent,
        tags=d.tags,
        properties=d.properties,
    )


def device_doc(d: Device) -> Doc:
    """The Device DTO."""
    doc: Doc = {}
    stamps(doc, d.created, d.modified)
    if d.id:
        doc["id"] = d.id
    doc["name"] = d.name
    if d.parent:
        doc["parent"] = d.parent
    if d.description:
        doc["description"] = d.description
    doc["adminState"] = d.admin_state.value
    doc["operatingState"] = d.operating_state.value
    if d.labels:
        doc["labels"] = list(d.labels)
    if d.location is not None:
        doc["location"] = d.location
    doc["serviceName"] = d.service_name
    if d.profile_name:
        doc["profileName"] = d.profile_name
    if d.auto_events:
        doc["autoEvents"] = [auto_event_doc(a) for a in d.auto_events]
    doc["protocols"] = d.protocols
    if d.tags:
        doc["tags"] = d.tags
    doc["properties"] = d.properties
    doc["revision"] = d.revision
    return doc


def device_from(doc: Doc) -> Device:
    """Read a Device document."""
    return Device(
        id=doc.get("id", ""),
        name=doc["name"],
        parent=doc.get("parent", ""),
        description=doc.get("description", ""),
        admin_state=AdminState(doc["adminState"]),
        operating_state=OperatingState(doc["operatingState"]),
        labels=tuple(doc.get("labels") or ()),
        location=cast(JSON, doc.get("location")),
        service_name=doc["serviceName"],
        profile_name=doc.get("profileName", ""),
        auto_events=tuple(auto_event_from(a) for a in doc.get("autoEvents") or ()),
        protocols=doc.get("protocols") or {},
        tags=doc.get("tags") or {},
        properties=doc.get("properties") or {},
        created=doc.get("created", 0),
        modified=doc.get("modified", 0),
        revision=doc.get("revision", 1),
    )
