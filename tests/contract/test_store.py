"""The store contract: the same tests on every adapter (SQLite and PostgreSQL).

Each test gets a fresh database (its own file or its own PostgreSQL schema) from the ``store``
fixture in ``tests/conftest.py``.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest

from edgemeta.domain.errors import Conflict, DuplicateName
from edgemeta.domain.events import device_added, device_updated
from edgemeta.domain.records import (
    AdminState,
    Device,
    DeviceProfile,
    DeviceService,
    DiscoveredDevice,
    OperatingState,
    ProvisionWatcher,
)
from edgemeta.ports import ListQuery, Store


def svc(name: str, **kw: object) -> DeviceService:
    return DeviceService(
        id=f"00000000-0000-4000-8000-{abs(hash(name)) % 10**12:012d}",
        name=name,
        base_address="http://x:1",
        admin_state=AdminState.UNLOCKED,
        **kw,  # type: ignore[arg-type]
    )


def prof(name: str, **kw: object) -> DeviceProfile:
    return DeviceProfile(id=f"p-{name}", name=name, **kw)  # type: ignore[arg-type]


def dev(
    name: str, service: str = "ds", profile: str = "", created: int = 0, **kw: object
) -> Device:
    return Device(
        id=f"d-{name}",
        name=name,
        service_name=service,
        profile_name=profile,
        admin_state=AdminState.UNLOCKED,
        operating_state=OperatingState.UP,
        protocols={"other": {"Address": name}},
        created=created,
        **kw,  # type: ignore[arg-type]
    )


def pw(name: str, service: str = "ds", profile: str = "") -> ProvisionWatcher:
    return ProvisionWatcher(
        id=f"w-{name}",
        name=name,
        service_name=service,
        identifiers={"Address": ".*"},
        admin_state=AdminState.UNLOCKED,
        discovered_device=DiscoveredDevice(admin_state=AdminState.UNLOCKED, profile_name=profile),
    )


async def seed(store: Store) -> None:
    async with store.write() as tx:
        await tx.services.add(svc("ds"))
        await tx.services.add(svc("ds2"))
        await tx.profiles.add(prof("p"))


async def test_round_trip_keeps_every_field(store: Store) -> None:
    await seed(store)
    d = dev(
        "full",
        profile="p",
        parent="root",
        description="desc",
        labels=("a", "b"),
        location={"lat": 1.5, "tags": ["x"]},
        tags={"k": {"nested": True}},
        properties={"p": 1},
        created=5,
        modified=6,
        revision=3,
    )
    async with store.write() as tx:
        await tx.devices.add(d)
    async with store.read() as tx:
        assert await tx.devices.get("full") == d
        assert await tx.devices.get_by_id("d-full") == d
        assert await tx.devices.exists("full")
        assert not await tx.devices.exists("nope")


async def test_unique_name_and_id_are_enforced_by_the_database(store: Store) -> None:
    await seed(store)
    async with store.write() as tx:
        await tx.devices.add(dev("a"))
    with pytest.raises(DuplicateName, match="device name a already exists"):
        async with store.write() as tx:
            await tx.devices.add(replace(dev("a"), id="other-id"))
    with pytest.raises(DuplicateName, match="device id d-a already exists"):
        async with store.write() as tx:
            await tx.devices.add(replace(dev("b"), id="d-a"))
    async with store.read() as tx:
        assert (await tx.devices.page(ListQuery())).total == 1


async def test_a_device_needs_its_service_and_profile(store: Store) -> None:
    await seed(store)
    with pytest.raises(Conflict):
        async with store.write() as tx:
            await tx.devices.add(dev("x", service="missing"))
    with pytest.raises(Conflict):
        async with store.write() as tx:
            await tx.devices.add(dev("y", profile="missing"))
    async with store.read() as tx:
        assert await tx.devices.count() == 0


async def test_referenced_service_and_profile_cannot_be_deleted(store: Store) -> None:
    await seed(store)
    async with store.write() as tx:
        await tx.devices.add(dev("a", profile="p"))
    with pytest.raises(Conflict):
        async with store.write() as tx:
            await tx.services.delete("ds")
    with pytest.raises(Conflict):
        async with store.write() as tx:
            await tx.profiles.delete("p")
    async with store.read() as tx:
        assert await tx.services.get("ds") is not None
        assert await tx.profiles.get("p") is not None


async def test_watcher_profile_reference_is_enforced(store: Store) -> None:
    await seed(store)
    async with store.write() as tx:
        await tx.watchers.add(pw("w1", profile="p"))
        await tx.watchers.add(pw("w2", service="not-registered"))  # EdgeX allows this
    with pytest.raises(Conflict):
        async with store.write() as tx:
            await tx.profiles.delete("p")
    async with store.read() as tx:
        assert await tx.watchers.count_by_profile("p") == 1
        assert await tx.watchers.count_by_service("not-registered") == 1


async def test_update_is_conditional_on_the_revision(store: Store) -> None:
    await seed(store)
    async with store.write() as tx:
        await tx.devices.add(dev("a"))
    async with store.write() as tx:
        await tx.devices.update(replace(dev("a"), description="v2", revision=2))
    with pytest.raises(Conflict, match="changed concurrently"):
        async with store.write() as tx:
            await tx.devices.update(replace(dev("a"), description="stale", revision=2))
    async with store.read() as tx:
        got = await tx.devices.get("a")
    assert got is not None and got.description == "v2" and got.revision == 2


async def test_a_failed_transaction_leaves_nothing_behind(store: Store) -> None:
    await seed(store)
    with pytest.raises(DuplicateName):
        async with store.write() as tx:
            await tx.devices.add(dev("a"))
            await tx.outbox.append(device_added(dev("a")), "cid")
            await tx.devices.add(replace(dev("a"), id="again"))
    async with store.read() as tx:
        assert await tx.devices.count() == 0
        assert await tx.feed.pending(10) == []


async def test_paging_is_ordered_oldest_first_with_total(store: Store) -> None:
    await seed(store)
    async with store.write() as tx:
        for i in range(25):
            await tx.devices.add(dev(f"d{i:02d}", created=1000 + (i % 5)))
    async with store.read() as tx:
        first = await tx.devices.page(ListQuery(offset=0, limit=10))
        rest = await tx.devices.page(ListQuery(offset=10, limit=100))
        empty = await tx.devices.page(ListQuery(offset=25, limit=10))
        none = await tx.devices.page(ListQuery(offset=0, limit=0))
    assert first.total == rest.total == empty.total == none.total == 25
    names = [d.name for d in first.items + rest.items]
    assert len(names) == 25 and len(set(names)) == 25
    created = [d.created for d in first.items + rest.items]
    assert created == sorted(created)
    assert empty.items == [] and none.items == []


async def test_labels_filter_requires_all_labels(store: Store) -> None:
    await seed(store)
    async with store.write() as tx:
        await tx.devices.add(dev("ab", labels=("a", "b")))
        await tx.devices.add(dev("a", labels=("a",)))
        await tx.devices.add(dev("none"))
        await tx.services.add(svc("labelled", labels=("x",)))
        await tx.profiles.add(prof("lp", labels=("y", "z")))
    async with store.read() as tx:
        only_a = await tx.devices.page(ListQuery(limit=10, labels=("a",)))
        both = await tx.devices.page(ListQuery(limit=10, labels=("a", "b")))
        missing = await tx.devices.page(ListQuery(limit=10, labels=("a", "zz")))
        services = await tx.services.page(ListQuery(limit=10, labels=("x",)))
        profiles = await tx.profiles.page(ListQuery(limit=10, labels=("z",)))
    assert sorted(d.name for d in only_a.items) == ["a", "ab"] and only_a.total == 2
    assert [d.name for d in both.items] == ["ab"]
    assert missing.total == 0
    assert [s.name for s in services.items] == ["labelled"]
    assert [p.name for p in profiles.items] == ["lp"]


async def test_filters_by_service_profile_manufacturer_model(store: Store) -> None:
    await seed(store)
    async with store.write() as tx:
        await tx.profiles.add(prof("q", manufacturer="Acme", model="T1"))
        await tx.profiles.add(prof("r", manufacturer="Acme", model="T2"))
        await tx.devices.add(dev("a", service="ds", profile="p"))
        await tx.devices.add(dev("b", service="ds2", profile="p"))
        await tx.devices.add(dev("c", service="ds2", profile="q"))
        await tx.watchers.add(pw("w", service="ds2", profile="q"))
    async with store.read() as tx:
        assert (await tx.devices.page(ListQuery(limit=9), service="ds2")).total == 2
        assert (await tx.devices.page(ListQuery(limit=9), profile="p")).total == 2
        assert (await tx.profiles.page(ListQuery(limit=9), manufacturer="Acme")).total == 2
        assert (
            await tx.profiles.page(ListQuery(limit=9), manufacturer="Acme", model="T2")
        ).total == 1
        assert (await tx.profiles.page(ListQuery(limit=9), model="T1")).total == 1
        assert (await tx.watchers.page(ListQuery(limit=9), service="ds2")).total == 1
        assert (await tx.watchers.page(ListQuery(limit=9), profile="q")).total == 1
        assert await tx.devices.count_by_profiles(["p", "q", "zz"]) == {"p": 2, "q": 1}
        assert await tx.devices.services_using_profile("p") == ["ds", "ds2"]
        assert await tx.devices.count_by_service("ds2") == 2


async def test_descendants_follow_the_parent_tree_and_survive_cycles(store: Store) -> None:
    await seed(store)
    async with store.write() as tx:
        await tx.devices.add(dev("root"))
        await tx.devices.add(dev("c1", parent="root"))
        await tx.devices.add(dev("c2", parent="root"))
        await tx.devices.add(dev("g1", parent="c1"))
        await tx.devices.add(dev("gg1", parent="g1"))
        await tx.devices.add(dev("x", parent="y"))  # a cycle: x <-> y
        await tx.devices.add(dev("y", parent="x"))
    async with store.read() as tx:
        all_ = await tx.devices.descendants("root", 0, ListQuery(limit=100))
        one = await tx.devices.descendants("root", 1, ListQuery(limit=100))
        two = await tx.devices.descendants("root", 2, ListQuery(limit=1))
        cyc = await tx.devices.descendants("x", 0, ListQuery(limit=100))
        assert await tx.devices.has_children("c1")
        assert not await tx.devices.has_children("gg1")
    assert sorted(d.name for d in all_.items) == ["c1", "c2", "g1", "gg1"]
    assert sorted(d.name for d in one.items) == ["c1", "c2"]
    assert two.total == 3 and len(two.items) == 1
    assert [d.name for d in cyc.items] == ["y"]


async def test_outbox_keeps_commit_order_and_positions_are_gap_free(store: Store) -> None:
    await seed(store)
    a = dev("a", revision=1)
    async with store.write() as tx:
        await tx.outbox.append(device_added(a), "c1")
    async with store.write() as tx:
        b = replace(a, service_name="ds2", revision=2)
        await tx.outbox.append(device_updated(a, b), "c2")
    async with store.read() as tx:
        pending = await tx.feed.pending(10)
    assert [(e.action, e.owner, e.revision) for e in pending] == [
        ("add", "ds", 1),
        ("update", "ds", 2),
        ("update", "ds2", 2),
    ]
    assert len({e.event_id for e in pending}) == 3
    async with store.write() as tx:
        positions = await tx.feed.mark_delivered([e.seq for e in pending[:2]], 123)
    assert positions == [1, 2]
    async with store.write() as tx:
        assert await tx.feed.mark_delivered([pending[2].seq], 456) == [3]
    async with store.read() as tx:
        assert await tx.feed.pending(10) == []
        replay = await tx.feed.delivered_since(1, 10)
        assert await tx.feed.last_position() == 3
    assert [e.pos for e in replay] == [2, 3]
    async with store.write() as tx:
        assert await tx.feed.purge_delivered(200) == 2
    async with store.read() as tx:
        assert [e.pos for e in await tx.feed.delivered_since(0, 10)] == [3]
        assert await tx.feed.last_position() == 3  # purging never rewinds positions


async def test_concurrent_adds_of_one_name_create_one_record(store: Store) -> None:
    await seed(store)

    async def add(i: int) -> str:
        try:
            async with store.write() as tx:
                await tx.devices.add(replace(dev("same"), id=f"id-{i}"))
            return "ok"
        except DuplicateName:
            return "dup"

    results = await asyncio.gather(*(add(i) for i in range(8)))
    assert results.count("ok") == 1 and results.count("dup") == 7
    async with store.read() as tx:
        assert await tx.devices.count() == 1


async def test_postgres_lease_is_per_schema(postgres_url: str) -> None:
    """Advisory locks are database-wide: a relay on one schema must not block another's."""
    from edgemeta.store import open_store
    from tests.support import servers
    from tests.support.schema import drop_schema

    schemas = [servers.unique("lease_a"), servers.unique("lease_b")]
    a, b, a_too = [await open_store(f"{postgres_url}?schema={s}") for s in (*schemas, schemas[0])]
    try:
        first, other_schema, same_schema = (s.lease("outbox-relay") for s in (a, b, a_too))
        assert await first.acquire()
        assert await other_schema.acquire()  # another schema: its own lease
        assert not await same_schema.acquire()  # the same schema: one holder at a time
        await first.release()
        assert await same_schema.acquire()
        await same_schema.release()
        await other_schema.release()
    finally:
        for s in (a, b, a_too):
            await s.close()
        for name in schemas:
            await drop_schema(name)


