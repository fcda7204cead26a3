"""The signature on allocation-webhook requests, so a webhook can tell edgemeta from anyone else.

Header ``X-Edgemeta-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>``,
where the secret is the enrolment's ``allocation.webhook.secret`` (base64-decoded) and the body
is the exact bytes sent. The timestamp inside the signed text lets a receiver refuse replays
older than its tolerance. ``verify`` is what a receiver written in Python can call; the
docs/provisioning.md recipe shows the same check in a few lines of any language.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

HEADER = "X-Edgemeta-Signature"


def _mac(secret_b64: str, timestamp: int, body: bytes) -> str:
    key = base64.b64decode(secret_b64)
    return hmac.new(key, str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()


def sign(secret_b64: str, body: bytes, *, now: float | None = None) -> str:
    """The header value for ``body``, signed now (or at ``now``)."""
    timestamp = int(time.time() if now is None else now)
    return f"t={timestamp},v1={_mac(secret_b64, timestamp, body)}"


def verify(
    secret_b64: str, header: str, body: bytes, *, tolerance: float = 300, now: float | None = None
) -> bool:
    """Whether ``header`` signs ``body`` with the secret, within ``tolerance`` seconds."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(fields["t"])
    except (KeyError, ValueError):
        return False
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        return False
    return hmac.compare_digest(fields.get("v1", ""), _mac(secret_b64, timestamp, body))
