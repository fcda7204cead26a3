"""core-command's checks with a device command's ``mappings``: the value checked against the
resource is the one the device service will write (the mapped one), and the value sent is
the one given, because the device service maps it itself."""

from __future__ import annotations

import pytest

from edgemeta.documents.profiles import profile_from
from edgemeta.domain.commands import check_set, find
from edgemeta.domain.errors import ContractInvalid
from edgemeta.domain.records import DeviceProfile


def _profile() -> DeviceProfile:
    return profile_from(
        {
            "id": "p-1",
            "name": "switch",
            "deviceResources": [
                {
                    "name": "power",
                    "properties": {"valueType": "Uint8", "readWrite": "RW", "maximum": 1},
                }
            ],
            "deviceCommands": [
                {
                    "name": "state",
                    "readWrite": "RW",
                    "resourceOperations": [
                        {"deviceResource": "power", "mappings": {"on": "1", "off": "0", "x": "7"}}
                    ],
                }
            ],
        }
    )


def test_a_mapped_value_is_checked_as_mapped_and_sent_as_given() -> None:
    state = find(_profile(), "state")
    assert check_set(state, {"power": "on"}) == {"power": "on"}
    assert check_set(state, {"power": 0}) == {"power": "0"}  # no key: checked and sent as is


def test_a_mapped_value_out_of_range_is_refused_naming_both() -> None:
    state = find(_profile(), "state")
    with pytest.raises(ContractInvalid) as e:
        check_set(state, {"power": "x"})
    assert "above the maximum 1" in e.value.message and "'x' maps to it" in e.value.message


def test_the_resource_itself_has_no_table() -> None:
    with pytest.raises(ContractInvalid) as e:
        check_set(find(_profile(), "power"), {"power": "on"})
    assert "not a Uint8" in e.value.message
