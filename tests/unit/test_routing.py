"""The first-segment router (edgemeta.api.routing) picks exactly the route Starlette's full
scan picks: for every path of the real route table (and variants of it), every method."""

from __future__ import annotations

import re
from typing import Any

from starlette.routing import BaseRoute, Match, Router

from edgemeta.api.app import API_BASE, create_app
from edgemeta.api.handlers import ApiContext
from edgemeta.api.routing import IndexedRouter
from edgemeta.usecases.deps import Deps

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _pick(routes: list[BaseRoute], path: str, method: str) -> tuple[Any, Any]:
    """The first full match and the first partial one, as Router.app chooses them."""
    scope = {"type": "http", "path": path, "method": method, "root_path": ""}
    full = partial = None
    for route in routes:
        match, _ = route.matches(scope)
        if match is Match.FULL and full is None:
            full = route
        elif match is Match.PARTIAL and partial is None:
            partial = route
    return full, partial


def test_every_path_and_method_reaches_the_route_the_full_scan_reaches() -> None:
    app: Any = create_app(ApiContext(deps=Deps(store=None)))  # type: ignore[arg-type]
    router = app.app.router
    assert isinstance(router, IndexedRouter)
    paths = {f"{API_BASE}/", f"{API_BASE}/nothing/here", "/elsewhere", API_BASE}
    for route in router.routes:
        concrete = re.sub(r"\{[^}]+\}", "x", getattr(route, "path", ""))
        paths |= {concrete, concrete + "/", concrete + "/more", concrete.rstrip("/x")}
    grouped = 0
    for path in sorted(paths):
        group: Router | None = router.group_for(path)
        candidates = router.routes if group is None else group.routes
        grouped += group is not None
        for method in METHODS:
            assert _pick(candidates, path, method) == _pick(router.routes, path, method), (
                method,
                path,
            )
    assert grouped > len(paths) // 2  # most requests do skip the full scan
