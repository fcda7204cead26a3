"""Canonical documents: records in the shape and field order of EdgeX's DTOs.

This is the serialization boundary between the domain and the outside (API, store, bus); it
lives outside `domain` so the domain stays free of untyped JSON.

One converter serves both the wire (API responses, system-event ``details``) and the store's
``content`` column, so what is stored is exactly what is served. The rules follow the Go DTO
tags of go-mod-core-contracts: fields tagged ``omitempty`` are left out when empty, the rest
are always written (``properties``, ``protocols``, ``isHidden``, ``retention``, ...).

``from_*`` functions read documents this module wrote; they trust their input (the API layer
validates requests before any record exists).
"""

from __future__ import annotations

from typing import Any, cast

from edgemeta.domain.moves import Move, MoveReason, MoveState, MoveStep, StatePolicy
from edgemeta.domain.records import (
    JSON,
    AdminState,
    AutoEvent,
    Device,
    DeviceCommand,
    DeviceProfile,
    DeviceResource,
    DeviceService,
    DiscoveredDevice,
    JSONObject,
    OperatingState,
    ProvisionWatcher,
    ReadWrite,
    ResourceOperation,
    ResourceProperties,
    Retention,
)

API_VERSION = "v3"

Doc = dict[str, Any]


def _stamps(doc: Doc, created: int, modified: int) -> None:
    if created:
        doc["created"] = created
    if modified:
        doc["modified"] = modified


# -- auto events ---------------------------------------------------------------------------


def auto_event_doc(a: AutoEvent) -> Doc:
    """The AutoEvent DTO; ``retention`` is always written, as EdgeX does."""
    return {
        "interval": a.interval,
        "onChange": a.on_change,
        "onChangeThreshold": a.on_change_threshold,
        "sourceName": a.source_name,
        "retention": {
            "maxCap": a.retention.max_cap,
            "minCap": a.retention.min_cap,
            "duration": a.retention.duration,
        },
    }


def auto_event_from(doc: Doc) -> AutoEvent:
    """Read an AutoEvent document."""
    r = doc.get("retention") or {}
    return AutoEvent(
        interval=doc["interval"],
        source_name=doc["sourceName"],
        on_change=bool(doc.get("onChange", False)),
        on_change_threshold=float(doc.get("onChangeThreshold", 0.0)),
        retention=Retention(
            max_cap=int(r.get("maxCap", 0)),
            min_cap=int(r.get("minCap", 0)),
            duration=str(r.get("duration", "")),
        ),
    )


# -- device services -----------------------------------------------------------------------


def service_doc(s: DeviceService) -> Doc:
    """The DeviceService DTO."""
    doc: Doc = {}
    _stamps(doc, s.created, s.modified)
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


# -- device profiles -----------------------------------------------------------------------


def properties_doc(p: ResourceProperties) -> Doc:
    """The ResourceProperties DTO."""
    doc: Doc = {"valueType": p.value_type, "readWrite": p.read_write.value}
    if p.units:
        doc["units"] = p.units
    if p.minimum is not None:
        doc["minimum"] = p.minimum
    if p.maximum is not None:
        doc["maximum"] = p.maximum
    if p.default_value:
        doc["defaultValue"] = p.default_value
    if p.mask is not None:
        doc["mask"] = p.mask
    if p.shift is not None:
        doc["shift"] = p.shift
    if p.scale is not None:
        doc["scale"] = p.scale
    if p.offset is not None:
        doc["offset"] = p.offset
    if p.base is not None:
        doc["base"] = p.base
    if p.assertion:
        doc["assertion"] = p.assertion
    if p.media_type:
        doc["mediaType"] = p.media_type
    if p.optional:
        doc["optional"] = p.optional
    return doc


def properties_from(doc: Doc) -> ResourceProperties:
    """Read a ResourceProperties document."""
    return ResourceProperties(
        value_type=doc["valueType"],
        read_write=ReadWrite(doc["readWrite"]),
        units=doc.get("units", ""),
        minimum=doc.get("minimum"),
        maximum=doc.get("maximum"),
        default_value=doc.get("defaultValue", ""),
        mask=doc.get("mask"),
        shift=doc.get("shift"),
        scale=doc.get("scale"),
        offset=doc.get("offset"),
        base=doc.get("base"),
        assertion=doc.get("assertion", ""),
        media_type=doc.get("mediaType", ""),
        optional=doc.get("optional") or {},
    )


def resource_doc(r: DeviceResource) -> Doc:
    """The DeviceResource DTO."""
    doc: Doc = {}
    if r.description:
        doc["description"] = r.description
    doc["name"] = r.name
    doc["isHidden"] = r.is_hidden
    doc["properties"] = properties_doc(r.properties)
    if r.attributes:
        doc["attributes"] = r.attributes
    if r.tags:
        doc["tags"] = r.tags
    return doc


def resource_from(doc: Doc) -> DeviceResource:
    """Read a DeviceResource document."""
    return DeviceResource(
        name=doc["name"],
        description=doc.get("description", ""),
        is_hidden=bool(doc.get("isHidden", False)),
        properties=properties_from(doc["properties"]),
        attributes=doc.get("attributes") or {},
        tags=doc.get("tags") or {},
    )


