"""The real servers tests talk to: where they are, and what to do when one is down.

Each server's URL comes from the environment (defaults: this machine's loopback services).
A test that needs a server that does not answer is **skipped** on a developer's machine and
**fails** when ``CI`` is set, so a green CI run never hides a dead backend.
"""

from __future__ import annotations

import os
import socket
import uuid
from urllib.parse import urlsplit

import pytest

POSTGRES_URL = os.environ.get(
    "EDGEMETA_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
MQTT_URL = os.environ.get("EDGEMETA_TEST_MQTT_URL", "mqtt://127.0.0.1:1883")
NATS_URL = os.environ.get("EDGEMETA_TEST_NATS_URL", "nats://127.0.0.1:4222")

_DEFAULT_PORTS = {"postgresql": 5432, "postgres": 5432, "mqtt": 1883, "nats": 4222}


def reachable(url: str, timeout: float = 1.0) -> bool:
    """Whether something accepts TCP connections at the URL's host and port."""
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    port = parts.port or _DEFAULT_PORTS.get(parts.scheme, 0)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def require(url: str, what: str) -> None:
    """Skip (locally) or fail (under CI) when the server at ``url`` is not answering."""
    if reachable(url):
        return
    message = f"{what} is not reachable at {url}"
    if os.environ.get("CI"):
        pytest.fail(f"{message}; CI needs every backend up")
    pytest.skip(message)


def unique(prefix: str) -> str:
    """A name no other test uses (schemas, topic prefixes, ...)."""
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


async def forget_mqtt_session(client_id: str, url: str = MQTT_URL) -> None:
    """End the persistent session ``client_id`` left on the shared broker (a clean-session
    connect under the same id), so its queued messages do not outlive the test."""
    import aiomqtt  # only the MQTT tests need it

    parts = urlsplit(url)
    async with aiomqtt.Client(
        parts.hostname or "127.0.0.1", parts.port or 1883, identifier=client_id, clean_session=True
    ):
        pass
