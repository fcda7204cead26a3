"""core-command's operations: list a device's commands, and read or set one, checked and
routed to the device's owner as the store knows it at that instant.

Order of a command: device known (404), command offered (404), device and its service not
locked (423), a set's values checked against the profile (400, :mod:`edgemeta.domain.commands`),
then the owner: when a move of the device is under way, the command is held until the move
ends (at most ``move_wait`` seconds, else 409 naming the move) and goes to the owner the move
left (the new service after commit B, the old one after a rollback). Only then is anything
sent. The owner is read in the same transaction as the active-move check, and a command is
sent only when no move is under way, so it never reaches a service that has released (or is
releasing) the device. An accepted command ends in the device service's answer or an error
(503 nobody listens, 504 no answer in time): none is dropped silently.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from edgemeta.domain import commands as rules
from edgemeta.domain.errors import Conflict, ContractInvalid, Locked, NotFound
from edgemeta.domain.records import AdminState, Device, DeviceProfile, DeviceService
from edgemeta.ports import CommandAnswer, CommandCall, Commander, ListQuery, Page
from edgemeta.usecases.deps import Deps

_POLL = 0.02  # seconds between looks at a move that holds a command


@dataclass(frozen=True, slots=True)
class CommandSettings:
    """How core-command waits (``EDGEMETA_COMMAND_*`` settings)."""

    timeout: float = 5.0  # for the device service's answer
    move_wait: float = 10.0  # for a move under way to end


@dataclass(frozen=True, slots=True)
class CommandDeps:
    """What the command use cases run with."""

    deps: Deps
    commander: Commander
    settings: CommandSettings = CommandSettings()


@dataclass(frozen=True, slots=True)
class DeviceCommands:
    """A device and the commands its profile offers."""

    device: Device
    commands: list[rules.Command]


async def _profiles(deps: Deps, names: set[str]) -> dict[str, DeviceProfile]:
    out: dict[str, DeviceProfile] = {}
    async with deps.store.read() as tx:
        for name in names:
            profile = await tx.profiles.get(name)
            if profile is not None:
                out[name] = profile
    return out


def _offered(profile: DeviceProfile | None) -> list[rules.Command]:
    return rules.commands(profile) if profile is not None else []


async def list_all(deps: Deps, query: ListQuery) -> Page[DeviceCommands]:
    """Every device's commands, a page at a time (devices oldest first, as core-metadata)."""
    async with deps.store.read() as tx:
        page = await tx.devices.page(query)
    profiles = await _profiles(deps, {d.profile_name for d in page.items if d.profile_name})
    items = [DeviceCommands(d, _offered(profiles.get(d.profile_name))) for d in page.items]
    return Page(page.total, items)


async def by_device(deps: Deps, name: str) -> DeviceCommands:
    """One device's commands (NotFound: no such device)."""
    async with deps.store.read() as tx:
        device = await tx.devices.get(name)
        if device is None:
            raise NotFound(f"device '{name}' does not exist")
        profile = await tx.profiles.get(device.profile_name) if device.profile_name else None
    return DeviceCommands(device, rules.commands(profile) if profile is not None else [])


@dataclass(frozen=True, slots=True)
class _Target:
    device: Device
    service: DeviceService
    command: rules.Command


async def _resolve(deps: Deps, name: str, command: str) -> tuple[_Target | None, str]:
    """The device, its owner and the command now; or None and the id of the move under way."""
    async with deps.store.read() as tx:
        device = await tx.devices.get(name)
        if device is None:
            raise NotFound(f"device '{name}' does not exist")
        move = await tx.moves.active(name)
        if move is not None:
            return None, move.id
        profile = await tx.profiles.get(device.profile_name) if device.profile_name else None
        if profile is None:
            raise NotFound(f"device '{name}' has no profile, so no command '{command}'")
        service = await tx.services.get(device.service_name)
        if service is None:
            raise NotFound(f"device service '{device.service_name}' of device '{name}' is gone")
    return _Target(device, service, rules.find(profile, command)), ""


async def issue(
    cd: CommandDeps,
    name: str,
    command: str,
    method: Literal["get", "set"],
    values: Mapping[str, Any] | None,
    query: Mapping[str, str],
    correlation_id: str,
) -> CommandAnswer:
    """Check, route and deliver one command; the device service's answer."""
    deadline = time.monotonic() + cd.settings.move_wait
    while True:
        target, move_id = await _resolve(cd.deps, name, command)
        if target is not None:
            break
        if time.monotonic() >= deadline:
            raise Conflict(
                f"device '{name}' is being moved (move {move_id}) and the move did not end "
                f"within {cd.settings.move_wait:g}s; the command was not sent"
            )
        await asyncio.sleep(_POLL)
    c = target.command
    if method == "get" and not c.get:
        raise ContractInvalid(f"command '{command}' is write-only: it cannot be read")
    if target.device.admin_state == AdminState.LOCKED:
        raise Locked(f"device '{name}' is locked (adminState LOCKED)")
    if target.service.admin_state == AdminState.LOCKED:
        raise Locked(f"device service '{target.service.name}' of device '{name}' is locked")
    settings = rules.check_set(c, values or {}) if method == "set" else None
    call = CommandCall(
        service=target.service.name,
        base_address=target.service.base_address,
        device=name,
        command=command,
        method=method,
        settings=settings,
        query=query,
        correlation_id=correlation_id,
    )
    return await cd.commander.call(call, cd.settings.timeout)
