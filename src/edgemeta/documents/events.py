"""A changed record as a system event's ``details``: the record's own document."""

from __future__ import annotations

from edgemeta.documents.common import Doc
from edgemeta.documents.devices import device_doc
from edgemeta.documents.profiles import profile_doc
from edgemeta.documents.services import service_doc
from edgemeta.documents.watchers import watcher_doc
from edgemeta.domain.records import Device, DeviceProfile, DeviceService, ProvisionWatcher


def details_doc(record: Device | DeviceProfile | DeviceService | ProvisionWatcher) -> Doc:
    """The SystemEvent ``details``: the record's DTO (a profile's without a device count)."""
    if isinstance(record, Device):
        return device_doc(record)
    if isinstance(record, DeviceProfile):
        return profile_doc(record, linked_device_count=0)
    if isinstance(record, DeviceService):
        return service_doc(record)
    if isinstance(record, ProvisionWatcher):
        return watcher_doc(record)
    raise TypeError(f"no document for {type(record).__name__}")
