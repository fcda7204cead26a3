"""A wire-level fake device service for core-command tests: it answers command requests on
the bus exactly as the contract in docs/commands.md says (the real one is the SDK's), keeps
the values it was set, and records every request it received (so a test can show that a
refused command sent nothing)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import orjson

from edgemeta.bus.envelope import decode
from edgemeta.ports import Bus


@dataclass
class Received:
    """One command request as the device service saw it."""

    device: str
    command: str
    method: str
    settings: dict[str, Any] | None
    query: dict[str, str]
    request_id: str


@dataclass
class FakeDeviceService:
    """Answers ``<prefix>/device/command/request/<name>/#`` for the resources it knows.

    ``value_types``: resource -> valueType; ``values``: resource -> current text value (the
    same for every device). ``silent``: take requests but never answer (for timeouts).
    ``answer_delay``: seconds between a request and its answer; ``answered_at``: the wall
    clock (Unix ms) of each answer sent.
    """

    bus: Bus
    name: str
    profile: str
    value_types: dict[str, str]
    prefix: str = "edgex"
    values: dict[str, str] = field(default_factory=dict)
    silent: bool = False
    answer_delay: float = 0.0
    received: list[Received] = field(default_factory=list)
    answered_at: list[int] = field(default_factory=list)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def start(self) -> None:
        """Subscribe and serve in the background; follow its system events as an EdgeX
        device service does (so a move waits for its release deadline)."""
        sub = await self.bus.subscribe(f"{self.prefix}/device/command/request/{self.name}/#")
        self._tasks.append(asyncio.create_task(self._serve(sub)))
        events = await self.bus.subscribe(
            f"{self.prefix}/system-events/core-metadata/+/+/{self.name}/#"
        )
        self._tasks.append(asyncio.create_task(self._drain(events)))

    async def stop(self) -> None:
        """Stop serving."""
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    async def _drain(self, sub: Any) -> None:
        try:
            while True:
                await sub.get()
        finally:
            await sub.close()

    async def _serve(self, sub: Any) -> None:
        try:
            while True:
                message = await sub.get()
                await self._answer(message.topic, message.payload)
        finally:
            await sub.close()

    async def _answer(self, topic: str, raw: bytes) -> None:
        levels = topic.split("/")
        device, command, method = levels[-3], levels[-2], levels[-1]
        env = decode(raw)
        payload = env.get("payload")
        settings = payload if isinstance(payload, dict) else None
        query = dict(env.get("queryParams") or {})
        rid = str(env.get("requestID", ""))
        self.received.append(Received(device, command, method, settings, query, rid))
        if self.silent:
            return
        body: dict[str, Any] = {"apiVersion": "v3", "statusCode": 200}
        if method == "set":
            self.values.update({k: str(v) for k, v in (settings or {}).items()})
        else:
            event = self._event(device, command)
            if query.get("ds-pushevent") == "true":
                # In EdgeX the device service, not core-command, sends the event to core-data.
                await self.bus.publish(
                    f"{self.prefix}/events/device/{self.name}/{self.profile}/{device}/{command}",
                    _envelope({"apiVersion": "v3", "event": event}, ""),
                )
            if query.get("ds-returnevent", "true") == "true":
                body["event"] = event
        if self.answer_delay:
            await asyncio.sleep(self.answer_delay)
        await self.bus.publish(f"{self.prefix}/response/{self.name}/{rid}", _envelope(body, rid))
        self.answered_at.append(int(time.time() * 1000))

    def _event(self, device: str, command: str) -> dict[str, Any]:
        now = time.time_ns()
        names = [command] if command in self.value_types else list(self.value_types)
        return {
            "apiVersion": "v3",
            "id": str(uuid.uuid4()),
            "deviceName": device,
            "profileName": self.profile,
            "sourceName": command,
            "origin": now,
            "readings": [
                {
                    "id": str(uuid.uuid4()),
                    "origin": now,
                    "deviceName": device,
                    "resourceName": n,
                    "profileName": self.profile,
                    "valueType": self.value_types[n],
                    "value": self.values.get(n, "0"),
                }
                for n in names
            ],
        }


def _envelope(body: dict[str, Any], request_id: str) -> bytes:
    return orjson.dumps(
        {
            "apiVersion": "v3",
            "receivedTopic": "",
            "correlationID": str(uuid.uuid4()),
            "requestID": request_id,
            "errorCode": 0,
            "payload": base64.b64encode(orjson.dumps(body)).decode(),
            "contentType": "application/json",
        }
    )
