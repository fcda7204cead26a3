"""A hostile bus participant: it confirms every release it hears of, for whoever should.

Anything that can subscribe on the bus sees every move's id (the ``moveId`` tag of the
``device/update`` event told to the old owner) and every validation request. This participant
subscribes to all of it and, as fast as it can,

- confirms the old owner's release on ``<prefix>/response/<old owner>/<moveId>``;
- answers every validation request with an acceptance (or a refusal, ``refuse=True``);
- keeps the last genuine proof it saw on each service's response topics, to replay it.

Each forgery carries a proof made by one of the ``strategies`` in turn: ``none`` (no proof),
``garbage`` (random hex), ``replay`` (a genuine proof of the same service from an earlier
reply), ``own-key`` (signed with a release key of its own, as a registered but malicious
device service could). Its envelopes' ``correlationID`` starts with ``hostile-``, so the
engine side can count the forgeries it believed (``bench.soak``, tests/security).
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections import Counter
from typing import Any

import orjson

from edgemeta.bus.envelope import decode, envelope
from edgemeta.bus.topics import response_topic
from edgemeta.domain.errors import EdgeMetaError
from edgemeta.ports import Bus, Message, Subscription
from edgemeta.security.proofs import Kind, sign

MARK = "hostile-"
STRATEGIES = ("none", "garbage", "replay", "own-key")


class Hostile:
    """Forges release confirmations and validation answers on ``bus``."""

    def __init__(
        self,
        bus: Bus,
        prefix: str = "edgex",
        *,
        strategies: tuple[str, ...] = STRATEGIES,
        own_key: bytes | None = None,
        validations: bool = True,
        refuse: bool = False,
    ) -> None:
        self.bus = bus
        self.prefix = prefix
        self.strategies = strategies
        self.own_key = own_key or secrets.token_bytes(32)
        self.validations = validations
        self.refuse = refuse
        self.sent: Counter[str] = Counter()  # forgeries sent, per kind ("release", "validate")
        self._seen_proofs: dict[str, str] = {}  # service -> the last genuine proof heard
        self._n = 0
        self._subs: list[Subscription] = []
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Subscribe to everything it can use."""
        handlers = [
            (f"{self.prefix}/system-events/#", self._on_event),
            (f"{self.prefix}/response/#", self._on_response),
        ]
        if self.validations:
            handlers.append((f"{self.prefix}/+/validate/device", self._on_validate))
        for topic, handler in handlers:
            sub = await self.bus.subscribe(topic)
            self._subs.append(sub)
            self._tasks.append(asyncio.create_task(self._pump(sub, handler)))

    async def stop(self) -> None:
        """Stop listening."""
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

    async def _pump(self, sub: Subscription, handler: Any) -> None:
        async for message in sub:
            with contextlib.suppress(Exception):  # a hostile peer does not care
                await handler(message)

    def _proof(self, kind: Kind, service: str, request_id: str, device: str, code: int) -> str:
        strategy = self.strategies[self._n % len(self.strategies)]
        if strategy == "garbage":
            return secrets.token_hex(32)
        if strategy == "replay":
            return self._seen_proofs.get(service, "")
        if strategy == "own-key":
            return sign(self.own_key, kind, service, request_id, device=device, error_code=code)
        return ""

    def _mark(self) -> str:
        self._n += 1
        return f"{MARK}{self._n}"

    async def _on_event(self, message: Message) -> None:
        event = decode(message.payload)["payload"]
        if event.get("type") != "device" or event.get("action") != "update":
            return
        move_id = (event.get("tags") or {}).get("moveId")
        owner = event.get("owner", "")
        device = event.get("details") or {}
        if not move_id or not owner or device.get("serviceName") == owner:
            return  # not a release notice
        mark = self._mark()
        proof = self._proof(Kind.RELEASE, owner, move_id, device.get("name", ""), 0)
        self.sent[Kind.RELEASE] += 1
        await self.bus.publish(
            response_topic(self.prefix, owner, move_id),
            envelope(
                {"apiVersion": "v3", "statusCode": 200},
                correlation_id=mark,
                request_id=move_id,
                proof=proof,
            ),
        )

    async def _on_validate(self, message: Message) -> None:
        service = message.topic.removeprefix(self.prefix + "/").split("/")[0]
        request = orjson.loads(message.payload)
        request_id = request.get("requestID") or request.get("requestId") or ""
        device = ((request.get("payload") or {}).get("device") or {}).get("name", "")
        code = 1 if self.refuse else 0
        mark = self._mark()
        proof = self._proof(Kind.VALIDATE, service, request_id, device, code)
        self.sent[Kind.VALIDATE] += 1
        payload: Any = "refused" if self.refuse else {"apiVersion": "v3", "message": "ok"}
        await self.bus.publish(
            response_topic(self.prefix, service, request_id),
            envelope(
                payload, correlation_id=mark, request_id=request_id, error_code=code, proof=proof
            ),
        )

    async def _on_response(self, message: Message) -> None:
        env = decode(message.payload)
        if str(env.get("correlationID", "")).startswith(MARK) or not env.get("proof"):
            return
        service = message.topic.removeprefix(self.prefix + "/response/").split("/")[0]
        self._seen_proofs[service] = str(env["proof"])
