"""Validated request DTOs to domain records and patches (the edge of the API layer)."""

from __future__ import annotations

from edgemeta.api import wire, wire_provisioning
from edgemeta.domain.enrollment import (
    AllocationPolicy,
    Candidate,
    Enrollment,
    EnrollmentKind,
    InitialState,
    Match,
    Report,
    ReprovisionPolicy,
    Webhook,
)
from edgemeta.domain.patches import (
    CommandPatch,
    DevicePatch,
    DeviceServicePatch,
    DiscoveredDevicePatch,
    ProfileBasicInfoPatch,
    ProvisionWatcherPatch,
    ResourcePatch,
    TagsUpdate,
    Target,
)
from edgemeta.domain.records import (
    AdminState,
    AutoEvent,
    Device,
    DeviceCommand,
    DeviceProfile,
    DeviceResource,
    DeviceService,
    DiscoveredDevice,
    OperatingState,
    ProvisionWatcher,
    ReadWrite,
    ResourceOperation,
    ResourceProperties,
    Retention,
)


def _labels(labels: list[str] | None) -> tuple[str, ...]:
    return tuple(labels or ())


def _opt_labels(labels: list[str] | None) -> tuple[str, ...] | None:
    return None if labels is None else tuple(labels)


def auto_event(a: wire.AutoEventDTO) -> AutoEvent:
    """AutoEvent."""
    r = a.retention
    return AutoEvent(
        interval=a.interval,
        source_name=a.source_name,
        on_change=bool(a.on_change),
        on_change_threshold=a.on_change_threshold or 0.0,
        retention=Retention(
            max_cap=(r.max_cap or 0) if r else 0,
            min_cap=(r.min_cap or 0) if r else 0,
            duration=(r.duration or "") if r else "",
        ),
    )


def _auto_events(items: list[wire.AutoEventDTO] | None) -> tuple[AutoEvent, ...]:
    return tuple(auto_event(a) for a in items or ())


def _opt_auto_events(items: list[wire.AutoEventDTO] | None) -> tuple[AutoEvent, ...] | None:
    return None if items is None else _auto_events(items)


def service(s: wire.DeviceServiceDTO) -> DeviceService:
    """DeviceService from an add request."""
    return DeviceService(
        id=s.id or "",
        name=s.name,
        description=s.description or "",
        labels=_labels(s.labels),
        base_address=s.base_address,
        admin_state=AdminState(s.admin_state),
        properties=s.properties or {},
    )


def service_patch(s: wire.UpdateDeviceServiceDTO) -> DeviceServicePatch:
    """DeviceServicePatch from a patch request."""
    return DeviceServicePatch(
        target=Target(id=s.id, name=s.name),
        description=s.description,
        base_address=s.base_address,
        labels=_opt_labels(s.labels),
        admin_state=None if s.admin_state is None else AdminState(s.admin_state),
        properties=s.properties,
    )


def resource(r: wire.DeviceResourceDTO) -> DeviceResource:
    """DeviceResource."""
    p = r.properties
    return DeviceResource(
        name=r.name,
        description=r.description or "",
        is_hidden=bool(r.is_hidden),
        properties=ResourceProperties(
            value_type=p.value_type,
            read_write=ReadWrite(p.read_write),
            units=p.units or "",
            minimum=p.minimum,
            maximum=p.maximum,
            default_value=p.default_value or "",
            mask=p.mask,
            shift=p.shift,
            scale=p.scale,
            offset=p.offset,
            base=p.base,
            assertion=p.assertion or "",
            media_type=p.media_type or "",
            optional=p.optional or {},
        ),
        attributes=r.attributes or {},
        tags=r.tags or {},
    )


def command(c: wire.DeviceCommandDTO) -> DeviceCommand:
    """DeviceCommand."""
    return DeviceCommand(
        name=c.name,
        is_hidden=bool(c.is_hidden),
        read_write=ReadWrite(c.read_write),
        resource_operations=tuple(
            ResourceOperation(
                device_resource=o.device_resource,
                default_value=o.default_value or "",
                mappings=o.mappings or {},
            )
            for o in c.resource_operations
        ),
        tags=c.tags or {},
    )


def profile(p: wire.DeviceProfileDTO) -> DeviceProfile:
    """DeviceProfile."""
    return DeviceProfile(
        id=p.id or "",
        name=p.name,
        manufacturer=p.manufacturer or "",
        description=p.description or "",
        model=p.model or "",
        labels=_labels(p.labels),
        device_resources=tuple(resource(r) for r in p.device_resources or ()),
        device_commands=tuple(command(c) for c in p.device_commands or ()),
    )


def basic_info_patch(b: wire.BasicInfoDTO) -> ProfileBasicInfoPatch:
    """ProfileBasicInfoPatch."""
    return ProfileBasicInfoPatch(
        target=Target(id=b.id, name=b.name),
        manufacturer=b.manufacturer,
        description=b.description,
        model=b.model,
        labels=_opt_labels(b.labels),
    )


def resource_patch(r: wire.UpdateResourceDTO) -> ResourcePatch:
    """ResourcePatch."""
    return ResourcePatch(name=r.name, description=r.description, is_hidden=r.is_hidden)


