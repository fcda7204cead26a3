"""Values by valueType: driver values to core-data readings, set-request values to checked
driver values, and provision-watcher matching (pure functions)."""

from __future__ import annotations

from typing import Any

import pytest

from edgemeta.sdk import DiscoveredDevice
from edgemeta.sdk.discovery import match
from edgemeta.sdk.driver import CommandError
from edgemeta.sdk.values import Profile, reading, write_values

PROFILE = Profile(
    {
        "name": "p",
        "deviceResources": [
            {"name": "f", "properties": {"valueType": "Float32", "readWrite": "RW"}},
            {"name": "u8", "properties": {"valueType": "Uint8", "readWrite": "RW", "maximum": 200}},
            {"name": "b", "properties": {"valueType": "Bool", "readWrite": "RW"}},
            {
                "name": "arr",
                "properties": {"valueType": "Int16Array", "readWrite": "RW", "minimum": -5},
            },
            {
                "name": "bin",
                "properties": {"valueType": "Binary", "readWrite": "R", "mediaType": "image/png"},
            },
            {"name": "obj", "properties": {"valueType": "Object", "readWrite": "RW"}},
        ],
        "deviceCommands": [
            {
                "name": "pair",
                "readWrite": "RW",
                "resourceOperations": [
                    {"deviceResource": "u8", "defaultValue": "7"},
                    {"deviceResource": "b"},
                ],
            }
        ],
    }
)


@pytest.mark.parametrize(
    ("resource", "value", "expected"),
    [
        ("f", 0.1, {"value": "0.1"}),
        ("f", 21.5, {"value": "21.5"}),
        ("u8", 255, {"value": "255"}),
        ("b", True, {"value": "true"}),
        ("arr", [1, -2], {"value": "[1,-2]"}),
        ("bin", b"\x89PNG", {"binaryValue": "iVBORw==", "mediaType": "image/png"}),
        ("obj", {"a": [1]}, {"objectValue": {"a": [1]}}),
    ],
)
def test_readings_carry_values_as_core_data_takes_them(
    resource: str, value: Any, expected: dict[str, Any]
) -> None:
    r = reading("d", "p", PROFILE.resources[resource], value, 5)
    assert {k: r[k] for k in expected} == expected
    assert r["valueType"] == PROFILE.resources[resource].value_type and r["origin"] == 5


@pytest.mark.parametrize(
    ("resource", "value"), [("u8", 256), ("u8", -1), ("f", 1e39), ("b", "maybe")]
)
def test_a_driver_value_out_of_its_type_is_the_service_fault(resource: str, value: Any) -> None:
    with pytest.raises(CommandError) as e:
        reading("d", "p", PROFILE.resources[resource], value, 0)
    assert e.value.status == 500


def test_writes_parse_by_type_and_fill_defaults() -> None:
    pair = PROFILE.command("pair")
    assert [(r.name, v) for r, v in write_values(pair, {"b": "T"})] == [("u8", 7), ("b", True)]
    (f,) = write_values(PROFILE.command("f"), {"f": 1.5})
    assert f[1] == 1.5
    (arr,) = write_values(PROFILE.command("arr"), {"arr": "[3,4]"})
    assert arr[1] == [3, 4]
    (obj,) = write_values(PROFILE.command("obj"), {"obj": {"k": "v"}})
    assert obj[1] == {"k": "v"}


@pytest.mark.parametrize(
    ("command", "given", "status", "words"),
    [
        ("u8", {"u8": "201"}, 400, "above its maximum 200"),
        ("u8", {"u8": "1.5"}, 400, "not an Uint8"),
        ("arr", {"arr": "[1,-6]"}, 400, "below its minimum -5"),
        ("bin", {"bin": "AA=="}, 405, "not writable"),
        ("pair", {}, 400, "needs a value for 'b'"),
        ("nope", {}, 404, "not found"),
    ],
)
def test_writes_refused(command: str, given: dict[str, Any], status: int, words: str) -> None:
    with pytest.raises(CommandError) as e:
        write_values(PROFILE.command(command), given)
    assert e.value.status == status and words in e.value.message


