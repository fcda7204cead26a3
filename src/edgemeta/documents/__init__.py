"""Every JSON shape edgemeta reads or writes, both directions, one module per resource.

A resource's module holds its request DTOs (validated as EdgeX's Go server decodes them),
the conversion from a request to a domain record or patch, and the record's canonical
document (the EdgeX DTO shape: API responses, system-event ``details`` and the store's
``content`` column) in both directions, as go-mod-core-contracts' ``dtos/device.go`` does:

- :mod:`~edgemeta.documents.common`: envelope, base DTO, bounded strings, AutoEvent
- :mod:`~edgemeta.documents.services`, :mod:`~edgemeta.documents.profiles`,
  :mod:`~edgemeta.documents.devices`, :mod:`~edgemeta.documents.watchers`: core-metadata
- :mod:`~edgemeta.documents.moves`, :mod:`~edgemeta.documents.provisioning`: edgemeta's own
- :mod:`~edgemeta.documents.events`: a changed record as a system event's ``details``
- :mod:`~edgemeta.documents.coredata`: core-data's events and readings

Imports: the domain only (and pydantic, orjson). May be imported by the API, the store, the
bus, the peers and the use cases (which keep no JSON of their own). This package namespace
re-exports every public name, so callers write ``docs.device_doc`` without knowing the file.
"""

from __future__ import annotations

