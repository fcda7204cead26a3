"""Writing device services that take part in edgemeta's moves safely (public API).

Imports :mod:`edgemeta.bus` (topics, envelope, the adapters and their security options), the
ports, the domain errors and :mod:`edgemeta.security.proofs` (to sign its replies); nothing of
edgemeta imports it.
"""

from edgemeta.bus.security import BrokerRefused, BusSecurity
from edgemeta.sdk.participant import DeviceServiceParticipant, Refused, open_bus

__all__ = ["BrokerRefused", "BusSecurity", "DeviceServiceParticipant", "Refused", "open_bus"]
