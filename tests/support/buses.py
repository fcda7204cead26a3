"""The bus kinds the contract tests run on."""

from __future__ import annotations

import pytest

KINDS = [
    pytest.param("memory"),
    pytest.param("mqtt", marks=pytest.mark.mqtt),
    pytest.param("nats", marks=pytest.mark.nats),
]


BROKERS = KINDS[1:]
