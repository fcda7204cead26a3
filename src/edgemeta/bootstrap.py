"""The composition root: settings in, a running service out. No I/O at import time."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import yaml
from starlette.types import ASGIApp

from edgemeta.api.app import (
    create_app,
    create_command_app,
    create_data_app,
    create_keeper_app,
    create_metrics_app,
)
from edgemeta.api.handlers import ApiContext
from edgemeta.api.health import Readiness
from edgemeta.api.routes.command import CommandContext
from edgemeta.api.routes.coredata import DataContext
from edgemeta.api.routes.keeper import KeeperContext
from edgemeta.api.stream import Notifier
from edgemeta.bus.memory import MemoryBus
from edgemeta.bus.security import BrokerRefused, BusSecurity
from edgemeta.domain.errors import ServiceUnavailable
from edgemeta.domain.moves import ReleasePolicy
from edgemeta.domain.x509 import Issuer
from edgemeta.north.bridge import NorthBridge, NorthSettings
from edgemeta.north.wire import Topics
from edgemeta.observability.metrics import Metrics, multiprocess_dir
from edgemeta.observability.telemetry import Telemetry
from edgemeta.peers.commands import BusCommander, RestCommander
from edgemeta.peers.proof_gate import ProofGate
from edgemeta.peers.releases import BusReleases
from edgemeta.peers.validation import BusDeviceValidator
from edgemeta.peers.webhooks import HttpAllocationHook
from edgemeta.ports import Bus, Store
from edgemeta.security.authn import Authenticator
from edgemeta.security.config import authenticator, check_exposure
from edgemeta.security.proofs import Keyring, effective_mode
from edgemeta.security.sealing import load_keyring
from edgemeta.settings import Settings, redact
from edgemeta.store import open_store
from edgemeta.tracing import Tracing, build_tracing
from edgemeta.tracing.store import TracedStore
from edgemeta.usecases.commands import CommandDeps, CommandSettings
from edgemeta.usecases.deps import Deps, MoveSettings, Policy, X509Settings
from edgemeta.usecases.keeper import Keeper, writable_document
from edgemeta.usecases.release_keys import server_secret
from edgemeta.workers.background import (
    BackgroundParts,
    BackgroundThread,
    can_run_apart,
    ingest_deps,
)
from edgemeta.workers.ingest import EventIngest
from edgemeta.workers.moves import MoveResumer
from edgemeta.workers.relay import Relay

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export import SpanExporter

log = logging.getLogger("edgemeta")


def open_bus(url: str, settings: Settings, security: BusSecurity | None = None) -> Bus:
    """The bus named by ``url``: ``memory://``, ``mqtt[s]://host:port``,
    ``nats://host:port`` or ``tls://host:port`` (NATS over TLS), with ``security``'s
    credentials and TLS options."""
    scheme = urlsplit(url).scheme.lower()
    if scheme in ("memory", "inproc", ""):
        return MemoryBus()
    if scheme in ("mqtt", "mqtts"):
        # Imported here so that the default (in-process) bus does not load the MQTT client.
        from edgemeta.bus.mqtt import MqttBus

        return MqttBus(url, qos=settings.bus_qos, security=security)
    if scheme in ("nats", "tls"):
        from edgemeta.bus.nats import NatsBus

        # System events go through JetStream (stored, acknowledged) where the server has it.
        return NatsBus(
            url, jetstream_subjects=[f"{settings.bus_prefix}/system-events/#"], security=security
        )
    raise ValueError(
        f"unsupported bus URL scheme {scheme!r} "
        "(use memory://, mqtt://, mqtts://, nats:// or tls://)"
    )


def load_uom(path: Path | None) -> tuple[dict[str, Any], bytes]:
    """The units of measure as the API serves them (JSON shape) and the raw YAML."""
    raw = (
        path.read_bytes()
        if path
        else resources.files("edgemeta.res").joinpath("uom.yaml").read_bytes()
    )
    data = yaml.safe_load(raw) or {}
    units = {
        k: {"source": v.get("Source", ""), "values": [str(x) for x in v.get("Values", [])]}
        for k, v in (data.get("Units") or {}).items()
    }
    return {"source": data.get("Source", ""), "units": units}, raw


def config_document(s: Settings) -> dict[str, Any]:
    """What GET /config shows (EdgeX uses PascalCase keys here); no secrets.

    ``Writable`` and ``Service.MaxResultCount`` are the start-up values: the route answers
    them as they are at request time (they change through the core-keeper API).
    """
    return {
        "Writable": writable_document(
            Policy(
                max_devices=s.max_devices,
                strict_profile_changes=s.strict_profile_changes,
                strict_profile_deletes=s.strict_profile_deletes,
                uom_validation=s.uom_validation,
                max_result_count=s.max_result_count,
                log_level=s.log_level,
            )
        ),
        "CoreData": {"Enabled": s.core_data, "Port": s.data_port},
        "CoreKeeper": {"Enabled": s.core_keeper, "Port": s.keeper_port},
        "Service": {
            "Host": s.host,
            "Port": s.port,
            "MaxResultCount": s.max_result_count,
            "MaxRequestSize": s.max_request_bytes // 1024,
            "EnableNameFieldEscape": s.name_escape,
            "RequestTimeout": f"{s.validation_timeout:g}s",
        },
        "Database": {"Url": s.redacted_database_url()},
        "MessageBus": {
            "Url": s.redacted_bus_url(),
            "BaseTopicPrefix": s.bus_prefix,
            "Optional": {"Qos": str(s.bus_qos)},
            # Whether, never what: the password stays out of /config.
            "Security": _bus_security_document(s),
        },
        "DeviceValidation": s.device_validation,
    }


def _bus_security_document(s: Settings) -> dict[str, Any]:
    """The bus's security settings for /config: user name, TLS, file paths; no secret."""
    scheme = urlsplit(s.bus_url).scheme.lower()
    return {
        "Username": s.bus_username,
        "PasswordFile": str(s.bus_password_file or ""),
        "Tls": bool(s.bus_tls or scheme in ("mqtts", "tls") or s.bus_ca_file or s.bus_cert_file),
        "CaFile": str(s.bus_ca_file or ""),
        "CertFile": str(s.bus_cert_file or ""),
        "KeyFile": str(s.bus_key_file or ""),
    }


