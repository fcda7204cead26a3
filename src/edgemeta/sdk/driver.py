"""What a device service's author writes: a driver that reads and writes a device's resources.

Two ways to write one, both seen by the SDK as a :class:`Driver`:

- a class with ``read`` and ``write`` (EdgeX's ``ProtocolDriver.HandleReadCommands`` and
  ``HandleWriteCommands``, one call per command with every resource it touches), and, if the
  service discovers devices, ``discover``;
- a :class:`Handlers` object with one function per resource, registered with decorators::

      driver = Handlers()

      @driver.reader("temperature")
      async def temperature(device: Device) -> float:
          return 21.5

      @driver.writer("setpoint")
      async def setpoint(device: Device, value: float) -> None:
          ...

Values cross this boundary as Python values (``bool``, ``int``, ``float``, ``str``, ``list``,
``bytes`` for ``Binary``, any JSON value for ``Object``); the SDK turns them into EdgeX
readings by the resource's ``valueType`` and parses written text into them, after checking
the write against the profile (writable, type, ``minimum``/``maximum``): a driver never sees
a value the profile refuses.

Errors: raise :class:`CommandError` with an HTTP status to refuse a command with that status;
any other exception is answered as a 500 naming it.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


class CommandError(Exception):
    """A command refused or failed, with the HTTP status EdgeX answers for it."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True, slots=True)
class Resource:
    """One device resource as the driver needs it (from the device's profile)."""

    name: str
    value_type: str
    read_write: str = "R"
    units: str = ""
    minimum: float | None = None
    maximum: float | None = None
    default_value: str = ""
    media_type: str = ""
    attributes: Mapping[str, Any] = field(default_factory=dict)
    is_hidden: bool = False
    # Transforms (edgemeta.sdk.transforms): the driver deals in raw values, readings in these.
    mask: int = 0
    shift: int = 0
    base: float = 0.0
    scale: float | None = None
    offset: float = 0.0

    @property
    def readable(self) -> bool:
        """Whether the profile lets it be read."""
        return "R" in self.read_write

    @property
    def writable(self) -> bool:
        """Whether the profile lets it be written."""
        return "W" in self.read_write


@dataclass(frozen=True, slots=True)
class Device:
    """The device a command is for: its name, protocols and whole document (wire JSON)."""

    name: str
    profile_name: str
    protocols: Mapping[str, Mapping[str, Any]]
    document: Mapping[str, Any]

    @classmethod
    def of(cls, doc: Mapping[str, Any]) -> Device:
        """A Device from its EdgeX document."""
        return cls(
            name=str(doc["name"]),
            profile_name=str(doc.get("profileName", "")),
            protocols=doc.get("protocols") or {},
            document=doc,
        )


@dataclass(frozen=True, slots=True)
class DiscoveredDevice:
    """A device the driver found (EdgeX's ``DiscoveredDevice``): provision watchers decide
    whether it is added, and with which profile."""

    name: str
    protocols: Mapping[str, Mapping[str, Any]]
    description: str = ""
    labels: Sequence[str] = ()
    properties: Mapping[str, Any] = field(default_factory=dict)


@runtime_checkable
class Driver(Protocol):
    """What the SDK calls. ``read`` returns one value per requested resource (a mapping by
    name, or a sequence in the order asked); ``write`` takes the checked, parsed values."""

    async def read(self, device: Device, resources: Sequence[Resource]) -> Any:
        """The current values of ``resources`` on ``device``."""

    async def write(self, device: Device, values: Sequence[tuple[Resource, Any]]) -> None:
        """Set ``values`` (each already checked against its resource) on ``device``."""


@runtime_checkable
class Discoverer(Protocol):
    """A driver that also finds devices (EdgeX's ``ProtocolDiscovery``)."""

    def discover(self) -> AsyncIterator[DiscoveredDevice] | Awaitable[Iterable[DiscoveredDevice]]:
        """The devices found now: an async iterator, or a coroutine returning an iterable."""


Reader = Callable[[Device], Awaitable[Any]]
Writer = Callable[[Device, Any], Awaitable[None]]


class Handlers:
    """A :class:`Driver` made of one read and/or one write function per resource name."""

    def __init__(self) -> None:
        self.readers: dict[str, Reader] = {}
        self.writers: dict[str, Writer] = {}
        self._discover: Callable[[], Any] | None = None

    def reader(self, resource: str) -> Callable[[Reader], Reader]:
        """Decorate ``async def f(device) -> value`` as the reader of ``resource``."""

        def register(fn: Reader) -> Reader:
            self.readers[resource] = fn
            return fn

        return register

    def writer(self, resource: str) -> Callable[[Writer], Writer]:
        """Decorate ``async def f(device, value)`` as the writer of ``resource``."""

        def register(fn: Writer) -> Writer:
            self.writers[resource] = fn
            return fn

        return register

    def discoverer(self, fn: Callable[[], Any]) -> Callable[[], Any]:
        """Decorate the function that finds devices (see :class:`Discoverer`)."""
        self._discover = fn
        return fn

    async def read(self, device: Device, resources: Sequence[Resource]) -> dict[str, Any]:
        """Call each resource's reader; 501 for a resource without one."""
        out: dict[str, Any] = {}
        for r in resources:
            fn = self.readers.get(r.name)
            if fn is None:
                raise CommandError(501, f"no reader for resource '{r.name}'")
            out[r.name] = await fn(device)
        return out

    async def write(self, device: Device, values: Sequence[tuple[Resource, Any]]) -> None:
        """Call each resource's writer; 501 for a resource without one (checked first, so a
        command is written whole or not at all)."""
        missing = [r.name for r, _ in values if r.name not in self.writers]
        if missing:
            raise CommandError(501, f"no writer for resource '{missing[0]}'")
        for r, v in values:
            await self.writers[r.name](device, v)

    async def discover(self) -> list[DiscoveredDevice]:
        """What the registered discoverer finds (nothing without one)."""
        if self._discover is None:
            return []
        return await collect(self._discover())


async def collect(found: Any) -> list[DiscoveredDevice]:
    """The devices of a discoverer's answer (async iterator, awaitable or iterable)."""
    if inspect.isawaitable(found):
        found = await found
    if hasattr(found, "__aiter__"):
        return [d async for d in found]
    return list(found or ())
