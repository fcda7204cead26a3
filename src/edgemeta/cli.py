"""The ``edgemeta`` command line: ``edgemeta serve`` runs the service."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
import uvicorn

from edgemeta import __version__
from edgemeta.api.http_limits import HttpLimits, limited_protocol
from edgemeta.bootstrap import build
from edgemeta.domain.durations import DurationError, parse_duration
from edgemeta.domain.errors import EdgeMetaError
from edgemeta.ports import Store
from edgemeta.security.roles import ROLES, TABLE
from edgemeta.security.roles import markdown as role_table_markdown
from edgemeta.settings import Settings
from edgemeta.store import open_store
from edgemeta.usecases.apikeys import create_key, list_keys, revoke_key

T = TypeVar("T")

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
        # The subclass also bounds the header block and times out slow senders
        # (edgemeta.api.http_limits); connections and keep-alive are uvicorn's to limit.
        http=limited_protocol(
            HttpLimits(
                max_header_bytes=settings.http_max_header_bytes,
                max_headers=settings.http_max_headers,
                header_timeout=settings.http_header_timeout,
                body_timeout=settings.http_body_timeout,
            )
        ),
        limit_concurrency=settings.http_max_connections,
        timeout_keep_alive=settings.http_keepalive_timeout,
        server_header=False,
        log_config=None,  # keep the logging set up in serve()
    )


def _freeze_startup_objects() -> None:
    """Keep what start-up built (modules, schemas, the app: ~80,000 objects) out of the
    garbage collector's full passes. Each such pass walks every object; with them, one took
    100-300 ms during a 5000-device batch, stalling every request (issue 15); without them,
    10-50 ms. Those objects live as long as the process anyway."""
    import gc  # here, not at the top: only serve() wants this

    gc.collect()
    gc.freeze()


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
    auth = (
        f"auth on ({service.authenticator.description})"
        if service.authenticator is not None
        else "auth OFF (EDGEMETA_AUTH=off: every request is trusted)"
    )
    log.info(
        "edgemeta %s listening on http://%s:%d/api/v3%s, storing in %s, events on %s, %s",
        __version__,
        settings.host,
        settings.port,
        data,
        service.store.description,
        service.bus.description,
        auth,
    )
    _freeze_startup_objects()
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
    except (ValueError, EdgeMetaError) as exc:  # InsecureExposure is a ValueError
        typer.echo(f"edgemeta: cannot start: {exc}", err=True)
        raise typer.Exit(2) from None


apikey_app = typer.Typer(
    help="API keys (stored as hashes; direct database access through the settings' URL)."
)
app.add_typer(apikey_app, name="apikey")

DatabaseOption = Annotated[
    str | None, typer.Option(help="sqlite:///path or postgresql://... [EDGEMETA_DATABASE_URL]")
]


def _with_store(database_url: str | None, work: Callable[[Store], Awaitable[T]]) -> T:
    """Run ``work`` on the store the settings name (migrating it, as serve would)."""
    try:
        settings = _settings(database_url=database_url)
    except ValueError as exc:
        typer.echo(f"invalid settings: {exc}", err=True)
        raise typer.Exit(2) from None

    async def run() -> T:
        store = await open_store(settings.database_url)
        try:
            return await work(store)
        finally:
            await store.close()

    try:
        return asyncio.run(run())
    except EdgeMetaError as exc:
        typer.echo(f"edgemeta: {exc.message}", err=True)
        raise typer.Exit(1) from None


def _ms(value: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(value / 1000))


@apikey_app.command("create")
def apikey_create(
    role: Annotated[list[str], typer.Option("--role", help=f"A role ({', '.join(ROLES)})")],
    service: Annotated[
        str, typer.Option(help="Bind the key to this device service (it may touch only its own)")
    ] = "",
    expires: Annotated[
        str, typer.Option(help="Lifetime: 30d, 12h, 90m ... (at most 10 years)")
    ] = "90d",
    name: Annotated[str, typer.Option(help="A label shown by 'apikey list'")] = "",
    database_url: DatabaseOption = None,
) -> None:
    """Make an API key and print it once (only its hash is kept)."""
    try:
        lifetime_s = parse_duration(expires) / 1e9
    except DurationError as exc:
        typer.echo(f"--expires: {exc}", err=True)
        raise typer.Exit(2) from None
    key, stored = _with_store(
        database_url,
        lambda store: create_key(store, role, lifetime_s=lifetime_s, service=service, name=name),
    )
    typer.echo(key)
    typer.echo(
        f"API key {stored.id}: roles {', '.join(stored.roles)}"
        + (f", bound to service {stored.service}" if stored.service else "")
        + f", expires {_ms(stored.expires)}. It is shown only this once.",
        err=True,
    )


@apikey_app.command("list")
def apikey_list(database_url: DatabaseOption = None) -> None:
    """List the API keys (ids, roles, expiry, revocation; never the keys)."""
    keys = _with_store(database_url, list_keys)
    now = time.time() * 1000
    typer.echo(f"{'ID':<13} {'ROLES':<30} {'SERVICE':<13} {'EXPIRES':<21} {'STATE':<8} NAME")
    for k in keys:
        state = "revoked" if k.revoked else ("expired" if k.expires <= now else "active")
        typer.echo(
            f"{k.id:<13} {','.join(k.roles):<30} {k.service or '-':<13} {_ms(k.expires):<21} "
            f"{state:<8} {k.name}"
        )


@apikey_app.command("revoke")
def apikey_revoke(key_id: str, database_url: DatabaseOption = None) -> None:
    """Revoke an API key (running services refuse it within EDGEMETA_AUTH_APIKEY_CACHE_SECONDS)."""
    _with_store(database_url, lambda store: revoke_key(store, key_id))
    typer.echo(f"API key {key_id} revoked")


@app.command()
def roles(
    markdown: Annotated[
        bool, typer.Option("--markdown", help="Markdown (docs/security-roles.md)")
    ] = False,
) -> None:
    """Print the effective route-by-role table (every route and the roles that may call it)."""
    if markdown:
        typer.echo(role_table_markdown(), nl=False)
        return
    for (api, method, template), rule in TABLE.items():
        who = "open" if rule.open else ",".join(sorted(rule.roles))
        own = f"  [service-bound: {rule.own.value}]" if rule.own else ""
        typer.echo(f"{api:<14} {method:<7} /api/v3{template:<70} {who}{own}")


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(__version__)


def main() -> None:
    """Entry point of the ``edgemeta`` script."""
    app()
