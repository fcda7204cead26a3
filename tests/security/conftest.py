"""Security test fixtures: a real token issuer, a throwaway PKI."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.security.issuer import Issuer
from tests.support.pki import Pki, make_pki


@pytest.fixture(scope="module")
def issuer() -> Iterator[Issuer]:
    """A JWKS issuer served over HTTP from its own thread."""
    i = Issuer()
    i.start()
    try:
        yield i
    finally:
        i.stop()


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A CA, a server certificate for 127.0.0.1/localhost, client certificates (one foreign)."""
    return make_pki(tmp_path_factory.mktemp("pki"))
