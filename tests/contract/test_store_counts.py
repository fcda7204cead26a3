"""Kept list counts and keyset pages (migration 0009), on every adapter.

The counts the triggers keep must equal what a scan of the devices finds after any mix of
adds, batch adds (with a refused item), updates, moves, label and profile changes and
deletes, also under concurrent writers; and a list read through the cursor cache must return
the same items, in the same order, as reading everything in (created, seq) order and slicing.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from dataclasses import replace

import pytest

from edgemeta.domain.errors import DuplicateName
from edgemeta.domain.records import Device
from edgemeta.ports import ListQuery, Store
from edgemeta.store import repos
from tests.contract.test_store import dev, prof, svc

SERVICES = ("s0", "s1", "s2")
PROFILES = ("p0", "p1")
LABELS = ("red", "green", "blue")
STRIDE = 50


async def world(store: Store) -> None:
    async with store.write() as tx:
        for s in SERVICES:
            await tx.services.add(svc(s))
        for p in PROFILES:
            await tx.profiles.add(prof(p))


async def everything(store: Store) -> list[Device]:
    """Every device, read page by page with plain offsets: the reference for the checks."""
    out: list[Device] = []
    async with store.read() as tx:
        while True:
            page = await tx.devices.page(ListQuery(offset=len(out), limit=1000))
            out.extend(page.items)
            if not page.items:
                return out


async def check_counts(store: Store) -> None:
    devices = await everything(store)
    by_service = Counter(d.service_name for d in devices)
    by_profile = Counter(d.profile_name for d in devices if d.profile_name)
    by_label = Counter(label for d in devices for label in set(d.labels))
    async with store.read() as tx:
        assert await tx.devices.count() == len(devices)
        assert (await tx.devices.documents(ListQuery(limit=0))).total == len(devices)
        for s in SERVICES:
            assert await tx.devices.count_by_service(s) == by_service[s], s
            page = await tx.devices.documents(ListQuery(limit=0), service=s)
            assert page.total == by_service[s], s
        for p in PROFILES:
            page = await tx.devices.documents(ListQuery(limit=0), profile=p)
            assert page.total == by_profile[p], p
        expected = {p: by_profile[p] for p in PROFILES if by_profile[p]}
        assert await tx.devices.count_by_profiles(list(PROFILES)) == expected
        for label in LABELS:
            page = await tx.devices.documents(ListQuery(limit=0, labels=(label,)))
            assert page.total == by_label[label], label
        both = await tx.devices.documents(ListQuery(limit=0, labels=("red", "blue")))
        assert both.total == sum(1 for d in devices if {"red", "blue"} <= set(d.labels))


def labels(rng: random.Random) -> tuple[str, ...]:
    # Sometimes a repeated label: a device counts once per label however often it names it.
    chosen = rng.sample(LABELS, rng.randint(0, 2))
    return tuple(chosen + chosen[:1] if chosen and rng.random() < 0.2 else chosen)


async def test_counts_stay_exact_through_every_kind_of_write(store: Store) -> None:
    await world(store)
    rng = random.Random(10)
    live: dict[str, Device] = {}
    for i in range(40):
        d = dev(
            f"d{i}",
            service=rng.choice(SERVICES),
            profile=rng.choice((*PROFILES, "")),
            labels=labels(rng),
        )
        async with store.write() as tx:
            await tx.devices.add(d)
        live[d.name] = d
    await check_counts(store)

    for step in range(60):
        name = rng.choice(sorted(live))
        old = live[name]
        kind = step % 4
        if kind == 0:  # a move
            new = replace(old, service_name=rng.choice(SERVICES), revision=old.revision + 1)
        elif kind == 1:  # labels change
            new = replace(old, labels=labels(rng), revision=old.revision + 1)
        elif kind == 2:  # profile change (or none)
            new = replace(old, profile_name=rng.choice((*PROFILES, "")), revision=old.revision + 1)
        else:  # an update that changes no membership
            new = replace(old, description=f"v{step}", revision=old.revision + 1)
        async with store.write() as tx:
            await tx.devices.update(new)
        live[name] = new
    await check_counts(store)

    for name in sorted(live)[::3]:
        async with store.write() as tx:
            await tx.devices.delete(name)
        del live[name]
    await check_counts(store)


async def test_a_batch_counts_its_stored_items_only(store: Store) -> None:
    await world(store)
    async with store.write() as tx:
        await tx.devices.add(dev("taken", service="s0", labels=("red",)))
    async with store.batch():
        for i in range(5):
            async with store.write() as tx:
                await tx.devices.add(dev(f"b{i}", service="s1", profile="p0", labels=("red",)))
        with pytest.raises(DuplicateName):  # its savepoint is undone, counts included
            async with store.write() as tx:
                await tx.devices.add(replace(dev("taken", service="s2"), id="d-other"))
    await check_counts(store)
    async with store.read() as tx:
        assert await tx.devices.count_by_service("s1") == 5
        assert await tx.devices.count_by_service("s2") == 0


async def test_counts_stay_exact_under_concurrent_writers(store: Store) -> None:
    await world(store)

    async def writer(w: int) -> None:
        for i in range(8):
            async with store.write() as tx:
                await tx.devices.add(
                    dev(f"w{w}-{i}", service=SERVICES[(w + i) % 3], labels=(LABELS[w % 3],))
                )
            if i % 4 == 3:
                async with store.write() as tx:
                    await tx.devices.delete(f"w{w}-{i - 1}")

    await asyncio.gather(*(writer(w) for w in range(8)))
    await check_counts(store)
    async with store.read() as tx:
        assert await tx.devices.count() == 8 * 6


async def test_pages_are_the_same_items_in_the_same_order(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A short stride, so that a few hundred devices exercise every path of the cursor cache.
    monkeypatch.setattr(repos, "STRIDE", STRIDE)
    await world(store)
    # Ties on created (several devices in the same millisecond) are broken by insertion.
    n = 2 * STRIDE + 30
    async with store.batch():
        for i in range(n):
            async with store.write() as tx:
                await tx.devices.add(dev(f"o{i:05d}", service="s0", created=1000 + i // 7))
    async with store.write() as tx:
        await tx.devices.add(dev("elsewhere", service="s1", created=1))
    order = [f"o{i:05d}" for i in range(n)]

    async def names(offset: int, limit: int) -> list[str]:
        async with store.read() as tx:
            page = await tx.devices.page(ListQuery(offset=offset, limit=limit), service="s0")
        assert page.total == len(order)
        return [d.name for d in page.items]

    # A deep page first (it walks and notes cursors), then pages before and after it, then
    # a device service's walk from the start: each is the slice of the reference order.
    rng = random.Random(4)
    offsets = [n - 50, 5, STRIDE + 17, 2 * STRIDE - 3, 0, *rng.sample(range(n), 12)]
    for offset in offsets:
        assert await names(offset, 20) == order[offset : offset + 20], offset
    walked: list[str] = []
    while len(walked) < n:
        walked.extend(await names(len(walked), 25))
    assert walked == order

    # A change in the service invalidates its cursors: the pages shift as OFFSET would.
    async with store.write() as tx:
        await tx.devices.delete("o00003")
    order.remove("o00003")
    for offset in (STRIDE + 17, n - 15, 100):
        assert await names(offset, 100) == order[offset : offset + 100], offset
    async with store.write() as tx:
        moved = await tx.devices.get("o00010")
        assert moved is not None
        await tx.devices.update(replace(moved, service_name="s1", revision=moved.revision + 1))
    order.remove("o00010")
    for offset in (STRIDE + 17, 2 * STRIDE):
        assert await names(offset, 100) == order[offset : offset + 100], offset
