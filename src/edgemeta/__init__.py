"""edgemeta: device metadata and provisioning for the edge, wire-compatible with EdgeX."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("edgemeta")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0+unknown"

# The EdgeX release whose API edgemeta answers like (the spec in /work/shared/spec/edgex/
# declares 4.0.0). ``GET /api/v3/version`` reports it as ``version``, because EdgeX tooling
# compares that with the release it targets; edgemeta's own version goes in ``edgemetaVersion``.
EDGEX_VERSION = "4.0.0"


def version_body(service_name: str) -> dict[str, str]:
    """The ``GET /api/v3/version`` answer of one of edgemeta's EdgeX services."""
    return {
        "apiVersion": "v3",
        "version": EDGEX_VERSION,
        "serviceName": service_name,
        "edgemetaVersion": __version__,
    }
