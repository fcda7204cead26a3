"""A device service: a driver served over the bus (and REST), kept right across moves.

:class:`DeviceService` puts the SDK's parts together around one driver:

- the :class:`~edgemeta.sdk.participant.DeviceServiceParticipant` (registration, validation,
  the devices served, releases on moves, reconcile);
- command requests over the bus (:mod:`edgemeta.sdk.bus_commands`) and, with ``http_port``,
  EdgeX's device-service REST routes (:mod:`edgemeta.sdk.rest`), both run by one
  :class:`~edgemeta.sdk.commands.CommandRunner` that refuses a device not served here;
- the served devices' ``autoEvents`` (:mod:`edgemeta.sdk.autoevents`), sent to core-data;
- discovery through provision watchers (:mod:`edgemeta.sdk.discovery`), on demand
  (:meth:`DeviceService.discover`, ``POST /api/v3/discovery``) or every ``discover_every``
  seconds;
- optional provisioning at start (``profiles``, ``devices``): what is absent is added.

A release (the device moved away or was deleted) stops the device's autoEvents and waits for
its driver calls in flight (up to ``release_drain`` seconds) before the participant confirms
it, so the old owner's driver never touches a device the new owner serves.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx
import yaml

from edgemeta.bus.security import BusSecurity
from edgemeta.ports import Bus
from edgemeta.sdk import discovery
from edgemeta.sdk.autoevents import AutoEvents, Sleep
from edgemeta.sdk.bus_commands import BusCommands
from edgemeta.sdk.commands import LOCKED, CommandRunner, Options
from edgemeta.sdk.driver import CommandError, Discoverer, Driver, collect
from edgemeta.sdk.events import publish_event
from edgemeta.sdk.participant import DeviceServiceParticipant, Validator
from edgemeta.sdk.values import Profile

log = logging.getLogger("edgemeta.sdk")

Hook = Callable[[dict[str, Any]], Awaitable[None]]


def load_yaml(path: str | Path) -> Any:
    """A YAML file's content (a device profile, or a ``deviceList`` of devices)."""
    return yaml.safe_load(Path(path).read_text())


