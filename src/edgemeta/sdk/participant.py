"""The device-service side of edgemeta, in Python: a participant in moves.

A :class:`DeviceServiceParticipant` is what a device service built on it runs beside its
drivers. It

- registers its device service (``POST /deviceservice``) and says it confirms releases and,
  optionally, its capacity (``properties.edgemeta``);
- keeps the set of devices it serves from system events, as EdgeX's device SDKs do: an ``add``
  or ``update`` naming it as ``serviceName`` starts serving, an ``update`` naming another
  service or a ``delete`` stops it;
- answers EdgeX's validation requests (``<prefix>/<service>/validate/device``);
- confirms a release (``<prefix>/response/<service>/<moveId>``) once it has stopped serving a
  device that moved away, so the move engine can tell the new owner;
- signs its release confirmations and validation answers with its release key (``proof`` in
  the envelope, :mod:`edgemeta.security.proofs`), given to it (``release_key``) or fetched at
  start from ``GET /deviceservice/name/{name}/releasekey`` with its credential, so that with
  ``EDGEMETA_RELEASE_PROOF=on`` nobody else on the bus can confirm or answer for it;
- reconciles at start: it serves exactly the devices the store says it owns, so a service that
  was down during a move converges;
- registers the devices it discovers on their behalf (``register_device``), so an enrolment
  decides which service serves them;
- tells its owner what changes through hooks: ``on_serve`` and ``on_release`` (a device
  starts or stops being served; ``on_release`` runs before the release is confirmed),
  ``on_update`` (a served device's document replaced), ``on_event`` (every system event of the
  service that is not about a device: profiles, provision watchers).
- continues edgemeta's traces (``tracer_provider``, an OpenTelemetry ``TracerProvider``): a
  system event, a validation request and the release it causes are spans
  (``participant.event``, ``participant.validate``, ``participant.release``) in the trace the
  envelope's ``traceparent`` names, and its answers carry its own span's traceparent back.
  Without a provider it makes no spans, and its answers carry the traceparent it was sent.

:class:`edgemeta.sdk.DeviceService` runs one with a driver around it (commands, autoEvents,
discovery); a service that handles commands its own way can run a participant alone.

It depends on edgemeta's wire format only (HTTP API, bus topics and envelopes). The bus is
either one the caller made, or a URL the participant connects to itself with
:func:`open_bus` and the same credentials and TLS options as ``edgemeta serve``
(:class:`~edgemeta.bus.security.BusSecurity`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager
from contextvars import ContextVar
from typing import Any

import httpx
import orjson

from edgemeta.bus.envelope import decode, envelope
from edgemeta.bus.security import BusSecurity
from edgemeta.bus.topics import level, response_topic, validate_topic
from edgemeta.client.auth import auth_headers
from edgemeta.domain.errors import EdgeMetaError
from edgemeta.ports import Bus, Message, Subscription
from edgemeta.security.proofs import Kind, sign
from edgemeta.tracing import context_of, traceparent_of

log = logging.getLogger("edgemeta.sdk")

DeviceDoc = dict[str, Any]
Hook = Callable[[DeviceDoc], Awaitable[None]]
Validator = Callable[[DeviceDoc], Awaitable[None]]

# A move is unfinished in these states; in ``releasing`` the store already names the new owner,
# which must not serve until it is told (commit B).
UNFINISHED = frozenset({"requested", "assigning", "releasing"})
# How recently a device must have changed for reconcile to ask whether it is still arriving (a
# move that waits longer than this has long been rolled back, forced or resumed).
ARRIVING_HORIZON_MS = 10 * 60 * 1000
# The traceparent of the bus message being handled (what an answer carries without a tracer).
_INCOMING: ContextVar[str] = ContextVar("edgemeta_sdk_traceparent", default="")


def open_bus(
    url: str, security: BusSecurity | None = None, *, client_id_prefix: str = "edgemeta-ds"
) -> Bus:
    """A (not yet started) bus for ``url`` (``mqtt[s]://`` or ``nats://``/``tls://``) with the
    credentials and TLS options of ``security`` (and of the URL)."""
    scheme = url.partition("://")[0].lower()
    if scheme in ("mqtt", "mqtts"):
        from edgemeta.bus.mqtt import MqttBus

        return MqttBus(url, security=security, client_id_prefix=client_id_prefix)
    if scheme in ("nats", "tls"):
        from edgemeta.bus.nats import NatsBus

        return NatsBus(url, security=security, name=client_id_prefix)
    raise ValueError(
        f"not a bus URL the SDK connects to (mqtt[s]:// or nats:// or tls://): {scheme}"
    )


class Refused(Exception):
    """Raise from a validator to refuse a device; the message goes back to edgemeta."""


async def _nothing(device: DeviceDoc) -> None:
    return None


class DeviceServiceParticipant:
    """One device service's view of the devices it serves, kept right across moves."""

    def __init__(
        self,
        name: str,
        *,
        api_url: str,
        bus: Bus | str,
        bus_security: BusSecurity | None = None,
        prefix: str = "edgex",
        base_address: str = "http://127.0.0.1:59999",
        acks_release: bool = True,
        capacity: int = 0,
        validate: Validator | None = None,
        on_serve: Hook | None = None,
        on_release: Hook | None = None,
        on_update: Hook | None = None,
        on_event: Callable[[dict[str, Any]], Awaitable[None]] | None = None,
        http: httpx.AsyncClient | None = None,
        token: str | None = None,
        api_key: str | None = None,
        release_key: bytes | str | None = None,
        tracer_provider: Any = None,
    ) -> None:
        self.name = name
        # OpenTelemetry, only when given a provider (the SDK's API is imported then).
        self._tracer: Any = (
            tracer_provider.get_tracer("edgemeta.sdk") if tracer_provider is not None else None
        )
        self.api = api_url.rstrip("/").removesuffix("/api/v3") + "/api/v3"
        # A URL: the participant connects (with ``bus_security``) at start and closes at stop.
        self._own_bus = isinstance(bus, str)
        if isinstance(bus, str):
            self.bus = open_bus(bus, bus_security, client_id_prefix=name)
        elif bus_security is not None:
            raise ValueError("bus_security is for a bus URL; a bus object is already configured")
        else:
            self.bus = bus
        self.prefix = prefix
        self.base_address = base_address
        self.acks_release = acks_release
        self.capacity = capacity
        self.validate = validate
        self.on_serve = on_serve or _nothing
        self.on_release = on_release or _nothing
        # A served device's document replaced by an update (its profile, autoEvents, states).
        self.on_update = on_update or _nothing
        # Every other system event of this service (deviceprofile, provisionwatcher, ...).
        self.on_event = on_event
        # With authentication on: the service's credential (a JWT, or an API key made with
        # ``edgemeta apikey create --role service --service NAME``), sent with every request.
        self.auth = auth_headers(token, api_key)
        # The key this service signs its bus replies with: given (bytes, or hex as printed by
        # ``edgemeta releasekey``), else fetched at start with the credential above.
        self.release_key: bytes | None = (
            bytes.fromhex(release_key) if isinstance(release_key, str) else release_key
        )
        self.http = http or httpx.AsyncClient(timeout=30)
        self._own_http = http is None
        self.serving: dict[str, DeviceDoc] = {}
        self.released: list[str] = []  # names released, in order (for tests and logs)
        self._subs: list[Subscription] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._lock = asyncio.Lock()
        # System events handled per device: a reconcile leaves alone a device it heard about
        # while it was reading the store (the event is at least as new as what it read).
        self._heard: dict[str, int] = {}

    # -- life cycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect the bus if it is the participant's own (BrokerRefused when the broker
        refuses its credentials or certificate), register, fetch the release key (unless
        given), listen, then reconcile."""
        if self._own_bus:
            await self.bus.start()
        await self.register()
        if self.release_key is None:
            await self.fetch_release_key()
        mine = f"{self.prefix}/system-events/core-metadata/+/+/{level(self.name)}/#"
        for topic, handler in (
            (mine, self._on_system_event),
            (validate_topic(self.prefix, self.name), self._on_validate),
        ):
            sub = await self.bus.subscribe(topic)
            self._subs.append(sub)
            self._tasks.append(asyncio.create_task(self._pump(sub, handler)))
        await self.reconcile()
        if isinstance(getattr(self.bus, "reconnects", None), int):
            self._tasks.append(asyncio.create_task(self._reconcile_on_reconnect()))

    async def stop(self) -> None:
        """Stop listening (what it serves is left as it is: a stop is not a release)."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for sub in self._subs:
            with contextlib.suppress(EdgeMetaError):
                await sub.close()
        self._tasks.clear()
        self._subs.clear()
        if self._own_bus:
            await self.bus.close()
        if self._own_http:
            await self.http.aclose()

    async def register(self) -> None:
        """Add the device service, or update its address and capabilities if it exists."""
        props = {"edgemeta": {"acksRelease": self.acks_release}}
        if self.capacity:
            props["edgemeta"]["capacity"] = self.capacity  # type: ignore[assignment]
        service = {
            "name": self.name,
            "baseAddress": self.base_address,
            "adminState": "UNLOCKED",
            "properties": props,
        }
        r = await self.http.post(
            headers=self.auth,
            url=f"{self.api}/deviceservice",
            json=[{"apiVersion": "v3", "service": service}],
        )
        r.raise_for_status()
        if r.json()[0]["statusCode"] == 409:
            r = await self.http.patch(
                headers=self.auth,
                url=f"{self.api}/deviceservice",
                json=[
                    {
                        "apiVersion": "v3",
                        "service": {
                            "name": self.name,
                            "baseAddress": self.base_address,
                            "properties": props,
                        },
                    }
                ],
            )
            r.raise_for_status()

    async def fetch_release_key(self) -> bytes | None:
        """Fetch this service's release key with its credential; None (replies go unsigned,
        which only an edgemeta with proofs off believes) if edgemeta will not give it."""
        r = await self.http.get(
            headers=self.auth, url=f"{self.api}/deviceservice/name/{self.name}/releasekey"
        )
        if r.status_code in (401, 403, 404):
            log.warning(
                "%s: edgemeta did not give the release key (%d); release confirmations and "
                "validation answers go unsigned",
                self.name,
                r.status_code,
            )
            return None
        r.raise_for_status()
        self.release_key = bytes.fromhex(r.json()["releaseKey"])
        return self.release_key

    def _proof(self, kind: Kind, request_id: str, device: str, error_code: int = 0) -> str:
        if self.release_key is None:
            return ""
        return sign(
            self.release_key, kind, self.name, request_id, device=device, error_code=error_code
        )

    async def register_device(
        self, registration_id: str, token: str, *, wait: float | None = None, **report: Any
    ) -> tuple[int, dict[str, Any]]:
        """Register a device this service discovered, on its behalf (as a provision watcher
        match does in EdgeX): the enrolment decides where it goes, which may be another
        service. ``report`` carries what the device reports (``site``, ``latencies``,
        ``labels``, ``protocols``). Returns the HTTP status and the answer: 200 assigned, 202
        still assigning (poll ``operation.poll``), or the error."""
        body = {"registrationId": registration_id, "token": token, **report}
        params = {"wait": f"{wait:g}"} if wait is not None else None
        r = await self.http.post(
            headers=self.auth,
            url=f"{self.api}/registration",
            params=params,
            json={"apiVersion": "v3", "registration": body},
        )
        answer: dict[str, Any] = r.json()
        return r.status_code, answer

    async def reconcile(self) -> None:
        """Serve exactly the devices the store says this service owns.

        A device whose move to this service is still waiting for its old owner to let go
        (``releasing``: the store names this service already) is not served yet: the move
        engine tells this service when it may (or, if the move is rolled back, that it may
        not). A device heard of in a system event while the store was being read is left to
        that event.
        """
        heard = dict(self._heard)
        owned: dict[str, DeviceDoc] = {}
        offset = 0
        while True:
            r = await self.http.get(
                headers=self.auth,
                url=f"{self.api}/device/service/name/{self.name}",
                params={"offset": offset, "limit": -1},
            )
            r.raise_for_status()
            body = r.json()
            for d in body["devices"]:
                owned[d["name"]] = d
            offset += len(body["devices"])
            if not body["devices"] or offset >= body["totalCount"]:
                break
        arriving = await self._arriving([d for n, d in owned.items() if n not in self.serving])
        async with self._lock:

            def quiet(name: str) -> bool:
                return self._heard.get(name, 0) == heard.get(name, 0)

            for gone in [n for n in self.serving if n not in owned and quiet(n)]:
                await self._release(gone, None)
            for name, doc in owned.items():
                if name not in self.serving and name not in arriving and quiet(name):
                    await self._serve(doc)

    async def _arriving(self, candidates: list[DeviceDoc]) -> set[str]:
        """The candidates whose latest move is an unfinished move to this service."""
        horizon = time.time() * 1000 - ARRIVING_HORIZON_MS
        recent = [d["name"] for d in candidates if d.get("modified", 0) >= horizon]
        found: set[str] = set()

        async def check(name: str) -> None:
            url = f"{self.api}/device/name/{name}/moves"
            r = await self.http.get(headers=self.auth, url=url, params={"offset": 0, "limit": 1})
            if r.status_code == 404:
                return
            r.raise_for_status()
            total = r.json()["totalCount"]
            if total == 0:
                return
            if total > 1:
                r = await self.http.get(
                    headers=self.auth, url=url, params={"offset": total - 1, "limit": 1}
                )
                r.raise_for_status()
            moves = r.json()["moves"]
            if moves and moves[-1]["toService"] == self.name and moves[-1]["state"] in UNFINISHED:
                found.add(name)

        for start in range(0, len(recent), 16):
            await asyncio.gather(*(check(n) for n in recent[start : start + 16]))
        return found

    async def _reconcile_on_reconnect(self, every: float = 0.5) -> None:
        """Reconcile again after the bus reconnected (MQTT and NATS count reconnects): events
        published while the connection was down were not kept for this service."""
        seen: int = getattr(self.bus, "reconnects", 0)
        while True:
            await asyncio.sleep(every)
            now: int = getattr(self.bus, "reconnects", 0)
            if now == seen:
                continue
            try:
                await self.reconcile()
                seen = now
            except (httpx.HTTPError, EdgeMetaError) as exc:
                log.warning("%s: reconcile after a reconnect failed (%s); retrying", self.name, exc)

    # -- handlers --------------------------------------------------------------------------

    async def _pump(self, sub: Subscription, handler: Callable[[Message], Awaitable[None]]) -> None:
        async for message in sub:
            try:
                await handler(message)
            except Exception:
                log.exception("%s: handling %s failed", self.name, message.topic)

    def _span(
        self, name: str, traceparent: str = "", **attributes: str
    ) -> AbstractContextManager[Any]:
        """A span continuing ``traceparent`` (a message's: a consumer span), else a child of
        the current span; none without a tracer."""
        if self._tracer is None:
            return contextlib.nullcontext()
        from opentelemetry.trace import SpanKind

        return self._tracer.start_as_current_span(  # type: ignore[no-any-return]
            name,
            context=context_of(traceparent) if traceparent else None,
            kind=SpanKind.CONSUMER if traceparent else SpanKind.INTERNAL,
            attributes={"edgemeta.service": self.name, **attributes},
        )

    def _traceparent(self) -> str:
        """What an answer carries: this participant's current span, else what it was sent."""
        if self._tracer is not None:
            from opentelemetry import trace

            return traceparent_of(trace.get_current_span()) or _INCOMING.get()
        return _INCOMING.get()

    async def _on_system_event(self, message: Message) -> None:
        env = decode(message.payload)
        event = env["payload"]
        if event.get("type") != "device":
            if self.on_event is not None:
                await self.on_event(event)
            return
        traceparent = str(env.get("traceparent") or "")
        token = _INCOMING.set(traceparent)
        try:
            with self._span(
                "participant.event",
                traceparent,
                **{"edgemeta.event": f"{event.get('type')} {event.get('action')}"},
            ):
                await self._handle_system_event(event)
        finally:
            _INCOMING.reset(token)

    async def _handle_system_event(self, event: dict[str, Any]) -> None:
        device: DeviceDoc = event["details"]
        name = device["name"]
        self._heard[name] = self._heard.get(name, 0) + 1
        move_id = (event.get("tags") or {}).get("moveId")
        async with self._lock:
            if event["action"] == "delete":
                if name in self.serving:
                    await self._release(name, None)
                return
            if device.get("serviceName") == self.name:
                await self._serve(device)
                return
            # The device belongs to another service now: let go, then say so.
            if name in self.serving:
                await self._release(name, move_id)
            elif move_id:
                await self._confirm(move_id, name)  # not serving it: release is already true

    async def _on_validate(self, message: Message) -> None:
        request = orjson.loads(message.payload)
        traceparent = str(request.get("traceparent") or "")
        token = _INCOMING.set(traceparent)
        try:
            with self._span("participant.validate", traceparent):
                await self._validate_request(request)
        finally:
            _INCOMING.reset(token)

    async def _validate_request(self, request: dict[str, Any]) -> None:
        request_id = request.get("requestID") or request.get("requestId") or ""
        device = (request.get("payload") or {}).get("device") or {}
        reply = response_topic(self.prefix, self.name, request_id)
        name = str(device.get("name", ""))
        try:
            if self.validate is not None:
                await self.validate(device)
        except Refused as exc:
            proof = self._proof(Kind.VALIDATE, request_id, name, 1)
            await self.bus.publish(
                reply,
                envelope(
                    str(exc),
                    error_code=1,
                    content_type="text/plain",
                    proof=proof,
                    traceparent=self._traceparent(),
                ),
            )
            return
        await self.bus.publish(
            reply,
            envelope(
                {"apiVersion": "v3", "message": "device validated"},
                proof=self._proof(Kind.VALIDATE, request_id, name),
                traceparent=self._traceparent(),
            ),
        )

    async def _serve(self, device: DeviceDoc) -> None:
        new = device["name"] not in self.serving
        self.serving[device["name"]] = device
        if new:
            await self.on_serve(device)
        else:
            await self.on_update(device)

    async def _release(self, name: str, move_id: str | None) -> None:
        with self._span("participant.release", **{"edgemeta.device": name}):
            device = self.serving.pop(name)
            self.released.append(name)
            await self.on_release(device)
            if move_id:
                await self._confirm(move_id, name)

    async def _confirm(self, move_id: str, device: str) -> None:
        if not self.acks_release:
            return
        await self.bus.publish(
            response_topic(self.prefix, self.name, move_id),
            envelope(
                {"apiVersion": "v3", "statusCode": 200},
                request_id=move_id,
                proof=self._proof(Kind.RELEASE, move_id, device),
                traceparent=self._traceparent(),
            ),
        )
