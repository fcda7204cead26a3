"""Device operations, in EdgeX's order of checks (``application/device.go``).

Add: the service must exist (400), the profile if named (400) and the autoEvents must fit it
(400); a taken name is 409 naming its owner, or with ``force`` a full replacement; capacity;
then the owning service validates the device over the bus (unless ``bypassValidation`` or
``force``); then one transaction writes the device and its events. The unique constraint on
the name, not the earlier look-up, is what guarantees one device per name.

Patch: same checks on the result; the (new) owner validates; the write re-reads the row under
lock and re-applies the patch if another writer got there first, so no update is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import replace

from edgemeta.domain import events
from edgemeta.domain.devices import drop_invalid_auto_events, validate_against_profile
from edgemeta.domain.errors import Conflict, ContractInvalid, DuplicateName, EdgeMetaError
from edgemeta.domain.moves import MoveReason
from edgemeta.domain.patches import DevicePatch, apply_device_patch, same_content
from edgemeta.domain.records import Device
from edgemeta.ports import ListQuery, Page, Tx
from edgemeta.usecases import moves
from edgemeta.usecases.associations import ensure_device_without_data, ensure_profile_without_data
from edgemeta.usecases.common import find_target, new_id, not_found, now_ms
from edgemeta.usecases.deps import Deps

# Operations at DEBUG (EDGEMETA_LOG_LEVEL=DEBUG); lazy %-arguments: nothing is formatted
# unless DEBUG is on.
log = logging.getLogger("edgemeta.devices")


async def _check_references(tx: Tx, device: Device) -> None:
    if await tx.services.get(device.service_name) is None:
        raise ContractInvalid(f"device service '{device.service_name}' does not exist")
    if device.profile_name:
        profile = await tx.profiles.get(device.profile_name)
        if profile is None:
            raise ContractInvalid(
                f"device profile '{device.profile_name}' not found during validating device "
                f"'{device.name}'"
            )
        validate_against_profile(device, profile)


async def _check_capacity(deps: Deps, tx: Tx) -> None:
    limit = deps.policy.max_devices
    if limit and await tx.devices.count() >= limit:
        raise ContractInvalid(f"device count would exceed MaxDevices ({limit})")


async def add_device(
    deps: Deps,
    device: Device,
    correlation_id: str,
    *,
    force: bool = False,
    bypass_validation: bool = False,
) -> str:
    """Add a device (or, with ``force`` and a taken name, replace it); returns its id."""
    async with deps.store.read() as tx:
        await _check_references(tx, device)
        existing = await tx.devices.get(device.name)
    if existing is not None:
        other_owner = existing.service_name != device.service_name
        if other_owner and (force or deps.move_settings.implicit):
            # Another service claims the device: that is a move (seed option 1), made safe by
            # the move engine. EdgeX's force skips validation; an implicit add does not.
            return await _move_by_add(
                deps,
                existing,
                device,
                correlation_id,
                force=force,
                bypass_validation=bypass_validation,
            )
        if not force:
            raise DuplicateName(
                f"device name {device.name} already exists "
                f"(owned by device service '{existing.service_name}')"
            )
        return await _replace_device(deps, existing, device, correlation_id)
    stored = await _insert_new(
        deps, device, correlation_id, validate=not (bypass_validation or force)
    )
    return stored.id


async def create_device(
    deps: Deps, device: Device, correlation_id: str, *, bypass_validation: bool = False
) -> Device:
    """A new device (DuplicateName if the name is taken), checked, validated by its service
    unless bypassed, stored with its events; returns it as stored."""
    async with deps.store.read() as tx:
        await _check_references(tx, device)
    return await _insert_new(deps, device, correlation_id, validate=not bypass_validation)


async def _insert_new(deps: Deps, device: Device, cid: str, *, validate: bool) -> Device:
    if validate:
        await deps.validator.validate(device.service_name, device, cid)
    now = now_ms()
    d = replace(device, id=device.id or new_id(), created=now, modified=now, revision=1)
    async with deps.store.write() as tx:
        await _check_capacity(deps, tx)
        await tx.devices.add(d)
        await tx.moves.save_initial(d)  # the initial configuration a reset returns to
        await tx.outbox.append(events.device_added(d), cid)
    log.debug("device '%s' added to service '%s'", d.name, d.service_name)
    return d


def adds_may_wait(
    deps: Deps, service_names: Iterable[str], *, force: bool, bypass_validation: bool
) -> bool:
    """Whether an add of these devices may wait on something but the database: a device
    service's validation answer, or the move engine (which waits for the old owner's
    release) when an add can become a move: ``force``, or implicit moves."""
    if force or deps.move_settings.implicit:
        return True
    return not bypass_validation and any(deps.validator.asks(n) for n in set(service_names))


def adds_scope(
    deps: Deps, service_names: Iterable[str], *, force: bool, bypass_validation: bool
) -> AbstractAsyncContextManager[None]:
    """The transaction scope of a batch of adds: one database transaction (``Store.batch``)
    when nothing can wait but the database, none otherwise.

    An add may wait on a device service's validation answer, or on the move engine (which
    waits for the old owner's release) when an add can become a move: ``force``, or implicit
    moves. A transaction must not be held open across such a wait; when there is none, the
    whole batch is one commit, each device in a savepoint so a refused one is undone alone.
    """
    if adds_may_wait(deps, service_names, force=force, bypass_validation=bypass_validation):
        return contextlib.nullcontext()
    return deps.store.batch()


# Devices checked and written together by add_new_devices: bounded so that the statements
# stay moderate and the event loop gets a turn between sets.
BULK_SET = 200


async def add_new_devices(
    deps: Deps,
    devices: Sequence[Device | EdgeMetaError],
    correlation_id: str,
    *,
    bypass_validation: bool = False,
) -> list[str | EdgeMetaError]:
    """Add new devices in bulk (no ``force``, no moves): each one's id, or its error.

    The same checks, messages and results as :func:`add_device` on each device in turn,
    with fewer statements: per set of :data:`BULK_SET` devices, each distinct service and
    profile is read once, the names already taken are found with one query, and the devices,
    their initial configurations and their events are written with one prepared statement
    each (each document serialized once, the event's details sharing its text). An error
    given in ``devices`` (the item could not be read) is passed through.

    Only for use inside ``Store.batch()`` when :func:`adds_may_wait` is False: nothing here
    waits but the database. Uniqueness is still the database's: if a write breaks a
    constraint (a name taken concurrently, a duplicate id, a parent that does not exist),
    the set's writes are undone and its devices are added one by one by :func:`add_device`,
    whose results are then exactly the per-device ones.
    """
    out: list[str | EdgeMetaError] = []
    for start in range(0, len(devices), BULK_SET):
        if start:
            await asyncio.sleep(0)  # nothing here waits: give other tasks a turn
        part = devices[start : start + BULK_SET]
        try:
            out.extend(await _add_set(deps, part, correlation_id, bypass_validation))
        except Conflict:
            for item in part:
                if isinstance(item, EdgeMetaError):
                    out.append(item)
                    continue
                try:
                    out.append(
                        await add_device(
                            deps, item, correlation_id, bypass_validation=bypass_validation
                        )
                    )
                except EdgeMetaError as exc:
                    out.append(exc)
    return out


async def _add_set(
    deps: Deps, devices: Sequence[Device | EdgeMetaError], cid: str, bypass_validation: bool
) -> list[str | EdgeMetaError]:
    """One set of :func:`add_new_devices`, in one savepoint; Conflict undoes all of it."""
    out: list[str | EdgeMetaError] = []
    new: list[Device] = []
    async with deps.store.write() as tx:
        wanted = [d for d in devices if isinstance(d, Device)]
        services = {n: await tx.services.get(n) for n in {d.service_name for d in wanted}}
        profiles = {
            n: await tx.profiles.get(n) for n in {d.profile_name for d in wanted if d.profile_name}
        }
        owners = await tx.devices.owners([d.name for d in wanted])
        limit = deps.policy.max_devices
        count = await tx.devices.count() if limit else 0
        for device in devices:
            if isinstance(device, EdgeMetaError):
                out.append(device)
                continue
            try:
                # add_device's checks, in its order, against what was read above.
                if services[device.service_name] is None:
                    raise ContractInvalid(f"device service '{device.service_name}' does not exist")
                if device.profile_name:
                    profile = profiles[device.profile_name]
                    if profile is None:
                        raise ContractInvalid(
                            f"device profile '{device.profile_name}' not found during "
                            f"validating device '{device.name}'"
                        )
                    validate_against_profile(device, profile)
                owner = owners.get(device.name)
                if owner is not None:
                    raise DuplicateName(
                        f"device name {device.name} already exists "
                        f"(owned by device service '{owner}')"
                    )
                if not bypass_validation:
                    await deps.validator.validate(device.service_name, device, cid)
                if limit and count >= limit:
                    raise ContractInvalid(f"device count would exceed MaxDevices ({limit})")
            except EdgeMetaError as exc:
                out.append(exc)
                continue
            now = now_ms()
            d = replace(device, id=device.id or new_id(), created=now, modified=now, revision=1)
            new.append(d)
            owners[d.name] = d.service_name  # a later item of the same name is a duplicate
            count += 1
            out.append(d.id)
        await tx.devices.add_many(new)
        await tx.moves.save_initial_many(new)  # the initial configurations a reset returns to
        await tx.outbox.append([c for d in new for c in events.device_added(d)], cid)
    if log.isEnabledFor(logging.DEBUG):  # as a single add logs it, after the commit
        for d in new:
            log.debug("device '%s' added to service '%s'", d.name, d.service_name)
    return out


async def _move_by_add(
    deps: Deps, existing: Device, device: Device, cid: str, *, force: bool, bypass_validation: bool
) -> str:
    """An add of a device another service owns, made a move by the engine."""
    if device.id and device.id != existing.id:
        raise ContractInvalid(
            f"device '{device.name}' exists with id {existing.id}, not {device.id}"
        )
    await moves.move_device(
        deps,
        moves.MoveRequest(
            device_name=device.name,
            to_service=device.service_name,
            reason=MoveReason.FORCED_ADD if force else MoveReason.IMPLICIT_ADD,
            expected_revision=existing.revision,
            requested_by=f"device service '{device.service_name}'",
            target=device,
            bypass_validation=bypass_validation or force,
        ),
        cid,
    )
    return existing.id


async def _replace_device(deps: Deps, existing: Device, device: Device, cid: str) -> str:
    """``POST /device?force=true`` on a taken name: a full update keeping id and created."""
    if device.id and device.id != existing.id:
        raise ContractInvalid(
            f"device '{device.name}' exists with id {existing.id}, not {device.id}"
        )
    async with deps.store.write() as tx:
        before = await tx.devices.get(device.name, for_update=True)
        if before is None:
            raise Conflict(f"device '{device.name}' was deleted concurrently")
        await moves.ensure_not_moving(tx, device.name)
        await _check_references(tx, device)
        await check_profile_change(tx, before, device)
        after = replace(
            device,
            id=before.id,
            created=before.created,
            modified=before.modified,
            revision=before.revision,
        )
        if same_content(before, after):
            return before.id
        after = replace(after, modified=now_ms(), revision=before.revision + 1)
        await tx.devices.update(after)
        await tx.outbox.append(events.device_updated(before, after), cid)
    return before.id


async def _patched(tx: Tx, before: Device, patch: DevicePatch) -> Device:
    """The patched device, checked against its (possibly new) service and profile."""
    after = apply_device_patch(before, patch)
    if patch.service_name is not None and await tx.services.get(after.service_name) is None:
        raise ContractInvalid(f"device service '{after.service_name}' does not exist")
    if after.profile_name:
        profile = await tx.profiles.get(after.profile_name)
        if profile is None:
            raise ContractInvalid(
                f"device profile '{after.profile_name}' not found during validating device "
                f"'{after.name}'"
            )
        if after.profile_name != before.profile_name:
            # EdgeX 4.0.2: a new profile silently drops the autoEvents it cannot serve.
            after = drop_invalid_auto_events(after, profile)
        validate_against_profile(after, profile)
    await check_profile_change(tx, before, after)
    return after


async def check_profile_change(tx: Tx, before: Device, after: Device) -> None:
    """A device's profile may change only while core-data associates no event or reading
    with its current profile (the profile change rules)."""
    if before.profile_name and after.profile_name != before.profile_name:
        await ensure_profile_without_data(
            tx,
            before.profile_name,
            f"cannot be replaced as the profile of device '{before.name}'",
        )


async def patch_device(
    deps: Deps, patch: DevicePatch, correlation_id: str, *, bypass_validation: bool = False
) -> None:
    """Apply a partial update. A new ``serviceName`` makes it a move: the move engine tells
    the old owner, waits for its release, then tells the new one (EdgeX clients see the
    ``update`` to the old and to the new owner they expect)."""
    if patch.service_name is not None:
        async with deps.store.read() as tx:
            if await tx.services.get(patch.service_name) is None:
                raise ContractInvalid(f"device service '{patch.service_name}' does not exist")
    async with deps.store.read() as tx:
        before = await find_target(tx.devices, patch.target, "device", for_update=False)
        after = await _patched(tx, before, patch)
    if same_content(before, after):
        return
    if after.service_name != before.service_name:
        await moves.move_device(
            deps,
            moves.MoveRequest(
                device_name=before.name,
                to_service=after.service_name,
                reason=MoveReason.PATCH,
                expected_revision=before.revision,
                target=after,
                bypass_validation=bypass_validation,
            ),
            correlation_id,
        )
        return
    if not bypass_validation:
        await deps.validator.validate(after.service_name, after, correlation_id)
    async with deps.store.write() as tx:
        current = await find_target(tx.devices, patch.target, "device", for_update=True)
        await moves.ensure_not_moving(tx, current.name)
        if current.revision != before.revision:
            # Someone changed the device since we read it: apply the patch to what is stored.
            before = current
            after = await _patched(tx, before, patch)
            if same_content(before, after):
                return
            if after.service_name != before.service_name:
                raise Conflict(f"device '{before.name}' changed owner meanwhile; try again")
        after = replace(after, modified=now_ms(), revision=before.revision + 1)
        await tx.devices.update(after)
        await tx.outbox.append(events.device_updated(before, after), correlation_id)
    log.debug("device '%s' updated", after.name)


async def get_device_by_id(deps: Deps, id_: str) -> Device:
    """The device with this id."""
    async with deps.store.read() as tx:
        found = await tx.devices.get_by_id(id_)
    if found is None:
        raise not_found("device with id", id_)
    return found


async def device_exists(deps: Deps, name: str) -> bool:
    """Whether a device called ``name`` exists."""
    async with deps.store.read() as tx:
        return await tx.devices.exists(name)


async def delete_device(deps: Deps, name: str, correlation_id: str) -> None:
    """Delete a device that has no children and no events or readings (409 otherwise)."""
    async with deps.store.write() as tx:
        found = await tx.devices.get(name, for_update=True)
        if found is None:
            raise not_found("device", name)
        if await tx.devices.has_children(name):
            raise Conflict(f"device '{name}' cannot be deleted: it has child devices")
        await ensure_device_without_data(tx, name, "cannot be deleted")
        await moves.ensure_not_moving(tx, name)
        await tx.devices.delete(name)
        await tx.moves.drop_initial(name)
        gone = replace(found, revision=found.revision + 1)
        await tx.outbox.append(events.device_deleted(gone), correlation_id)
    log.debug("device '%s' deleted from service '%s'", name, gone.service_name)


async def get_device_document(deps: Deps, name: str) -> str:
    """The device called ``name``, as its stored document (JSON text)."""
    async with deps.store.read() as tx:
        found = await tx.devices.get_document(name)
    if found is None:
        raise not_found("device", name)
    return found


async def list_device_documents(
    deps: Deps, query: ListQuery, *, service: str | None = None, profile: str | None = None
) -> Page[str]:
    """A page of devices, all or of one service or profile, as stored documents."""
    async with deps.store.read() as tx:
        return await tx.devices.documents(query, service=service, profile=profile)


async def list_descendant_documents(
    deps: Deps, ancestor: str, max_levels: int, query: ListQuery
) -> Page[str]:
    """A page of the devices below ``ancestor`` (``max_levels`` <= 0: any depth), as stored
    documents."""
    async with deps.store.read() as tx:
        return await tx.devices.descendant_documents(ancestor, max_levels, query)
