"""The core-keeper-compatible key/value API: core-keeper's shapes and status codes, and
edgemeta's writable settings changed through it (checked, applied at once, kept), on SQLite
and PostgreSQL."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import jsonschema_rs
import pytest
import yaml
from starlette.routing import Route

from edgemeta.api.app import keeper_openapi_document, route_template
from edgemeta.bootstrap import Service, build
from edgemeta.settings import Settings
from edgemeta.usecases.keeper import WRITABLE
from tests.support.api import Api, make_service
from tests.support.schema import drop_schema

KVS = "/api/v3/kvs/key/"
STRICT = f"{WRITABLE}/ProfileChange/StrictDeviceProfileChanges"


@dataclass
class Keeper:
    """A service with clients of its core-metadata and core-keeper apps."""

    service: Service
    meta: Api
    kv: httpx.AsyncClient

    async def put(self, key: str, value: Any, **params: str) -> httpx.Response:
        return await self.kv.put(
            KVS + key, params=params, json={"apiVersion": "v3", "value": value}
        )

    async def get(self, key: str, **params: str) -> httpx.Response:
        return await self.kv.get(KVS + key, params=params)

    async def delete(self, key: str, **params: str) -> httpx.Response:
        return await self.kv.delete(KVS + key, params=params)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def keeper(request: pytest.FixtureRequest, tmp_path: Any) -> AsyncIterator[Keeper]:
    service, schema = await make_service(request.param, tmp_path)
    assert service.keeper_app is not None
    meta = httpx.AsyncClient(transport=httpx.ASGITransport(app=service.app), base_url="http://m")
    kv = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=service.keeper_app), base_url="http://k"
    )
    level = logging.getLogger("edgemeta").level
    try:
        yield Keeper(service, Api(meta, service), kv)
    finally:
        logging.getLogger("edgemeta").setLevel(level)
        await meta.aclose()
        await kv.aclose()
        await service.stop()
        if schema:
            await drop_schema(schema)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


async def _update_profile(k: Keeper) -> httpx.Response:
    return await k.meta.client.put(
        "/api/v3/deviceprofile", json=[{"apiVersion": "v3", "profile": {"name": "prof"}}]
    )


# -- writable settings -----------------------------------------------------------------------


async def test_flipping_strict_profile_changes_applies_to_the_very_next_update(
    keeper: Keeper,
) -> None:
    await keeper.meta.add_profile("prof")
    r = await keeper.put(STRICT, True)
    assert r.status_code == 200, r.text
    assert r.json() == {"apiVersion": "v3", "statusCode": 200, "response": [STRICT]}
    r = await _update_profile(keeper)
    assert r.status_code == 423 and "StrictDeviceProfileChanges" in r.json()["message"]
    assert (await keeper.put(STRICT, "false")).status_code == 200
    r = await _update_profile(keeper)
    assert r.status_code == 207 and r.json()[0]["statusCode"] == 200, r.text


async def test_flattened_section_sets_several_settings_in_one_request(keeper: Keeper) -> None:
    r = await keeper.put(
        WRITABLE,
        {
            "LogLevel": "DEBUG",
            "MaxResultCount": 5,
            "ProfileChange": {"StrictDeviceProfileDeletes": True},
            "UoM": {"Validation": "true"},
        },
        flatten="true",
    )
    assert r.status_code == 200, r.text
    assert sorted(r.json()["response"]) == sorted(
        f"{WRITABLE}/{k}"
        for k in (
            "LogLevel",
            "MaxResultCount",
            "ProfileChange/StrictDeviceProfileDeletes",
            "UoM/Validation",
        )
    )
    policy = keeper.service.deps.policy
    assert policy.log_level == "DEBUG" and policy.max_result_count == 5
    assert policy.strict_profile_deletes and policy.uom_validation
    assert logging.getLogger("edgemeta").getEffectiveLevel() == logging.DEBUG
    # MaxResultCount: the very next list refuses a larger page.
    r = await keeper.meta.get("/device/all", limit=6)
    assert r.status_code == 400, r.text
    assert (await keeper.meta.get("/device/all", limit=5)).status_code == 200
    # UoM/Validation: a profile with units outside the list is refused now.
    r = await keeper.meta.post(
        "/deviceprofile",
        [
            {
                "apiVersion": "v3",
                "profile": {
                    "name": "odd-units",
                    "deviceResources": [
                        {
                            "name": "t",
                            "properties": {
                                "valueType": "Float32",
                                "readWrite": "R",
                                "units": "furlongs",
                            },
                        }
                    ],
                },
            }
        ],
    )
    assert r.json()[0]["statusCode"] == 400, r.text
    # StrictDeviceProfileDeletes
    await keeper.meta.add_profile("prof")
    assert (await keeper.meta.delete("/deviceprofile/name/prof")).status_code == 423
    # GET /config answers the settings as they are now.
    config = (await keeper.meta.get("/config")).json()["config"]
    assert config["Writable"]["LogLevel"] == "DEBUG"
    assert config["Writable"]["ProfileChange"]["StrictDeviceProfileDeletes"] is True
    assert config["Writable"]["UoM"]["Validation"] is True
    assert config["Service"]["MaxResultCount"] == 5


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ProfileChange/StrictDeviceProfileChanges", "yes"),
        ("ProfileChange/StrictDeviceProfileChanges", 1.5),
        ("ProfileChange/StrictDeviceProfileDeletes", {"a": 1}),
        ("UoM/Validation", [True]),
        ("MaxResultCount", 0),
        ("MaxResultCount", "ten"),
        ("MaxResultCount", 2.5),
        ("MaxResultCount", 10_000_000),
        ("MaxDevices", -1),
        ("LogLevel", "LOUD"),
        ("LogLevel", 3),
    ],
)
async def test_a_bad_value_is_400_and_nothing_is_stored(
    keeper: Keeper, name: str, value: Any
) -> None:
    before = repr(keeper.service.deps.policy)
    r = await keeper.put(f"{WRITABLE}/{name}", value)
    assert r.status_code == 400, r.text
    assert r.json()["statusCode"] == 400 and name in r.json()["message"]
    assert (await keeper.get(WRITABLE)).status_code == 404
    assert repr(keeper.service.deps.policy) == before


async def test_one_bad_value_in_a_flattened_section_stores_nothing(keeper: Keeper) -> None:
    r = await keeper.put(
        WRITABLE,
        {"LogLevel": "DEBUG", "ProfileChange": {"StrictDeviceProfileChanges": "maybe"}},
        flatten="true",
    )
    assert r.status_code == 400, r.text
    assert (await keeper.get(WRITABLE)).status_code == 404
    assert keeper.service.deps.policy.log_level == "INFO"


@pytest.mark.parametrize(
    "name",
    [
        "StrictDeviceProfileChanges",  # EdgeX keeps it under ProfileChange/
        "Telemetry/Interval",
        "InsecureSecrets/DB/SecretName",
        "ProfileChange",  # a section, not a setting
        "",  # the Writable section itself, unflattened
    ],
)
async def test_an_unknown_writable_key_is_400(keeper: Keeper, name: str) -> None:
    key = f"{WRITABLE}/{name}" if name else WRITABLE
    r = await keeper.put(key, True)
    assert r.status_code == 400, r.text
    assert "not one of edgemeta's writable settings" in r.json()["message"]
    assert (await keeper.get(WRITABLE)).status_code == 404


async def test_the_short_name_points_at_edgex_s_key(keeper: Keeper) -> None:
    r = await keeper.put(f"{WRITABLE}/StrictDeviceProfileChanges", True)
    assert r.status_code == 400
    assert f"did you mean {STRICT}" in r.json()["message"]


async def test_deleting_a_setting_puts_the_start_up_value_back(keeper: Keeper) -> None:
    await keeper.meta.add_profile("prof")
    assert (await keeper.put(STRICT, True)).status_code == 200
    assert (await _update_profile(keeper)).status_code == 423
    r = await keeper.delete(STRICT)
    assert r.status_code == 200 and r.json()["response"] == [STRICT]
    assert keeper.service.deps.policy.strict_profile_changes is False
    assert (await _update_profile(keeper)).status_code == 207


async def test_stored_settings_override_the_environment_at_start(
    keeper: Keeper, tmp_path: Any
) -> None:
    assert (await keeper.put(STRICT, True)).status_code == 200
    assert (await keeper.put(f"{WRITABLE}/MaxResultCount", 9)).status_code == 200
    # A second service on the same database, started with other values in its settings.
    settings = keeper.service.settings.model_copy(
        update={"strict_profile_changes": False, "max_result_count": 100}
    )
    again = await build(settings)
    try:
        assert again.deps.policy.strict_profile_changes is True
        assert again.deps.policy.max_result_count == 9
    finally:
        await again.stop()


async def test_a_stored_value_that_no_longer_passes_is_ignored_at_start(
    keeper: Keeper, caplog: pytest.LogCaptureFixture
) -> None:
    async with keeper.service.store.write() as tx:
        await tx.kv.put(f"{WRITABLE}/MaxResultCount", "lots", 1)
    settings = keeper.service.settings.model_copy(update={"max_result_count": 77})
    with caplog.at_level(logging.WARNING, logger="edgemeta.keeper"):
        again = await build(settings)
    try:
        assert again.deps.policy.max_result_count == 77
        assert "stored writable setting ignored" in caplog.text
    finally:
        await again.stop()


async def test_another_instance_on_the_same_database_takes_the_change(keeper: Keeper) -> None:
    other = await build(keeper.service.settings.model_copy(update={"keeper_reload_seconds": 0.05}))
    assert other.keeper is not None
    try:
        await other.start()  # starts the reload loop
        assert (await keeper.put(STRICT, True)).status_code == 200
        assert keeper.service.deps.policy.strict_profile_changes is True  # here: at once
        await _eventually(lambda: other.deps.policy.strict_profile_changes is True)
        assert (await keeper.delete(STRICT)).status_code == 200
        await _eventually(lambda: other.deps.policy.strict_profile_changes is False)
    finally:
        await other.stop()


async def test_a_reload_never_undoes_a_write_made_while_it_read(keeper: Keeper) -> None:
    k = keeper.service.keeper
    assert k is not None
    store = keeper.service.store

    class SlowRead:
        """The store, with a PUT slipped in while the reload's read is under way."""

        def __init__(self) -> None:
            self.wrote = False

        def read(self) -> Any:
            return self._read()

        @contextlib.asynccontextmanager
        async def _read(self) -> AsyncIterator[Any]:
            async with store.read() as tx:
                entries = await tx.kv.tree(WRITABLE)  # before the PUT: nothing stored
            if not self.wrote:
                self.wrote = True
                k.store = store
                assert (await keeper.put(STRICT, True)).status_code == 200

            class Tx:
                class kv:  # noqa: N801 - stands in for the repository attribute
                    @staticmethod
                    async def tree(key: str) -> list[Any]:
                        return entries

            yield Tx()

    k.store = SlowRead()  # type: ignore[assignment]
    await k.load()
    k.store = store
    assert keeper.service.deps.policy.strict_profile_changes is True


