"""The association index stays exact under concurrent ingest, purge and delete, and a profile
change racing an ingest never leaves readings of a resource the profile no longer has.

Run on both backends; PostgreSQL is where transactions really overlap (READ COMMITTED, a
pool of connections), SQLite runs one writer at a time.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

from edgemeta.domain.errors import ContractInvalid
from edgemeta.domain.readings import EventAddress
from edgemeta.ports import Store
from edgemeta.usecases import coredata as uc
from edgemeta.usecases.deps import Deps
from tests.support.data import Data, make_event


async def truth(store: Store) -> dict[tuple[str, str, str, str], int]:
    """The index recomputed from the events and readings themselves."""
    async with store.read() as tx:
        db: Any = tx.data.db  # type: ignore[attr-defined]
        events = await db.fetchall(
            "SELECT profile_name, source_name, device_name, count(*) FROM core_event"
            " GROUP BY profile_name, source_name, device_name"
        )
        readings = await db.fetchall(
            "SELECT e.profile_name, r.resource_name, r.device_name, count(*)"
            " FROM core_reading r JOIN core_event e ON r.event_seq = e.seq"
            " GROUP BY e.profile_name, r.resource_name, r.device_name"
        )
    out = {(p, "source", n, d): int(c) for p, n, d, c in events}
    out.update({(p, "resource", n, d): int(c) for p, n, d, c in readings})
    return out


async def index(store: Store) -> dict[tuple[str, str, str, str], int]:
    async with store.read() as tx:
        rows = await tx.data.associations(profile="prof")
    return {(r.profile_name, r.kind, r.name, r.device_name): r.count for r in rows}


async def test_index_exact_under_concurrent_ingest_purge_and_delete(seeded: Data) -> None:
    store = seeded.meta.service.store
    for name in ("dev2", "dev3"):
        assert (await seeded.meta.add_device(name)).json()[0]["statusCode"] == 201
    devices = ["dev", "dev2", "dev3"]
    rng = random.Random(7)
    now = time.time_ns()
    stop = asyncio.Event()

    async def ingest(worker: int) -> None:
        for i in range(60):
            device = rng.choice(devices)
            readings = [
                {"resourceName": "temp", "valueType": "Float32", "value": str(i)},
                {"resourceName": "switch", "valueType": "Bool", "value": "true"},
            ][: rng.randint(1, 2)]
            source = "all" if len(readings) == 2 else "temp"
            # origins spread over the last hour, so purges by age take some
            event = make_event(device, source, readings, origin=now - rng.randint(0, 3600) * 10**9)
            await uc.add_event(Deps(store), event, EventAddress("ds", "prof", device, source))
            if worker == 0 and i % 10 == 0:
                await asyncio.sleep(0)

    async def purge() -> None:
        while not stop.is_set():
            await uc.purge_older_than(Deps(store), now - rng.randint(1800, 3600) * 10**9)
            await asyncio.sleep(0.005)

    async def delete() -> None:
        while not stop.is_set():
            await uc.delete_device_events(Deps(store), rng.choice(devices))
            await asyncio.sleep(0.02)

    background = [asyncio.create_task(purge()), asyncio.create_task(delete())]
    await asyncio.gather(*(ingest(w) for w in range(4)))
    stop.set()
    await asyncio.gather(*background)
    assert await index(store) == {k: v for k, v in (await truth(store)).items() if v}


async def test_profile_change_racing_ingest_leaves_no_orphan_readings(seeded: Data) -> None:
    """Remove resource ``switch`` while events with ``switch`` readings pour in: either the
    change is refused (readings exist) or no reading of ``switch`` is stored after it. The
    change starts at several points of the stream (before the first event, during it)."""
    # (the change waits for the first stored event, the stream waits): before, at, inside
    starts = [(False, 0.3), (False, 0.0), (False, 0.002), (True, 0.0)]
    outcomes = [await _race(seeded, i, c, s) for i, (c, s) in enumerate(starts)]
    assert set(outcomes) <= {200, 409}
    assert outcomes[0] == 200 and outcomes[-1] == 409  # both sides of the race were run


async def _race(seeded: Data, trial: int, after_first: bool, stream_delay: float) -> int:
    store = seeded.meta.service.store
    if True:
        profile, device = f"race{trial}", f"racer{trial}"
        await seeded.meta.add_profile(profile)
        assert (await seeded.meta.add_device(device, profile=profile)).json()[0][
            "statusCode"
        ] == 201
        body = {
            "name": profile,
            "deviceResources": [
                {"name": "temp", "properties": {"valueType": "Float32", "readWrite": "R"}}
            ],
            "deviceCommands": [],
        }
        outcome: list[int] = []
        refusals: list[str] = []
        first = asyncio.Event()

        async def ingest() -> None:
            await asyncio.sleep(stream_delay)
            for i in range(30):
                readings = [{"resourceName": "switch", "valueType": "Bool", "value": "true"}]
                event = make_event(device, "switch", readings, profile=profile)
                address = EventAddress("ds", profile, device, "switch")
                try:
                    await uc.add_event(Deps(store), event, address)
                    first.set()
                except ContractInvalid as exc:  # refused once the resource is gone
                    refusals.append(exc.message)
                if i % 3 == 0:
                    await asyncio.sleep(0)

        async def change() -> None:
            if after_first:
                await first.wait()
            r = await seeded.meta.client.put(
                "/api/v3/deviceprofile", json=[{"apiVersion": "v3", "profile": body}]
            )
            outcome.append(r.json()[0]["statusCode"])

        await asyncio.gather(ingest(), change())
        stored = (await seeded.meta.get(f"/deviceprofile/name/{profile}")).json()["profile"]
        names = {r["name"] for r in stored["deviceResources"]}
        readings = (await seeded.get(f"/reading/device/name/{device}")).json()["totalCount"]
        assert all("'switch'" in m for m in refusals), refusals
        if outcome == [200]:
            # every reading stored was stored before the change, which then saw none
            assert names == {"temp"} and readings == 0 and len(refusals) == 30
        else:
            assert outcome == [409] and "switch" in names and readings == 30 - len(refusals)
            assert not refusals
        return outcome[0]


async def test_rules_check_reads_the_index_not_the_readings(seeded: Data) -> None:
    """The query behind every rules check is planned on the association table alone."""
    store = seeded.meta.service.store
    async with store.read() as tx:
        db: Any = tx.data.db  # type: ignore[attr-defined]
        sql = (
            "SELECT profile_name, kind, name, device_name, count FROM core_data_association"
            " WHERE profile_name = ? AND count > 0 ORDER BY profile_name, kind, name, device_name"
        )
        if db.dialect.name == "sqlite":
            plan = " ".join(
                str(r[-1]) for r in await db.fetchall("EXPLAIN QUERY PLAN " + sql, "prof")
            )
        else:
            plan = " ".join(str(r[0]) for r in await db.fetchall("EXPLAIN " + sql, "prof"))
    assert "core_data_association" in plan
    assert "core_reading" not in plan and "core_event" not in plan
