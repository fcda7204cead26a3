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


async def test_a_batch_answers_and_stores_what_single_adds_do(ready: Api) -> None:
    """A parent inside the batch, a parent that does not exist and a bad autoEvent: each
    item's status and message are those of the same device added alone (the bulk path must
    not differ from one-by-one adds), and each stored device, its initial configuration and
    its event's details are one and the same document."""
    variants = [
        {},
        {"parent": "{p}root"},
        {"parent": "nobody-{p}"},
        {"autoEvents": [{"interval": "1s", "sourceName": "missing"}]},
    ]

    def items(prefix: str) -> list[dict[str, Any]]:
        out = [item(f"{prefix}root")]
        for i, v in enumerate(variants):
            extra = {k: (x.format(p=prefix) if isinstance(x, str) else x) for k, x in v.items()}
            out.append(item(f"{prefix}{i}", **extra))
        return out

    alone = []
    for body in items("s-"):
        r = await ready.post("/device", [body])
        alone.append({k: v for k, v in r.json()[0].items() if k != "id"})
    r = await ready.post("/device", items("b-"))
    together = [{k: v for k, v in x.items() if k != "id"} for x in r.json()]
    for x in alone + together:  # the messages name the device: compare without the prefix
        x["message"] = x.get("message", "").replace("s-", "").replace("b-", "")
    assert together == alone
    assert [x["statusCode"] for x in together].count(201) >= 2  # some were really written
    async with ready.service.store.read() as tx:
        pending = {e.record_key: e.details for e in await tx.feed.pending(10_000)}
        for x, body in zip(r.json(), items("b-"), strict=True):
            name = body["device"]["name"]
            stored = await tx.devices.get_document(name)
            if x["statusCode"] != 201:
                assert stored is None and name not in pending
                continue
            initial = await tx.moves.initial(name)
            assert initial is not None and stored is not None
            assert pending[name] == stored.encode()
            assert (await tx.devices.get(name)) == initial
