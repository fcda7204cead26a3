"""The DeviceProfile shape (resources, commands, basic info, tags): request DTOs, their
records and patches, and the profile document both ways.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field, StringConstraints

from edgemeta.documents.common import (
    API_VERSION,
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
from edgemeta.domain import valuetypes
from edgemeta.domain.patches import (
    CommandPatch,
    ProfileBasicInfoPatch,
    ResourcePatch,
    TagsUpdate,
    Target,
)
from edgemeta.domain.records import (
    DeviceCommand,
    DeviceProfile,
    DeviceResource,
    ReadWrite,
    ResourceOperation,
    ResourceProperties,
)


def _value_type(value: str) -> str:
    canonical = valuetypes.normalize(value)
    if canonical is None:
        raise ValueError(f"must be one of {', '.join(valuetypes.ALL)}")
    return canonical


ReadWriteWire = Literal["R", "W", "RW", "WR"]


class ResourcePropertiesDTO(Wire):
    """ResourceProperties."""

    value_type: Annotated[str, StringConstraints(max_length=32), AfterValidator(_value_type)]
    read_write: ReadWriteWire
    units: Text | None = None
    minimum: float | None = None
    maximum: float | None = None
    default_value: Text | None = None
    mask: Annotated[int, Field(ge=0, le=2**64 - 1)] | None = None
    shift: Annotated[int, Field(ge=-(2**63), le=2**63 - 1)] | None = None
    scale: float | None = None
    offset: float | None = None
    base: float | None = None
    assertion: Text | None = None
    media_type: Text | None = None
    optional: Object | None = None


class DeviceResourceDTO(Wire):
    """DeviceResource."""

    name: Name
    description: Text | None = None
    is_hidden: bool | None = None
    properties: ResourcePropertiesDTO
    attributes: Object | None = None
    tags: Object | None = None


class ResourceOperationDTO(Wire):
    """ResourceOperation."""

    device_resource: Name
    default_value: Text | None = None
    mappings: dict[str, str] | None = None


class DeviceCommandDTO(Wire):
    """DeviceCommand."""

    name: Name
    is_hidden: bool | None = None
    read_write: ReadWriteWire
    resource_operations: Annotated[list[ResourceOperationDTO], Field(min_length=1, max_length=4096)]
    tags: Object | None = None


class DeviceProfileDTO(Wire):
    """DeviceProfile (add or whole-profile update)."""

    id: Uuid | None = None
    name: Name
    manufacturer: Text | None = None
    description: Text | None = None
    model: Text | None = None
    labels: Labels | None = None
    device_resources: Annotated[list[DeviceResourceDTO], Field(max_length=65536)] | None = None
    device_commands: Annotated[list[DeviceCommandDTO], Field(max_length=65536)] | None = None


class DeviceProfileRequest(Envelope):
    """DeviceProfileRequest (POST and PUT /deviceprofile)."""

    profile: DeviceProfileDTO


class BasicInfoDTO(Targeted):
    """UpdateDeviceProfileBasicInfo."""

    manufacturer: Text | None = None
    description: Text | None = None
    model: Text | None = None
    labels: Labels | None = None


class BasicInfoRequest(Envelope):
    """DeviceProfileBasicInfoRequest; the key is ``basicinfo`` (any case)."""

    basic_info: BasicInfoDTO = Field(alias="basicinfo")


class TagsDTO(Wire):
    """UpdateTags: a map with at least one entry, for one resource or command."""

    name: Name
    tags: Annotated[Object, Field(min_length=1)]


class TagsRequest(Envelope):
    """DeviceProfileTagsRequest (one object, not a batch)."""

    device_resources: list[TagsDTO] | None = None
    device_commands: list[TagsDTO] | None = None


class AddResourceRequest(Envelope):
    """AddDeviceResourceRequest."""

    profile_name: Name
    resource: DeviceResourceDTO


class UpdateResourceDTO(Wire):
    """UpdateDeviceResource: only description and isHidden may change."""

    name: Name
    description: Text | None = None
    is_hidden: bool | None = None


class UpdateResourceRequest(Envelope):
    """UpdateDeviceResourceRequest."""

    profile_name: Name
    resource: UpdateResourceDTO


class AddCommandRequest(Envelope):
    """AddDeviceCommandRequest."""

    profile_name: Name
    device_command: DeviceCommandDTO


class UpdateCommandDTO(Wire):
    """UpdateDeviceCommand: only isHidden may change."""

    name: Name
    is_hidden: bool | None = None


class UpdateCommandRequest(Envelope):
    """UpdateDeviceCommandRequest."""

    profile_name: Name
    device_command: UpdateCommandDTO


def resource_record(r: DeviceResourceDTO) -> DeviceResource:
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


def command_record(c: DeviceCommandDTO) -> DeviceCommand:
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


def profile_record(p: DeviceProfileDTO) -> DeviceProfile:
    """DeviceProfile."""
    return DeviceProfile(
        id=p.id or "",
        name=p.name,
        manufacturer=p.manufacturer or "",
        description=p.description or "",
        model=p.model or "",
        labels=labels_of(p.labels),
        device_resources=tuple(resource_record(r) for r in p.device_resources or ()),
        device_commands=tuple(command_record(c) for c in p.device_commands or ()),
    )


def basic_info_patch(b: BasicInfoDTO) -> ProfileBasicInfoPatch:
    """ProfileBasicInfoPatch."""
    return ProfileBasicInfoPatch(
        target=Target(id=b.id, name=b.name),
        manufacturer=b.manufacturer,
        description=b.description,
        model=b.model,
        labels=opt_labels_of(b.labels),
    )


def resource_patch(r: UpdateResourceDTO) -> ResourcePatch:
    """ResourcePatch."""
    return ResourcePatch(name=r.name, description=r.description, is_hidden=r.is_hidden)


def command_patch(c: UpdateCommandDTO) -> CommandPatch:
    """CommandPatch."""
    return CommandPatch(name=c.name, is_hidden=c.is_hidden)


def tags_updates(items: list[TagsDTO] | None) -> list[TagsUpdate]:
    """TagsUpdate list."""
    return [TagsUpdate(name=t.name, tags=t.tags) for t in items or ()]


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
    stamps(doc, p.created, p.modified)
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
