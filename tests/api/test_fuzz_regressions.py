"""Regression tests for the bugs the fuzzing found, one per fix, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.api.live import BASE, Exchange, LiveApp, check_envelope, open_live_app
from tests.api.seed import PROFILES, SERVICES, device_body, seed
from tests.api.templates import ADDS


def call(app: LiveApp, method: str, url: str, **kwargs: Any) -> Exchange:
    ex = Exchange(method, url, app.request(method, url, **kwargs))
    check_envelope(ex)
    return ex


def rejected(app: LiveApp, method: str, url: str, fragment: str, **kwargs: Any) -> None:
    """400 in the envelope, naming ``fragment``, with nothing changed."""
    before = app.snapshot()
    ex = call(app, method, url, **kwargs)
    assert ex.response.status_code == 400, ex.describe()
    assert fragment in ex.response.json()["message"], ex.describe()
    assert app.snapshot() == before, ex.describe()


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/device/name/a%00b"),
        ("DELETE", "/device/name/%00"),
        ("GET", "/device/check/name/%00"),
        ("GET", "/deviceprofile/manufacturer/Acme%00"),
        ("GET", "/deviceresource/profile/thermo/resource/%00"),
        ("DELETE", "/deviceservice/name/svc-a%00"),
    ],
)
def test_nul_in_a_path_name_is_400(live_app: LiveApp, method: str, path: str) -> None:
    # Was a 500 on PostgreSQL: "invalid byte sequence for encoding UTF8: 0x00".
    rejected(live_app, method, BASE + path, "NUL")


@pytest.mark.parametrize(
    "query",
    ["labels=a%00", "labels=a%01b", "descendantsOf=dev-1%00", "descendantsOf=a%0Ab"],
)
def test_control_characters_in_query_names_are_400(live_app: LiveApp, query: str) -> None:
    # labels / descendantsOf with NUL were a 500 on PostgreSQL.
    rejected(live_app, "GET", f"{BASE}/device/all?{query}", "control characters")


def test_too_many_labels_is_400(live_app: LiveApp) -> None:
    # 1001 labels were a 500 on SQLite ("Expression tree is too large").
    labels = ",".join(f"l{i}" for i in range(1001))
    rejected(live_app, "GET", f"{BASE}/device/all?labels={labels}", "labels")
    ok = call(live_app, "GET", f"{BASE}/device/all?labels=" + ",".join(["seed"] * 256))
    assert ok.response.status_code == 200, ok.describe()
    assert ok.response.json()["totalCount"] == 3


@pytest.mark.parametrize("value", ["x", "1.5", "%EF%BC%91", "%D9%A1", "%201", "1_0", "99999999999"])
def test_max_levels_is_checked_without_descendants_of(live_app: LiveApp, value: str) -> None:
    # A bad maxLevels used to be ignored unless descendantsOf was given.
    rejected(live_app, "GET", f"{BASE}/device/all?maxLevels={value}", "maxLevels")


@pytest.mark.parametrize("value", ["%EF%BC%91", "%D9%A1", "%201", "1_0", "%2B%2B1"])
@pytest.mark.parametrize("key", ["offset", "limit"])
def test_paging_integers_are_ascii_digits(live_app: LiveApp, key: str, value: str) -> None:
    # Python's int() took a fullwidth or Arabic-Indic digit, a space or "_"; Go's Atoi does not.
    rejected(live_app, "GET", f"{BASE}/device/all?{key}={value}", key)


def test_signed_paging_integers_still_work(live_app: LiveApp) -> None:
    ex = call(live_app, "GET", f"{BASE}/device/all?offset=%2B1&limit=-1&maxLevels=-3")
    assert ex.response.status_code == 200, ex.describe()
    assert len(ex.response.json()["devices"]) == 2


@pytest.mark.parametrize("cid", [b"a\x00b", b"a\x01", b"caf\xe9", b" padded ", b"x" * 129])
def test_unusable_correlation_ids_are_replaced(live_app: LiveApp, cid: bytes) -> None:
    # A NUL in X-Correlation-ID made every write a 500 on PostgreSQL (the outbox stores it),
    # and control characters were echoed into a response header.
    body = [{"apiVersion": "v3", "service": {"name": "cid", "baseAddress": "http://a:1",
                                             "adminState": "LOCKED"}}]  # fmt: skip
    ex = call(
        live_app, "POST", f"{BASE}/deviceservice", json=body, headers=[(b"x-correlation-id", cid)]
    )
    assert ex.response.status_code == 207, ex.describe()
    assert ex.response.json()[0]["statusCode"] == 201, ex.describe()
    uuid.UUID(ex.response.headers["x-correlation-id"])


def test_a_usable_correlation_id_is_echoed(live_app: LiveApp) -> None:
    ex = call(live_app, "GET", f"{BASE}/ping", headers={"X-Correlation-ID": "req-42 abc"})
    assert ex.response.headers["x-correlation-id"] == "req-42 abc"


def _nested(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = {"a": value}
    return value


@pytest.mark.parametrize("depth", [62, 250, 252, 300])
def test_deeply_nested_json_is_400_and_reads_keep_working(live_app: LiveApp, depth: int) -> None:
    # Depth 252 was stored, then every read of it - /device/all included - was a 500;
    # depth 300 was a 500 for the element.
    body = json.dumps([device_body("deep", properties=_nested(depth))]).encode()
    rejected(live_app, "POST", f"{BASE}/device", "nested deeper", content=body)
    ex = call(live_app, "GET", f"{BASE}/device/all")
    assert ex.response.status_code == 200, ex.describe()


def test_nesting_up_to_the_limit_is_stored_and_served(live_app: LiveApp) -> None:
    # The request's own array, element and device objects count: 3 + 60 + 1 = 64 levels.
    body = json.dumps([device_body("deep", properties=_nested(60))]).encode()
    ex = call(live_app, "POST", f"{BASE}/device", content=body)
    assert ex.response.json()[0]["statusCode"] == 201, ex.describe()
    assert call(live_app, "GET", f"{BASE}/device/name/deep").response.status_code == 200
    assert call(live_app, "GET", f"{BASE}/device/all").response.status_code == 200


RESOURCE = "name: {name}\ndeviceResources:\n- name: r\n  properties: {{valueType: Int8, readWrite: R{extra}}}\n  attributes: {{a: {value}}}\n"  # noqa: E501


@pytest.mark.parametrize(
    ("value", "extra", "fragment"),
    [
        ("!!binary aGVsbG8=", "", "bytes"),
        ("!!set {x, y}", "", "set"),
        ("{1: x}", "", "key 1"),
        ("123456789012345678901234567890", "", "64-bit"),
        ("1", ", minimum: .nan", "nan"),
        ("1", ", maximum: .inf", "inf"),
    ],
)
@pytest.mark.parametrize("method", ["POST", "PUT"])
def test_yaml_values_json_cannot_hold_are_400(
    live_app: LiveApp, method: str, value: str, extra: str, fragment: str
) -> None:
    # These were a 500 when the store serialized the profile (or .nan silently became null).
    text = RESOURCE.format(name=PROFILES[0], value=value, extra=extra).encode()
    files = {"file": ("p.yaml", text)}
    rejected(live_app, method, f"{BASE}/deviceprofile/uploadfile", fragment, files=files)


def test_deeply_nested_yaml_is_400(live_app: LiveApp) -> None:
    # A RecursionError in the YAML composer was a 500.
    text = b"name: x\nlabels: " + b"[" * 5000 + b"]" * 5000
    files = {"file": ("p.yaml", text)}
    rejected(live_app, "POST", f"{BASE}/deviceprofile/uploadfile", "nested", files=files)


def test_yaml_dates_are_read_as_text(live_app: LiveApp) -> None:
    text = b"name: dated\nmodel: 2024-06-01\ndeviceResources:\n- name: r\n  properties: {valueType: Int8, readWrite: R}\n  attributes: {since: 2024-06-01T10:00:00}\n"  # noqa: E501
    ex = call(
        live_app, "POST", f"{BASE}/deviceprofile/uploadfile", files={"file": ("p.yaml", text)}
    )
    assert ex.response.status_code == 201, ex.describe()
    profile = call(live_app, "GET", f"{BASE}/deviceprofile/name/dated").response.json()["profile"]
    assert profile["model"] == "2024-06-01"
    assert profile["deviceResources"][0]["attributes"] == {"since": "2024-06-01T10:00:00"}


@pytest.mark.parametrize("method", ["POST", "PUT"])
def test_an_inconsistent_profile_fails_the_whole_batch(live_app: LiveApp, method: str) -> None:
    # EdgeX validates the whole profile while decoding; the valid elements used to be stored.
    template = next(t for t in ADDS if t.path == "/deviceprofile")
    good = template.named("good" if method == "POST" else PROFILES[0])
    bad = template.named("bad" if method == "POST" else PROFILES[1])
    bad["profile"]["deviceCommands"][0]["resourceOperations"][0]["deviceResource"] = "Nope"
    body = json.dumps([good, bad]).encode()
    rejected(live_app, method, f"{BASE}/deviceprofile", "[1]: profile:", content=body)


def test_duplicate_resources_in_a_profile_fail_the_whole_batch(live_app: LiveApp) -> None:
    template = next(t for t in ADDS if t.path == "/deviceprofile")
    bad = template.named("dup")
    resources = bad["profile"]["deviceResources"]
    resources.append(dict(resources[0]))
    body = json.dumps([template.named("fine"), bad]).encode()
    rejected(live_app, "POST", f"{BASE}/deviceprofile", "duplicated", content=body)


def test_seeded_service_names_with_slashes_resolve(live_app: LiveApp) -> None:
    ex = call(live_app, "GET", f"{BASE}/deviceservice/name/{SERVICES[1].replace('/', '%2F')}")
    assert ex.response.status_code == 200, ex.describe()
    assert ex.response.json()["service"]["name"] == SERVICES[1]


async def _chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_a_body_over_the_size_limit_is_413(tmp_path: Any, backend: str) -> None:
    app = open_live_app(backend, tmp_path, max_request_bytes=4096)
    try:
        seed(app)
        before = app.snapshot()
        element = device_body("big", description="x" * 5000)
        # Declared by Content-Length, and streamed without one.
        for kwargs in ({"json": [element]}, {"content": _chunks(b"[", b" " * 5000, b"]")}):
            ex = call(app, "POST", f"{BASE}/device", **kwargs)
            assert ex.response.status_code == 413, ex.describe()
            assert "limit" in ex.response.json()["message"], ex.describe()
        assert app.snapshot() == before
    finally:
        app.close()