@dataclass
class Service:
    """A wired edgemeta: store, bus, relay, use-case dependencies and the ASGI app."""

    settings: Settings
    store: Store
    bus: Bus
    relay: Relay
    deps: Deps
    app: ASGIApp
    data_app: ASGIApp | None = None
    keeper_app: ASGIApp | None = None
    keeper: Keeper | None = None
    ingest: EventIngest | None = None
    command_app: ASGIApp | None = None
    # core-command's delivery (its standing answer subscription or HTTP client, closed on stop)
    commander: BusCommander | RestCommander | None = None
    authenticator: Authenticator | None = None
    notifier: Notifier | None = None
    # The relay and ingest on their own thread and loop (workers/background.py), or None:
    # then ``relay`` and ``ingest`` run on this loop.
    background: BackgroundThread | None = None
    tracing: Tracing = field(default_factory=Tracing.off)
    metrics: Metrics | None = None
    telemetry: Telemetry | None = None
    metrics_app: ASGIApp | None = None
    north: NorthBridge | None = None  # commands from the north (external MQTT), if configured
    resumer: MoveResumer = field(init=False)
    _connecting: asyncio.Task[None] | None = None
    _starting: bool = False
    _reloading: asyncio.Task[None] | None = None

    def __post_init__(self) -> None:
        self.resumer = MoveResumer(self.deps)

    async def start(self) -> None:
        """Connect the bus and start relaying system events.

        A broker that is down does not stop edgemeta from starting: writes are accepted and
        their events wait in the outbox; the bus keeps trying to connect in the background
        and the relay delivers once it is up. A broker that *refuses* edgemeta (wrong
        credentials, an untrusted certificate) within those first seconds makes ``start``
        raise BrokerRefused: a configuration error, better reported than retried.
        """
        self._starting = True
        self._connecting = asyncio.create_task(self._connect_bus(), name="edgemeta-bus-connect")
        await asyncio.wait([self._connecting], timeout=3.0)
        self._starting = False
        if self._connecting.done() and not self._connecting.cancelled():
            refused = self._connecting.exception()
            if refused is not None:
                raise refused
        if self.background is not None:
            self.background.start(asyncio.get_running_loop())
        else:
            self.relay.start()
            if self.ingest is not None:
                self.ingest.start()
        self.resumer.start()
        if self.north is not None:
            self.north.start()
        if self.telemetry is not None:
            self.telemetry.start()
        interval = self.settings.keeper_reload_seconds
        if self.keeper is not None and interval > 0:
            self._reloading = asyncio.create_task(
                self.keeper.follow(interval), name="edgemeta-writable-reload"
            )

    async def _connect_bus(self) -> None:
        delay = 1.0
        while True:
            try:
                await self.bus.start()
                return
            except BrokerRefused as exc:
                if self._starting:
                    raise
                # The broker came up refusing us after start had returned: nothing to fail
                # any more, so say it loudly and keep trying (the operator may fix it).
                log.error("%s; edgemeta keeps events in the outbox and retries", exc.message)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
            except ServiceUnavailable as exc:
                log.warning("%s; edgemeta keeps events in the outbox and retries", exc.message)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)

    async def end_streams(self, within: float = 2.0) -> None:
        """The HTTP server is stopping: deliver what is pending (for at most ``within``
        seconds), then end every event stream once it has sent that. Without this an open
        stream keeps the server waiting for its connection forever."""
        if self.background is not None:
            await self.background.drain(within)
        else:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(within):
                    await self.relay.drain()
        if self.notifier is not None:
            self.notifier.close()

    async def ingest_ready(self, within: float = 10.0) -> bool:
        """Wait until core-data's bus ingest is subscribed (on this loop or on the
        background thread's); False when there is no ingest."""
        if self.ingest is not None:
            await asyncio.wait_for(self.ingest.ready.wait(), within)
            return True
        parts = self.background.parts if self.background is not None else None
        if parts is None or parts.ingest is None:
            return False
        ready = parts.ingest.ready  # another loop's Event: is_set() is safe to read from here
        async with asyncio.timeout(within):
            while not ready.is_set():  # noqa: ASYNC110 - the Event belongs to another loop
                await asyncio.sleep(0.01)
        return True

    async def stop(self) -> None:
        """Deliver what can be delivered, then close everything."""
        if self.north is not None:
            # First: requests in flight get their answers while the store and bus still work.
            await self.north.stop()
        await self.resumer.stop()
        if self.telemetry is not None:
            await self.telemetry.stop()
        if self._reloading is not None:
            self._reloading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reloading
        task = self._connecting
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.background is not None:
            await self.background.stop()
        else:
            if self.ingest is not None:
                await self.ingest.stop()
            await self.relay.stop()
        hook = self.deps.allocation_hook
        if isinstance(hook, HttpAllocationHook):
            await hook.close()
        if self.commander is not None:
            await self.commander.close()
        await self.bus.close()
        if self.authenticator is not None:
            await self.authenticator.close()
        await self.store.close()
        self.tracing.shutdown()  # after the relay's last publish: its spans go out too


