"""Writing device services that take part in edgemeta's moves safely (public API).

Imports :mod:`edgemeta.bus` (topics, envelope), the ports, the domain errors and
:mod:`edgemeta.security.proofs` (to sign its replies); nothing of edgemeta imports it.
"""

from edgemeta.sdk.participant import DeviceServiceParticipant, Refused

__all__ = ["DeviceServiceParticipant", "Refused"]
