"""A browsable API page: Swagger UI at ``/api/v3/docs`` on every port that serves an OpenAPI
document, rendering that port's own ``/api/v3/openapi.yaml``.

The Swagger UI files come from the ``swagger-ui-bundle`` wheel (swagger-ui-dist packaged for
Python, kept by the connexion maintainers), so the page works on an air-gapped edge node: the
HTML references only ``docs/...`` assets of the same port and ``openapi.yaml`` beside it, and
the initializer turns off the one outside fetch Swagger UI makes by default (the validator
badge from validator.swagger.io). Only the three assets the page uses are served, each from an
explicit list (never a path taken from the request), read once on first use and kept in
memory (about 1.2 MB) rather than per application.
"""

from __future__ import annotations

from functools import cache
from importlib.resources.abc import Traversable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from swagger_ui_bundle import swagger_ui_path  # type: ignore[import-untyped]  # no py.typed

from edgemeta.api.responses import error

# The page sits at /api/v3/docs (no trailing slash), so "docs/x" resolves to /api/v3/docs/x and
# "openapi.yaml" to the port's own /api/v3/openapi.yaml.
PAGE = b"""<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="UTF-8">
    <title>edgemeta API</title>
    <link rel="stylesheet" type="text/css" href="docs/swagger-ui.css">
    <link rel="icon" type="image/png" href="docs/favicon-32x32.png" sizes="32x32">
  </head>
  <body>
    <div id="swagger-ui"></div>
    <script src="docs/swagger-ui-bundle.js" charset="UTF-8"></script>
    <script src="docs/edgemeta-docs.js" charset="UTF-8"></script>
  </body>
</html>
"""

# A file of its own rather than an inline script: the page keeps working under a
# Content-Security-Policy that forbids inline scripts.
INITIALIZER = b"""window.onload = function () {
  window.ui = SwaggerUIBundle({
    url: "openapi.yaml",
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout"
  });
};
"""

#: The assets under ``/api/v3/docs/`` and their content types; anything else is a 404.
VENDORED: dict[str, str] = {
    "swagger-ui.css": "text/css; charset=utf-8",
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "favicon-32x32.png": "image/png",
}
OWN: dict[str, bytes] = {"edgemeta-docs.js": INITIALIZER}
# The files change only with the installed package; an hour keeps reloads cheap and an
# upgrade visible soon.
CACHE = "public, max-age=3600"


# The package names its versioned folder (vendor/swagger-ui-X.Y.Z) so an upgrade needs no change.
_DIST: Traversable = swagger_ui_path


@cache
def _vendored(name: str) -> bytes:
    return _DIST.joinpath(name).read_bytes()


def asset(name: str) -> tuple[bytes, str] | None:
    """The body and content type of the docs asset ``name``, or None when there is no such."""
    if name in OWN:
        return OWN[name], "text/javascript; charset=utf-8"
    if name in VENDORED:
        return _vendored(name), VENDORED[name]
    return None


def routes() -> list[BaseRoute]:
    """``GET /docs`` (the page) and ``GET /docs/{asset}`` (its files), relative to the API base."""

    async def page(request: Request) -> Response:
        return Response(PAGE, media_type="text/html; charset=utf-8")

    async def docs_asset(request: Request) -> Response:
        name = request.path_params["asset"]
        found = asset(name)
        if found is None:
            return error(404, f"no docs asset named {name!r}")
        body, media_type = found
        return Response(body, media_type=media_type, headers={"Cache-Control": CACHE})

    return [
        Route("/docs", page, methods=["GET"]),
        Route("/docs/{asset}", docs_asset, methods=["GET"]),
    ]
