"""Custom allocation webhooks over HTTP (the adapter of ``ports.AllocationHook``).

edgemeta POSTs ``{"registrationId", "enrollment", "candidates": [...], "report": {...}}`` and
expects ``{"serviceName": "<one of the candidates>"}`` within the enrolment's timeout. Any
failure (connection, status, timeout, malformed answer) is a ServiceUnavailable; the
registration then uses the enrolment's fallback policy.
"""

from __future__ import annotations

import httpx

from edgemeta.domain.errors import ServiceUnavailable


class HttpAllocationHook:
    """Calls allocation webhooks with one shared HTTP client."""

    def __init__(self, client: httpx.AsyncClient | None = None) -> None:
        self.client = client or httpx.AsyncClient()

    async def decide(self, url: str, time_limit: float, request: dict[str, object]) -> str:
        """Ask the webhook."""
        try:
            r = await self.client.post(url, json=request, timeout=time_limit)
            r.raise_for_status()
            answer = r.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise ServiceUnavailable(f"allocation webhook {url} failed: {exc!r}") from None
        name = answer.get("serviceName") if isinstance(answer, dict) else None
        if not isinstance(name, str) or not name:
            raise ServiceUnavailable(f"allocation webhook {url} did not name a serviceName")
        return name

    async def close(self) -> None:
        """Close the HTTP client."""
        await self.client.aclose()
