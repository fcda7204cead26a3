"""Writing device services for edgemeta in Python (public API).

- :class:`DeviceService`: a driver served over the bus (and REST), with autoEvents,
  discovery through provision watchers, and the participant's part in moves;
- :class:`Driver` / :class:`Handlers`: what a service's author writes (see
  :mod:`edgemeta.sdk.driver`);
- :class:`DeviceServiceParticipant`: the moves, releases, validation and reconcile part on
  its own, for services that bring their own command handling.

Imports :mod:`edgemeta.bus` (topics, envelope, the adapters and their security options), the
ports, the pure domain rules (value types, readings, durations, patterns), and
:mod:`edgemeta.security.proofs` (to sign its replies); nothing of edgemeta imports it.
"""

from edgemeta.bus.security import BrokerRefused, BusSecurity
from edgemeta.sdk.driver import (
    CommandError,
    Device,
    DiscoveredDevice,
    Discoverer,
    Driver,
    Handlers,
    Resource,
)
from edgemeta.sdk.participant import DeviceServiceParticipant, Refused, open_bus
from edgemeta.sdk.service import DeviceService, load_yaml

__all__ = [
    "BrokerRefused",
    "BusSecurity",
    "CommandError",
    "Device",
    "DeviceService",
    "DeviceServiceParticipant",
    "DiscoveredDevice",
    "Discoverer",
    "Driver",
    "Handlers",
    "Refused",
    "Resource",
    "load_yaml",
    "open_bus",
]