class IssuingCaError(ValueError):
    """The issuing CA settings name files that do not make an issuing CA."""


def load_issuer(settings: Settings) -> Issuer | None:
    """The CA that signs devices' CSRs (``EDGEMETA_ISSUING_CA_*``), if configured."""
    cert_file, key_file = settings.issuing_ca_cert_file, settings.issuing_ca_key_file
    if cert_file is None and key_file is None:
        return None
    if cert_file is None or key_file is None:
        raise IssuingCaError(
            "EDGEMETA_ISSUING_CA_CERT_FILE and EDGEMETA_ISSUING_CA_KEY_FILE go together"
        )
    password_file = settings.issuing_ca_key_password_file
    # A password file ends in a newline as often as not; the password does not.
    password = None if password_file is None else password_file.read_bytes().rstrip(b"\r\n")
    try:
        return Issuer.load(cert_file.read_bytes(), key_file.read_bytes(), password)
    except (ValueError, TypeError) as exc:
        raise IssuingCaError(f"the issuing CA in {cert_file} / {key_file}: {exc}") from None


async def build(settings: Settings, *, span_exporter: SpanExporter | None = None) -> Service:
    """Open the store (applying migrations) and wire everything; call ``start`` to run.

    ``span_exporter``: trace, exporting there span by span, whatever ``EDGEMETA_TRACING``
    says (tests, and an application embedding edgemeta with its own exporter)."""
    check_exposure(settings)
    tracing = build_tracing(settings, span_exporter)
    issuer = load_issuer(settings)
    sealer = load_keyring(
        env_keys=settings.kek, key_file=settings.kek_file, data_dir=settings.data_dir
    )
    # Before the store opens: an unusable EDGEMETA_WEBHOOK_CA_FILE refuses to start.
    allocation_hook = HttpAllocationHook(
        ca_file=settings.webhook_ca_file, max_bytes=settings.webhook_max_bytes
    )
    store = await open_store(settings.database_url, sqlite_synchronous=settings.sqlite_synchronous)
    store.use_sealer(sealer)
    auth = authenticator(settings, store)
    cors = settings.cors_origin_list()
    bus_security = settings.bus_security()
    bus = open_bus(settings.bus_url, settings, bus_security)
    uom, uom_yaml = load_uom(settings.uom_file)
    units = frozenset(v for u in uom["units"].values() for v in u["values"])
    policy = Policy(
        max_devices=settings.max_devices,
        strict_profile_changes=settings.strict_profile_changes,
        strict_profile_deletes=settings.strict_profile_deletes,
        uom_validation=settings.uom_validation,
        units=units,
        max_result_count=settings.max_result_count,
        log_level=settings.log_level,
    )
    # The writable settings stored through the core-keeper API override the environment's.
    keeper = Keeper(store, policy)
    await keeper.load()
    # Proof of the sender on bus replies (docs/security.md): one gate, one count, for both.
    try:
        keyring = Keyring(await server_secret(store, settings.release_key_file))
    except BaseException:
        await store.close()
        raise
    gate = ProofGate(keyring, effective_mode(settings.release_proof, settings.auth))
    log.info("proof of the sender on bus replies: %s", gate.mode)
    validator = BusDeviceValidator(
        bus,
        prefix=settings.bus_prefix,
        timeout=settings.validation_timeout,
        mode=settings.device_validation,
        name_escape=settings.name_escape,
        gate=gate,
    )
    move_settings = MoveSettings(
        ack_timeout=settings.move_ack_timeout,
        release_deadline=settings.move_release_deadline,
        release_policy=ReleasePolicy(settings.move_release_policy),
        implicit=settings.implicit_moves,
        # Another instance may still be waiting on a move's release: never resume before that
        # wait is surely over.
        stale_after=max(
            settings.move_stale_after,
            2 * (settings.move_ack_timeout + settings.move_release_deadline),
        ),
    )
    releases = BusReleases(
        bus, prefix=settings.bus_prefix, name_escape=settings.name_escape, gate=gate
    )
    # The use cases' transactions are spans when tracing is on; the relay and the workers
    # keep the plain store (their polls are no one's trace).
    traced: Store = (
        TracedStore(
            store, tracing, "sqlite" if store.description.startswith("SQLite") else "postgresql"
        )
        if tracing.enabled
        else store
    )
    metrics = None
    if settings.metrics:
        metrics = Metrics(multiprocess_dir())
        metrics.add_store(store)
        metrics.bus = bus
    deps = Deps(
        store=traced,
        tracing=tracing,
        validator=validator,
        policy=policy,
        releases=releases,
        move_settings=move_settings,
        allocation_hook=allocation_hook,
        keyring=keyring,
        x509=X509Settings(
            max_chain_depth=settings.x509_max_chain_depth,
            challenge_ttl=settings.registration_challenge_ttl,
            issuer=issuer,
        ),
        **({"meter": metrics} if metrics is not None else {}),
    )
    relay = Relay(
        store,
        bus,
        prefix=settings.bus_prefix,
        name_escape=settings.name_escape,
        retention_s=settings.event_retention_hours * 3600,
        tracing=tracing,
    )
    if metrics is not None:
        relay.on_published = metrics.published
    notifier = Notifier()
    background = None
    if settings.background_thread and can_run_apart(settings.database_url, settings.bus_url):

        async def background_parts() -> BackgroundParts:
            # On the thread's own loop: its own store connection (or pool) and bus connection.
            own_store = await open_store(
                settings.database_url, sqlite_synchronous=settings.sqlite_synchronous
            )
            own_bus = open_bus(settings.bus_url, settings, bus_security)
            own_relay = Relay(
                own_store,
                own_bus,
                prefix=settings.bus_prefix,
                name_escape=settings.name_escape,
                retention_s=settings.event_retention_hours * 3600,
                tracing=tracing,
            )
            if metrics is not None:  # counters are thread-safe: the thread counts directly
                own_relay.on_published = metrics.published
            own_ingest = None
            if settings.core_data and settings.data_ingest:
                own_ingest = _ingest(settings, ingest_deps(deps, own_store), own_bus)
            return BackgroundParts(own_store, own_bus, own_relay, own_ingest)

        background = BackgroundThread(background_parts, notifier)
        store.on_commit(background.nudge)
    else:
        store.on_commit(relay.nudge)
        relay.listeners.append(notifier.notify)
    readiness = Readiness(store, bus)  # /health/ready on every port
    api = ApiContext(
        deps=deps,
        max_body_bytes=settings.max_request_bytes,
        max_batch=settings.max_batch,
        config=config_document(settings),
        uom=uom,
        uom_yaml=uom_yaml,
        notifier=notifier,
        bus_prefix=settings.bus_prefix,
        name_escape=settings.name_escape,
        registration_wait=settings.registration_wait,
        readiness=readiness,
    )
    data_app = ingest = None
    if settings.core_data:
        data_app = create_data_app(
            DataContext(
                deps=deps,
                max_result_count=settings.max_result_count,
                max_event_bytes=settings.max_event_bytes,
                config=data_config_document(settings),
                readiness=readiness,
            ),
            authenticator=auth,
            cors_origins=cors,
            tracing=tracing,
            access_log=settings.access_log,
            port=settings.data_port,
            metrics=metrics,
        )
        if settings.data_ingest and background is None:
            ingest = _ingest(settings, deps, bus)
    keeper_app = None
    if settings.core_keeper:
        keeper_app = create_keeper_app(
            KeeperContext(
                keeper=keeper, max_body_bytes=settings.max_request_bytes, readiness=readiness
            ),
            authenticator=auth,
            cors_origins=cors,
            tracing=tracing,
            access_log=settings.access_log,
            port=settings.keeper_port,
            metrics=metrics,
        )
    command_app = None
    # Built even with core-command off: the north bridge delivers through it too. The bus
    # commander subscribes for answers only at its first command.
    commander: BusCommander | RestCommander = (
        RestCommander()
        if settings.command_transport == "rest"
        else BusCommander(bus, prefix=settings.bus_prefix, name_escape=settings.name_escape)
    )
    command_deps = CommandDeps(
        deps,
        commander,
        CommandSettings(timeout=settings.command_timeout, move_wait=settings.command_move_wait),
    )
    if settings.core_command:
        command_app = create_command_app(
            CommandContext(
                cd=command_deps,
                max_body_bytes=settings.max_request_bytes,
                config=command_config_document(settings),
            ),
            authenticator=auth,
            cors_origins=cors,
            tracing=tracing,
            access_log=settings.access_log,
            port=settings.command_port,
            metrics=metrics,
        )
    app = create_app(
        api,
        authenticator=auth,
        cors_origins=cors,
        tracing=tracing,
        access_log=settings.access_log,
        port=settings.port,
        metrics=metrics,
        serve_metrics=settings.metrics_port == 0,
    )
    metrics_app = None
    if metrics is not None and settings.metrics_port:
        metrics_app = create_metrics_app(metrics, authenticator=auth)
    return Service(
        settings,
        store,
        bus,
        relay,
        deps,
        app,
        data_app,
        keeper_app,
        keeper,
        ingest,
        authenticator=auth,
        notifier=notifier,
        background=background,
        tracing=tracing,
        metrics=metrics,
        metrics_app=metrics_app,
        telemetry=(
            Telemetry(
                metrics, bus, prefix=settings.bus_prefix, interval=settings.telemetry_interval
            )
            if metrics is not None and settings.telemetry_interval > 0
            else None
        ),
        command_app=command_app,
        commander=commander,
        north=north_bridge(settings, command_deps, auth) if settings.north_mqtt_url else None,
    )


