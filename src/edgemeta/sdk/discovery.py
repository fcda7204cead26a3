"""Bottom-up provisioning: discovered devices matched against the service's provision watchers.

The rules are EdgeX's device SDK's (v3):

- only watchers whose ``adminState`` is UNLOCKED are used;
- a device passes a watcher's ``identifiers`` when **one** of its protocols holds every
  identifier key with a value the pattern matches (Go's ``regexp.MatchString``: a match
  anywhere in the value, RE2 syntax, see :mod:`edgemeta.domain.patterns`);
- it is blocked when any protocol holds a ``blockingIdentifiers`` key with one of the listed
  values (compared literally);
- the first watcher that passes adds it, through core-metadata's ``POST /device``, owned by
  this service, with the watcher's ``discoveredDevice``: ``profileName``, ``adminState``,
  ``autoEvents`` and ``properties`` (the discovered device's own properties added), and the
  discovered name, description, labels and protocols; ``operatingState`` UP;
- a device that already exists is left alone (the add answers 409; nothing is changed).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from edgemeta.domain import patterns
from edgemeta.sdk.driver import DiscoveredDevice

log = logging.getLogger("edgemeta.sdk.discovery")


def passes_identifiers(device: DiscoveredDevice, watcher: Mapping[str, Any]) -> bool:
    """Whether one of the device's protocols matches every identifier of ``watcher``."""
    identifiers: Mapping[str, str] = watcher.get("identifiers") or {}
    for protocol in device.protocols.values():
        if all(
            key in protocol and patterns.search(pattern, str(protocol[key]))
            for key, pattern in identifiers.items()
        ):
            return True
    return False


def blocked(device: DiscoveredDevice, watcher: Mapping[str, Any]) -> bool:
    """Whether a protocol value of the device is one of the watcher's blocking values."""
    blocking: Mapping[str, list[str]] = watcher.get("blockingIdentifiers") or {}
    return any(
        key in protocol and str(protocol[key]) in values
        for protocol in device.protocols.values()
        for key, values in blocking.items()
    )


def match(
    device: DiscoveredDevice, watchers: Iterable[Mapping[str, Any]]
) -> Mapping[str, Any] | None:
    """The first unlocked watcher that takes ``device``, or None."""
    for w in watchers:
        if w.get("adminState", "UNLOCKED") != "UNLOCKED":
            continue
        if passes_identifiers(device, w) and not blocked(device, w):
            return w
    return None


def device_from(
    device: DiscoveredDevice, watcher: Mapping[str, Any], service: str
) -> dict[str, Any]:
    """The Device DTO added for ``device`` by ``watcher``."""
    template: Mapping[str, Any] = watcher.get("discoveredDevice") or {}
    doc: dict[str, Any] = {
        "name": device.name,
        "serviceName": service,
        "profileName": template.get("profileName", ""),
        "adminState": template.get("adminState", "UNLOCKED"),
        "operatingState": "UP",
        "protocols": {k: dict(v) for k, v in device.protocols.items()},
    }
    if device.description:
        doc["description"] = device.description
    if device.labels:
        doc["labels"] = list(device.labels)
    if template.get("autoEvents"):
        doc["autoEvents"] = list(template["autoEvents"])
    properties = {**(template.get("properties") or {}), **device.properties}
    if properties:
        doc["properties"] = properties
    return doc


@dataclass
class DiscoveryResult:
    """What one discovery run did, by device name."""

    added: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


async def watchers_of(
    http: httpx.AsyncClient, api: str, service: str, headers: Mapping[str, str]
) -> list[dict[str, Any]]:
    """Every provision watcher of ``service``, from core-metadata."""
    r = await http.get(
        f"{api}/provisionwatcher/service/name/{service}",
        params={"offset": 0, "limit": -1},
        headers=dict(headers),
    )
    if r.status_code == 404:
        return []
    r.raise_for_status()
    found: list[dict[str, Any]] = r.json().get("provisionWatchers") or []
    return found


async def provision(
    http: httpx.AsyncClient,
    api: str,
    service: str,
    found: Iterable[DiscoveredDevice],
    headers: Mapping[str, str],
) -> DiscoveryResult:
    """Add every device of ``found`` that a watcher of ``service`` takes."""
    result = DiscoveryResult()
    watchers = await watchers_of(http, api, service, headers)
    for device in found:
        watcher = match(device, watchers)
        if watcher is None:
            result.unmatched.append(device.name)
            continue
        body = [{"apiVersion": "v3", "device": device_from(device, watcher, service)}]
        r = await http.post(f"{api}/device", json=body, headers=dict(headers))
        answer = r.json()
        item = answer[0] if isinstance(answer, list) and answer else answer
        status = int(item.get("statusCode", r.status_code)) if isinstance(item, dict) else 0
        if status == 201:
            log.info(
                "%s: added discovered device %s (watcher %s)", service, device.name, watcher["name"]
            )
            result.added.append(device.name)
        elif status == 409:
            result.existing.append(device.name)
        else:
            message = item.get("message", r.text) if isinstance(item, dict) else r.text
            log.warning("%s: adding discovered device %s failed: %s", service, device.name, message)
            result.failed[device.name] = str(message)
    return result
