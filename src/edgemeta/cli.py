"""The ``edgemeta`` command line: ``edgemeta serve`` runs the service."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
import ssl
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Annotated, Any, TypeVar
from urllib.parse import urlsplit

import typer
import uvicorn

from edgemeta import __version__, admin
from edgemeta.admin import helpfix
from edgemeta.api.http_limits import HttpLimits, limited_protocol
from edgemeta.bootstrap import build
from edgemeta.domain.durations import DurationError, parse_duration
from edgemeta.domain.enrollment import Enrollment
from edgemeta.domain.errors import EdgeMetaError
from edgemeta.logs import configure as configure_logging
from edgemeta.ports import Store
from edgemeta.security.proofs import derive_key
from edgemeta.security.roles import ROLES, TABLE
from edgemeta.security.roles import markdown as role_table_markdown
from edgemeta.security.sealing import generate_key, load_keyring
from edgemeta.security.tls import files as tls_files
from edgemeta.security.tls import server_context
from edgemeta.settings import Settings
from edgemeta.store import open_store, sqlite_path
from edgemeta.store.backup import BackupError, backup_sqlite
from edgemeta.usecases.apikeys import create_key, list_keys, revoke_key
from edgemeta.usecases.deps import Deps
from edgemeta.usecases.enrollments import revoke_certificates
from edgemeta.usecases.release_keys import server_secret

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


def _config(
    app: Any,
    settings: Settings,
    port: int,
    tls: ssl.SSLContext | None = None,
    host: str | None = None,
) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=settings.host if host is None else host,
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
        # Our own context (edgemeta.security.tls: TLS 1.2 floor, mutual TLS), not uvicorn's.
        ssl_context_factory=None if tls is None else (lambda _config, _default: tls),
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
    store closes. We stop just as gracefully, then finish our own shutdown and exit 0.

    ``before_shutdown`` runs when the stop begins, before uvicorn waits for open connections:
    it ends the event streams, which would otherwise hold their connections open forever."""

    before_shutdown: Callable[[], Awaitable[None]] | None = None

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        with super().capture_signals():
            yield
            self._captured_signals.clear()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """End the streams, then uvicorn's graceful shutdown."""
        if self.before_shutdown is not None:
            await self.before_shutdown()
        await super().shutdown(sockets)


class PortInUse(ValueError):
    """A port edgemeta should listen on is taken (or not ours to take)."""


