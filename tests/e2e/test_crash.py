"""Nothing lost: a service killed with SIGKILL right after (and during) writes keeps every
accepted write and, after a restart, delivers every system event of every stored change."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import httpx

from edgemeta.client import system_events
from tests.e2e.procs import start


async def _writer(url: str, names: list[str], accepted: list[str]) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        for name in names:
            r = await client.post(
                f"{url}/deviceservice",
                json=[
                    {
                        "apiVersion": "v3",
                        "service": {
                            "name": name,
                            "baseAddress": "http://x:1",
                            "adminState": "UNLOCKED",
                        },
                    }
                ],
            )
            if r.json()[0]["statusCode"] == 201:
                accepted.append(name)


async def _kill_during_writes(url: str, proc_kill: object, total: int) -> list[str]:
    accepted: list[str] = []
    names = [f"svc-{i:04d}" for i in range(total)]
    writers = [asyncio.create_task(_writer(url, names[i::4], accepted)) for i in range(4)]
    while len(accepted) < total // 2:
        await asyncio.sleep(0.005)
    proc_kill()  # type: ignore[operator]  # SIGKILL with writes in flight
    await asyncio.gather(*writers, return_exceptions=True)
    return accepted


async def _all_events(url: str, expected: int) -> list[str]:
    names: list[str] = []
    stream = system_events(
        url, ["edgex/system-events/core-metadata/deviceservice/add/#"], last_event_id=0
    )
    try:
        async with asyncio.timeout(20):
            async for ev in stream:
                names.append(ev.event["details"]["name"])
                if len(names) >= expected:
                    break
    finally:
        await stream.aclose()
    return names


def test_sigkill_loses_no_accepted_write_and_no_event(tmp_path: Path) -> None:
    p = start(tmp_path)
    p.wait_ready()
    accepted = asyncio.run(_kill_during_writes(p.url, p.proc.kill, 400))
    p.proc.wait(10)
    assert p.proc.returncode == -signal.SIGKILL
    assert len(accepted) >= 200

    q = start(tmp_path)
    try:
        q.wait_ready()
        stored = httpx.get(f"{q.url}/deviceservice/all", params={"limit": -1}).json()
        stored_names = {s["name"] for s in stored["services"]}
        # Every answered write survived; a write in flight at the kill may have committed too.
        assert set(accepted) <= stored_names
        events = asyncio.run(_all_events(q.url, len(stored_names)))
        # Every stored change has its event: none lost; repeats would be dropped by eventId.
        assert set(events) == stored_names
    finally:
        q.stop()