def north_bridge(settings: Settings, cd: CommandDeps, auth: Authenticator | None) -> NorthBridge:
    """Commands from the north on the external broker of ``EDGEMETA_NORTH_MQTT_URL``."""
    from edgemeta.bus.mqtt import MqttBus

    external = MqttBus(
        settings.north_mqtt_url,
        qos=settings.north_mqtt_qos,
        client_id_prefix="edgemeta-north",
        client_id=settings.north_mqtt_client_id,
        security=settings.north_security(),
        # A request waits for the answer of a device service; this bounds only the broker's
        # acknowledgements, as on the internal bus.
        timeout=5.0,
    )
    scheme = "https" if settings.tls_cert_file else "http"
    return NorthBridge(
        cd,
        external,
        NorthSettings(
            topics=Topics(
                query_request=settings.north_query_request_topic,
                query_response=settings.north_query_response_topic,
                command_request=settings.north_command_request_topic,
                command_response_prefix=settings.north_command_response_topic_prefix,
            ),
            max_in_flight=settings.north_max_in_flight,
            max_bytes=settings.max_request_bytes,
            command_url=f"{scheme}://{settings.host}:{settings.command_port}",
        ),
        auth,
    )


def _ingest(settings: Settings, deps: Deps, bus: Bus) -> EventIngest:
    """core-data's bus ingest with ``deps``' store and ``bus``."""
    return EventIngest(
        deps,
        bus,
        prefix=settings.bus_prefix,
        bus_url=settings.bus_url,
        security=settings.bus_security(),
        client_id=settings.data_client_id,
        qos=max(settings.bus_qos, 1),
        batch_max=settings.data_batch,
    )


