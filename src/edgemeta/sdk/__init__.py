"""Writing device services that take part in edgemeta's moves safely."""

from edgemeta.sdk.participant import DeviceServiceParticipant, Refused

__all__ = ["DeviceServiceParticipant", "Refused"]
