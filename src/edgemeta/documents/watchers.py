"""The ProvisionWatcher shape (with its DiscoveredDevice): request DTOs, records and
patches, and the watcher document both ways.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field, StringConstraints

from edgemeta.documents.common import (
    NAME_MAX,
    TEXT_MAX,
    AdminStateWire,
    AutoEvents,
    Doc,
    Envelope,
    Labels,
    Name,
    Object,
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
from edgemeta.domain import patterns
from edgemeta.domain.patches import DiscoveredDevicePatch, ProvisionWatcherPatch, Target
from edgemeta.domain.records import AdminState, DiscoveredDevice, JSONObject, ProvisionWatcher

# Identifier values are regular expressions the device service matches discovered devices'
# protocol properties against (Go's regexp in EdgeX's SDKs, so RE2 syntax): one that cannot
# compile would silently match nothing, so it is refused here. Blocking identifiers are literal
# values in EdgeX and stay unchecked.
Identifiers = Annotated[
    dict[
        Annotated[str, StringConstraints(min_length=1, max_length=NAME_MAX)],
        Annotated[
            str,
            StringConstraints(min_length=1, max_length=TEXT_MAX),
            AfterValidator(patterns.check),
        ],
    ],
    Field(min_length=1, max_length=256),
]
BlockingIdentifiers = Annotated[
    dict[
        Annotated[str, StringConstraints(min_length=1, max_length=NAME_MAX)],
        Annotated[list[Text], Field(max_length=1024)],
    ],
    Field(max_length=256),
]


class DiscoveredDeviceDTO(Wire):
    """DiscoveredDevice (add)."""

    profile_name: Name | None = None
    admin_state: AdminStateWire
    auto_events: AutoEvents | None = None
    properties: Object | None = None


class ProvisionWatcherDTO(Wire):
    """ProvisionWatcher (add)."""

    id: Uuid | None = None
    name: Name
    service_name: Name
    labels: Labels | None = None
    identifiers: Identifiers
    blocking_identifiers: BlockingIdentifiers | None = None
    admin_state: AdminStateWire
    discovered_device: DiscoveredDeviceDTO


class UpdateDiscoveredDeviceDTO(Wire):
    """UpdateDiscoveredDevice: every field optional; ``profileName`` may be ``""``."""

    profile_name: RefName | None = None
    admin_state: AdminStateWire | None = None
    auto_events: AutoEvents | None = None
    properties: Object | None = None


class UpdateProvisionWatcherDTO(Targeted):
    """UpdateProvisionWatcher (patch)."""

    service_name: Name | None = None
    labels: Labels | None = None
    identifiers: Identifiers | None = None
    blocking_identifiers: BlockingIdentifiers | None = None
    admin_state: AdminStateWire | None = None
    discovered_device: UpdateDiscoveredDeviceDTO | None = None


class AddProvisionWatcherRequest(Envelope):
    """AddProvisionWatcherRequest."""

    provision_watcher: ProvisionWatcherDTO


class UpdateProvisionWatcherRequest(Envelope):
    """UpdateProvisionWatcherRequest."""

    provision_watcher: UpdateProvisionWatcherDTO


def watcher_record(w: ProvisionWatcherDTO) -> ProvisionWatcher:
    """ProvisionWatcher from an add request."""
    dd = w.discovered_device
    return ProvisionWatcher(
        id=w.id or "",
        name=w.name,
        service_name=w.service_name,
        labels=labels_of(w.labels),
        identifiers=w.identifiers,
        blocking_identifiers=w.blocking_identifiers or {},
        admin_state=AdminState(w.admin_state),
        discovered_device=DiscoveredDevice(
            profile_name=dd.profile_name or "",
            admin_state=AdminState(dd.admin_state),
            auto_events=auto_events_of(dd.auto_events),
            properties=dd.properties or {},
        ),
    )


def watcher_patch(w: UpdateProvisionWatcherDTO) -> ProvisionWatcherPatch:
    """ProvisionWatcherPatch from a patch request."""
    dd = w.discovered_device
    return ProvisionWatcherPatch(
        target=Target(id=w.id, name=w.name),
        service_name=w.service_name,
        labels=opt_labels_of(w.labels),
        identifiers=w.identifiers,
        blocking_identifiers=w.blocking_identifiers,
        admin_state=None if w.admin_state is None else AdminState(w.admin_state),
        discovered_device=None
        if dd is None
        else DiscoveredDevicePatch(
            profile_name=dd.profile_name,
            admin_state=None if dd.admin_state is None else AdminState(dd.admin_state),
            auto_events=opt_auto_events_of(dd.auto_events),
            properties=dd.properties,
        ),
    )


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
    stamps(doc, w.created, w.modified)
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
