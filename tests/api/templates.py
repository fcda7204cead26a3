"""Valid request bodies for every write operation, against the seeded inventory.

Each template is one valid element (or the one object, for the non-batch operations); the
targeted fuzz tests mutate them, and ``test_openapi`` checks that the OpenAPI document accepts
them, so the document and the tests agree on what "valid" is.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from tests.api.live import BASE
from tests.api.seed import DEVICES, PROFILES, SERVICES, WATCHERS, device_body


@dataclass(frozen=True)
class Template:
    """A valid request for one operation."""

    method: str
    path: str
    schema: str  # the OpenAPI component of one element (or of the whole body)
    body: dict[str, Any]
    batch: bool = True
    renames: tuple[str, ...] = ()  # key paths holding the new record's name (adds only)

    @property
    def label(self) -> str:
        """``METHOD /path``."""
        return f"{self.method} {self.path}"

    @property
    def url(self) -> str:
        """The full URL path."""
        return BASE + self.path

    def element(self) -> dict[str, Any]:
        """A fresh copy of the element."""
        return copy.deepcopy(self.body)

    def named(self, name: str) -> dict[str, Any]:
        """A copy whose new record is called ``name``."""
        body = self.element()
        for dotted in self.renames:
            *parents, last = dotted.split(".")
            node = body
            for key in parents:
                node = node[key]
            node[last] = name
        return body


def _profile(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v3",
        "profile": {
            "name": name,
            "manufacturer": "Acme",
            "model": "T-2000",
            "description": "a test profile",
            "labels": ["fz"],
            "deviceResources": [
                {
                    "name": "Level",
                    "description": "fill level",
                    "isHidden": False,
                    "properties": {
                        "valueType": "Float64",
                        "readWrite": "RW",
                        "units": "m",
                        "minimum": -1.5,
                        "maximum": 10.25,
                        "defaultValue": "0",
                        "mask": 255,
                        "shift": -2,
                        "scale": 0.5,
                        "offset": 1.5,
                        "base": 2.5,
                        "optional": {"x": 1},
                    },
                    "attributes": {"register": 100},
                    "tags": {"k": "v"},
                }
            ],
            "deviceCommands": [
                {
                    "name": "ReadLevel",
                    "isHidden": False,
                    "readWrite": "R",
                    "resourceOperations": [
                        {"deviceResource": "Level", "defaultValue": "1", "mappings": {"0": "off"}}
                    ],
                    "tags": {"k": "v"},
                }
            ],
        },
    }


def _profile_keeping_seed(name: str) -> dict[str, Any]:
    """:func:`_profile`, keeping the seeded resource the seeded devices' autoEvents name (the
    change rules refuse to remove it)."""
    body = _profile(name)
    body["profile"]["deviceResources"].append(
        {
            "name": "Temperature",
            "properties": {"valueType": "Float32", "readWrite": "R", "units": "C"},
        }
    )
    return body


def _watcher(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v3",
        "requestId": "6b1a6c3e-2f5e-4c1c-9a55-2a0c7a1c0b11",
        "provisionWatcher": {
            "name": name,
            "serviceName": SERVICES[0],
            "labels": ["fz"],
            "identifiers": {"Address": "10\\..*"},
            "blockingIdentifiers": {"Port": ["80", "443"]},
            "adminState": "LOCKED",
            "discoveredDevice": {
                "profileName": PROFILES[0],
                "adminState": "UNLOCKED",
                "autoEvents": [
                    {
                        "interval": "1s",
                        "onChange": True,
                        "onChangeThreshold": 0.5,
                        "sourceName": "Temperature",
                        "retention": {"maxCap": 10, "minCap": 1, "duration": "1h"},
                    }
                ],
                "properties": {"a": [1, 2]},
            },
        },
    }


ADDS = [
    Template(
        "POST",
        "/deviceservice",
        "AddDeviceServiceRequest",
        {
            "apiVersion": "v3",
            "service": {
                "name": "new-svc",
                "description": "a test service",
                "labels": ["fz", "b"],
                "baseAddress": "http://device-fz:59900",
                "adminState": "LOCKED",
                "properties": {"k": {"n": 1}},
            },
        },
        renames=("service.name",),
    ),
    Template(
        "POST",
        "/deviceprofile",
        "DeviceProfileRequest",
        _profile("new-profile"),
        renames=("profile.name",),
    ),
    Template(
        "POST",
        "/device",
        "AddDeviceRequest",
        device_body(
            "new-device",
            description="a test device",
            parent=DEVICES[0],
            location={"lat": 1.5, "tags": ["x"]},
            tags={"k": "v"},
            properties={"p": {"q": [1]}},
        ),
        renames=("device.name",),
    ),
    Template(
        "POST",
        "/provisionwatcher",
        "AddProvisionWatcherRequest",
        _watcher("new-watcher"),
        renames=("provisionWatcher.name",),
    ),
]

UPDATES = [
    Template(
        "PATCH",
        "/deviceservice",
        "UpdateDeviceServiceRequest",
        {
            "apiVersion": "v3",
            "service": {
                "name": SERVICES[0],
                "description": "patched",
                "labels": ["p"],
                "baseAddress": "http://other:1",
                "adminState": "LOCKED",
                "properties": {"a": 1},
            },
        },
    ),
    Template("PUT", "/deviceprofile", "DeviceProfileRequest", _profile_keeping_seed(PROFILES[1])),
    Template(
        "PATCH",
        "/deviceprofile/basicinfo",
        "DeviceProfileBasicInfoRequest",
        {
            "apiVersion": "v3",
            "basicinfo": {
                "name": PROFILES[0],
                "manufacturer": "Other",
                "description": "patched",
                "model": "M",
                "labels": ["p"],
            },
        },
    ),
    Template(
        "POST",
        "/deviceprofile/resource",
        "AddDeviceResourceRequest",
        {
            "apiVersion": "v3",
            "profileName": PROFILES[0],
            "resource": {
                "name": "Humidity",
                "description": "relative",
                "isHidden": True,
                "properties": {"valueType": "uint8", "readWrite": "R", "maximum": 100.5},
                "tags": {"a": "b"},
            },
        },
        renames=("resource.name",),
    ),
    Template(
        "PATCH",
        "/deviceprofile/resource",
        "UpdateDeviceResourceRequest",
        {
            "apiVersion": "v3",
            "profileName": PROFILES[0],
            "resource": {"name": "Temperature", "description": "patched", "isHidden": True},
        },
    ),
    Template(
        "POST",
        "/deviceprofile/deviceCommand",
        "AddDeviceCommandRequest",
        {
            "apiVersion": "v3",
            "profileName": PROFILES[0],
            "deviceCommand": {
                "name": "Set",
                "isHidden": False,
                "readWrite": "W",
                "resourceOperations": [{"deviceResource": "SetPoint"}],
            },
        },
        renames=("deviceCommand.name",),
    ),
    Template(
        "PATCH",
        "/deviceprofile/deviceCommand",
        "UpdateDeviceCommandRequest",
        {
            "apiVersion": "v3",
            "profileName": PROFILES[0],
            "deviceCommand": {"name": "Climate", "isHidden": True},
        },
    ),
    Template(
        "PATCH",
        "/device",
        "UpdateDeviceRequest",
        {
            "apiVersion": "v3",
            "device": {
                "name": DEVICES[1],
                "description": "patched",
                "adminState": "LOCKED",
                "operatingState": "DOWN",
                "labels": ["p"],
                "location": "room 1",
                "protocols": {"modbus": {"Address": "x"}},
                "autoEvents": [],
            },
        },
    ),
    Template(
        "PATCH",
        "/provisionwatcher",
        "UpdateProvisionWatcherRequest",
        {
            "apiVersion": "v3",
            "provisionWatcher": {
                "name": WATCHERS[0],
                "labels": ["p"],
                "identifiers": {"Host": ".*"},
                "adminState": "LOCKED",
                "discoveredDevice": {"profileName": "", "adminState": "LOCKED"},
            },
        },
    ),
]

SINGLES = [
    Template(
        "PATCH",
        f"/deviceprofile/name/{PROFILES[0]}/tags",
        "DeviceProfileTagsRequest",
        {
            "apiVersion": "v3",
            "deviceResources": [{"name": "Temperature", "tags": {"site": "a"}}],
            "deviceCommands": [{"name": "Climate", "tags": {"site": "b"}}],
        },
        batch=False,
    ),
    Template(
        "POST",
        "/secret",
        "SecretRequest",
        {"apiVersion": "v3", "secretName": "db", "secretData": [{"key": "user", "value": "x"}]},
        batch=False,
    ),
]

BATCHES = ADDS + UPDATES
ALL = BATCHES + SINGLES


def is_free_form(path: tuple[Any, ...]) -> bool:
    """Whether the value at ``path`` is inside a free-form JSON value (any type is valid)."""
    for i, key in enumerate(path[:-1]):
        if key in ("attributes", "optional", "tags", "location"):
            return True
        if key == "properties" and not _resource_properties(path[:i]):
            return True
        if key == "protocols" and i + 2 < len(path):
            return True  # protocols.<name>.<anything>
    return False


def holds_data_keys(path: tuple[Any, ...]) -> bool:
    """Whether the keys of the object at ``path`` are data (not field names)."""
    if is_free_form((*path, "key")):
        return True
    if path and path[-1] in ("protocols", "identifiers", "blockingIdentifiers", "mappings"):
        return True
    return len(path) >= 2 and path[-2] == "protocols"


def _resource_properties(parent: tuple[Any, ...]) -> bool:
    # A device resource's "properties" is a structured object, not free-form data.
    return bool(parent) and (
        parent[-1] == "resource" or (len(parent) >= 2 and parent[-2] == "deviceResources")
    )
