"""Replay the requests recorded from real EdgeX clients and check EdgeX's answers.

The recordings (``shared/fixtures/edgex-clients``) hold what the clients sent, byte for byte.
Each file is replayed in order against a fresh service on the default settings (device
validation ``auto`` on the in-process bus), and every answer is checked against what EdgeX's
core-metadata gives for that request: status, envelope, and the fields the client reads next.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from edgemeta.bootstrap import build
from edgemeta.settings import Settings
from edgemeta.usecases.apikeys import create_key
from tests.support import servers
from tests.support.schema import drop_schema

# A copy of shared/fixtures/edgex-clients (recorded from unmodified upstream EdgeX clients).
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "edgex-clients"


def load(name: str) -> list[dict[str, Any]]:
    path = FIXTURES / name
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture(params=["sqlite", "postgres"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A fresh database on each backend (its own SQLite file or PostgreSQL schema)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'replay.db'}"
        return
    servers.require(servers.POSTGRES_URL, "PostgreSQL")
    schema = servers.unique("replay")
    yield f"{servers.POSTGRES_URL}?schema={schema}"
    await drop_schema(schema)


@pytest.fixture(params=["off", "on"])
def auth(request: pytest.FixtureRequest) -> str:
    """Replay with authentication off (as recorded) and on (the same requests plus a token)."""
    value: str = request.param
    return value


async def replay(database_url: str, name: str, auth: str) -> tuple[list[httpx.Response], Any]:
    service = await build(Settings(database_url=database_url, auth=auth))
    credential: dict[str, str] = {}
    if auth == "on":
        key, _ = await create_key(service.store, ["admin"], lifetime_s=600)
        credential = {"Authorization": f"Bearer {key}"}
    service.credential = credential  # type: ignore[attr-defined]  # for _get below
    transport = httpx.ASGITransport(app=service.app)
    answers = []
    async with httpx.AsyncClient(transport=transport, base_url="http://edgemeta") as client:
        for req in load(name):
            headers = {"Content-Type": req["contentType"]} if req["contentType"] else {}
            headers.update(credential)
            answers.append(
                await client.request(
                    req["method"], req["path"], content=req["body"].encode(), headers=headers
                )
            )
    return answers, service


def status_and_items(r: httpx.Response) -> tuple[int, list[int]]:
    body = r.json()
    items = [i["statusCode"] for i in body] if isinstance(body, list) else []
    return r.status_code, items


async def test_app_functions_sdk_python_clients(database_url: str, auth: str) -> None:
    answers, service = await replay(database_url, "app-functions-sdk-python-clients.jsonl", auth)
    expected = [
        (207, [201]),  # POST deviceservice (id "", created 0, labels null)
        (200, []),  # GET deviceservice by name
        (200, []),  # GET deviceservice/all offset=0 limit=-1
        (201, []),  # POST uploadfile (multipart field "file")
        (200, []),  # GET deviceprofile by name
        (200, []),  # GET deviceprofile/all
        (207, [201]),  # POST device (id null, parent null, no bypassValidation)
        (200, []),  # GET device by name
        (200, []),  # GET device/check/name
        (200, []),  # GET device by service
        (200, []),  # GET device by profile
        (200, []),  # GET device/all
        (200, []),  # GET deviceresource
        (200, []),  # DELETE device
        (200, []),  # DELETE deviceprofile
        (200, []),  # DELETE deviceservice
    ]
    assert [status_and_items(a) for a in answers] == expected
    for a in answers:
        body = a.json()
        for item in body if isinstance(body, list) else [body]:
            assert item["apiVersion"] == "v3"
        assert a.headers["x-correlation-id"]
    assert answers[2].json()["totalCount"] == 1
    profile = answers[4].json()["profile"]
    assert [r["name"] for r in profile["deviceResources"]] == ["random-number", "switch"]
    assert profile["deviceResources"][0]["properties"]["units"] == "count"
    device = answers[7].json()["device"]
    assert device["protocols"] == {"other": {"Address": "1"}} and "parent" not in device
    assert answers[9].json()["totalCount"] == 1
    assert answers[12].json()["resource"]["name"] == "random-number"
    await service.store.close()


async def test_device_sdk_c_cold_start(database_url: str, auth: str) -> None:
    answers, service = await replay(database_url, "device-sdk-c-cold-start.jsonl", auth)
    expected = [
        (200, []),  # ping
        (404, []),  # its service is not registered yet
        (207, [201]),  # POST deviceservice with "Service" and "baseaddress"
        (404, []),  # its profile is not there yet
        (207, [201]),  # POST deviceprofile with "Profile", no deviceCommands
        (200, []),  # devices of the service: none
        (207, [201]),  # POST device with "Device", autoEvents 10s and 15000ms
        (200, []),  # provision watchers of the service
        (200, []),  # the profile again, which must have a deviceCommands array
    ]
    assert [status_and_items(a) for a in answers] == expected
    assert answers[1].json()["statusCode"] == 404 and answers[1].json()["message"]
    service_doc = (await _get(service, "/api/v3/deviceservice/name/device-random"))["service"]
    assert service_doc["baseAddress"] == "http://127.0.0.1:59999"
    assert answers[5].json() == {
        "apiVersion": "v3",
        "statusCode": 200,
        "totalCount": 0,
        "devices": [],
    }
    profile = answers[8].json()["profile"]
    assert profile["deviceCommands"] == [] and len(profile["deviceResources"]) == 3
    assert profile["deviceResources"][0]["attributes"] == {"SensorID": "Sen1", "SensorType": 1}
    # The SDK adds the device to its cache only when the device/add event for it arrives.
    async with service.store.read() as tx:
        events = [(e.type, e.action, e.owner, e.profile_name) for e in await tx.feed.pending(100)]
    assert ("device", "add", "device-random", "ExampleSensor") in events
    await service.store.close()


async def test_edgex_ui_browse(database_url: str, auth: str) -> None:
    answers, service = await replay(database_url, "edgex-ui-go-browse.jsonl", auth)
    assert all(a.status_code == 200 for a in answers)
    lists = [a.json() for a in answers if "totalCount" in a.json()]
    assert lists and all(body["totalCount"] == 0 for body in lists)
    keys = {
        k for body in lists for k in body if k not in ("apiVersion", "statusCode", "totalCount")
    }
    assert keys == {"devices", "services", "profiles", "provisionWatchers"}
    await service.store.close()


async def _get(service: Any, path: str) -> Any:
    transport = httpx.ASGITransport(app=service.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://edgemeta") as client:
        return (await client.get(path, headers=service.credential)).json()
