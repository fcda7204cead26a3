"""core-command's operations: list a device's commands, and read or set one, checked and
routed to the device's owner as the store knows it at that instant.

Order of a command: device known (404), command offered (404), device and its service not
locked (423), a set's values checked against the profile (400, :mod:`edgemeta.domain.commands`),
then the owner: when a move of the device is under way, the command is held until the move
ends (at most ``move_wait`` seconds, else 409 naming the move) and goes to the owner the move
left (the new service after commit B, the old one after a rollback). Only then is anything
sent.

The fence against moves: before sending, a command is checked and writes a *hold*
(``command_hold``) in one transaction that takes a shared lock on the device row first and
finds no move of it under way (a refusal writes nothing). A move's commit A (the step that
tells the old owner to release) locks the same row exclusively and waits while a live hold
of the device exists. So either the command saw the move and waits for it, or the move waits
until the command is answered: a command is never delivered to a service that has released,
or is being told to release, the device. A hold lives until the answer (dropped then) or,
when none came in time (504: the request may still sit in the service's queue), until the
answer's timeout plus a margin; a crashed process's hold fences nothing after that either.
An accepted command ends in the device service's answer or an error (503 nobody listens, 504
no answer in time): none is dropped silently.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from edgemeta.domain import commands as rules
from edgemeta.domain.errors import Conflict, ContractInvalid, Locked, NotFound, PeerTimeout
from edgemeta.domain.records import AdminState, Device, DeviceProfile, DeviceService
from edgemeta.ports import CommandAnswer, CommandCall, Commander, ListQuery, Page, Tx
from edgemeta.usecases.common import new_id, now_ms
from edgemeta.usecases.deps import Deps

log = logging.getLogger("edgemeta.commands")

_POLL = 0.02  # seconds between looks at a move that holds a command
# A hold outlives the answer's timeout by this much, so that it is dropped by the command
# itself, not by expiry, unless the process died.
_HOLD_MARGIN = 2.0


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


async def _resolve(tx: Tx, name: str, command: str) -> _Target | str:
    """The device, its owner and the command now; or the id of the move under way."""
    # A shared lock: commands to one device do not queue behind each other, and a move's
    # commit A (FOR UPDATE) still waits for every command transaction in progress.
    device = await tx.devices.get(name, for_share=True)
    if device is None:
        raise NotFound(f"device '{name}' does not exist")
    move = await tx.moves.active(name)
    if move is not None:
        return str(move.id)
    profile = await tx.profiles.get(device.profile_name) if device.profile_name else None
    if profile is None:
        raise NotFound(f"device '{name}' has no profile, so no command '{command}'")
    service = await tx.services.get(device.service_name)
    if service is None:
        raise NotFound(f"device service '{device.service_name}' of device '{name}' is gone")
    return _Target(device, service, rules.find(profile, command))


async def _checked_hold(
    deps: Deps,
    request: _Request,
    hold_id: str,
    expires: int,
) -> CommandCall | str:
    """Check the command and write its hold, in one write transaction.

    The checked call: held, send it. Otherwise the id of the move under way, to wait for.
    A refusal (404, 400, 423) raises, and the transaction writes nothing.
    """
    async with deps.store.write() as tx:
        # The device row is locked (shared) first: that orders this against a move's commit
        # A (which takes it exclusively), so on PostgreSQL a move that committed first is
        # visible to the look below, and one that comes later waits for the hold.
        target = await _resolve(tx, request.name, request.command)
        if isinstance(target, str):
            return target
        call = _call(target, request)
        await tx.moves.hold_commands(hold_id, request.name, expires)
    return call


async def _drop(deps: Deps, hold_id: str) -> None:
    try:
        async with deps.store.write() as tx:
            await tx.moves.drop_command_hold(hold_id)
    except Exception:  # the database is away: the hold expires on its own
        log.warning("could not drop command hold %s; it expires on its own", hold_id)


@dataclass(frozen=True, slots=True)
class _Request:
    name: str
    command: str
    method: Literal["get", "set"]
    values: Mapping[str, Any] | None
    query: Mapping[str, str]
    correlation_id: str


def _call(target: _Target, request: _Request) -> CommandCall:
    """The checked call, or the refusal (400 write-only/values, 423 locked)."""
    c, name = target.command, target.device.name
    method, values = request.method, request.values
    if method == "get" and not c.get:
        raise ContractInvalid(f"command '{c.name}' is write-only: it cannot be read")
    if target.device.admin_state == AdminState.LOCKED:
        raise Locked(f"device '{name}' is locked (adminState LOCKED)")
    if target.service.admin_state == AdminState.LOCKED:
        raise Locked(f"device service '{target.service.name}' of device '{name}' is locked")
    settings = rules.check_set(c, values or {}) if method == "set" else None
    return CommandCall(
        service=target.service.name,
        base_address=target.service.base_address,
        device=name,
        command=c.name,
        method=method,
        settings=settings,
        query=request.query,
        correlation_id=request.correlation_id,
    )


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
    hold_id = new_id()
    request = _Request(name, command, method, values, query, correlation_id)
    while True:
        expires = now_ms() + int((cd.settings.timeout + _HOLD_MARGIN) * 1000)
        held = await _checked_hold(cd.deps, request, hold_id, expires)
        if isinstance(held, CommandCall):
            call = held
            break
        if time.monotonic() >= deadline:
            raise Conflict(
                f"device '{name}' is being moved (move {held}) and the move did not end "
                f"within {cd.settings.move_wait:g}s; the command was not sent"
            )
        await asyncio.sleep(_POLL)
    try:
        answer = await cd.commander.call(call, cd.settings.timeout)
    except PeerTimeout:
        # Sent but not answered: the request may still wait in the device service's queue,
        # so the hold stays until it expires (the timeout plus the margin) and a move waits
        # that long before it tells this owner to release.
        raise
    except BaseException:
        await _drop(cd.deps, hold_id)
        raise
    await _drop(cd.deps, hold_id)
    return answer
