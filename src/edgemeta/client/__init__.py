"""Python client of edgemeta's API (public API). It depends on the wire format only, and
imports nothing else of edgemeta.
"""

from edgemeta.client.auth import auth_headers
from edgemeta.client.events import GapError, ReceivedEvent, system_events

__all__ = ["GapError", "ReceivedEvent", "auth_headers", "system_events"]
