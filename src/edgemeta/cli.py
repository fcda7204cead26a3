"""The ``edgemeta`` command line: ``edgemeta serve`` runs the service."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
import uvicorn

from edgemeta import __version__
from edgemeta.api.http_protocol import CanonicalHttpToolsProtocol
from edgemeta.bootstrap import build
from edgemeta.domain.errors import EdgeMetaError
from edgemeta.settings import Settings

app = typer.Typer(help="edgemeta: EdgeX-compatible device metadata and provisioning.")
log = logging.getLogger("edgemeta")


def _settings(**flags: Any) -> Settings:
    """Flags given on the command line, then EDGEMETA_* variables, then defaults."""
    return Settings(**{k: v for k, v in flags.items() if v is not None})


class _QuietServer(uvicorn.Server):
    """A second server in the same process: the first one handles the signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _config(app: Any, settings: Settings, port: int) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=settings.host,
        port=port,
        # uvicorn's own start/stop chatter only in DEBUG: edgemeta logs the one line that matters.
        log_level="debug" if settings.log_level == "DEBUG" else "warning",
        access_log=False,
        lifespan="off",
        # httptools, with the canonical header names EdgeX's Go services send (see
        # edgemeta.api.http_protocol); uvicorn's own Date header goes out recased too.
        http=CanonicalHttpToolsProtocol,
        server_header=False,
        log_config=None,  # keep the logging set up in serve()
    )


class _Server(uvicorn.Server):
    """Uvicorn, minus one habit: after a graceful stop on SIGINT/SIGTERM it re-raises the
    signal, which would kill the process before the relay delivers what is pending and the
    store closes. We stop just as gracefully, then finish our own shutdown and exit 0."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        with super().capture_signals():
            yield
            self._captured_signals.clear()


async def _serve(settings: Settings) -> None:
    service = await build(settings)
    await service.start()
    server = _Server(_config(service.app, settings, settings.port))
    data_server = None
    data_task = None
    if service.data_app is not None:
        data_server = _QuietServer(_config(service.data_app, settings, settings.data_port))
        data_task = asyncio.create_task(data_server.serve(), name="edgemeta-core-data-http")
    data = (
        f", core-data on http://{settings.host}:{settings.data_port}/api/v3"
        if data_server is not None
        else ""
    )
    log.info(
        "edgemeta %s listening on http://%s:%d/api/v3%s, storing in %s, events on %s",
        __version__,
        settings.host,
        settings.port,
        data,
        service.store.description,
        service.bus.description,
    )
    try:
        await server.serve()  # returns on SIGINT/SIGTERM, after in-flight requests finish
    finally:
        if data_server is not None and data_task is not None:
            data_server.should_exit = True
            with contextlib.suppress(Exception):
                await data_task
        await service.stop()
        log.info("edgemeta stopped")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on [EDGEMETA_HOST]")] = None,
    port: Annotated[int | None, typer.Option(help="Port [EDGEMETA_PORT, 59881]")] = None,
    database_url: Annotated[
        str | None,
        typer.Option(help="sqlite:///path or postgresql://... [EDGEMETA_DATABASE_URL]"),
    ] = None,
    data_dir: Annotated[
        Path | None, typer.Option(help="Where the default SQLite file lives [EDGEMETA_DATA_DIR]")
    ] = None,
    bus_url: Annotated[
        str | None,
        typer.Option(help="memory://, mqtt://host:1883 or nats://host:4222 [EDGEMETA_BUS_URL]"),
    ] = None,
    bus_prefix: Annotated[
        str | None, typer.Option(help="Base topic prefix [EDGEMETA_BUS_PREFIX, edgex]")
    ] = None,
    device_validation: Annotated[
        str | None,
        typer.Option(help="auto, always or never [EDGEMETA_DEVICE_VALIDATION, auto]"),
    ] = None,
    data_port: Annotated[
        int | None, typer.Option(help="core-data's port [EDGEMETA_DATA_PORT, 59880]")
    ] = None,
    core_data: Annotated[
        bool | None,
        typer.Option(
            "--core-data/--no-core-data",
            help="Serve core-data (events, readings) in this process [EDGEMETA_CORE_DATA]",
        ),
    ] = None,
    log_level: Annotated[
        str | None, typer.Option(help="DEBUG, INFO, WARNING or ERROR [EDGEMETA_LOG_LEVEL]")
    ] = None,
) -> None:
    """Run the core-metadata service (SQLite and the in-process bus unless told otherwise)."""
    try:
        settings = _settings(
            host=host,
            port=port,
            database_url=database_url,
            data_dir=data_dir,
            bus_url=bus_url,
            bus_prefix=bus_prefix,
            device_validation=device_validation,
            data_port=data_port,
            core_data=core_data,
            log_level=log_level.upper() if log_level else None,
        )
    except ValueError as exc:
        typer.echo(f"invalid settings: {exc}", err=True)
        raise typer.Exit(2) from None
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    runner: Any = asyncio.run
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:  # pragma: no cover - uvloop ships with uvicorn[standard]
        pass
    try:
        runner(_serve(settings))
    except (ValueError, EdgeMetaError) as exc:
        typer.echo(f"edgemeta: cannot start: {exc}", err=True)
        raise typer.Exit(2) from None


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(__version__)


def main() -> None:
    """Entry point of the ``edgemeta`` script."""
    app()
