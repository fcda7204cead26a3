"""The admin CLI: commands that talk to a running edgemeta over its HTTP API.

``register(app)`` adds them to the ``edgemeta`` typer app: the record groups (``device``,
``profile``, ``service``, ``watcher``, ``enrollment``), ``import``, ``move``, ``events``,
``status`` and ``health``. They find the service by ``--url``/``EDGEMETA_URL`` and send
``--api-key``/``EDGEMETA_API_KEY`` or ``--token``/``EDGEMETA_TOKEN``. See docs/cli.md.
"""

from __future__ import annotations

import typer

from edgemeta import __version__

__all__ = ["register", "version_callback"]


def register(app: typer.Typer) -> dict[str, typer.Typer]:
    """Add the admin commands to ``app``; returns the record command groups by name."""
    # Imported here, not at the top: ``edgemeta health`` imports edgemeta.admin.health (and
    # so this package) on its own, and must not pay for every other command's imports.
    from edgemeta.admin import resources
    from edgemeta.admin.events import events_command
    from edgemeta.admin.health import health_command
    from edgemeta.admin.importer import import_command
    from edgemeta.admin.moves import move_command
    from edgemeta.admin.status import status_command

    groups = resources.register(app)
    app.command("import")(import_command)
    app.command("move")(move_command)
    app.command("events")(events_command)
    app.command("status")(status_command)
    app.command("health")(health_command)
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
