"""The device service of docs/sdk.md ("in under 40 lines"), run as written against a real
edgemeta: it provisions its profile and device, and answers a get and a set over the bus."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx

from edgemeta.sdk import DeviceService
from tests.sdk.kit import command, until
from tests.support.api import make_service

DOC = Path(__file__).resolve().parents[2] / "docs" / "sdk.md"


def doc_service_code() -> str:
    """The first python block of docs/sdk.md."""
    found = re.search(r"^```python\n(.*?)^```", DOC.read_text(), re.M | re.S)
    assert found is not None
    return found.group(1)


async def test_the_doc_device_service_works_as_written(tmp_path: Any) -> None:
    code = doc_service_code()
    assert len(code.splitlines()) < 40
    namespace: dict[str, Any] = {"__name__": "thermometers"}
    exec(compile(code, str(DOC), "exec"), namespace)
    service, _ = await make_service("sqlite", tmp_path, device_validation="auto")
    await service.start()
    transport = httpx.ASGITransport(app=service.app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://edgemeta") as client:
            ds: DeviceService = namespace["service"](
                api_url="http://edgemeta", bus=service.bus, http=client
            )
            async with ds:
                await until(lambda: "thermo-1" in ds.serving)
                bus = service.bus
                got = await command(bus, "edgex", "thermo-1", "temperature", service=ds.name)
                assert got.error_code == 0, got.payload
                assert 20 <= float(got.payload["event"]["readings"][0]["value"]) <= 21
                done = await command(
                    bus, "edgex", "thermo-1", "target", "set", {"target": "22"}, service=ds.name
                )
                assert done.error_code == 0, done.payload
                assert namespace["targets"] == {"thermo-1": 22.0}
                high = await command(
                    bus, "edgex", "thermo-1", "target", "set", {"target": "31"}, service=ds.name
                )
                assert high.error_code == 1 and "above its maximum 30" in high.payload
    finally:
        await service.stop()
