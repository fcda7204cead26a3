"""The composition root: settings in, a running service out. No I/O at import time."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from starlette.types import ASGIApp

from edgemeta.api.app import create_app, create_data_app
from edgemeta.api.handlers import ApiContext
from edgemeta.api.routes.coredata import DataContext
from edgemeta.api.stream import Notifier
from edgemeta.bus.memory import MemoryBus
from edgemeta.domain.errors import ServiceUnavailable
from edgemeta.domain.moves import ReleasePolicy
from edgemeta.peers.releases import BusReleases
from edgemeta.peers.validation import BusDeviceValidator
from edgemeta.peers.webhooks import HttpAllocationHook
from edgemeta.ports import Bus, Store
from edgemeta.security.authn import Authenticator
from edgemeta.security.config import authenticator, check_exposure
from edgemeta.settings import Settings
from edgemeta.store import open_store
from edgemeta.usecases.deps import Deps, MoveSettings, Policy
from edgemeta.workers.ingest import EventIngest
from edgemeta.workers.moves import MoveResumer
from edgemeta.workers.relay import Relay

log = logging.getLogger("edgemeta")


def open_bus(url: str, settings: Settings) -> Bus:
    """The bus named by ``url``: ``memory://``, ``mqtt://host:port``, ``nats://host:port``."""
    scheme = urlsplit(url).scheme.lower()
    if scheme in ("memory", "inproc", ""):
        return MemoryBus()
    if scheme == "mqtt":
        # Imported here so that the default (in-process) bus does not load the MQTT client.
        from edgemeta.bus.mqtt import MqttBus

        return MqttBus(url, qos=settings.bus_qos)
    if scheme == "nats":
        from edgemeta.bus.nats import NatsBus

        # System events go through JetStream (stored, acknowledged) where the server has it.
        return NatsBus(url, jetstream_subjects=[f"{settings.bus_prefix}/system-events/#"])
    raise ValueError(f"unsupported bus URL scheme {scheme!r} (use memory://, mqtt:// or nats://)")


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
    """What GET /config shows (EdgeX uses PascalCase keys here); no secrets."""
    return {
        "Writable": {
            "LogLevel": s.log_level,
            "MaxDevices": s.max_devices,
            "ProfileChange": {
                "StrictDeviceProfileChanges": s.strict_profile_changes,
                "StrictDeviceProfileDeletes": s.strict_profile_deletes,
            },
            "UoM": {"Validation": s.uom_validation},
        },
        "CoreData": {"Enabled": s.core_data, "Port": s.data_port},
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
            "Url": s.bus_url,
            "BaseTopicPrefix": s.bus_prefix,
            "Optional": {"Qos": str(s.bus_qos)},
        },
        "DeviceValidation": s.device_validation,
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
    ingest: EventIngest | None = None
    authenticator: Authenticator | None = None
    resumer: MoveResumer = field(init=False)
    _connecting: asyncio.Task[None] | None = None

    def __post_init__(self) -> None:
        self.resumer = MoveResumer(self.deps)

    async def start(self) -> None:
        """Connect the bus and start relaying system events.

        A broker that is down does not stop edgemeta from starting: writes are accepted and
        their events wait in the outbox; the bus keeps trying to connect in the background
        and the relay delivers once it is up.
        """
        self._connecting = asyncio.create_task(self._connect_bus(), name="edgemeta-bus-connect")
        await asyncio.wait([self._connecting], timeout=3.0)
        self.relay.start()
        if self.ingest is not None:
            self.ingest.start()
        self.resumer.start()

    async def _connect_bus(self) -> None:
        delay = 1.0
        while True:
            try:
                await self.bus.start()
                return
            except ServiceUnavailable as exc:
                log.warning("%s; edgemeta keeps events in the outbox and retries", exc.message)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)

    async def stop(self) -> None:
        """Deliver what can be delivered, then close everything."""
        await self.resumer.stop()
        task = self._connecting
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.ingest is not None:
            await self.ingest.stop()
        await self.relay.stop()
        hook = self.deps.allocation_hook
        if isinstance(hook, HttpAllocationHook):
            await hook.close()
        await self.bus.close()
        if self.authenticator is not None:
            await self.authenticator.close()
        await self.store.close()


async def build(settings: Settings) -> Service:
    """Open the store (applying migrations) and wire everything; call ``start`` to run."""
    check_exposure(settings)
    store = await open_store(settings.database_url, sqlite_synchronous=settings.sqlite_synchronous)
    auth = authenticator(settings, store)
    cors = settings.cors_origin_list()
    bus = open_bus(settings.bus_url, settings)
    uom, uom_yaml = load_uom(settings.uom_file)
    units = frozenset(v for u in uom["units"].values() for v in u["values"])
    policy = Policy(
        max_devices=settings.max_devices,
        strict_profile_changes=settings.strict_profile_changes,
        strict_profile_deletes=settings.strict_profile_deletes,
        uom_validation=settings.uom_validation,
        units=units,
    )
    validator = BusDeviceValidator(
        bus,
        prefix=settings.bus_prefix,
        timeout=settings.validation_timeout,
        mode=settings.device_validation,
        name_escape=settings.name_escape,
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
    releases = BusReleases(bus, prefix=settings.bus_prefix, name_escape=settings.name_escape)
    deps = Deps(
        store=store,
        validator=validator,
        policy=policy,
        releases=releases,
        move_settings=move_settings,
        allocation_hook=HttpAllocationHook(),
    )
    relay = Relay(
        store,
        bus,
        prefix=settings.bus_prefix,
        name_escape=settings.name_escape,
        retention_s=settings.event_retention_hours * 3600,
    )
    store.on_commit(relay.nudge)
    notifier = Notifier()
    relay.listeners.append(notifier.notify)
    api = ApiContext(
        deps=deps,
        max_result_count=settings.max_result_count,
        max_body_bytes=settings.max_request_bytes,
        max_batch=settings.max_batch,
        config=config_document(settings),
        uom=uom,
        uom_yaml=uom_yaml,
        notifier=notifier,
        bus_prefix=settings.bus_prefix,
        name_escape=settings.name_escape,
        registration_wait=settings.registration_wait,
    )
    data_app = ingest = None
    if settings.core_data:
        data_app = create_data_app(
            DataContext(
                deps=deps,
                max_result_count=settings.max_result_count,
                max_event_bytes=settings.max_event_bytes,
                config=data_config_document(settings),
            ),
            authenticator=auth,
            cors_origins=cors,
        )
        if settings.data_ingest:
            ingest = EventIngest(
                deps,
                bus,
                prefix=settings.bus_prefix,
                bus_url=settings.bus_url,
                client_id=settings.data_client_id,
                qos=max(settings.bus_qos, 1),
                batch_max=settings.data_batch,
            )
    app = create_app(api, authenticator=auth, cors_origins=cors)
    return Service(settings, store, bus, relay, deps, app, data_app, ingest, authenticator=auth)


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
            "Url": s.bus_url,
            "BaseTopicPrefix": s.bus_prefix,
            "SubscribeTopic": f"{s.bus_prefix}/events/device/#",
            "ClientId": s.data_client_id,
            "Ingest": s.data_ingest,
        },
    }
