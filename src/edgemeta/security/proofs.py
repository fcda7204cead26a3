"""Proofs of the sender on the bus: release confirmations and validation answers.

Every subscriber sees a move's id (it travels in the system event's tags) and a validation's
request id (in the request), so a reply on ``<prefix>/response/<service>/<id>`` proves nothing
by itself. A device service therefore signs its reply with its **release key**, known only to
it and to edgemeta:

- the *server secret*: 32 random bytes, created once and kept in the store (or read from
  ``EDGEMETA_RELEASE_KEY_FILE``), never sent anywhere;
- a service's release key: ``HMAC-SHA256(server secret, b"edgemeta-release-key|" + name)``,
  given to the service over HTTP (``GET /deviceservice/name/{name}/releasekey``, its own
  credential only) or by ``edgemeta releasekey NAME``;
- a proof: ``HMAC-SHA256(release key, canonical bytes)`` in hex, where the canonical bytes
  name what is proved and for whom: ``release|<service>|<moveId>|<device>`` or
  ``validate|<service>|<requestId>|<errorCode>|<device>``. A proof made with another
  service's key, for another move, request or device, or for another answer (a refusal
  turned into an acceptance) does not verify.

The device name is in the proof because system events are not signed: a bus participant can
send a service a made-up ``update`` naming move M but another device, and the service would
truthfully confirm that it does not serve *that* device; bound to the device, that
confirmation does not verify for M. Names may contain ``|``, yet nothing is ambiguous: the
service is fixed by the key (a proof only verifies under the key it was made with), the kind
and the ids (UUIDs, an integer) contain none, and the device name is the last field.
"""

from __future__ import annotations

import hashlib
import hmac
from enum import StrEnum
from typing import Literal

KEY_CONTEXT = b"edgemeta-release-key|"
SECRET_BYTES = 32

Mode = Literal["off", "on", "strict"]


class Kind(StrEnum):
    """What a proof is about."""

    RELEASE = "release"
    VALIDATE = "validate"


def derive_key(server_secret: bytes, service: str) -> bytes:
    """A device service's release key (32 bytes)."""
    return hmac.new(server_secret, KEY_CONTEXT + service.encode(), hashlib.sha256).digest()


def canonical(
    kind: Kind | str, service: str, request_id: str, device: str, error_code: int
) -> bytes:
    """The bytes a proof is made over."""
    parts = [Kind(kind).value, service, request_id]
    if Kind(kind) == Kind.VALIDATE:
        parts.append(str(int(error_code)))
    parts.append(device)
    return "|".join(parts).encode()


def sign(
    key: bytes,
    kind: Kind | str,
    service: str,
    request_id: str,
    *,
    device: str,
    error_code: int = 0,
) -> str:
    """The proof (hex) that ``service`` sent this reply: its release of ``device`` for move
    ``request_id``, or its validation answer (``error_code`` 0 accepts) about ``device`` to
    request ``request_id``."""
    message = canonical(kind, service, request_id, device, error_code)
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def verify(
    key: bytes,
    proof: object,
    kind: Kind | str,
    service: str,
    request_id: str,
    *,
    device: str,
    error_code: int = 0,
) -> bool:
    """Whether ``proof`` is the proof :func:`sign` makes (compared in constant time)."""
    if not isinstance(proof, str) or not proof:
        return False
    expected = sign(key, kind, service, request_id, device=device, error_code=error_code)
    return hmac.compare_digest(expected.encode(), proof.encode())


def effective_mode(setting: str, auth: str) -> Mode:
    """``EDGEMETA_RELEASE_PROOF`` resolved: ``auto`` is ``on`` with authentication on, else
    ``off``."""
    if setting == "auto":
        return "on" if auth == "on" else "off"
    if setting not in ("off", "on", "strict"):
        raise ValueError(f"unknown release proof mode {setting!r}")
    return setting  # type: ignore[return-value]


class Keyring:
    """The release keys derived from one server secret (cached per service)."""

    def __init__(self, server_secret: bytes) -> None:
        if len(server_secret) < 16:
            raise ValueError("the server secret must be at least 16 bytes")
        self._secret = server_secret
        self._keys: dict[str, bytes] = {}

    def key(self, service: str) -> bytes:
        """``service``'s release key."""
        found = self._keys.get(service)
        if found is None:
            if len(self._keys) > 100_000:  # bounded: service names come from the bus too
                self._keys.clear()
            found = self._keys[service] = derive_key(self._secret, service)
        return found