from edgemeta.documents.common import (
    API_VERSION as API_VERSION,
)
from edgemeta.documents.common import (
    LABELS_MAX as LABELS_MAX,
)
from edgemeta.documents.common import (
    NAME_MAX as NAME_MAX,
)
from edgemeta.documents.common import (
    TEXT_MAX as TEXT_MAX,
)
from edgemeta.documents.common import (
    AdminStateWire as AdminStateWire,
)
from edgemeta.documents.common import (
    ApiVersion as ApiVersion,
)
from edgemeta.documents.common import (
    AutoEventDTO as AutoEventDTO,
)
from edgemeta.documents.common import (
    AutoEvents as AutoEvents,
)
from edgemeta.documents.common import (
    Doc as Doc,
)
from edgemeta.documents.common import (
    Envelope as Envelope,
)
from edgemeta.documents.common import (
    Label as Label,
)
from edgemeta.documents.common import (
    Labels as Labels,
)
from edgemeta.documents.common import (
    Name as Name,
)
from edgemeta.documents.common import (
    Object as Object,
)
from edgemeta.documents.common import (
    OperatingStateWire as OperatingStateWire,
)
from edgemeta.documents.common import (
    Protocols as Protocols,
)
from edgemeta.documents.common import (
    RefName as RefName,
)
from edgemeta.documents.common import (
    RequestId as RequestId,
)
from edgemeta.documents.common import (
    RetentionDTO as RetentionDTO,
)
from edgemeta.documents.common import (
    Text as Text,
)
from edgemeta.documents.common import (
    Uuid as Uuid,
)
from edgemeta.documents.common import (
    Wire as Wire,
)
from edgemeta.documents.common import (
    auto_event_doc as auto_event_doc,
)
from edgemeta.documents.common import (
    auto_event_from as auto_event_from,
)
from edgemeta.documents.common import (
    auto_event_record as auto_event_record,
)
from edgemeta.documents.common import (
    auto_events_of as auto_events_of,
)
from edgemeta.documents.common import (
    fold_keys as fold_keys,
)
from edgemeta.documents.common import (
    given as given,
)
from edgemeta.documents.common import (
    labels_of as labels_of,
)
from edgemeta.documents.common import (
    opt as opt,
)
from edgemeta.documents.common import (
    opt_auto_events_of as opt_auto_events_of,
)
from edgemeta.documents.common import (
    opt_labels_of as opt_labels_of,
)
from edgemeta.documents.common import (
    require_target as require_target,
)
from edgemeta.documents.common import (
    stamps as stamps,
)
from edgemeta.documents.coredata import (
    MAX_READINGS as MAX_READINGS,
)
from edgemeta.documents.coredata import (
    check_event as check_event,
)
from edgemeta.documents.coredata import (
    numeric_document as numeric_document,
)
from edgemeta.documents.coredata import (
    parse_request as parse_request,
)
from edgemeta.documents.devices import (
    AddDeviceRequest as AddDeviceRequest,
)
from edgemeta.documents.devices import (
    DeviceDTO as DeviceDTO,
)
from edgemeta.documents.devices import (
    UpdateDeviceDTO as UpdateDeviceDTO,
)
from edgemeta.documents.devices import (
    UpdateDeviceRequest as UpdateDeviceRequest,
)
from edgemeta.documents.devices import (
    device_doc as device_doc,
)
from edgemeta.documents.devices import (
    device_from as device_from,
)
from edgemeta.documents.devices import (
    device_patch as device_patch,
)
from edgemeta.documents.devices import (
    device_record as device_record,
)
from edgemeta.documents.events import (
    details_doc as details_doc,
)
from edgemeta.documents.moves import (
    ReassignDTO as ReassignDTO,
)
from edgemeta.documents.moves import (
    ReassignRequest as ReassignRequest,
)
from edgemeta.documents.moves import (
    move_content as move_content,
)
from edgemeta.documents.moves import (
    move_doc as move_doc,
)
from edgemeta.documents.moves import (
    move_from as move_from,
)
from edgemeta.documents.moves import (
    move_from_content as move_from_content,
)
from edgemeta.documents.profiles import (
    AddCommandRequest as AddCommandRequest,
)
from edgemeta.documents.profiles import (
    AddResourceRequest as AddResourceRequest,
)
from edgemeta.documents.profiles import (
    BasicInfoDTO as BasicInfoDTO,
)
from edgemeta.documents.profiles import (
    BasicInfoRequest as BasicInfoRequest,
)
from edgemeta.documents.profiles import (
    DeviceCommandDTO as DeviceCommandDTO,
)
from edgemeta.documents.profiles import (
    DeviceProfileDTO as DeviceProfileDTO,
)
from edgemeta.documents.profiles import (
    DeviceProfileRequest as DeviceProfileRequest,
)
from edgemeta.documents.profiles import (
    DeviceResourceDTO as DeviceResourceDTO,
)
from edgemeta.documents.profiles import (
    ReadWriteWire as ReadWriteWire,
)
from edgemeta.documents.profiles import (
    ResourceOperationDTO as ResourceOperationDTO,
)
from edgemeta.documents.profiles import (
    ResourcePropertiesDTO as ResourcePropertiesDTO,
)
from edgemeta.documents.profiles import (
    TagsDTO as TagsDTO,
)
from edgemeta.documents.profiles import (
    TagsRequest as TagsRequest,
)
from edgemeta.documents.profiles import (
    UpdateCommandDTO as UpdateCommandDTO,
)
from edgemeta.documents.profiles import (
    UpdateCommandRequest as UpdateCommandRequest,
)
from edgemeta.documents.profiles import (
    UpdateResourceDTO as UpdateResourceDTO,
)
from edgemeta.documents.profiles import (
    UpdateResourceRequest as UpdateResourceRequest,
)
from edgemeta.documents.profiles import (
    basic_info_doc as basic_info_doc,
)
from edgemeta.documents.profiles import (
    basic_info_patch as basic_info_patch,
)
from edgemeta.documents.profiles import (
    command_doc as command_doc,
)
from edgemeta.documents.profiles import (
    command_from as command_from,
)
from edgemeta.documents.profiles import (
    command_patch as command_patch,
)
from edgemeta.documents.profiles import (
    command_record as command_record,
)
from edgemeta.documents.profiles import (
    profile_doc as profile_doc,
)
from edgemeta.documents.profiles import (
    profile_from as profile_from,
)
from edgemeta.documents.profiles import (
    profile_record as profile_record,
)
from edgemeta.documents.profiles import (
    properties_doc as properties_doc,
)
from edgemeta.documents.profiles import (
    properties_from as properties_from,
)
from edgemeta.documents.profiles import (
    resource_doc as resource_doc,
)
from edgemeta.documents.profiles import (
    resource_from as resource_from,
)
from edgemeta.documents.profiles import (
    resource_patch as resource_patch,
)
from edgemeta.documents.profiles import (
    resource_record as resource_record,
)
from edgemeta.documents.profiles import (
    tags_updates as tags_updates,
)
from edgemeta.documents.provisioning import (
    AddEnrollmentRequest as AddEnrollmentRequest,
)
from edgemeta.documents.provisioning import (
    AllocationDTO as AllocationDTO,
)
from edgemeta.documents.provisioning import (
    AttestationDTO as AttestationDTO,
)
from edgemeta.documents.provisioning import (
    CandidateDTO as CandidateDTO,
)
from edgemeta.documents.provisioning import (
    EnrollmentDTO as EnrollmentDTO,
)
from edgemeta.documents.provisioning import (
    InitialStateDTO as InitialStateDTO,
)
from edgemeta.documents.provisioning import (
    Key as Key,
)
from edgemeta.documents.provisioning import (
    MatchDTO as MatchDTO,
)
from edgemeta.documents.provisioning import (
    Pattern as Pattern,
)
from edgemeta.documents.provisioning import (
    Policy as Policy,
)
from edgemeta.documents.provisioning import (
    QuarantineDTO as QuarantineDTO,
)
from edgemeta.documents.provisioning import (
    QuarantineRequest as QuarantineRequest,
)
from edgemeta.documents.provisioning import (
    RegistrationDTO as RegistrationDTO,
)
from edgemeta.documents.provisioning import (
    RegistrationRequest as RegistrationRequest,
)
from edgemeta.documents.provisioning import (
    UpdateEnrollmentRequest as UpdateEnrollmentRequest,
)
from edgemeta.documents.provisioning import (
    WebhookDTO as WebhookDTO,
)
from edgemeta.documents.provisioning import (
    enrollment_doc as enrollment_doc,
)
from edgemeta.documents.provisioning import (
    enrollment_from as enrollment_from,
)
from edgemeta.documents.provisioning import (
    enrollment_record as enrollment_record,
)
from edgemeta.documents.provisioning import (
    initial_doc as initial_doc,
)
from edgemeta.documents.provisioning import (
    initial_from as initial_from,
)
from edgemeta.documents.provisioning import (
    registration_doc as registration_doc,
)
from edgemeta.documents.provisioning import (
    registration_from as registration_from,
)
from edgemeta.documents.provisioning import (
    report_doc as report_doc,
)
from edgemeta.documents.provisioning import (
    report_from as report_from,
)
from edgemeta.documents.provisioning import (
    report_record as report_record,
)
from edgemeta.documents.services import (
    AddDeviceServiceRequest as AddDeviceServiceRequest,
)
from edgemeta.documents.services import (
    DeviceServiceDTO as DeviceServiceDTO,
)
from edgemeta.documents.services import (
    UpdateDeviceServiceDTO as UpdateDeviceServiceDTO,
)
from edgemeta.documents.services import (
    UpdateDeviceServiceRequest as UpdateDeviceServiceRequest,
)
from edgemeta.documents.services import (
    service_doc as service_doc,
)
from edgemeta.documents.services import (
    service_from as service_from,
)
from edgemeta.documents.services import (
    service_patch as service_patch,
)
from edgemeta.documents.services import (
    service_record as service_record,
)
from edgemeta.documents.watchers import (
    AddProvisionWatcherRequest as AddProvisionWatcherRequest,
)
from edgemeta.documents.watchers import (
    BlockingIdentifiers as BlockingIdentifiers,
)
from edgemeta.documents.watchers import (
    DiscoveredDeviceDTO as DiscoveredDeviceDTO,
)
from edgemeta.documents.watchers import (
    Identifiers as Identifiers,
)
from edgemeta.documents.watchers import (
    ProvisionWatcherDTO as ProvisionWatcherDTO,
)
from edgemeta.documents.watchers import (
    UpdateDiscoveredDeviceDTO as UpdateDiscoveredDeviceDTO,
)
from edgemeta.documents.watchers import (
    UpdateProvisionWatcherDTO as UpdateProvisionWatcherDTO,
)
from edgemeta.documents.watchers import (
    UpdateProvisionWatcherRequest as UpdateProvisionWatcherRequest,
)
from edgemeta.documents.watchers import (
    discovered_doc as discovered_doc,
)
from edgemeta.documents.watchers import (
    watcher_doc as watcher_doc,
)
from edgemeta.documents.watchers import (
    watcher_from as watcher_from,
)
from edgemeta.documents.watchers import (
    watcher_patch as watcher_patch,
)
from edgemeta.documents.watchers import (
    watcher_record as watcher_record,
)
