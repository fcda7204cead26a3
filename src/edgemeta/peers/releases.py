"""Release confirmations: how an edgemeta device service tells the move engine it let go.

The old owner learns of a move from the ``device/update`` system event addressed to it (tagged
with ``moveId``), as any EdgeX device service would; an edgemeta device service then stops
serving the device and confirms on ``<prefix>/response/<service>/<moveId>`` (EdgeX's reply
topic layout), with an envelope whose ``errorCode`` is 0. The engine subscribes there before it
commits the move, so no confirmation is missed.

Every subscriber sees the move id, so with proofs on (``EDGEMETA_RELEASE_PROOF``) a
confirmation must also carry ``proof``, made with the releasing service's release key
(:mod:`edgemeta.security.proofs`); one without, or with a proof for another service or move,
is refused (counted in ``gate.refused``, logged) and the watch keeps waiting.
"""

from __future__ import annotations

import contextlib

from edgemeta.bus.envelope import decode
from edgemeta.bus.topics import response_topic, system_event_topic
from edgemeta.domain.errors import EdgeMetaError
from edgemeta.peers.proof_gate import ProofGate
from edgemeta.ports import Bus, Subscription
from edgemeta.security.proofs import Kind


class BusReleaseWatch:
    """Waits for one confirmation."""

    def __init__(
        self,
        sub: Subscription,
        gate: ProofGate | None = None,
        service: str = "",
        move_id: str = "",
        device: str = "",
    ) -> None:
        self.sub = sub
        self.gate = gate or ProofGate()
        self.service = service
        self.move_id = move_id
        self.device = device

    async def wait(self) -> None:
        """Return once a confirmation (``errorCode`` 0, and its proof when proofs are on)
        arrives."""
        while True:
            message = await self.sub.get()
            try:
                env = decode(message.payload)
            except ValueError:
                self.gate.refuse_unreadable(Kind.RELEASE, self.service, message.topic)
                continue
            if env.get("errorCode", 0) != 0:
                continue
            topic = message.topic
            if self.gate.admit(Kind.RELEASE, self.service, self.move_id, self.device, env, topic):
                return

    async def close(self) -> None:
        """Unsubscribe."""
        with contextlib.suppress(EdgeMetaError):
            await self.sub.close()


class BusReleases:
    """Release confirmations over the bus."""

    def __init__(
        self,
        bus: Bus,
        *,
        prefix: str = "edgex",
        name_escape: bool = False,
        gate: ProofGate | None = None,
    ) -> None:
        self.bus = bus
        self.prefix = prefix
        self.name_escape = name_escape
        self.gate = gate or ProofGate()

    @property
    def refused(self) -> int:
        """Release confirmations refused so far (no proof, or one that does not verify)."""
        return self.gate.refused[Kind.RELEASE]

    async def watch(self, service: str, move_id: str, device: str = "") -> BusReleaseWatch:
        """Subscribe to the confirmation of ``service`` for ``move_id`` (of ``device``)."""
        topic = response_topic(self.prefix, service, move_id, name_escape=self.name_escape)
        sub = await self.bus.subscribe(topic)
        return BusReleaseWatch(sub, self.gate, service, move_id, device)

    def nobody_listens(self, service: str, profile_name: str, *, by_delete: bool = False) -> bool:
        """True when the bus knows nobody would receive the old owner's release notice (its
        update event, or its delete event when it releases by delete)."""
        action = "delete" if by_delete else "update"
        topic = system_event_topic(
            self.prefix, "device", action, service, profile_name, name_escape=self.name_escape
        )
        return self.bus.has_subscribers(topic) is False
