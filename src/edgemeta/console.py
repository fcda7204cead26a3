"""The ``edgemeta`` script's entry point: ``edgemeta health`` without loading the service.

A container's ``HEALTHCHECK`` runs ``edgemeta health`` every 15 s. Through the full command
line (:mod:`edgemeta.cli`, which imports uvicorn, the stores, the bus adapters and the app)
each probe would cost several times the CPU and memory of the request it makes, so the
``health`` command is dispatched here, before that import; everything else goes to
:func:`edgemeta.cli.main`. ``edgemeta --help`` still lists ``health`` (the full CLI registers
the same command).
"""

from __future__ import annotations

import sys


def main() -> None:
    """Run ``edgemeta ARGS``: ``health`` on its own, anything else through the full CLI."""
    if sys.argv[1:2] == ["health"]:
        from edgemeta.admin import helpfix
        from edgemeta.admin.health import app

        helpfix.install()  # the same help as through the full CLI
        app(args=sys.argv[2:], prog_name="edgemeta health")
        return
    from edgemeta.cli import main as full

    full()