def command_config_document(s: Settings) -> dict[str, Any]:
    """What core-command's GET /config shows."""
    return {
        "Writable": {"LogLevel": s.log_level},
        "Service": {"Host": s.host, "Port": s.command_port},
        "Command": {
            "Transport": s.command_transport,
            "Timeout": s.command_timeout,
            "MoveWait": s.command_move_wait,
        },
        "MessageBus": {"Url": s.redacted_bus_url(), "BaseTopicPrefix": s.bus_prefix},
        # EdgeX's ExternalMQTT section: whether and where, never the password.
        "ExternalMQTT": {
            "Enabled": bool(s.north_mqtt_url),
            "Url": redact(s.north_mqtt_url),
            "ClientId": s.north_mqtt_client_id,
            "QoS": s.north_mqtt_qos,
            "Username": s.north_mqtt_username,
            "Topics": {
                "QueryRequestTopic": s.north_query_request_topic,
                "QueryResponseTopic": s.north_query_response_topic,
                "CommandRequestTopic": s.north_command_request_topic,
                "CommandResponseTopicPrefix": s.north_command_response_topic_prefix,
            },
        },
    }


def data_config_document(s: Settings) -> dict[str, Any]:
    """What core-data's GET /config shows."""
    return {
        "Writable": {"LogLevel": s.log_level, "PersistData": True},
        "Service": {
            "Host": s.host,
            "Port": s.data_port,
            "MaxResultCount": s.max_result_count,
            "MaxRequestSize": s.max_event_bytes // 1024,
        },
        "Database": {"Url": s.redacted_database_url()},
        "MessageBus": {
            "Url": s.redacted_bus_url(),
            "BaseTopicPrefix": s.bus_prefix,
            "Security": _bus_security_document(s),
            "SubscribeTopic": f"{s.bus_prefix}/events/device/#",
            "ClientId": s.data_client_id,
            "Ingest": s.data_ingest,
        },
    }