def test_watchers_match_like_edgex() -> None:
    watchers = [
        {"name": "locked", "adminState": "LOCKED", "identifiers": {"MAC": "."}},
        {
            "name": "ble",
            "adminState": "UNLOCKED",
            "identifiers": {"MAC": "^aa:", "Kind": "badge"},
            "blockingIdentifiers": {"MAC": ["aa:00"]},
        },
    ]

    def found(*protocols: dict[str, str]) -> str | None:
        d = DiscoveredDevice("x", {f"p{i}": p for i, p in enumerate(protocols)})
        w = match(d, watchers)
        return None if w is None else str(w["name"])

    assert found({"MAC": "aa:01", "Kind": "a-badge-2"}) == "ble"  # a match anywhere
    assert found({"MAC": "aa:01"}, {"Kind": "badge"}) is None  # one protocol holds all keys
    assert found({"MAC": "aa:00", "Kind": "badge"}) is None  # blocked
    assert found({"MAC": "bb:01", "Kind": "badge"}) is None


TRANSFORMED = Profile(
    {
        "name": "t",
        "deviceResources": [
            {
                "name": "temp",
                "properties": {
                    "valueType": "Float32",
                    "readWrite": "RW",
                    "scale": 0.1,
                    "offset": -40,
                    "maximum": 60,
                },
            },
            {
                "name": "flags",
                "properties": {"valueType": "Uint16", "readWrite": "R", "mask": 0xF0, "shift": -4},
            },
            {
                "name": "level",
                "properties": {"valueType": "Int16", "readWrite": "RW", "scale": 10},
            },
        ],
    }
)


def test_transforms_apply_on_read_and_invert_on_write() -> None:
    temp = TRANSFORMED.resources["temp"]
    assert reading("d", "t", temp, 615, 0)["value"] == "21.5"  # 615 * 0.1 - 40
    (written,) = write_values(TRANSFORMED.command("temp"), {"temp": "21.5"})
    assert written[1] == pytest.approx(615)  # the raw value the driver writes
    flags = TRANSFORMED.resources["flags"]
    assert reading("d", "t", flags, 0xAB, 0)["value"] == "10"  # (0xAB & 0xF0) >> 4
    level = TRANSFORMED.resources["level"]
    assert reading("d", "t", level, 7, 0)["value"] == "70"
    (raw,) = write_values(TRANSFORMED.command("level"), {"level": "75"})
    assert raw[1] == 7  # 7.5 truncated toward zero, as Go converts
    with pytest.raises(CommandError) as e:  # the maximum bounds the value in the profile's units
        write_values(TRANSFORMED.command("temp"), {"temp": "61"})
    assert e.value.status == 400
    with pytest.raises(CommandError) as over:
        reading("d", "t", level, 4000, 0)  # 40000 does not fit an Int16
    assert over.value.status == 500


SWITCH = Profile(
    {
        "name": "switch",
        "deviceResources": [
            {"name": "power", "properties": {"valueType": "Uint8", "readWrite": "RW", "maximum": 1}}
        ],
        # EdgeX applies one table both ways, key -> value: a table for reads ("1" read is
        # "on") and one for writes ("on" written is "1") are different commands.
        "deviceCommands": [
            {
                "name": "state",
                "readWrite": "R",
                "resourceOperations": [
                    {"deviceResource": "power", "mappings": {"0": "off", "1": "on"}}
                ],
            },
            {
                "name": "switch",
                "readWrite": "W",
                "resourceOperations": [
                    {"deviceResource": "power", "mappings": {"on": "1", "off": "0"}}
                ],
            },
        ],
    }
)


def test_mappings_translate_a_read_into_a_string_reading() -> None:
    """EdgeX's Go SDK: a read value that is a key of the operation's table becomes the mapped
    text, a String reading; one the table does not name stays as it was."""
    mappings = SWITCH.command("state").mappings["power"]
    on = reading("d", "switch", SWITCH.resources["power"], 1, 0, mappings)
    assert (on["value"], on["valueType"]) == ("on", "String")
    plain = reading("d", "switch", SWITCH.resources["power"], 1, 0)  # the resource itself
    assert (plain["value"], plain["valueType"]) == ("1", "Uint8")


def test_mappings_translate_a_write_before_it_is_checked() -> None:
    switch = SWITCH.command("switch")
    assert [v for _, v in write_values(switch, {"power": "on"})] == [1]
    assert [v for _, v in write_values(switch, {"power": 0})] == [0]  # not a key: as given
    with pytest.raises(CommandError) as e:
        write_values(switch, {"power": "dim"})  # not a key, and not an Uint8
    assert e.value.status == 400
    # the lone resource has no table: "on" is no Uint8
    with pytest.raises(CommandError):
        write_values(SWITCH.command("power"), {"power": "on"})
