"""The small inventory every fuzz test starts from, and valid bodies built on it."""

from __future__ import annotations

from typing import Any

from tests.api.live import BASE, LiveApp

SERVICES = ["svc-a", "svc/b"]
PROFILES = ["thermo", "camera model"]
DEVICES = ["dev-1", "dev-2", "child of dev-1"]
WATCHERS = ["pw-1"]


def _env(**body: Any) -> dict[str, Any]:
    return {"apiVersion": "v3", **body}


def _service(name: str) -> dict[str, Any]:
    return _env(
        service={
            "name": name,
            "baseAddress": "http://localhost:59900",
            "adminState": "UNLOCKED",
            "labels": ["seed"],
        }
    )


def _profile(name: str) -> dict[str, Any]:
    return _env(
        profile={
            "name": name,
            "manufacturer": "Acme",
            "model": "T-1000",
            "labels": ["seed"],
            "deviceResources": [
                {
                    "name": "Temperature",
                    "properties": {"valueType": "Float32", "readWrite": "R", "units": "C"},
                },
                {"name": "SetPoint", "properties": {"valueType": "Int16", "readWrite": "RW"}},
            ],
            "deviceCommands": [
                {
                    "name": "Climate",
                    "readWrite": "R",
                    "resourceOperations": [
                        {"deviceResource": "Temperature"},
                        {"deviceResource": "SetPoint"},
                    ],
                }
            ],
        }
    )


def device_body(name: str, **extra: Any) -> dict[str, Any]:
    """A valid device of the seeded inventory."""
    device = {
        "name": name,
        "adminState": "UNLOCKED",
        "operatingState": "UP",
        "serviceName": SERVICES[0],
        "profileName": PROFILES[0],
        "labels": ["seed"],
        "autoEvents": [{"interval": "15s", "sourceName": "Temperature"}],
        "protocols": {"other": {"Address": "1.2.3.4", "Port": 502}},
        **extra,
    }
    return _env(device=device)


def _watcher(name: str) -> dict[str, Any]:
    return _env(
        provisionWatcher={
            "name": name,
            "serviceName": SERVICES[0],
            "identifiers": {"Address": "10\\..*"},
            "blockingIdentifiers": {"Port": ["80"]},
            "adminState": "UNLOCKED",
            "discoveredDevice": {"profileName": PROFILES[0], "adminState": "UNLOCKED"},
        }
    )


def _post(app: LiveApp, path: str, items: list[dict[str, Any]]) -> None:
    resp = app.request("POST", BASE + path, json=items)
    assert resp.status_code == 207, resp.text
    assert all(i["statusCode"] == 201 for i in resp.json()), resp.text


def seed(app: LiveApp) -> None:
    """Two services, two profiles, three devices (one a child), one provision watcher."""
    _post(app, "/deviceservice", [_service(n) for n in SERVICES])
    _post(app, "/deviceprofile", [_profile(n) for n in PROFILES])
    _post(
        app,
        "/device",
        [
            device_body(DEVICES[0]),
            device_body(DEVICES[1], serviceName=SERVICES[1], profileName=PROFILES[1]),
            device_body(DEVICES[2], parent=DEVICES[0]),
        ],
    )
    _post(app, "/provisionwatcher", [_watcher(n) for n in WATCHERS])
