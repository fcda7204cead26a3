"""Device service operations."""

from __future__ import annotations

import logging
from dataclasses import replace

from edgemeta.domain import events
from edgemeta.domain.errors import Conflict
from edgemeta.domain.events import Action
from edgemeta.domain.patches import DeviceServicePatch, apply_service_patch, same_content
from edgemeta.domain.records import DeviceService
from edgemeta.ports import ListQuery, Page
from edgemeta.usecases.common import find_target, new_id, not_found, now_ms
from edgemeta.usecases.deps import Deps

log = logging.getLogger("edgemeta.services")  # operations at DEBUG


async def add_service(deps: Deps, service: DeviceService, correlation_id: str) -> str:
    """Store a new device service; returns its id. DuplicateName if the name exists."""
    now = now_ms()
    s = replace(service, id=service.id or new_id(), created=now, modified=now, revision=1)
    async with deps.store.write() as tx:
        await tx.services.add(s)
        await tx.outbox.append(events.service_changed(Action.ADD, s), correlation_id)
    log.debug("device service '%s' added", s.name)
    return s.id


async def patch_service(deps: Deps, patch: DeviceServicePatch, correlation_id: str) -> None:
    """Apply a partial update; no change, no write and no event."""
    async with deps.store.write() as tx:
        before = await find_target(tx.services, patch.target, "device service")
        after = apply_service_patch(before, patch)
        if same_content(before, after):
            return
        after = replace(after, modified=now_ms(), revision=before.revision + 1)
        await tx.services.update(after)
        await tx.outbox.append(events.service_changed(Action.UPDATE, after), correlation_id)
    log.debug("device service '%s' updated", after.name)


async def delete_service(deps: Deps, name: str, correlation_id: str) -> None:
    """Delete a service no device or provision watcher references (409 otherwise)."""
    async with deps.store.write() as tx:
        found = await tx.services.get(name, for_update=True)
        if found is None:
            raise not_found("device service", name)
        # The checks give the message; the devices' foreign key is what holds under races.
        if await tx.devices.count_by_service(name):
            raise Conflict(
                f"device service '{name}' cannot be deleted: devices are associated with it"
            )
        if await tx.watchers.count_by_service(name):
            raise Conflict(
                f"device service '{name}' cannot be deleted: provision watchers are associated"
                " with it"
            )
        await tx.services.delete(name)
        gone = replace(found, revision=found.revision + 1)
        await tx.outbox.append(events.service_changed(Action.DELETE, gone), correlation_id)
    log.debug("device service '%s' deleted", name)


async def get_service_document(deps: Deps, name: str) -> str:
    """The service called ``name``, as its stored document (JSON text)."""
    async with deps.store.read() as tx:
        found = await tx.services.get_document(name)
    if found is None:
        raise not_found("device service", name)
    return found


async def list_service_documents(deps: Deps, query: ListQuery) -> Page[str]:
    """A page of all services, as stored documents (served as they are)."""
    async with deps.store.read() as tx:
        return await tx.services.documents(query)