def command_doc(c: DeviceCommand) -> Doc:
    """The DeviceCommand DTO."""
    ops: list[Doc] = []
    for op in c.resource_operations:
        o: Doc = {"deviceResource": op.device_resource}
        if op.default_value:
            o["defaultValue"] = op.default_value
        if op.mappings:
            o["mappings"] = op.mappings
        ops.append(o)
    doc: Doc = {
        "name": c.name,
        "isHidden": c.is_hidden,
        "readWrite": c.read_write.value,
        "resourceOperations": ops,
    }
    if c.tags:
        doc["tags"] = c.tags
    return doc


def command_from(doc: Doc) -> DeviceCommand:
    """Read a DeviceCommand document."""
    return DeviceCommand(
        name=doc["name"],
        is_hidden=bool(doc.get("isHidden", False)),
        read_write=ReadWrite(doc["readWrite"]),
        resource_operations=tuple(
            ResourceOperation(
                device_resource=o["deviceResource"],
                default_value=o.get("defaultValue", ""),
                mappings=o.get("mappings") or {},
            )
            for o in doc.get("resourceOperations") or ()
        ),
        tags=doc.get("tags") or {},
    )


def basic_info_doc(p: DeviceProfile, linked_device_count: int | None = None) -> Doc:
    """The DeviceProfileBasicInfo DTO (also the head of the profile DTO)."""
    doc: Doc = {}
    _stamps(doc, p.created, p.modified)
    if p.id:
        doc["id"] = p.id
    doc["name"] = p.name
    if p.manufacturer:
        doc["manufacturer"] = p.manufacturer
    if p.description:
        doc["description"] = p.description
    if p.model:
        doc["model"] = p.model
    if p.labels:
        doc["labels"] = list(p.labels)
    if linked_device_count is not None:
        doc["linkedDeviceCount"] = linked_device_count
    return doc


def profile_doc(p: DeviceProfile, linked_device_count: int | None = None) -> Doc:
    """The DeviceProfile DTO; resources and commands are always arrays."""
    doc = basic_info_doc(p, linked_device_count)
    doc["deviceResources"] = [resource_doc(r) for r in p.device_resources]
    doc["deviceCommands"] = [command_doc(c) for c in p.device_commands]
    doc["apiVersion"] = API_VERSION
    doc["revision"] = p.revision
    return doc


def profile_from(doc: Doc) -> DeviceProfile:
    """Read a DeviceProfile document."""
    return DeviceProfile(
        id=doc.get("id", ""),
        name=doc["name"],
        manufacturer=doc.get("manufacturer", ""),
        description=doc.get("description", ""),
        model=doc.get("model", ""),
        labels=tuple(doc.get("labels") or ()),
        device_resources=tuple(resource_from(r) for r in doc.get("deviceResources") or ()),
        device_commands=tuple(command_from(c) for c in doc.get("deviceCommands") or ()),
        created=doc.get("created", 0),
        modified=doc.get("modified", 0),
        revision=doc.get("revision", 1),
    )


# -- devices -------------------------------------------------------------------------------


def device_doc(d: Device) -> Doc:
    """The Device DTO."""
    doc: Doc = {}
    _stamps(doc, d.created, d.modified)
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


# -- provision watchers --------------------------------------------------------------------


def discovered_doc(d: DiscoveredDevice) -> Doc:
    """The DiscoveredDevice DTO (``profileName`` left out when empty, as on EdgeX main)."""
    doc: Doc = {}
    if d.profile_name:
        doc["profileName"] = d.profile_name
    doc["adminState"] = d.admin_state.value
    if d.auto_events:
        doc["autoEvents"] = [auto_event_doc(a) for a in d.auto_events]
    doc["properties"] = d.properties
    return doc


def watcher_doc(w: ProvisionWatcher) -> Doc:
    """The ProvisionWatcher DTO."""
    doc: Doc = {}
    _stamps(doc, w.created, w.modified)
    if w.id:
        doc["id"] = w.id
    doc["name"] = w.name
    doc["serviceName"] = w.service_name
    if w.labels:
        doc["labels"] = list(w.labels)
    doc["identifiers"] = w.identifiers
    if w.blocking_identifiers:
        doc["blockingIdentifiers"] = w.blocking_identifiers
    doc["adminState"] = w.admin_state.value
    doc["discoveredDevice"] = discovered_doc(w.discovered_device)
    doc["revision"] = w.revision
    return doc


def watcher_from(doc: Doc) -> ProvisionWatcher:
    """Read a ProvisionWatcher document."""
    dd = doc["discoveredDevice"]
    props: JSONObject = dd.get("properties") or {}
    return ProvisionWatcher(
        id=doc.get("id", ""),
        name=doc["name"],
        service_name=doc["serviceName"],
        labels=tuple(doc.get("labels") or ()),
        identifiers=doc.get("identifiers") or {},
        blocking_identifiers=doc.get("blockingIdentifiers") or {},
        admin_state=AdminState(doc["adminState"]),
        discovered_device=DiscoveredDevice(
            profile_name=dd.get("profileName", ""),
            admin_state=AdminState(dd["adminState"]),
            auto_events=tuple(auto_event_from(a) for a in dd.get("autoEvents") or ()),
            properties=props,
        ),
        created=doc.get("created", 0),
        modified=doc.get("modified", 0),
        revision=doc.get("revision", 1),
    )


# -- moves ---------------------------------------------------------------------------------


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
