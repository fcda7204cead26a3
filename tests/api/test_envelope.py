"""The EdgeX envelope: common endpoints, correlation id, batch semantics, decoding rules."""

from __future__ import annotations

import uuid
from typing import Any

from edgemeta import EDGEX_VERSION, __version__
from tests.support.api import Api


async def test_ping_version_config(sqlite_api: Api) -> None:
    ping = (await sqlite_api.get("/ping")).json()
    assert ping["apiVersion"] == "v3" and ping["serviceName"] == "core-metadata"
    assert ping["timestamp"].endswith(" UTC " + ping["timestamp"][-4:])
    version = (await sqlite_api.get("/version")).json()
    assert version["apiVersion"] == "v3" and version["serviceName"] == "core-metadata"
    # EdgeX tooling compares `version` with the EdgeX release it targets: 4.x, not edgemeta's.
    assert version["version"] == EDGEX_VERSION and EDGEX_VERSION.startswith("4.")
    assert version["edgemetaVersion"] == __version__
    config = (await sqlite_api.get("/config")).json()
    assert config["config"]["Service"]["MaxResultCount"] == 1024
    # Passwords are never shown: only where they come from (a file's path) may be.
    assert not [k for k, v in _leaves(config) if "password" in k.lower() and k != "PasswordFile"]


def _leaves(doc: Any, key: str = "") -> list[tuple[str, Any]]:
    if isinstance(doc, dict):
        return [leaf for k, v in doc.items() for leaf in _leaves(v, str(k))]
    return [(key, doc)]


async def test_units_of_measure_json_and_yaml(sqlite_api: Api) -> None:
    r = await sqlite_api.get("/uom")
    assert r.status_code == 200
    uom = r.json()["uom"]
    assert "C" in uom["units"]["temperature"]["values"]
    y = await sqlite_api.client.get("/api/v3/uom", headers={"Accept": "application/x-yaml"})
    assert y.status_code == 200 and b"Units:" in y.content


async def test_secret_is_refused_as_not_implemented_after_validation(sqlite_api: Api) -> None:
    bad = await sqlite_api.client.post("/api/v3/secret", json={"apiVersion": "v3"})
    assert bad.status_code == 400 and "secretName" in bad.json()["message"]
    ok = await sqlite_api.client.post(
        "/api/v3/secret",
        json={"apiVersion": "v3", "secretName": "db", "secretData": [{"key": "u", "value": "p"}]},
    )
    assert ok.status_code == 501 and ok.json()["statusCode"] == 501


async def test_correlation_id_is_echoed_or_generated(sqlite_api: Api) -> None:
    cid = "1c7e4f0e-4a8b-4f38-b6a8-0b2a0b5e9c11"
    r = await sqlite_api.client.get("/api/v3/ping", headers={"X-Correlation-ID": cid})
    assert r.headers["x-correlation-id"] == cid
    generated = (await sqlite_api.get("/device/all")).headers["x-correlation-id"]
    uuid.UUID(generated)


async def test_unknown_route_and_method_answer_in_the_envelope(sqlite_api: Api) -> None:
    r = await sqlite_api.get("/nothing/here")
    assert r.status_code == 404 and r.json()["statusCode"] == 404
    r = await sqlite_api.client.put("/api/v3/device", json=[])
    assert r.status_code == 405 and r.json()["statusCode"] == 405


async def test_batch_answers_207_in_order_with_request_ids(api: Api) -> None:
    rid1, rid2 = str(uuid.uuid4()), str(uuid.uuid4())
    svc = {"baseAddress": "http://a:1", "adminState": "LOCKED"}
    r = await api.post(
        "/deviceservice",
        [
            {"apiVersion": "v3", "requestId": rid1, "service": {"name": "s1", **svc}},
            {"apiVersion": "v3", "requestId": rid2, "service": {"name": "s1", **svc}},
            {"apiVersion": "v3", "service": {"name": "s2", **svc}},
        ],
    )
    assert r.status_code == 207
    first, second, third = r.json()
    assert first["statusCode"] == 201 and first["requestId"] == rid1 and uuid.UUID(first["id"])
    assert second["statusCode"] == 409 and second["requestId"] == rid2
    assert "s1" in second["message"]
    assert third["statusCode"] == 201 and "requestId" not in third and "message" not in third
    assert list(first) == ["apiVersion", "requestId", "statusCode", "id"]


async def test_one_invalid_item_fails_the_whole_batch_and_stores_nothing(api: Api) -> None:
    good = {"name": "ok", "baseAddress": "http://a:1", "adminState": "UNLOCKED"}
    bad = {"name": "bad", "baseAddress": "http://a:1", "adminState": "SLEEPY"}
    r = await api.post(
        "/deviceservice",
        [{"apiVersion": "v3", "service": good}, {"apiVersion": "v3", "service": bad}],
    )
    assert r.status_code == 400
    body = r.json()
    assert body["statusCode"] == 400 and "[1].service.adminState" in body["message"]
    assert (await api.get("/deviceservice/all")).json()["totalCount"] == 0
    assert await api.events() == []