def _bind(host: str, port: int, what: str, hint: str, reuse_port: bool = False) -> socket.socket:
    """A socket bound to ``host:port`` and listening, or PortInUse saying which port and how
    to choose another (``hint``). Bound before anything else starts, so that the "listening"
    line is true when it is logged and a taken port refuses to start at once. ``reuse_port``
    (each worker of ``--workers N``): SO_REUSEPORT, the kernel spreads new connections over
    the workers' sockets."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as exc:
        raise PortInUse(
            f"cannot listen on {host!r} ({what}): {exc.strerror} (EDGEMETA_HOST)"
        ) from None
    sock = socket.socket(family, kind, proto)
    # As uvicorn does: a restart must not wait for the old connections' TIME_WAIT.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind(address)
        sock.listen(2048)  # uvicorn's default backlog
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            reason = "is already in use (another edgemeta, or another program)"
        elif exc.errno == errno.EACCES:
            reason = "may not be used by this user (below 1024?)"
        else:
            reason = f"cannot be listened on: {exc.strerror}"
        raise PortInUse(f"{what} port {port} on {host} {reason}; {hint}") from None
    sock.set_inheritable(True)
    return sock


def _port_of(sock: socket.socket) -> int:
    """The port a socket is bound to (the one the system chose, for port 0)."""
    return int(sock.getsockname()[1])


def _bind_all(settings: Settings, reuse_port: bool = False) -> dict[str, socket.socket]:
    """Every port this process serves, bound, or PortInUse (closing what was bound)."""
    host = settings.host
    wanted = [("core-metadata", host, settings.port, "choose another with --port or EDGEMETA_PORT")]
    if settings.core_data:
        wanted.append(
            (
                "core-data",
                host,
                settings.data_port,
                "choose another with --data-port or EDGEMETA_DATA_PORT "
                "(or --no-core-data / EDGEMETA_CORE_DATA=false)",
            )
        )
    if settings.core_keeper:
        wanted.append(
            (
                "core-keeper",
                host,
                settings.keeper_port,
                "choose another with --keeper-port or EDGEMETA_KEEPER_PORT "
                "(or --no-core-keeper / EDGEMETA_CORE_KEEPER=false)",
            )
        )
    if settings.core_command:
        wanted.append(
            (
                "core-command",
                host,
                settings.command_port,
                "choose another with --command-port or EDGEMETA_COMMAND_PORT "
                "(or --no-core-command / EDGEMETA_CORE_COMMAND=false)",
            )
        )
    if settings.metrics and settings.metrics_port:
        wanted.append(
            (
                "metrics",
                settings.metrics_host,
                settings.metrics_port,
                "choose another with EDGEMETA_METRICS_PORT (or 0: /metrics on the core-metadata"
                " port)",
            )
        )
    bound: dict[str, socket.socket] = {}
    try:
        for what, where, port, hint in wanted:
            bound[what] = _bind(where, port, what, hint, reuse_port)
    except PortInUse:
        for sock in bound.values():
            sock.close()
        raise
    return bound


async def _serve(settings: Settings, *, reuse_port: bool = False) -> None:
    # TLS first: a bad certificate setting refuses to start before anything is opened.
    tls_setup = tls_files(
        settings.tls_cert_file, settings.tls_key_file, settings.tls_client_ca_file
    )
    tls = server_context(tls_setup) if tls_setup is not None else None
    scheme = "https" if tls is not None else "http"
    # Then the ports: a taken one refuses to start before the database is opened.
    sockets = _bind_all(settings, reuse_port)
    try:
        await _run(settings, sockets, tls, tls_setup, scheme)
    finally:
        for sock in sockets.values():
            sock.close()


async def _run(
    settings: Settings,
    sockets: dict[str, socket.socket],
    tls: ssl.SSLContext | None,
    tls_setup: Any,
    scheme: str,
) -> None:
    service = await build(settings)
    try:
        await service.start()
    except BaseException:
        # E.g. the broker refused our credentials: close the store before reporting it.
        with contextlib.suppress(Exception):
            await service.stop()
        raise

    server = _Server(_config(service.app, settings, settings.port, tls))
    server.before_shutdown = service.end_streams
    data_server = None
    data_task = None
    if service.data_app is not None:
        data_server = _QuietServer(_config(service.data_app, settings, settings.data_port, tls))
        data_task = asyncio.create_task(
            data_server.serve(sockets=[sockets["core-data"]]), name="edgemeta-core-data-http"
        )
    keeper_server = None
    keeper_task = None
    if service.keeper_app is not None:
        keeper_server = _QuietServer(
            _config(service.keeper_app, settings, settings.keeper_port, tls)
        )
        keeper_task = asyncio.create_task(
            keeper_server.serve(sockets=[sockets["core-keeper"]]), name="edgemeta-core-keeper-http"
        )
    metrics_server = None
    metrics_task = None
    if service.metrics_app is not None:
        metrics_server = _QuietServer(
            _config(
                service.metrics_app, settings, settings.metrics_port, tls, settings.metrics_host
            )
        )
        metrics_task = asyncio.create_task(
            metrics_server.serve(sockets=[sockets["metrics"]]),
            name="edgemeta-metrics-http",
        )
    data = (
        f", core-data on {scheme}://{settings.host}:{_port_of(sockets['core-data'])}/api/v3"
        if data_server is not None
        else ""
    )
    if tls_setup is None:
        transport = "TLS off"
    elif tls_setup.client_ca is None:
        transport = "TLS on"
    else:
        transport = f"mutual TLS (client certificates from {tls_setup.client_ca})"
    command_server = None
    command_task = None
    if service.command_app is not None:
        command_server = _QuietServer(
            _config(service.command_app, settings, settings.command_port, tls)
        )
        command_task = asyncio.create_task(
            command_server.serve(sockets=[sockets["core-command"]]),
            name="edgemeta-core-command-http",
        )
        port = _port_of(sockets["core-command"])
        data += f", core-command on {scheme}://{settings.host}:{port}/api/v3"
    if keeper_server is not None:
        port = _port_of(sockets["core-keeper"])
        data += f", core-keeper on {scheme}://{settings.host}:{port}/api/v3"
    if metrics_server is not None:
        port = _port_of(sockets["metrics"])
        data += f", metrics on {scheme}://{settings.metrics_host}:{port}/metrics"
    auth = (
        f"auth on ({service.authenticator.description})"
        if service.authenticator is not None
        else "auth OFF (EDGEMETA_AUTH=off: every request is trusted)"
    )
    log.info(
        "edgemeta %s listening on %s://%s:%d/api/v3%s, storing in %s, events on %s, %s, %s",
        __version__,
        scheme,
        settings.host,
        _port_of(sockets["core-metadata"]),
        data,
        service.store.description,
        service.bus.description,
        auth,
        transport,
    )
    _freeze_startup_objects()
    try:
        # Returns on SIGINT/SIGTERM, after in-flight requests finish.
        await server.serve(sockets=[sockets["core-metadata"]])
    finally:
        for extra, task in (
            (data_server, data_task),
            (keeper_server, keeper_task),
            (metrics_server, metrics_task),
            (command_server, command_task),
        ):
            if extra is not None and task is not None:
                extra.should_exit = True
                with contextlib.suppress(Exception):
                    await task
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
        typer.Option(
            help="memory://, mqtt[s]://host:port, nats://host:4222 or tls://host:4222 "
            "(credentials: EDGEMETA_BUS_USERNAME, EDGEMETA_BUS_PASSWORD_FILE) [EDGEMETA_BUS_URL]"
        ),
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
    keeper_port: Annotated[
        int | None, typer.Option(help="core-keeper's port [EDGEMETA_KEEPER_PORT, 59890]")
    ] = None,
    core_keeper: Annotated[
        bool | None,
        typer.Option(
            "--core-keeper/--no-core-keeper",
            help="Serve core-keeper's key/value API (writable settings) [EDGEMETA_CORE_KEEPER]",
        ),
    ] = None,
    command_port: Annotated[
        int | None, typer.Option(help="core-command's port [EDGEMETA_COMMAND_PORT, 59882]")
    ] = None,
    core_command: Annotated[
        bool | None,
        typer.Option(
            "--core-command/--no-core-command",
            help="Serve core-command (devices' commands) in this process [EDGEMETA_CORE_COMMAND]",
        ),
    ] = None,
    log_level: Annotated[
        str | None, typer.Option(help="DEBUG, INFO, WARNING or ERROR [EDGEMETA_LOG_LEVEL]")
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(help="API processes sharing the ports (docs/settings.md) [EDGEMETA_WORKERS]"),
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
            keeper_port=keeper_port,
            core_keeper=core_keeper,
            command_port=command_port,
            core_command=core_command,
            log_level=log_level.upper() if log_level else None,
            workers=workers,
        )
    except ValueError as exc:
        typer.echo(f"invalid settings: {exc}", err=True)
        raise typer.Exit(2) from None
    configure_logging(settings.log_level, settings.log_format)
    if settings.workers > 1:
        from edgemeta.supervisor import supervise  # only the multi-process mode needs it

        try:
            raise typer.Exit(supervise(settings))
        except (ValueError, EdgeMetaError) as exc:
            typer.echo(f"edgemeta: cannot start: {exc}", err=True)
            raise typer.Exit(2) from None
    _run_worker(settings)


def _run_worker(settings: Settings, *, reuse_port: bool = False) -> None:
    """One serving process until SIGINT/SIGTERM (alone, or one of ``--workers N``)."""
    runner: Any = asyncio.run
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:  # pragma: no cover - uvloop ships with uvicorn[standard]
        pass
    try:
        runner(_serve(settings, reuse_port=reuse_port))
    except (ValueError, EdgeMetaError) as exc:  # InsecureExposure is a ValueError
        typer.echo(f"edgemeta: cannot start: {exc}", err=True)
        raise typer.Exit(2) from None


apikey_app = typer.Typer(
    help="API keys (stored as hashes; direct database access through the settings' URL)."
)
app.add_typer(apikey_app, name="apikey")
kek_app = typer.Typer(
    help="Key-encryption keys: secrets at rest (docs/security.md, 'Secrets at rest')."
)
app.add_typer(kek_app, name="kek")

DatabaseOption = Annotated[
    str | None, typer.Option(help="sqlite:///path or postgresql://... [EDGEMETA_DATABASE_URL]")
]


def _with_store(
    database_url: str | None, work: Callable[[Store], Awaitable[T]], *, sealed: bool = False
) -> T:
    """Run ``work`` on the store the settings name (migrating it, as serve would); ``sealed``:
    with the key-encryption keys serve would use, for work that reads or writes secrets."""
    try:
        settings = _settings(database_url=database_url)
        keyring = (
            load_keyring(
                env_keys=settings.kek, key_file=settings.kek_file, data_dir=settings.data_dir
            )
            if sealed
            else None
        )
    except ValueError as exc:
        typer.echo(f"invalid settings: {exc}", err=True)
        raise typer.Exit(2) from None

    async def run() -> T:
        store = await open_store(settings.database_url)
        if keyring is not None:
            store.use_sealer(keyring)
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


def enrollment_revoke(
    name: str,
    serial: Annotated[
        list[str] | None, typer.Option("--serial", help="A certificate serial (hex)")
    ] = None,
    thumbprint: Annotated[
        list[str] | None, typer.Option("--thumbprint", help="A SHA-256 thumbprint (hex)")
    ] = None,
    database_url: DatabaseOption = None,
) -> None:
    """Refuse certificates through an X.509 enrolment from the next registration on (403)."""
    if not serial and not thumbprint:
        typer.echo("give at least one --serial or --thumbprint", err=True)
        raise typer.Exit(2)

    async def work(store: Store) -> Enrollment:
        return await revoke_certificates(
            Deps(store), name, serials=serial or [], thumbprints=thumbprint or []
        )

    stored = _with_store(database_url, work, sealed=True)
    assert stored.x509 is not None
    typer.echo(
        f"enrollment {name} (revision {stored.revision}) refuses"
        f" {len(stored.x509.revoked_serials)} serial(s) and"
        f" {len(stored.x509.revoked_thumbprints)} thumbprint(s)"
    )


@kek_app.command("generate")
def kek_generate() -> None:
    """Print a new random key-encryption key (a line for EDGEMETA_KEK_FILE)."""
    typer.echo(generate_key())


@kek_app.command("reseal")
def kek_reseal(database_url: DatabaseOption = None) -> None:
    """Re-encrypt every stored secret with the first (current) key of the keyring."""

    async def work(store: Store) -> tuple[int, int]:
        async with store.write() as tx:
            return await tx.enrollments.reseal(), await tx.secret.reseal()

    enrolments, server = _with_store(database_url, work, sealed=True)
    typer.echo(
        f"resealed the secrets of {enrolments} enrolment(s)"
        + (" and the server secret" if server else "")
        + " with the current key"
    )


@app.command()
def releasekey(
    service: Annotated[str, typer.Argument(help="The device service's name")],
    database_url: DatabaseOption = None,
) -> None:
    """Print a device service's release key (hex), for a service configured by file; it signs
    its bus replies with it (docs/security.md). Direct database access, as 'apikey create'."""
    key_file = _settings(database_url=database_url).release_key_file

    async def work(store: Store) -> tuple[bytes, bool]:
        secret = await server_secret(store, key_file)
        async with store.read() as tx:
            known = await tx.services.get(service) is not None
        return derive_key(secret, service), known

    key, known = _with_store(database_url, work, sealed=True)
    typer.echo(key.hex())
    if not known:
        typer.echo(f"note: no device service '{service}' is registered (yet)", err=True)


@app.command()
def backup(
    file: Annotated[Path, typer.Argument(help="The new file to write the copy to")],
    database_url: DatabaseOption = None,
) -> None:
    """Copy the SQLite database to FILE, consistent, while edgemeta runs (SQLite's online
    backup). PostgreSQL: use pg_dump (docs/operations.md#backups)."""
    try:
        url = _settings(database_url=database_url).database_url
    except ValueError as exc:
        typer.echo(f"invalid settings: {exc}", err=True)
        raise typer.Exit(2) from None
    if urlsplit(url).scheme.lower() != "sqlite":
        typer.echo(
            "edgemeta: backup copies SQLite databases; for PostgreSQL use "
            "pg_dump --format=custom (docs/operations.md#backups)",
            err=True,
        )
        raise typer.Exit(2)
    try:
        done = backup_sqlite(sqlite_path(url), file)
    except BackupError as exc:
        typer.echo(f"edgemeta: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"{done.path}: {done.bytes} bytes, schema at migration {done.schema_version}")


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


# The admin commands (edgemeta.admin) talk to a running service over its API.
# ``enrollment revoke`` works on the database directly (like ``apikey``), beside the admin
# CLI's enrollment commands, which go through the API.
admin.register(app)["enrollment"].command("revoke")(enrollment_revoke)
app.callback()(admin.version_callback)
helpfix.install()


def main() -> None:
    """Entry point of the ``edgemeta`` script."""
    app()
