"""The authenticated caller of a request, as every layer above the transport sees it."""

from __future__ import annotations

from contextvars import ContextVar, Token
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
    via: str = ""  # how it was verified: "jwt", "apikey" ("" when auth is off)

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


# The principal of the request the current task serves, for the layers that record "who" but
# are not handed the request (the outbox's ``subject`` tag, a move's ``requestedBy``). The auth
# middleware sets it for the request; tasks a request starts inherit it (contextvars are
# copied into new tasks), so a move that finishes in the background still names its caller.
_ACTING: ContextVar[Principal] = ContextVar("edgemeta_principal", default=OPEN)


def acting() -> Principal:
    """The principal of the request being served (``OPEN`` outside a request)."""
    return _ACTING.get()


def act_as(principal: Principal) -> Token[Principal]:
    """Make ``principal`` the acting one in this context; returns the token to reset it."""
    return _ACTING.set(principal)


def reset(token: Token[Principal]) -> None:
    """Undo :func:`act_as`."""
    _ACTING.reset(token)


def recorded_requester(given: str) -> str:
    """Who to record as having asked for something: the verified subject when authentication
    is on (never a body field), else ``given`` (the body's value, or the caller's default)."""
    p = _ACTING.get()
    return given if p.auth_off else p.subject


def subject_tag() -> tuple[tuple[str, str], ...]:
    """The ``subject`` tag for system events written now (none when authentication is off)."""
    p = _ACTING.get()
    return () if p.auth_off else (("subject", p.subject),)
