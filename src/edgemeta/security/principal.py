"""The authenticated caller of a request, as every layer above the transport sees it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ANONYMOUS_SUBJECT = "anonymous"


@dataclass(frozen=True, slots=True)
class Principal:
    """A verified caller: who (``subject``), what it may do (``roles``), and for a device
    service's credential the one service it is bound to (``service``).

    ``auth_off`` marks the principal every request gets when authentication is switched off
    (``EDGEMETA_AUTH=off``): it may do everything, and what is recorded as "who" says so.
    """

    subject: str
    roles: frozenset[str] = field(default_factory=frozenset)
    service: str | None = None
    auth_off: bool = False

    def has(self, role: str) -> bool:
        """Whether this caller holds ``role`` (``admin`` holds every role)."""
        return self.auth_off or role in self.roles or "admin" in self.roles


OPEN = Principal(subject=ANONYMOUS_SUBJECT, auth_off=True)


def current(scope_state: dict[str, Any] | Any) -> Principal:
    """The principal the auth middleware put in the request's state (``OPEN`` if none).

    Takes ``request.scope["state"]`` (a dict) or ``request.state``.
    """
    if isinstance(scope_state, dict):
        value = scope_state.get("principal")
    else:
        value = getattr(scope_state, "principal", None)
    return value if isinstance(value, Principal) else OPEN
