"""EdgeX's device-validation round trip: core-metadata asks the owning device service.

Request on ``<prefix>/<service>/validate/device`` (an AddDeviceRequest in a MessageEnvelope),
reply on ``<prefix>/response/<service>/<requestID>``. Replies are matched by topic alone: the
C device SDK leaves ``requestID`` out of its reply. No reply in time is 503; a reply with
``errorCode`` 1 is the device service's refusal, reported as EdgeX does (500, with its text).

Modes (``EDGEMETA_DEVICE_VALIDATION``):
- ``auto`` (default): ask, except where the bus can tell that nobody listens on the service's
  validation topic (the in-process bus), in which case the device is accepted. A newcomer's
  first ``curl`` on the defaults therefore works; with MQTT or NATS a missing device service
  is a 503, as in EdgeX.
- ``always``: ask, and fail with 503 when nobody answers, whatever the bus.
- ``never``: never ask (as if every request said ``bypassValidation=true``).

Proofs (``EDGEMETA_RELEASE_PROOF``, :mod:`edgemeta.security.proofs`): with ``on``, an answer
that carries ``proof`` must verify under the service's release key, for this request and this
answer, or it is refused (counted, logged) and the validator keeps waiting for another; an
answer without one still counts, because EdgeX's SDKs cannot sign. With ``strict`` every answer
must be signed.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any, Literal

from edgemeta import documents as docs
from edgemeta.bus.envelope import decode, envelope
from edgemeta.bus.topics import response_topic, validate_topic
from edgemeta.documents import API_VERSION
from edgemeta.domain.errors import ServerError, ServiceUnavailable
from edgemeta.domain.records import Device
from edgemeta.peers.proof_gate import ProofGate
from edgemeta.ports import Bus, Subscription
from edgemeta.security.proofs import Kind
from edgemeta.tracing import current_traceparent

Mode = Literal["auto", "always", "never"]


class BusDeviceValidator:
    """Validates devices with their owning service over the bus."""

    def __init__(
        self,
        bus: Bus,
        *,
        prefix: str = "edgex",
        timeout: float = 5.0,
        mode: Mode = "auto",
        name_escape: bool = False,
        gate: ProofGate | None = None,
    ) -> None:
        self.bus = bus
        self.prefix = prefix
        self.timeout = timeout
        self.mode = mode
        self.name_escape = name_escape
        self.gate = gate or ProofGate()

    def asks(self, service_name: str) -> bool:
        """Whether ``validate`` would ask over the bus now (False: it accepts at once)."""
        if self.mode == "never":
            return False
        if self.mode == "always":
            return True
        topic = validate_topic(self.prefix, service_name, name_escape=self.name_escape)
        return self.bus.has_subscribers(topic) is not False

    async def validate(self, service_name: str, device: Device, correlation_id: str) -> None:
        """Return if the service accepts ``device``; raise otherwise."""
        if self.mode == "never":
            return
        topic = validate_topic(self.prefix, service_name, name_escape=self.name_escape)
        if self.mode == "auto" and self.bus.has_subscribers(topic) is False:
            return
        request_id = str(uuid.uuid4())
        reply = response_topic(self.prefix, service_name, request_id, name_escape=self.name_escape)
        payload = {
            "apiVersion": API_VERSION,
            "requestId": request_id,
            "device": docs.device_doc(device),
        }
        sub = await self.bus.subscribe(reply)  # before publishing, so no reply is missed
        try:
            await self.bus.publish(
                topic,
                envelope(
                    payload,
                    correlation_id=str(uuid.uuid4()),
                    request_id=request_id,
                    # The device service continues the move's (or request's) trace.
                    traceparent=current_traceparent(),
                ),
            )
            try:
                async with asyncio.timeout(self.timeout):
                    answer = await self._answer(sub, service_name, request_id, device.name)
            except TimeoutError:
                raise ServiceUnavailable(
                    f"device service '{service_name}' did not answer the validation of device "
                    f"'{device.name}' within {self.timeout:g}s (topic {topic})"
                ) from None
        finally:
            await sub.close()
        if answer.get("errorCode", 0) != 0:
            raise ServerError(f"Device {device.name} validation failed: {answer.get('payload')}")

    async def _answer(
        self, sub: Subscription, service: str, request_id: str, device: str
    ) -> dict[str, Any]:
        """The first answer the proof gate admits (proofs off: the first answer)."""
        while True:
            message = await sub.get()
            try:
                answer = decode(message.payload)
            except ValueError:
                if self.gate.mode == "off":
                    raise ServerError(
                        f"device service '{service}' sent an unreadable validation reply"
                    ) from None
                self.gate.refuse_unreadable(Kind.VALIDATE, service, message.topic)
                continue
            if self.gate.admit(Kind.VALIDATE, service, request_id, device, answer, message.topic):
                return answer