async def test_sqlite_lease_is_one_holder_per_file(tmp_path: Path) -> None:
    """The relay's lease on SQLite is an flock beside the file: one holder across connections
    (and processes: ``--workers N``), free again once released; another file is another."""
    from edgemeta.store import open_store

    a, a_too, b = [
        await open_store(f"sqlite:///{tmp_path / name}") for name in ("a.db", "a.db", "b.db")
    ]
    try:
        first, same_file, other_file = (s.lease("outbox-relay") for s in (a, a_too, b))
        assert await first.acquire()
        assert await first.acquire()  # the holder keeps it
        assert not await same_file.acquire()
        assert await other_file.acquire()
        await first.release()
        assert await same_file.acquire()
        assert not await first.acquire()
        await same_file.release()
        await other_file.release()
    finally:
        for s in (a, a_too, b):
            await s.close()


async def test_a_second_active_move_is_a_conflict_naming_the_first(store: Store) -> None:
    from edgemeta.domain.errors import Conflict
    from edgemeta.domain.moves import Move, MoveReason, StatePolicy

    def move(move_id: str) -> Move:
        return Move(
            id=move_id,
            device_name="dev-1",
            from_service="a",
            to_service="b",
            policy=StatePolicy.MIGRATE,
            reason=MoveReason.OPERATOR,
        )

    async with store.write() as tx:
        await tx.moves.add(move("m-first"))
    with pytest.raises(Conflict, match=r"already being moved \(move m-first\)"):
        async with store.write() as tx:
            await tx.moves.add(move("m-second"))
    async with store.read() as tx:
        assert await tx.moves.get("m-second") is None


