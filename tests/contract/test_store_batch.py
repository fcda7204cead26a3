"""``Store.batch()``: one transaction for a task's writes, a savepoint for each ``write()``."""

from __future__ import annotations

import pytest

from edgemeta.domain.errors import DuplicateName
from edgemeta.domain.events import device_added
from edgemeta.ports import ListQuery, Store
from tests.contract.test_store import dev, svc


async def _names(store: Store) -> list[str]:
    async with store.read() as tx:
        page = await tx.devices.page(ListQuery(offset=0, limit=100))
    return sorted(d.name for d in page.items)


async def test_a_failed_write_is_undone_alone_and_the_rest_commits_once(store: Store) -> None:
    async with store.write() as tx:
        await tx.services.add(svc("ds"))
    commits: list[int] = []
    store.on_commit(lambda: commits.append(1))
    async with store.batch():
        async with store.write() as tx:
            await tx.devices.add(dev("a"))
            await tx.outbox.append(device_added(dev("a")), "cid")
        with pytest.raises(DuplicateName):
            async with store.write() as tx:
                await tx.devices.add(dev("b"))  # written, then undone with its savepoint
                await tx.devices.add(dev("a"))  # the duplicate that fails the write
        async with store.read() as tx:  # reads inside see the batch's own writes
            assert await tx.devices.get("a") is not None
            assert await tx.devices.get("b") is None
        async with store.write() as tx:
            await tx.devices.add(dev("c"))
        assert commits == []  # nothing committed yet
    assert commits == [1]
    assert await _names(store) == ["a", "c"]
    async with store.read() as tx:
        assert [e.record_key for e in await tx.feed.pending(10)] == ["a"]


async def test_an_exception_out_of_the_batch_undoes_everything(store: Store) -> None:
    async with store.write() as tx:
        await tx.services.add(svc("ds"))
    with pytest.raises(RuntimeError):
        async with store.batch():
            async with store.write() as tx:
                await tx.devices.add(dev("a"))
            raise RuntimeError("boom")
    assert await _names(store) == []
    async with store.write() as tx:  # the store is usable afterwards
        await tx.devices.add(dev("b"))
    assert await _names(store) == ["b"]


async def test_only_a_commit_with_events_calls_the_commit_listeners(store: Store) -> None:
    """The listeners wake the relay: a commit that queued no event (a command hold, a
    reading) has nothing for it, and one that did always calls them."""
    async with store.write() as tx:
        await tx.services.add(svc("ds"))
    commits: list[int] = []
    store.on_commit(lambda: commits.append(1))
    async with store.write() as tx:
        await tx.devices.add(dev("quiet"))  # no event
    assert commits == []
    async with store.write() as tx:
        await tx.devices.add(dev("loud"))
        await tx.outbox.append(device_added(dev("loud")), "cid")
    assert commits == [1]
    async with store.write() as tx:
        await tx.devices.add(dev("quiet-again"))
    assert commits == [1]  # the flag does not outlive its commit
