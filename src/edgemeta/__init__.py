"""edgemeta: device metadata and provisioning for the edge, wire-compatible with EdgeX."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("edgemeta")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0+unknown"