async def test_batch_body_shape_errors(sqlite_api: Api) -> None:
    c = sqlite_api.client
    for content in (b"{}", b'{"apiVersion":"v3"}', b"not json", b"", b"[1, 2]", b'"x"'):
        r = await c.post("/api/v3/device", content=content)
        assert r.status_code == 400, content
        assert r.json()["message"]
    empty = await c.post("/api/v3/device", content=b"[]")
    assert empty.status_code == 207 and empty.json() == []


async def test_api_version_is_required_and_request_id_must_be_a_uuid(sqlite_api: Api) -> None:
    s = {"name": "s", "baseAddress": "http://a:1", "adminState": "UNLOCKED"}
    r = await sqlite_api.post("/deviceservice", [{"service": s}])
    assert r.status_code == 400 and "apiVersion" in r.json()["message"]
    r = await sqlite_api.post("/deviceservice", [{"apiVersion": "", "service": s}])
    assert r.status_code == 400
    r = await sqlite_api.post(
        "/deviceservice", [{"apiVersion": "v3", "requestId": "nope", "service": s}]
    )
    assert r.status_code == 400 and "requestId" in r.json()["message"]
    r = await sqlite_api.post(
        "/deviceservice", [{"apiVersion": "v3", "requestId": None, "service": s}]
    )
    assert r.status_code == 207 and r.json()[0]["statusCode"] == 201


async def test_keys_match_case_insensitively_and_unknown_keys_are_ignored(sqlite_api: Api) -> None:
    r = await sqlite_api.post(
        "/deviceservice",
        [
            {
                "APIVERSION": "v3",
                "Service": {
                    "NAME": "s",
                    "baseaddress": "http://a:1",
                    "AdminState": "UNLOCKED",
                    "origin": 17,
                    "whatever": {},
                },
            }
        ],
    )
    assert r.status_code == 207 and r.json()[0]["statusCode"] == 201, r.text
    got = (await sqlite_api.get("/deviceservice/name/s")).json()["service"]
    assert got["baseAddress"] == "http://a:1" and "origin" not in got


async def test_exact_key_beats_case_folded_key(sqlite_api: Api) -> None:
    r = await sqlite_api.post(
        "/deviceservice",
        [
            {
                "apiVersion": "v3",
                "service": {
                    "name": "s",
                    "NAME": "other",
                    "baseAddress": "http://a:1",
                    "adminState": "UNLOCKED",
                },
            }
        ],
    )
    assert r.json()[0]["statusCode"] == 201
    assert (await sqlite_api.get("/deviceservice/name/s")).status_code == 200


async def test_null_is_accepted_for_optional_fields(sqlite_api: Api) -> None:
    r = await sqlite_api.post(
        "/deviceservice",
        [
            {
                "apiVersion": "v3",
                "requestId": None,
                "service": {
                    "id": None,
                    "name": "s",
                    "description": None,
                    "labels": None,
                    "properties": None,
                    "baseAddress": "http://a:1",
                    "adminState": "UNLOCKED",
                    "created": 0,
                    "modified": 0,
                },
            }
        ],
    )
    assert r.json()[0]["statusCode"] == 201, r.text


async def test_wrong_types_are_refused_like_go_does(sqlite_api: Api) -> None:
    base = {"name": "s", "baseAddress": "http://a:1", "adminState": "UNLOCKED"}
    for field, value in (
        ("name", 5),
        ("labels", "a"),
        ("labels", [1]),
        ("adminState", True),
        ("properties", []),
        ("baseAddress", "not a uri"),
        ("name", "  "),
        ("name", "x" * 300),
        ("name", "a\x00b"),
        ("description", "a\x00"),
    ):
        body = dict(base, **{field: value})
        r = await sqlite_api.post("/deviceservice", [{"apiVersion": "v3", "service": body}])
        assert r.status_code == 400, (field, value, r.text)
        assert field in r.json()["message"], r.json()["message"]


async def test_oversized_body_is_413(tmp_path) -> None:
    import httpx

    from tests.support.api import make_service

    service, _ = await make_service("sqlite", tmp_path, max_request_bytes=2048)
    transport = httpx.ASGITransport(app=service.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://e") as c:
        r = await c.post("/api/v3/deviceservice", content=b"[" + b" " * 5000 + b"]")
        assert r.status_code == 413 and r.json()["statusCode"] == 413
    await service.store.close()


async def test_ids_must_be_canonical_uuids_and_names_free_of_c1_controls(sqlite_api: Api) -> None:
    base = {"name": "s", "baseAddress": "http://a:1", "adminState": "UNLOCKED"}
    for bad_id in (
        "{12345678-1234-1234-1234-123456789abc}",
        "urn:uuid:12345678-1234-1234-1234-123456789abc",
        "12345678123412341234123456789abc",
    ):
        r = await sqlite_api.post(
            "/deviceservice", [{"apiVersion": "v3", "service": {**base, "id": bad_id}}]
        )
        assert r.status_code == 400, bad_id
    r = await sqlite_api.post(
        "/deviceservice", [{"apiVersion": "v3", "service": {**base, "name": "a\x85b"}}]
    )
    assert r.status_code == 400
    assert (
        await sqlite_api.get("/device/id/{12345678-1234-1234-1234-123456789abc}")
    ).status_code == 400
