"""Release confirmations: how an edgemeta device service tells the move engine it let go.

The old owner learns of a move from the ``device/update`` system event addressed to it (tagged
with ``moveId``), as any EdgeX device service would; an edgemeta device service then stops
serving the device and confirms on ``<prefix>/response/<service>/<moveId>`` (EdgeX's reply
topic layout), with an envelope whose ``errorCode`` is 0. The engine subscribes there before it
commits the move, so no confirmation is missed.
"""

from __future__ import annotations

import contextlib

from edgemeta.bus.envelope import decode
from edgemeta.bus.topics import response_topic, system_event_topic
from edgemeta.domain.errors import EdgeMetaError
from edgemeta.ports import Bus, Subscription


class BusReleaseWatch:
    """Waits for one confirmation."""

    def __init__(self, sub: Subscription) -> None:
        self.sub = sub

    async def wait(self) -> None:
        """Return once a confirmation (``errorCode`` 0) arrives."""
        while True:
            message = await self.sub.get()
            with contextlib.suppress(ValueError):
                if decode(message.payload).get("errorCode", 0) == 0:
                    return

    async def close(self) -> None:
        """Unsubscribe."""
        with contextlib.suppress(EdgeMetaError):
            await self.sub.close()


class BusReleases:
    """Release confirmations over the bus."""

    def __init__(self, bus: Bus, *, prefix: str = "edgex", name_escape: bool = False) -> None:
        self.bus = bus
        self.prefix = prefix
        self.name_escape = name_escape

    async def watch(self, service: str, move_id: str) -> BusReleaseWatch:
        """Subscribe to the confirmation of ``service`` for ``move_id``."""
        topic = response_topic(self.prefix, service, move_id, name_escape=self.name_escape)
        return BusReleaseWatch(await self.bus.subscribe(topic))

    def nobody_listens(self, service: str, profile_name: str) -> bool:
        """True when the bus knows nobody would receive the old owner's update event."""
        topic = system_event_topic(
            self.prefix, "device", "update", service, profile_name, name_escape=self.name_escape
        )
        return self.bus.has_subscribers(topic) is False
