"""Device profile operations: whole profiles, general properties, tags, resources, commands.

Every change is judged by its diff against the stored profile under the change rules of
:mod:`edgemeta.domain.profile_rules` (what core-data associates with the profile decides the
situational ones), whichever endpoint made it.

Every change that alters a stored profile announces it with the update fan-out (one event with
owner ``core-metadata``, one per device service owning a device of the profile), as EdgeX does
for PUT, basic-info, tags, resource and command changes.
"""

from __future__ import annotations

from dataclasses import replace

from edgemeta.domain import events, profile_rules
from edgemeta.domain.errors import Conflict, ContractInvalid, Locked, NotFound
from edgemeta.domain.patches import (
    CommandPatch,
    ProfileBasicInfoPatch,
    ResourcePatch,
    TagsUpdate,
    apply_basic_info_patch,
    merge_tags,
    same_content,
)
from edgemeta.domain.profiles import validate_profile
from edgemeta.domain.records import DeviceCommand, DeviceProfile, DeviceResource
from edgemeta.ports import ListQuery, Page, Tx
from edgemeta.usecases.associations import ensure_profile_without_data, usage
from edgemeta.usecases.common import find_target, new_id, not_found, now_ms
from edgemeta.usecases.deps import Deps, Policy

STRICT_CHANGES = "profile change is not allowed when StrictDeviceProfileChanges is enabled"
STRICT_DELETES = "profile deletion is not allowed when StrictDeviceProfileDeletes is enabled"


def _check_units(policy: Policy, resources: tuple[DeviceResource, ...]) -> None:
    if not policy.uom_validation:
        return
    for r in resources:
        if r.properties.units and r.properties.units not in policy.units:
            raise ContractInvalid(
                f"device resource '{r.name}' has units '{r.properties.units}', which are not "
                "in the units of measure"
            )


def check_strict_changes(deps: Deps) -> None:
    """423 when StrictDeviceProfileChanges forbids whole-profile updates."""
    if deps.policy.strict_profile_changes:
        raise Locked(STRICT_CHANGES)


async def add_profile(deps: Deps, profile: DeviceProfile, correlation_id: str) -> str:
    """Store a new profile (empty profiles allowed); returns its id."""
    validate_profile(profile)
    _check_units(deps.policy, profile.device_resources)
    now = now_ms()
    p = replace(profile, id=profile.id or new_id(), created=now, modified=now, revision=1)
    async with deps.store.write() as tx:
        await tx.profiles.add(p)
        await tx.outbox.append(events.profile_added(p), correlation_id)
    return p.id


async def _load(tx: Tx, name: str) -> DeviceProfile:
    found = await tx.profiles.get(name, for_update=True)
    if found is None:
        raise not_found("device profile", name)
    return found


async def _store_change(
    tx: Tx, before: DeviceProfile, after: DeviceProfile, correlation_id: str
) -> None:
    """Judge, validate and write a changed profile with its update fan-out; no change, no
    event. The profile row is locked (``_load``), so core-data cannot add data it would
    not see."""
    if same_content(before, after):
        return
    change = profile_rules.diff(before, after)
    profile_rules.judge(before, after, change, await usage(tx, before, change))
    validate_profile(after)
    after = replace(after, modified=now_ms(), revision=before.revision + 1)
    await tx.profiles.update(after)
    owners = await tx.devices.services_using_profile(after.name)
    await tx.outbox.append(events.profile_updated(after, owners), correlation_id)


async def update_profile(deps: Deps, profile: DeviceProfile, correlation_id: str) -> None:
    """Replace a whole profile, matched by name (EdgeX PUT); keeps its id and created."""
    check_strict_changes(deps)
    validate_profile(profile)
    _check_units(deps.policy, profile.device_resources)
    async with deps.store.write() as tx:
        before = await _load(tx, profile.name)
        profile_rules.check_identity(before, profile.id)
        after = replace(
            profile,
            id=before.id,
            created=before.created,
            modified=before.modified,
            revision=before.revision,
        )
        await _store_change(tx, before, after, correlation_id)


async def patch_basic_info(deps: Deps, patch: ProfileBasicInfoPatch, correlation_id: str) -> None:
    """Change manufacturer, description, model or labels (allowed at any time)."""
    async with deps.store.write() as tx:
        found = await find_target(tx.profiles, patch.target, "device profile")
        await _store_change(tx, found, apply_basic_info_patch(found, patch), correlation_id)


async def patch_tags(
    deps: Deps,
    profile_name: str,
    resources: list[TagsUpdate],
    commands: list[TagsUpdate],
    correlation_id: str,
) -> None:
    """Deep-merge tags into named resources and commands; unknown names are ignored (EdgeX)."""
    by_resource = {u.name: u.tags for u in resources}
    by_command = {u.name: u.tags for u in commands}
    async with deps.store.write() as tx:
        before = await _load(tx, profile_name)
        after = replace(
            before,
            device_resources=tuple(
                replace(r, tags=merge_tags(r.tags, by_resource[r.name]))
                if r.name in by_resource
                else r
                for r in before.device_resources
            ),
            device_commands=tuple(
                replace(c, tags=merge_tags(c.tags, by_command[c.name]))
                if c.name in by_command
                else c
                for c in before.device_commands
            ),
        )
        await _store_change(tx, before, after, correlation_id)


