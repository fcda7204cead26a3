"""API test fixtures: a live app on each backend, empty or seeded with a small inventory."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.api.live import LiveApp, open_live_app
from tests.api.seed import seed

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]


@pytest.fixture(params=BACKENDS, scope="module")
def seeded_app(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveApp]:
    """One app per backend for a whole module, seeded once."""
    app = open_live_app(request.param, tmp_path_factory.mktemp("seeded"))
    try:
        seed(app)
        yield app
    finally:
        app.close()


@pytest.fixture(params=BACKENDS)
def live_app(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[LiveApp]:
    """A fresh, seeded app per test, on each backend."""
    app = open_live_app(request.param, tmp_path)
    try:
        seed(app)
        yield app
    finally:
        app.close()
