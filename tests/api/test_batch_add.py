"""A batch of device adds runs as one transaction when no device service is asked: the
results, the stored devices and the events must be exactly those of one-by-one adds."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.api import Api


@pytest.fixture
async def ready(api: Api) -> Api:
    await api.add_service("ds")
    await api.add_profile("prof")
    await api.clear_events()
    return api


def item(name: str, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": name,
        "serviceName": "ds",
        "profileName": "prof",
        "adminState": "UNLOCKED",
        "operatingState": "UP",
        "protocols": {"other": {"Address": name}},
    }
    body.update(extra)
    return {"apiVersion": "v3", "device": body}


@pytest.mark.parametrize("params", [{}, {"bypassValidation": "true"}])
async def test_mixed_batch_gives_per_item_results_and_stores_only_the_accepted(
    ready: Api, params: dict[str, str]
) -> None:
    same_id = "7d1c6a8e-5b1f-4a5e-9c1e-2f3b4c5d6e7f"
    batch = [
        item("a"),
        item("b", id=same_id),
        item("a"),  # duplicate name within the batch: sees "a" above
        item("c", serviceName="nope"),
        item("d", profileName="nope"),
        item("e", id=same_id),  # passes every check, refused by the database (id taken)
        item("f"),
    ]
    r = await ready.post("/device", batch, **params)
    assert r.status_code == 207
    statuses = [x["statusCode"] for x in r.json()]
    assert statuses == [201, 201, 409, 400, 400, 409, 201]
    assert "owned by device service 'ds'" in r.json()[2]["message"]
    listed = (await ready.get("/device/all", limit=100)).json()
    assert sorted(d["name"] for d in listed["devices"]) == ["a", "b", "f"]
    assert [e[:2] for e in await ready.events()] == [("device", "add")] * 3