async def delete_profile(deps: Deps, name: str, correlation_id: str) -> None:
    """Delete a profile nothing references: no device, provision watcher, event or reading
    (409); never under StrictDeviceProfileDeletes (423)."""
    if deps.policy.strict_profile_deletes:
        raise Locked(STRICT_DELETES)
    async with deps.store.write() as tx:
        found = await _load(tx, name)
        await ensure_profile_without_data(tx, name, "cannot be deleted")
        if (await tx.devices.count_by_profiles([name])).get(name):
            raise Conflict(
                f"device profile '{name}' cannot be deleted: devices are associated with it"
            )
        if await tx.watchers.count_by_profile(name):
            raise Conflict(
                f"device profile '{name}' cannot be deleted: provision watchers are associated"
                " with it"
            )
        await tx.profiles.delete(name)
        gone = replace(found, revision=found.revision + 1)
        await tx.outbox.append(events.profile_deleted(gone), correlation_id)


async def get_profile(deps: Deps, name: str) -> tuple[DeviceProfile, int]:
    """The profile and the number of devices using it."""
    async with deps.store.read() as tx:
        found = await tx.profiles.get(name)
        if found is None:
            raise not_found("device profile", name)
        counts = await tx.devices.count_by_profiles([name])
    return found, counts.get(name, 0)


async def list_profiles(
    deps: Deps,
    query: ListQuery,
    *,
    manufacturer: str | None = None,
    model: str | None = None,
    with_counts: bool = False,
) -> tuple[Page[DeviceProfile], dict[str, int]]:
    """A page of profiles and, when asked, the devices using each."""
    async with deps.store.read() as tx:
        page = await tx.profiles.page(query, manufacturer=manufacturer, model=model)
        counts = (
            await tx.devices.count_by_profiles([p.name for p in page.items]) if with_counts else {}
        )
    return page, counts


async def get_resource(deps: Deps, profile_name: str, resource_name: str) -> DeviceResource:
    """One resource of a profile."""
    async with deps.store.read() as tx:
        found = await tx.profiles.get(profile_name)
    if found is None:
        raise not_found("device profile", profile_name)
    r = found.resource(resource_name)
    if r is None:
        raise NotFound(f"device resource '{resource_name}' not found in profile '{profile_name}'")
    return r


async def add_resource(
    deps: Deps, profile_name: str, resource: DeviceResource, correlation_id: str
) -> None:
    """Add a resource (always allowed, also with StrictDeviceProfileChanges, as EdgeX)."""
    _check_units(deps.policy, (resource,))
    async with deps.store.write() as tx:
        before = await _load(tx, profile_name)
        if before.resource(resource.name) is not None:
            raise ContractInvalid(f"device resource {resource.name} is duplicated")
        after = replace(before, device_resources=(*before.device_resources, resource))
        await _store_change(tx, before, after, correlation_id)


async def patch_resource(
    deps: Deps, profile_name: str, patch: ResourcePatch, correlation_id: str
) -> None:
    """Change a resource's description or isHidden."""
    async with deps.store.write() as tx:
        before = await _load(tx, profile_name)
        if before.resource(patch.name) is None:
            raise NotFound(f"device resource '{patch.name}' not found in profile '{profile_name}'")
        after = replace(
            before,
            device_resources=tuple(
                replace(
                    r,
                    description=r.description if patch.description is None else patch.description,
                    is_hidden=r.is_hidden if patch.is_hidden is None else patch.is_hidden,
                )
                if r.name == patch.name
                else r
                for r in before.device_resources
            ),
        )
        await _store_change(tx, before, after, correlation_id)


async def delete_resource(
    deps: Deps, profile_name: str, resource_name: str, correlation_id: str
) -> None:
    """Remove a resource: 423 under strict changes; 409 while it has events or readings or
    a device's autoEvent or a command names it (the rules, not EdgeX's "any device")."""
    check_strict_changes(deps)
    async with deps.store.write() as tx:
        before = await _load(tx, profile_name)
        if before.resource(resource_name) is None:
            raise NotFound(
                f"device resource '{resource_name}' not found in profile '{profile_name}'"
            )
        after = replace(
            before,
            device_resources=tuple(r for r in before.device_resources if r.name != resource_name),
        )
        await _store_change(tx, before, after, correlation_id)


async def add_command(
    deps: Deps, profile_name: str, command: DeviceCommand, correlation_id: str
) -> None:
    """Add a command (its resource operations must name resources of the profile)."""
    async with deps.store.write() as tx:
        before = await _load(tx, profile_name)
        if before.command(command.name) is not None:
            raise ContractInvalid(f"device command {command.name} is duplicated")
        after = replace(before, device_commands=(*before.device_commands, command))
        await _store_change(tx, before, after, correlation_id)


async def patch_command(
    deps: Deps, profile_name: str, patch: CommandPatch, correlation_id: str
) -> None:
    """Change a command's isHidden."""
    async with deps.store.write() as tx:
        before = await _load(tx, profile_name)
        if before.command(patch.name) is None:
            raise NotFound(f"device command '{patch.name}' not found in profile '{profile_name}'")
        after = replace(
            before,
            device_commands=tuple(
                replace(c, is_hidden=c.is_hidden if patch.is_hidden is None else patch.is_hidden)
                if c.name == patch.name
                else c
                for c in before.device_commands
            ),
        )
        await _store_change(tx, before, after, correlation_id)


async def delete_command(
    deps: Deps, profile_name: str, command_name: str, correlation_id: str
) -> None:
    """Remove a command: 423 under strict changes; 409 while it has events or a device's
    autoEvent names it."""
    check_strict_changes(deps)
    async with deps.store.write() as tx:
        before = await _load(tx, profile_name)
        if before.command(command_name) is None:
            raise NotFound(f"device command '{command_name}' not found in profile '{profile_name}'")
        after = replace(
            before,
            device_commands=tuple(c for c in before.device_commands if c.name != command_name),
        )
        await _store_change(tx, before, after, correlation_id)
