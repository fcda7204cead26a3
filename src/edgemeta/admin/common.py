"""What every admin command shares: the connection options, and errors turned into exit codes.

Exit codes: 0 done; 1 the service refused (its message is printed); 2 a usage error (bad
option, unreadable file); 3 the service cannot be reached.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Annotated, NoReturn

import typer

from edgemeta.admin.client import DEFAULT_URL, AdminClient, AdminError
from edgemeta.admin.output import err_console

UrlOption = Annotated[
    str,
    typer.Option(
        "--url",
        envvar="EDGEMETA_URL",
        help="The service's address",
        show_default=True,
    ),
]
ApiKeyOption = Annotated[
    str | None,
    typer.Option(
        "--api-key",
        envvar="EDGEMETA_API_KEY",
        help="An API key (emk_...), sent as X-API-Key",
        show_default=False,
    ),
]
TokenOption = Annotated[
    str | None,
    typer.Option(
        "--token",
        envvar="EDGEMETA_TOKEN",
        help="A bearer token (JWT), sent as Authorization: Bearer",
        show_default=False,
    ),
]
JsonOption = Annotated[
    bool, typer.Option("--json", help="Machine output: the service's JSON, unchanged")
]
URL_DEFAULT = DEFAULT_URL


def usage(message: str) -> NoReturn:
    """Print a usage error and exit 2."""
    err_console.print(f"edgemeta: {message}", highlight=False, markup=False)
    raise typer.Exit(2)


def connect(url: str, api_key: str | None, token: str | None) -> AdminClient:
    """A client for ``url`` with one credential (both given is a usage error) and the TLS
    files of the environment (an unusable one is a usage error too)."""
    try:
        return AdminClient(url, api_key=api_key, token=token)
    except ValueError as exc:  # both credentials, an unusable TLS file
        usage(str(exc))


@contextlib.contextmanager
def handled() -> Iterator[None]:
    """Print an AdminError's message on stderr and exit with its code."""
    try:
        yield
    except AdminError as exc:
        err_console.print(f"edgemeta: {exc}", highlight=False, markup=False)
        raise typer.Exit(exc.exit_code) from None