def command_patch(c: wire.UpdateCommandDTO) -> CommandPatch:
    """CommandPatch."""
    return CommandPatch(name=c.name, is_hidden=c.is_hidden)


def tags(items: list[wire.TagsDTO] | None) -> list[TagsUpdate]:
    """TagsUpdate list."""
    return [TagsUpdate(name=t.name, tags=t.tags) for t in items or ()]


def device(d: wire.DeviceDTO) -> Device:
    """Device from an add request."""
    return Device(
        id=d.id or "",
        name=d.name,
        parent=d.parent or "",
        description=d.description or "",
        admin_state=AdminState(d.admin_state),
        operating_state=OperatingState(d.operating_state),
        labels=_labels(d.labels),
        location=d.location,
        service_name=d.service_name,
        profile_name=d.profile_name or "",
        auto_events=_auto_events(d.auto_events),
        protocols=d.protocols,
        tags=d.tags or {},
        properties=d.properties or {},
    )


def device_patch(d: wire.UpdateDeviceDTO) -> DevicePatch:
    """DevicePatch from a patch request."""
    return DevicePatch(
        target=Target(id=d.id, name=d.name),
        description=d.description,
        admin_state=None if d.admin_state is None else AdminState(d.admin_state),
        operating_state=None if d.operating_state is None else OperatingState(d.operating_state),
        labels=_opt_labels(d.labels),
        location=d.location,
        location_set=d.location is not None,
        service_name=d.service_name,
        profile_name=d.profile_name,
        auto_events=_opt_auto_events(d.auto_events),
        protocols=d.protocols,
        parent=d.parent,
        tags=d.tags,
        properties=d.properties,
    )


def watcher(w: wire.ProvisionWatcherDTO) -> ProvisionWatcher:
    """ProvisionWatcher from an add request."""
    dd = w.discovered_device
    return ProvisionWatcher(
        id=w.id or "",
        name=w.name,
        service_name=w.service_name,
        labels=_labels(w.labels),
        identifiers=w.identifiers,
        blocking_identifiers=w.blocking_identifiers or {},
        admin_state=AdminState(w.admin_state),
        discovered_device=DiscoveredDevice(
            profile_name=dd.profile_name or "",
            admin_state=AdminState(dd.admin_state),
            auto_events=_auto_events(dd.auto_events),
            properties=dd.properties or {},
        ),
    )


def watcher_patch(w: wire.UpdateProvisionWatcherDTO) -> ProvisionWatcherPatch:
    """ProvisionWatcherPatch from a patch request."""
    dd = w.discovered_device
    return ProvisionWatcherPatch(
        target=Target(id=w.id, name=w.name),
        service_name=w.service_name,
        labels=_opt_labels(w.labels),
        identifiers=w.identifiers,
        blocking_identifiers=w.blocking_identifiers,
        admin_state=None if w.admin_state is None else AdminState(w.admin_state),
        discovered_device=None
        if dd is None
        else DiscoveredDevicePatch(
            profile_name=dd.profile_name,
            admin_state=None if dd.admin_state is None else AdminState(dd.admin_state),
            auto_events=_opt_auto_events(dd.auto_events),
            properties=dd.properties,
        ),
    )


# -- provisioning ----------------------------------------------------------------------------


def enrollment(e: wire_provisioning.EnrollmentDTO) -> Enrollment:
    """Enrollment from a request."""
    alloc = e.allocation
    hook = alloc.webhook
    init = e.initial_state or wire_provisioning.InitialStateDTO()
    att = e.attestation or wire_provisioning.AttestationDTO()
    match = e.match or wire_provisioning.MatchDTO()
    return Enrollment(
        id=e.id or "",
        name=e.name,
        kind=EnrollmentKind(e.kind),
        registration_id=e.registration_id or "",
        match=Match(
            name_pattern=match.name_pattern or "",
            labels=_labels(match.labels),
            identifiers=match.identifiers or {},
        ),
        allocation=AllocationPolicy(alloc.policy),
        candidates=tuple(
            Candidate(service=c.name, weight=1 if c.weight is None else c.weight, site=c.site or "")
            for c in alloc.services
        ),
        webhook=None
        if hook is None
        else Webhook(
            url=hook.url,
            timeout=hook.timeout or 2.0,
            fallback=AllocationPolicy(hook.fallback or "hashed"),
        ),
        reprovision=ReprovisionPolicy(e.reprovision_policy or "migrate"),
        initial=InitialState(
            profile_name=init.profile_name or "",
            description=init.description or "",
            admin_state=AdminState(init.admin_state or "UNLOCKED"),
            protocols=init.protocols or {},
            properties=init.properties or {},
            tags=init.tags or {},
            labels=_labels(init.labels),
            auto_events=_auto_events(init.auto_events),
        ),
        primary_key=att.primary_key or "",
        secondary_key=att.secondary_key or "",
        enabled=True if e.enabled is None else e.enabled,
        hold_down_s=60.0 if e.hold_down_seconds is None else e.hold_down_seconds,
        priority=e.priority or 0,
    )


def report(r: wire_provisioning.RegistrationDTO) -> Report:
    """Report from a registration request."""
    return Report(
        registration_id=r.registration_id,
        labels=_labels(r.labels),
        protocols=r.protocols or {},
        site=r.site or "",
        latencies=r.latencies or {},
        payload=r.payload,
    )
