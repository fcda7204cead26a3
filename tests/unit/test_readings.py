"""core-data's event parsing and value rules, without a database."""

from __future__ import annotations

import uuid

import orjson
import pytest

from edgemeta.documents.common import fold_keys
from edgemeta.documents.coredata import check_event, numeric_document, parse_request
from edgemeta.domain.errors import ContractInvalid
from edgemeta.domain.readings import EventAddress, check_scalar
from edgemeta.domain.records import (
    AdminState,
    Device,
    DeviceProfile,
    DeviceResource,
    OperatingState,
    ReadWrite,
    ResourceProperties,
)

PROFILE = DeviceProfile(
    id="p",
    name="prof",
    device_resources=(
        DeviceResource(
            name="temp",
            properties=ResourceProperties(value_type="Float32", read_write=ReadWrite.R, units="C"),
        ),
    ),
)
DEVICE = Device(
    id="d",
    name="dev",
    service_name="ds",
    admin_state=AdminState.UNLOCKED,
    operating_state=OperatingState.UP,
    protocols={},
    profile_name="prof",
)
ADDRESS = EventAddress("ds", "prof", "dev", "temp")


def _event(**reading: object) -> dict[str, object]:
    return {
        "apiVersion": "v3",
        "id": str(uuid.uuid4()),
        "deviceName": "dev",
        "origin": 1,
        "readings": [{"resourceName": "temp", "valueType": "Float32", "value": "21.5", **reading}],
    }


def test_keys_fold_as_go_decodes_them_and_an_exact_key_wins() -> None:
    table = {"devicename": "deviceName"}
    assert fold_keys({"DEVICENAME": "a"}, table) == {"deviceName": "a"}
    assert fold_keys({"DeviceName": "a", "deviceName": "b"}, table) == {"deviceName": "b"}
    assert fold_keys({"other": 1}, table) == {}


def test_a_valid_event_becomes_its_documents() -> None:
    checked = check_event(_event(), ADDRESS, DEVICE, PROFILE)
    assert (checked.profile_name, checked.source_name) == ("prof", "temp")
    (reading,) = checked.readings
    doc = orjson.loads(reading.document)
    assert doc["units"] == "C" and doc["value"] == "21.5" and doc["profileName"] == "prof"
    assert orjson.loads(numeric_document(reading.document))["value"] == 21.5


@pytest.mark.parametrize(
    ("reading", "says"),
    [
        ({"valueType": "Int32"}, "valueType"),
        ({"resourceName": "nope"}, "resourceName"),
        ({"value": "warm"}, "value"),
    ],
)
def test_a_bad_reading_is_refused_naming_its_field(reading: dict[str, object], says: str) -> None:
    with pytest.raises(ContractInvalid, match=rf"event\.readings\[0\]\.{says}"):
        check_event(_event(**reading), ADDRESS, DEVICE, PROFILE)


def test_the_request_envelope_is_checked() -> None:
    event, rid = parse_request({"APIVERSION": "v3", "event": {"id": "x"}})
    assert event == {"id": "x"} and rid == ""
    with pytest.raises(ContractInvalid, match="requestId"):
        parse_request({"apiVersion": "v3", "requestId": "no", "event": {}})


@pytest.mark.parametrize(
    ("value_type", "text", "ok"),
    [("Bool", "T", True), ("Bool", "yes", False), ("Uint8", "256", False), ("Int8", "-128", True)],
)
def test_scalars_follow_go_strconv(value_type: str, text: str, ok: bool) -> None:
    if ok:
        check_scalar(value_type, text, "v")
    else:
        with pytest.raises(ContractInvalid):
            check_scalar(value_type, text, "v")