async def _eventually(check: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "not applied in time"
        await asyncio.sleep(0.02)


# -- the key/value store -----------------------------------------------------------------------


async def test_any_key_may_be_stored_and_read_back_in_each_shape(keeper: Keeper) -> None:
    config = {"Writable": {"LogLevel": "INFO", "PersistData": False}, "Service": {"Port": 59880}}
    r = await keeper.put("edgex/v4/core-data", config, flatten="true")
    assert r.status_code == 200, r.text
    keys = [
        "edgex/v4/core-data/Service/Port",
        "edgex/v4/core-data/Writable/LogLevel",
        "edgex/v4/core-data/Writable/PersistData",
    ]
    assert sorted(r.json()["response"]) == keys
    r = await keeper.get("edgex/v4/core-data")
    assert r.status_code == 200
    body = r.json()
    assert body["apiVersion"] == "v3" and body["statusCode"] == 200 and "message" not in body
    assert [e["key"] for e in body["response"]] == keys
    assert [e["value"] for e in body["response"]] == [_b64("59880"), _b64("INFO"), _b64("false")]
    for e in body["response"]:
        assert list(e) == ["key", "created", "modified", "value"]
        assert isinstance(e["created"], int) and e["modified"] >= e["created"] > 0
    plain = (await keeper.get("edgex/v4/core-data/Writable", plaintext="true")).json()
    assert [(e["key"], e["value"]) for e in plain["response"]] == [
        ("edgex/v4/core-data/Writable/LogLevel", "INFO"),
        ("edgex/v4/core-data/Writable/PersistData", "false"),
    ]
    only = (await keeper.get("edgex/v4/core-data", keyOnly="true")).json()
    assert only == {"apiVersion": "v3", "statusCode": 200, "response": keys}
    # A key matches itself and what is below it, not a longer name sharing its start.
    assert (await keeper.get("edgex/v4/core-dat")).status_code == 404


async def test_unflattened_values_are_stored_as_text_or_json(keeper: Keeper) -> None:
    cases = {
        "t/str": ("hello", "hello"),
        "t/empty": ("", ""),
        "t/int": (42, "42"),
        "t/float": (0.25, "0.25"),
        "t/whole-float": (5.0, "5"),
        "t/bool": (False, "false"),
        "t/object": ({"a": [1, 2]}, '{"a":[1,2]}'),
        "t/list": (["x", 1], '["x",1]'),
    }
    for key, (value, _) in cases.items():
        r = await keeper.put(key, value)
        assert r.status_code == 200 and r.json()["response"] == [key], r.text
    got = (await keeper.get("t", plaintext="true")).json()["response"]
    assert {e["key"]: e["value"] for e in got} == {k: text for k, (_, text) in cases.items()}


async def test_a_put_replaces_the_value_and_keeps_created(keeper: Keeper) -> None:
    await keeper.put("a/b", "one")
    first = (await keeper.get("a/b")).json()["response"][0]
    await keeper.put("a/b", "two")
    second = (await keeper.get("a/b", plaintext="true")).json()["response"][0]
    assert second["value"] == "two"
    assert second["created"] == first["created"] and second["modified"] >= first["modified"]


async def test_absent_key_is_404(keeper: Keeper) -> None:
    r = await keeper.get("no/such/key")
    assert r.status_code == 404 and r.json()["statusCode"] == 404
    assert "no/such/key" in r.json()["message"]
    assert (await keeper.delete("no/such/key")).status_code == 404


async def test_delete_needs_prefix_match_to_take_the_keys_below(keeper: Keeper) -> None:
    await keeper.put("svc", {"A": 1, "B": {"C": 2}}, flatten="true")
    await keeper.put("svc", "itself")
    await keeper.put("svc-other/x", 3)
    r = await keeper.delete("svc")
    assert r.status_code == 409 and r.json()["statusCode"] == 409
    assert len((await keeper.get("svc")).json()["response"]) == 3  # nothing deleted
    r = await keeper.delete("svc", prefixMatch="true")
    assert r.status_code == 200
    assert r.json() == {
        "apiVersion": "v3",
        "statusCode": 200,
        "response": ["svc", "svc/A", "svc/B/C"],
    }
    assert (await keeper.get("svc")).status_code == 404
    assert (await keeper.get("svc-other")).status_code == 200
    # Only the keys below: the key itself need not exist.
    await keeper.put("p", {"q": 1}, flatten="true")
    r = await keeper.delete("p", prefixMatch="true")
    assert r.json()["response"] == ["p/q"]


async def test_delete_with_prefix_match_resets_the_settings_below(keeper: Keeper) -> None:
    await keeper.put(WRITABLE, {"LogLevel": "ERROR", "MaxDevices": 3}, flatten="true")
    assert keeper.service.deps.policy.max_devices == 3
    r = await keeper.delete("edgex/v4/core-metadata", prefixMatch="true")
    assert r.status_code == 200 and len(r.json()["response"]) == 2
    assert keeper.service.deps.policy.max_devices == 0
    assert keeper.service.deps.policy.log_level == "INFO"


@pytest.mark.parametrize(
    ("method", "path", "params", "body"),
    [
        ("GET", "bad:key", {}, None),
        ("PUT", "bad key", {}, {"value": 1}),
        ("DELETE", "bad%00key", {}, None),
        ("GET", "k", {"keyOnly": "yes"}, None),
        ("PUT", "k", {"flatten": "maybe"}, {"value": 1}),
        ("DELETE", "k", {"prefixMatch": "2"}, None),
        ("PUT", "k", {}, {"apiVersion": "v3"}),  # no value
        ("PUT", "k", {}, {"value": None}),
        ("PUT", "k", {}, {"value": {}}),
        ("PUT", "k", {}, [1]),
        ("PUT", "k", {"flatten": "true"}, {"value": {"bad:name": 1}}),
    ],
)
async def test_bad_requests_are_400(
    keeper: Keeper, method: str, path: str, params: dict[str, str], body: Any
) -> None:
    kw: dict[str, Any] = {"params": params}
    if body is not None:
        kw["json"] = body
    r = await keeper.kv.request(method, KVS + path, **kw)
    assert r.status_code == 400, r.text
    assert r.json()["statusCode"] == 400 and r.json()["message"]


async def test_value_member_name_matches_in_any_case(keeper: Keeper) -> None:
    r = await keeper.kv.put(KVS + "case/key", json={"Value": "v"})
    assert r.status_code == 200
    got = (await keeper.get("case/key", plaintext="true")).json()["response"][0]
    assert got["value"] == "v"


async def test_ping_and_version(keeper: Keeper) -> None:
    ping = (await keeper.kv.get("/api/v3/ping")).json()
    assert ping["serviceName"] == "core-keeper" and ping["apiVersion"] == "v3"
    version = (await keeper.kv.get("/api/v3/version")).json()
    assert version["serviceName"] == "core-keeper" and version["version"]
    r = await keeper.kv.get("/api/v3/registry/all")
    assert r.status_code == 404 and r.json()["statusCode"] == 404  # the registry is not served


async def test_core_keeper_can_be_switched_off(tmp_path: Any) -> None:
    service = await build(
        Settings(
            database_url=f"sqlite:///{tmp_path / 'off.db'}",
            device_validation="never",
            core_keeper=False,
        )
    )
    try:
        assert service.keeper_app is None
    finally:
        await service.stop()


# -- the OpenAPI document ----------------------------------------------------------------------

KEEPER_DOC: dict[str, Any] = yaml.safe_load(keeper_openapi_document())


def _schema(component: str) -> Any:
    return jsonschema_rs.Draft202012Validator(
        {"$ref": f"#/components/schemas/{component}", "components": KEEPER_DOC["components"]}
    )


async def test_the_keeper_document_names_exactly_the_served_routes(keeper: Keeper) -> None:
    assert keeper.service.keeper_app is not None
    inner = keeper.service.keeper_app.app  # type: ignore[attr-defined]  # inside the middleware
    served = {
        (m, route_template(r.path))
        for r in inner.routes
        if isinstance(r, Route)
        for m in r.methods or ()
        if m != "HEAD"
    }
    base = KEEPER_DOC["servers"][0]["url"]
    documented = {
        (m.upper(), base + p)
        for p, item in KEEPER_DOC["paths"].items()
        for m in item
        if m in ("get", "put", "delete", "post", "patch")
    }
    assert documented == served
    r = await keeper.kv.get("/api/v3/openapi.yaml")
    assert r.status_code == 200 and r.content == keeper_openapi_document()


async def test_answers_match_the_document(keeper: Keeper) -> None:
    r = await keeper.put("doc", {"a": 1, "b": {"c": True}}, flatten="true")
    _schema("KeysResponse").validate(r.json())
    _schema("MultiKVResponse").validate((await keeper.get("doc")).json())
    _schema("KeysResponse").validate((await keeper.get("doc", keyOnly="true")).json())
    _schema("KeysResponse").validate((await keeper.delete("doc", prefixMatch="true")).json())
    _schema("BaseResponse").validate((await keeper.get("doc")).json())
    _schema("PingResponse").validate((await keeper.kv.get("/api/v3/ping")).json())
    _schema("VersionResponse").validate((await keeper.kv.get("/api/v3/version")).json())
    # A body the document calls invalid is refused by the service too.
    assert not _schema("UpdateKeysRequest").is_valid({"apiVersion": "v3"})
    assert (await keeper.kv.put(KVS + "doc", json={"apiVersion": "v3"})).status_code == 400
