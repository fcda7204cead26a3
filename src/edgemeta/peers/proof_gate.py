"""The check every reply from a device service passes before the engine believes it.

A :class:`ProofGate` knows the mode (``EDGEMETA_RELEASE_PROOF`` resolved, see
:func:`edgemeta.security.proofs.effective_mode`) and the keyring. It counts what it accepted
and refused per kind (``release``, ``validate``) so an operator, a test or the soak can see
forgeries, and logs every refusal at WARNING with the topic and the service the reply claims
to come from (the first 20 refusals of each kind, then every 100th, so that a flood of
forgeries cannot flood the log too; the count is in every line). Observers (``observers``)
are told of every accepted reply (kind, service, device, envelope); the soak uses that to
count the accepted replies a hostile participant marked as its own.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from typing import Any

from edgemeta.security.proofs import Keyring, Kind, Mode, verify

log = logging.getLogger("edgemeta.proofs")

Observer = Callable[[Kind, str, str, dict[str, Any]], None]  # kind, service, device, envelope


def _worth_logging(count: int) -> bool:
    return count <= 20 or count % 100 == 0


class ProofGate:
    """Accepts or refuses replies by their proof, and counts both."""

    def __init__(self, keyring: Keyring | None = None, mode: Mode = "off") -> None:
        if mode != "off" and keyring is None:
            raise ValueError("checking proofs needs the keyring")
        self.keyring = keyring
        self.mode: Mode = mode
        self.accepted: Counter[str] = Counter()
        self.refused: Counter[str] = Counter()
        self.observers: list[Observer] = []

    def _valid(
        self, kind: Kind, service: str, request_id: str, device: str, env: dict[str, Any]
    ) -> bool:
        if self.mode == "off":
            return True
        proof = env.get("proof")
        if kind == Kind.VALIDATE and not proof and self.mode == "on":
            return True  # EdgeX's Go and C SDKs cannot sign: unsigned answers still count
        assert self.keyring is not None
        code = env.get("errorCode", 0)
        if not isinstance(code, int):
            return False
        key = self.keyring.key(service)
        return verify(key, proof, kind, service, request_id, device=device, error_code=code)

    def admit(
        self,
        kind: Kind,
        service: str,
        request_id: str,
        device: str,
        env: dict[str, Any],
        topic: str,
    ) -> bool:
        """Whether to believe reply ``env`` from ``service`` about ``device`` to ``request_id``
        (a move id or a validation request id) heard on ``topic``; counted and, when refused,
        logged."""
        if not self._valid(kind, service, request_id, device, env):
            self.refused[kind] += 1
            if not _worth_logging(self.refused[kind]):
                return False
            log.warning(
                "refused a %s reply on %s claiming to come from device service %r: %s "
                "(%d %s replies refused so far)",
                kind.value,
                topic,
                service,
                "no proof" if not env.get("proof") else "its proof does not verify",
                self.refused[kind],
                kind.value,
            )
            return False
        self.accepted[kind] += 1
        for observe in self.observers:
            observe(kind, service, device, env)
        return True

    def refuse_unreadable(self, kind: Kind, service: str, topic: str) -> None:
        """Count (and log) a reply that is not an envelope at all."""
        self.refused[kind] += 1
        if not _worth_logging(self.refused[kind]):
            return
        log.warning(
            "refused an unreadable %s reply on %s for device service %r", kind.value, topic, service
        )