async def test_command_holds_fence_a_device_until_dropped_or_expired(store: Store) -> None:
    async with store.write() as tx:
        assert await tx.moves.commands_in_flight("dev-1", 1_000) is None
        await tx.moves.hold_commands("h-1", "dev-1", 5_000)
        await tx.moves.hold_commands("h-2", "dev-1", 9_000)
        await tx.moves.hold_commands("h-3", "dev-2", 9_000)
    async with store.write() as tx:
        assert await tx.moves.commands_in_flight("dev-1", 1_000) == 9_000  # the last to expire
        await tx.moves.drop_command_hold("h-2")
    async with store.write() as tx:
        assert await tx.moves.commands_in_flight("dev-1", 1_000) == 5_000
        # past its expiry a hold (of a process that died) fences nothing, and is cleared
        assert await tx.moves.commands_in_flight("dev-1", 5_000) is None
    async with store.write() as tx:
        assert await tx.moves.commands_in_flight("dev-1", 0) is None  # gone, not just ignored
        assert await tx.moves.commands_in_flight("dev-2", 1_000) == 9_000  # another device's
    with pytest.raises(Exception):  # noqa: B017 - each driver names its own violation
        async with store.write() as tx:
            await tx.moves.hold_commands("h-3", "dev-2", 9_000)  # ids are unique