class DeviceService:
    """One device service built on a :class:`~edgemeta.sdk.driver.Driver`."""

    def __init__(
        self,
        name: str,
        driver: Driver,
        *,
        api_url: str,
        bus: Bus | str,
        bus_security: BusSecurity | None = None,
        prefix: str = "edgex",
        http_port: int | None = None,
        http_host: str = "127.0.0.1",
        base_address: str | None = None,
        profiles: Sequence[Mapping[str, Any]] = (),
        devices: Sequence[Mapping[str, Any]] = (),
        discover_every: float | None = None,
        base64_payload: bool = False,
        release_drain: float = 2.0,
        max_commands: int = 32,
        sleep: Sleep = asyncio.sleep,
        validate: Validator | None = None,
        on_serve: Hook | None = None,
        on_release: Hook | None = None,
        http: httpx.AsyncClient | None = None,
        **participant_options: Any,
    ) -> None:
        self.name = name
        self.driver = driver
        self.prefix = prefix
        self.http_port = http_port
        self.http_host = http_host
        self.profiles_to_add = list(profiles)
        self.devices_to_add = list(devices)
        self.discover_every = discover_every
        self.base64_payload = base64_payload
        self.release_drain = release_drain
        self._user_serve = on_serve
        self._user_release = on_release
        address = base_address or f"http://{http_host}:{http_port or 59999}"
        self.participant = DeviceServiceParticipant(
            name,
            api_url=api_url,
            bus=bus,
            bus_security=bus_security,
            prefix=prefix,
            base_address=address,
            validate=validate,
            on_serve=self._serving,
            on_release=self._released,
            on_update=self._updated,
            on_event=self._system_event,
            http=http,
            **participant_options,
        )
        self.api = self.participant.api
        self._profiles: dict[str, Profile] = {}
        self._profile_lock = asyncio.Lock()
        self.runner = CommandRunner(self, driver, self.publish)
        self.autoevents = AutoEvents(self.runner, self.publish, sleep=sleep)
        self.commands = BusCommands(
            self.bus,
            self.runner,
            prefix=prefix,
            service=name,
            base64_payload=base64_payload,
            max_inflight=max_commands,
        )
        self._server: Any = None  # uvicorn.Server, imported only when there is a port
        self._server_task: asyncio.Task[None] | None = None
        self._tasks: list[asyncio.Task[None]] = []

    # -- parts ----------------------------------------------------------------------------

    @property
    def bus(self) -> Bus:
        """The bus the service is on."""
        return self.participant.bus

    @property
    def http(self) -> httpx.AsyncClient:
        """The HTTP client it reaches core-metadata with."""
        return self.participant.http

    @property
    def serving(self) -> dict[str, dict[str, Any]]:
        """The devices served now, by name (their documents)."""
        return self.participant.serving

    # -- life cycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Connect, register, reconcile (which starts the devices' autoEvents), serve
        commands, provision what is absent, then the REST endpoint if it has a port."""
        await self.participant.start()
        await self.commands.start()
        await self._provision()
        if self.http_port is not None:
            await self._serve_http()
        if self.discover_every:
            self._tasks.append(asyncio.create_task(self._discover_loop(self.discover_every)))

    async def stop(self) -> None:
        """Stop everything (a stop is not a release: the devices stay this service's)."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self._server is not None and self._server_task is not None:
            self._server.should_exit = True
            await self._server_task
            self._server = self._server_task = None
        await self.autoevents.stop()
        await self.commands.stop()
        await self.participant.stop()

    async def __aenter__(self) -> DeviceService:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _serve_http(self) -> None:
        import uvicorn

        from edgemeta.sdk.rest import rest_app

        config = uvicorn.Config(
            rest_app(self.name, self.runner, self.discover),
            host=self.http_host,
            port=self.http_port or 0,
            log_level="warning",
            lifespan="off",
        )
        self._server = uvicorn.Server(config)
        task = self._server_task = asyncio.create_task(self._server.serve())
        while not self._server.started:
            if task.done():
                await task  # raises why it could not start
                raise RuntimeError(f"{self.name}: HTTP endpoint did not start")
            await asyncio.sleep(0.01)

    def rest_app(self) -> Any:
        """The REST endpoint's ASGI app (to mount elsewhere, or test without a port)."""
        from edgemeta.sdk.rest import rest_app

        return rest_app(self.name, self.runner, self.discover)

    # -- what the command runner asks (its Inventory) -------------------------------------

    def served(self, name: str) -> Mapping[str, Any] | None:
        """The document of ``name`` if this service serves it now."""
        return self.participant.serving.get(name)

    def refusal(self, name: str) -> CommandError:
        """Why ``name`` is not served: released (423) or unknown (404)."""
        if name in self.participant.released:
            return CommandError(
                LOCKED,
                f"device '{name}' was released by service '{self.name}' (moved away or "
                "deleted): ask core-command, which knows its owner",
            )
        return CommandError(
            404,
            f"device '{name}' is not served by service '{self.name}' (not its device, or a "
            "move to it is not confirmed yet)",
        )

    async def profile(self, name: str) -> Profile:
        """The profile ``name``, fetched from core-metadata once and kept up to date."""
        found = self._profiles.get(name)
        if found is not None:
            return found
        async with self._profile_lock:
            if name not in self._profiles:
                r = await self.http.get(
                    f"{self.api}/deviceprofile/name/{name}", headers=self.participant.auth
                )
                if r.status_code == 404:
                    raise CommandError(404, f"device profile '{name}' not found")
                r.raise_for_status()
                self._profiles[name] = Profile(r.json()["profile"])
            return self._profiles[name]

    # -- hooks of the participant ---------------------------------------------------------

    async def _serving(self, device: dict[str, Any]) -> None:
        self.autoevents.schedule(device)
        if self._user_serve is not None:
            await self._user_serve(device)

    async def _updated(self, device: dict[str, Any]) -> None:
        self.autoevents.schedule(device)

    async def _released(self, device: dict[str, Any]) -> None:
        name = str(device["name"])
        self.autoevents.cancel(name)
        if not await self.runner.drain(name, self.release_drain):
            log.warning("%s: a driver call on %s outlasted the release drain", self.name, name)
        if self._user_release is not None:
            await self._user_release(device)

    async def _system_event(self, event: dict[str, Any]) -> None:
        if event.get("type") == "deviceprofile":
            # The next command reads the profile as it is now.
            self._profiles.pop(str((event.get("details") or {}).get("name", "")), None)

    # -- commands, events, discovery ------------------------------------------------------

    async def get(self, device: str, command: str, *, push_event: bool = False) -> dict[str, Any]:
        """Run a get command here (as a request would): the event read."""
        return await self.runner.get(device, command, Options(push_event, True))

    async def set(self, device: str, command: str, values: Mapping[str, Any]) -> None:
        """Run a set command here (as a request would)."""
        await self.runner.set(device, command, values)

    async def publish(self, event: dict[str, Any], correlation_id: str = "") -> None:
        """Send an event to core-data over the bus."""
        await publish_event(
            self.bus,
            self.prefix,
            self.name,
            event,
            correlation_id=correlation_id,
            base64_payload=self.base64_payload,
        )

    async def discover(self) -> discovery.DiscoveryResult:
        """Ask the driver for devices and add those a provision watcher takes."""
        if not isinstance(self.driver, Discoverer):
            return discovery.DiscoveryResult()
        found = await collect(self.driver.discover())
        return await discovery.provision(
            self.http, self.api, self.name, found, self.participant.auth
        )

    async def _discover_loop(self, every: float) -> None:
        while True:
            try:
                await self.discover()
            except (httpx.HTTPError, CommandError) as exc:
                log.warning("%s: discovery failed: %s", self.name, exc)
            await asyncio.sleep(every)

    async def _provision(self) -> None:
        """Add the profiles and devices given at construction that core-metadata lacks."""
        headers = self.participant.auth
        for profile in self.profiles_to_add:
            r = await self.http.get(
                f"{self.api}/deviceprofile/name/{profile['name']}", headers=headers
            )
            if r.status_code == 404:
                r = await self.http.post(
                    f"{self.api}/deviceprofile",
                    json=[{"apiVersion": "v3", "profile": dict(profile)}],
                    headers=headers,
                )
                _check_added(r, f"profile {profile['name']}")
        for device in self.devices_to_add:
            r = await self.http.get(f"{self.api}/device/name/{device['name']}", headers=headers)
            if r.status_code == 404:
                doc = {"adminState": "UNLOCKED", "operatingState": "UP", **device}
                doc["serviceName"] = self.name
                r = await self.http.post(
                    f"{self.api}/device",
                    json=[{"apiVersion": "v3", "device": doc}],
                    headers=headers,
                )
                _check_added(r, f"device {device['name']}")


def _check_added(r: httpx.Response, what: str) -> None:
    r.raise_for_status()
    item = r.json()[0]
    if item.get("statusCode") not in (201, 409):
        raise RuntimeError(f"adding {what} failed: {item.get('message')}")
