"""Provision watcher operations (EdgeX ``application/provisionwatcher.go``).

As in EdgeX, the watcher's device service need not exist; its profile, when named, must
(404 on add, unlike a device's 400).
"""

from __future__ import annotations

from dataclasses import replace

from edgemeta.domain import events
from edgemeta.domain.errors import NotFound
from edgemeta.domain.patches import ProvisionWatcherPatch, apply_watcher_patch, same_content
from edgemeta.domain.records import ProvisionWatcher
from edgemeta.ports import ListQuery, Page, Tx
from edgemeta.usecases.common import find_target, new_id, not_found, now_ms
from edgemeta.usecases.deps import Deps


async def _check_profile(tx: Tx, w: ProvisionWatcher) -> None:
    name = w.discovered_device.profile_name
    if name and await tx.profiles.get(name) is None:
        raise NotFound(f"device profile '{name}' does not exist")


async def add_watcher(deps: Deps, watcher: ProvisionWatcher, correlation_id: str) -> str:
    """Store a new provision watcher; returns its id."""
    now = now_ms()
    w = replace(watcher, id=watcher.id or new_id(), created=now, modified=now, revision=1)
    async with deps.store.write() as tx:
        await _check_profile(tx, w)
        await tx.watchers.add(w)
        await tx.outbox.append(events.watcher_added(w), correlation_id)
    return w.id


async def patch_watcher(deps: Deps, patch: ProvisionWatcherPatch, correlation_id: str) -> None:
    """Apply a partial update; a new ``serviceName`` tells the old and the new owner."""
    async with deps.store.write() as tx:
        before = await find_target(tx.watchers, patch.target, "provision watcher")
        after = apply_watcher_patch(before, patch)
        if same_content(before, after):
            return
        await _check_profile(tx, after)
        after = replace(after, modified=now_ms(), revision=before.revision + 1)
        await tx.watchers.update(after)
        await tx.outbox.append(events.watcher_updated(before, after), correlation_id)


async def delete_watcher(deps: Deps, name: str, correlation_id: str) -> None:
    """Delete a watcher."""
    async with deps.store.write() as tx:
        found = await tx.watchers.get(name, for_update=True)
        if found is None:
            raise not_found("provision watcher", name)
        await tx.watchers.delete(name)
        gone = replace(found, revision=found.revision + 1)
        await tx.outbox.append(events.watcher_deleted(gone), correlation_id)


async def get_watcher_document(deps: Deps, name: str) -> str:
    """The watcher called ``name``, as its stored document (JSON text)."""
    async with deps.store.read() as tx:
        found = await tx.watchers.get_document(name)
    if found is None:
        raise not_found("provision watcher", name)
    return found


async def list_watcher_documents(
    deps: Deps, query: ListQuery, *, service: str | None = None, profile: str | None = None
) -> Page[str]:
    """A page of watchers, all or of one service or profile, as stored documents."""
    async with deps.store.read() as tx:
        return await tx.watchers.documents(query, service=service, profile=profile)