async def test_outbox_stats_count_the_unpublished_and_date_the_oldest(store: Store) -> None:
    assert (await store.outbox_stats()).backlog == 0
    assert (await store.outbox_stats()).oldest_age_seconds() == 0.0
    await seed(store)
    async with store.write() as tx:
        await tx.devices.add(dev("a"))
        await tx.outbox.append(device_added(dev("a")), "cid")
    async with store.write() as tx:
        await tx.devices.add(dev("b"))
        await tx.outbox.append(device_added(dev("b")), "cid")
    stats = await store.outbox_stats()
    async with store.read() as tx:
        pending = await tx.feed.pending(10)
    assert stats.backlog == len(pending) == 2
    assert stats.oldest_ns == min(e.timestamp_ns for e in pending)
    async with store.write() as tx:
        await tx.feed.mark_delivered([pending[0].seq], 1)
    stats = await store.outbox_stats()
    assert stats.backlog == 1 and stats.oldest_ns == pending[1].timestamp_ns


async def test_devices_counted_per_service_largest_first_and_capped(store: Store) -> None:
    await seed(store)
    async with store.write() as tx:
        await tx.services.add(svc("ds3"))
        for i in range(3):
            await tx.devices.add(dev(f"x{i}", service="ds2"))
        await tx.devices.add(dev("y", service="ds"))
        await tx.devices.add(dev("z", service="ds3"))
    async with store.read() as tx:
        assert await tx.devices.count_per_service(10) == [("ds2", 3), ("ds", 1), ("ds3", 1)]
        assert await tx.devices.count_per_service(1) == [("ds2", 3), ("_other", 2)]
