"""Fuzzing core-data's API: whatever arrives, the answer is a 2xx or a 4xx in the EdgeX
envelope, never a 5xx, and a refused event stores nothing (the association index included).

Examples per test: ``FUZZ_EXAMPLES`` (default 12, derandomized under CI), as the other fuzz
tests.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.api.live import LiveApp, open_live_app
from tests.support.data import make_event

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "12"))
FUZZ = settings(
    max_examples=EXAMPLES * 4,
    derandomize=bool(os.environ.get("CI")),
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
SCALARS = st.none() | st.booleans() | st.integers(-(2**65), 2**65) | st.text(max_size=8)
JSON = st.recursive(
    SCALARS | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
EVENT_KEYS = [
    "apiVersion",
    "id",
    "deviceName",
    "profileName",
    "sourceName",
    "origin",
    "tags",
    "readings",
]
READING_KEYS = [
    "id",
    "origin",
    "deviceName",
    "resourceName",
    "profileName",
    "valueType",
    "units",
    "value",
    "binaryValue",
    "mediaType",
    "objectValue",
    "tags",
]


class DataApp:
    """A live service and a client of its core-data app."""

    def __init__(self, app: LiveApp) -> None:
        self.app = app
        assert app.service.data_app is not None
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app.service.data_app), base_url="http://d"
        )

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        return self.app.run(self.client.request(method, f"/api/v3{url}", **kwargs))

    def state(self) -> tuple[int, int, int]:
        events = self.request("GET", "/event/count").json()["count"]
        readings = self.request("GET", "/reading/count").json()["count"]

        async def rows() -> int:
            async with self.app.service.store.read() as tx:
                return len(await tx.data.associations(profile="prof"))

        return events, readings, self.app.run(rows())


@pytest.fixture(params=["sqlite", "postgres"], scope="module")
def data_app(request: pytest.FixtureRequest, tmp_path_factory: Any) -> Iterator[DataApp]:
    app = open_live_app(request.param, tmp_path_factory.mktemp("fuzzdata"))
    try:
        base = "/api/v3"
        svc = {"name": "ds", "baseAddress": "http://x:1", "adminState": "UNLOCKED"}
        prof = {
            "name": "prof",
            "deviceResources": [
                {"name": "temp", "properties": {"valueType": "Float32", "readWrite": "R"}},
                {"name": "arr", "properties": {"valueType": "Int8Array", "readWrite": "R"}},
            ],
        }
        dev = {
            "name": "dev",
            "serviceName": "ds",
            "profileName": "prof",
            "adminState": "UNLOCKED",
            "operatingState": "UP",
            "protocols": {"o": {"a": "b"}},
        }
        for path, key, body in (
            ("/deviceservice", "service", svc),
            ("/deviceprofile", "profile", prof),
            ("/device", "device", dev),
        ):
            r = app.request("POST", base + path, json=[{"apiVersion": "v3", key: body}])
            assert r.json()[0]["statusCode"] == 201, r.text
        yield DataApp(app)
    finally:
        app.close()


def check(r: httpx.Response) -> None:
    assert r.status_code < 500 or r.status_code == 501, (r.status_code, r.text)
    body = r.json()
    assert body["apiVersion"] == "v3"
    if r.status_code >= 400:
        assert body["statusCode"] == r.status_code and body["message"]


@st.composite
def mutated_events(draw: st.DrawFn) -> dict[str, Any]:
    """A valid event with one field (of the event or of a reading) replaced or removed."""
    event = make_event(readings=[{"resourceName": "temp", "valueType": "Float32", "value": "1"}])
    target: dict[str, Any] = event
    keys = EVENT_KEYS
    if draw(st.booleans()):
        target, keys = event["readings"][0], READING_KEYS
    key = draw(st.sampled_from(keys))
    key = draw(st.sampled_from([key, key.upper(), key.lower()]))
    if draw(st.integers(0, 4)) == 0:
        target.pop(key, None)
    else:
        target[key] = draw(JSON)
    return event


def _post(d: DataApp, event: Any) -> httpx.Response:
    return d.request("POST", "/event/ds/prof/dev/temp", json={"apiVersion": "v3", "event": event})


def test_mutated_events(data_app: DataApp) -> None:
    @FUZZ
    @given(event=mutated_events())
    def run(event: dict[str, Any]) -> None:
        before = data_app.state()
        r = _post(data_app, event)
        check(r)
        if r.status_code != 201:
            assert data_app.state() == before, r.text

    run()


def test_whole_bodies(data_app: DataApp) -> None:
    @FUZZ
    @given(body=JSON | st.binary(max_size=40))
    def run(body: Any) -> None:
        before = data_app.state()
        kwargs = {"content": body} if isinstance(body, bytes) else {"json": body}
        r = data_app.request("POST", "/event/ds/prof/dev/temp", **kwargs)
        check(r)
        assert r.status_code == 400 and data_app.state() == before

    run()


def test_array_values(data_app: DataApp) -> None:
    @FUZZ
    @given(value=st.text(max_size=20) | JSON.map(json.dumps))
    def run(value: str) -> None:
        event = make_event(
            readings=[{"resourceName": "arr", "valueType": "Int8Array", "value": value}]
        )
        event["sourceName"] = "arr"
        r = data_app.request(
            "POST", "/event/ds/prof/dev/arr", json={"apiVersion": "v3", "event": event}
        )
        check(r)

    run()


LISTS = [
    "/event/all",
    "/event/device/name/{}",
    "/reading/all",
    "/reading/device/name/{}",
    "/reading/resourceName/{}",
    "/event/start/{}/end/{}",
    "/reading/start/{}/end/{}",
    "/event/count/device/name/{}",
    "/event/id/{}",
]


def test_query_and_path_parameters(data_app: DataApp) -> None:
    segment = st.text(min_size=1, max_size=12).map(lambda s: quote(s, safe=""))

    @FUZZ
    @given(
        pattern=st.sampled_from(LISTS),
        segments=st.tuples(segment, segment),
        params=st.dictionaries(
            st.sampled_from(["offset", "limit", "numeric", "aggregateFunc"]),
            st.text(max_size=6) | st.integers(-3, 2000).map(str),
            max_size=3,
        ),
    )
    def run(pattern: str, segments: tuple[str, str], params: dict[str, str]) -> None:
        url = pattern.format(*segments)
        r = data_app.request("GET", url, params=params)
        check(r)

    run()


def test_deletes_with_random_paths(data_app: DataApp) -> None:
    @FUZZ
    @given(arg=st.text(min_size=1, max_size=12) | st.integers(-5, 10**20).map(str))
    def run(arg: str) -> None:
        quoted = quote(arg, safe="")
        for url in (
            f"/event/age/{quoted}",
            f"/event/id/{quoted}",
            f"/event/device/name/nobody{quoted}",
        ):
            if url.startswith("/event/age/") and quoted.isdigit() and int(quoted) < 10**18:
                continue  # a real purge of recent data: not what this test is about
            check(data_app.request("DELETE", url))

    run()


def test_a_valid_event_still_works(data_app: DataApp) -> None:
    r = _post(
        data_app,
        make_event(readings=[{"resourceName": "temp", "valueType": "Float32", "value": "2"}]),
    )
    assert r.status_code == 201, r.text
    assert uuid.UUID(r.json()["id"])
