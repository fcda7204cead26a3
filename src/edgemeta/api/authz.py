"""Ownership checks for credentials bound to a device service (``Principal.service``).

The gate (``edgemeta.api.auth``) decides by role before the body is read; what a service may
touch depends on the body, so these checks run in the routes once the body is decoded and
before any item is handled. A batch with one foreign item is refused whole (403, nothing
changed) rather than per item in the 207: a service sending another's devices is a
misconfiguration or an attack, never a partial success to report.

The checks read the stored records outside the write transaction: a device moved to another
service between the check and the write would still be written by its former owner. Only an
operator (``move``) or the owner itself can move a device, so that window is theirs, not an
attacker's.
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.requests import Request

from edgemeta import documents as docs
from edgemeta.domain.errors import Forbidden
from edgemeta.ports import Store
from edgemeta.security.principal import Principal, current


def principal(request: Request) -> Principal:
    """The request's principal (``OPEN`` when authentication is off)."""
    return current(request.scope.get("state", {}))


def bound_service(request: Request) -> str | None:
    """The service the caller's credential is bound to, if any."""
    return principal(request).service


def _refuse(p: Principal, what: str) -> Forbidden:
    return Forbidden(f"{p.subject} is bound to device service '{p.service}' and may not {what}")


def own_service_name(request: Request, name: str, what: str = "change it") -> None:
    """Refuse a service-bound caller naming another service."""
    p = principal(request)
    if p.service is not None and name != p.service:
        raise _refuse(p, f"{what} for device service '{name}'")


async def own_services(
    request: Request, store: Store, items: Iterable[docs.UpdateDeviceServiceRequest]
) -> None:
    """Every service patched must be the caller's own (by name, or by id when no name)."""
    p = principal(request)
    if p.service is None:
        return
    for item in items:
        name = item.service.name
        if name is None and item.service.id is not None:
            async with store.read() as tx:
                found = await tx.services.get_by_id(item.service.id)
            name = found.name if found is not None else None
        if name is not None and name != p.service:
            raise _refuse(p, f"update device service '{name}'")


def own_new_devices(request: Request, items: Iterable[docs.AddDeviceRequest]) -> None:
    """Every device added must name the caller's service."""
    p = principal(request)
    if p.service is None:
        return
    for item in items:
        if item.device.service_name != p.service:
            raise _refuse(
                p, f"add device '{item.device.name}' to service '{item.device.service_name}'"
            )


async def own_devices(
    request: Request, store: Store, items: Iterable[docs.UpdateDeviceRequest]
) -> None:
    """Every device patched must be the caller's now, and stay the caller's."""
    p = principal(request)
    if p.service is None:
        return
    for item in items:
        d = item.device
        if d.service_name is not None and d.service_name != p.service:
            raise _refuse(p, f"move device '{d.name or d.id}' to service '{d.service_name}'")
        async with store.read() as tx:
            found = (
                await tx.devices.get(d.name)
                if d.name is not None
                else await tx.devices.get_by_id(d.id or "")
            )
        if found is not None and found.service_name != p.service:
            raise _refuse(p, f"update device '{found.name}' of service '{found.service_name}'")


async def own_device(request: Request, store: Store, name: str) -> None:
    """The device named must be the caller's (a missing device is left to answer 404)."""
    p = principal(request)
    if p.service is None:
        return
    async with store.read() as tx:
        found = await tx.devices.get(name)
    if found is not None and found.service_name != p.service:
        raise _refuse(p, f"delete device '{name}' of service '{found.service_name}'")
