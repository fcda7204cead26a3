"""The admin CLI: commands that talk to a running edgemeta over its HTTP API.

``register(app)`` adds them to the ``edgemeta`` typer app: the record groups (``device``,
``profile``, ``service``, ``watcher``, ``enrollment``), ``import``, ``move``, ``events`` and
``status``. They find the service by ``--url``/``EDGEMETA_URL`` and send ``--api-key``/
``EDGEMETA_API_KEY`` or ``--token``/``EDGEMETA_TOKEN``. See docs/cli.md.
"""

from __future__ import annotations

import typer

from edgemeta import __version__
from edgemeta.admin import resources
from edgemeta.admin.events import events_command
from edgemeta.admin.importer import import_command
from edgemeta.admin.moves import move_command
from edgemeta.admin.status import status_command

__all__ = ["register", "version_callback"]


def register(app: typer.Typer) -> dict[str, typer.Typer]:
    """Add the admin commands to ``app``; returns the record command groups by name."""
    groups = resources.register(app)
    app.command("import")(import_command)
    app.command("move")(move_command)
    app.command("events")(events_command)
    app.command("status")(status_command)
    return groups


def _print_version(value: bool) -> None:
    if value:
        typer.echo(__version__)
        raise typer.Exit()


def version_callback(
    version: bool = typer.Option(
        False,
        "--version",
        callback=_print_version,
        is_eager=True,
        help="Print the version and exit",
    ),
) -> None:
    """edgemeta: EdgeX-compatible device metadata and provisioning."""
