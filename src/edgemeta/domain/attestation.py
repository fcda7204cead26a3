"""Symmetric-key attestation, after Azure DPS.

Keys are base64 strings. A group enrolment holds a group key; each device's key is derived
from it: ``base64(HMAC-SHA256(key=base64decode(groupKey), msg=registrationId))`` — the DPS
derivation, so keys made by DPS tooling work here. An individual enrolment holds the device's
key directly.

A device proves it holds its key with a **registration token**::

    SharedAccessSignature sr=<registrationId>&se=<expiry, unix seconds>&nc=<nonce>&sig=<signature>

where ``signature = base64(HMAC-SHA256(key=base64decode(deviceKey),
msg="<registrationId>\\n<expiry>\\n<nonce>"))``, URL-encoded. The service refuses a token
whose signature does not match (with the primary or secondary key), whose expiry has passed or
lies too far ahead, or whose nonce it has seen before (replay).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from urllib.parse import parse_qs, quote

PREFIX = "SharedAccessSignature "
MAX_LIFETIME_S = 24 * 3600


class AttestationError(Exception):
    """The token does not prove the registration (the reason is logged, not returned)."""


def _key(b64: str) -> bytes:
    try:
        return base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise AttestationError("the enrollment key is not valid base64") from exc


def derive_device_key(group_key: str, registration_id: str) -> str:
    """The device key a group key gives ``registration_id`` (base64)."""
    mac = hmac.new(_key(group_key), registration_id.encode(), hashlib.sha256).digest()
    return base64.b64encode(mac).decode()


def _signature(device_key: str, registration_id: str, expiry: int, nonce: str) -> str:
    msg = f"{registration_id}\n{expiry}\n{nonce}".encode()
    return base64.b64encode(hmac.new(_key(device_key), msg, hashlib.sha256).digest()).decode()


def make_token(device_key: str, registration_id: str, expiry: int, nonce: str = "") -> str:
    """A registration token (what a device computes)."""
    nonce = nonce or secrets.token_hex(12)
    sig = _signature(device_key, registration_id, expiry, nonce)
    return (
        f"{PREFIX}sr={quote(registration_id, safe='')}&se={expiry}&nc={quote(nonce, safe='')}"
        f"&sig={quote(sig, safe='')}"
    )


@dataclass(frozen=True, slots=True)
class Token:
    """A parsed registration token."""

    registration_id: str
    expiry: int
    nonce: str
    signature: str


def parse_token(token: str) -> Token:
    """Parse a token; AttestationError if it is not one."""
    if not token.startswith(PREFIX):
        raise AttestationError("not a SharedAccessSignature token")
    fields = parse_qs(token[len(PREFIX) :], keep_blank_values=True, strict_parsing=False)
    try:
        sr, se, nc, sig = (fields[k][0] for k in ("sr", "se", "nc", "sig"))
    except (KeyError, IndexError):
        raise AttestationError("the token lacks sr, se, nc or sig") from None
    if not se.isdigit() or not nc or len(nc) > 128:
        raise AttestationError("the token's expiry or nonce is malformed")
    return Token(sr, int(se), nc, sig)


def verify(token: Token, registration_id: str, keys: tuple[str, ...], now_s: int) -> None:
    """Check a token against the device's keys (not its nonce: the store remembers those)."""
    if token.registration_id != registration_id:
        raise AttestationError("the token was made for another registration id")
    if token.expiry < now_s:
        raise AttestationError("the token has expired")
    if token.expiry > now_s + MAX_LIFETIME_S:
        raise AttestationError("the token expires too far in the future")
    for key in keys:
        if not key:
            continue
        expected = _signature(key, registration_id, token.expiry, token.nonce)
        if hmac.compare_digest(expected, token.signature):
            return
    raise AttestationError("the token's signature does not match the enrollment's keys")
