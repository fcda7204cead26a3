"""Security test fixtures: a real token issuer."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.security.issuer import Issuer


@pytest.fixture(scope="module")
def issuer() -> Iterator[Issuer]:
    """A JWKS issuer served over HTTP from its own thread."""
    i = Issuer()
    i.start()
    try:
        yield i
    finally:
        i.stop()
