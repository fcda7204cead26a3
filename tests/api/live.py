"""A real edgemeta app, driven from synchronous test code (Hypothesis tests are synchronous).

The service lives on its own event loop in a background thread, so its store (an asyncpg pool
is bound to the loop that opened it) is used from one loop for its whole life, while the test
sends requests and waits for the answers. Requests go through ``httpx.ASGITransport``: the
whole ASGI stack runs, without a socket.

Also here: the checks every fuzz test applies to every response, and the snapshot of the
stored state used to prove that a rejected request changed nothing.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import asyncpg
import httpx
import orjson

from edgemeta.bootstrap import Service, build
from edgemeta.settings import Settings
from tests.support import servers

T = TypeVar("T")
BASE = "/api/v3"

# Lists that together hold every record; limit=-1 is MaxResultCount.
_LISTS = {
    "services": f"{BASE}/deviceservice/all?limit=-1",
    "profiles": f"{BASE}/deviceprofile/all?limit=-1",
    "devices": f"{BASE}/device/all?limit=-1",
    "provisionWatchers": f"{BASE}/provisionwatcher/all?limit=-1",
}

# Statuses a response may have although they are 5xx: 501 is /secret's answer to a valid
# request. (503 needs a device-service peer, which device_validation="never" never asks.)
ALLOWED_5XX = {501}


class LiveApp:
    """An edgemeta service on a background event loop, with a synchronous request method."""

    def __init__(self, settings: Settings, *, pg_schema: str | None = None) -> None:
        self.settings = settings
        self.pg_schema = pg_schema
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="live-app", daemon=True)
        self.thread.start()
        try:
            self.service: Service = self.run(build(settings))
        except BaseException:
            self._stop_loop()
            raise
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.service.app), base_url="http://t"
        )

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
        """Run a coroutine on the app's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """Send one request to the app."""
        return self.run(self.client.request(method, url, **kwargs))

    def send_raw(
        self, method: str, url: str, headers: list[tuple[bytes, bytes]], body: bytes | None
    ) -> httpx.Response:
        """Send one request exactly as given (URL already percent-encoded)."""
        return self.request(method, url, headers=headers, content=body)

    def snapshot(self) -> dict[str, Any]:
        """Everything stored: each record list in full, and the queued system events."""
        state: dict[str, Any] = {}
        for key, url in _LISTS.items():
            resp = self.request("GET", url)
            assert resp.status_code == 200, resp.text
            body = resp.json()
            state[key] = body[key]
            assert body["totalCount"] == len(body[key]), "snapshot needs MaxResultCount > records"
        state["events"] = self.run(self._events())
        return state

    async def _events(self) -> int:
        # The relay is not started, so every event ever written is still pending.
        async with self.service.store.read() as tx:
            return len(await tx.feed.pending(1_000_000))

    def close(self) -> None:
        """Stop the service, drop its PostgreSQL schema, stop the loop."""
        try:
            self.run(self.client.aclose())
            self.run(self.service.stop())
            if self.pg_schema:
                self.run(_drop_schema(self.pg_schema))
        finally:
            self._stop_loop()

    def _stop_loop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


async def _drop_schema(schema: str) -> None:
    conn = await asyncpg.connect(servers.POSTGRES_URL)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


def open_live_app(backend: str, tmp_dir: Any, **overrides: Any) -> LiveApp:
    """A fresh app on ``backend`` ("sqlite" or "postgres"); PostgreSQL gets its own schema."""
    options: dict[str, Any] = {"device_validation": "never", **overrides}
    if backend == "sqlite":
        return LiveApp(Settings(database_url=f"sqlite:///{tmp_dir / 'fuzz.db'}", **options))
    servers.require(servers.POSTGRES_URL, "PostgreSQL")
    schema = servers.unique("fz")
    settings = Settings(database_url=f"{servers.POSTGRES_URL}?schema={schema}", **options)
    return LiveApp(settings, pg_schema=schema)


# -- what every response must satisfy -------------------------------------------------------


@dataclass(frozen=True)
class Exchange:
    """One request and its response, for the checks' messages."""

    method: str
    path: str
    response: httpx.Response

    def describe(self) -> str:
        """The request line, status and start of the body."""
        text = self.response.content[:500].decode("utf-8", "replace")
        return f"{self.method} {self.path} -> {self.response.status_code}: {text}"


def check_envelope(ex: Exchange) -> None:
    """No 5xx (but 501), the correlation header, and every 4xx in the EdgeX error envelope."""
    r = ex.response
    assert r.status_code < 500 or r.status_code in ALLOWED_5XX, ex.describe()
    assert r.headers.get("x-correlation-id"), ex.describe()
    if r.status_code < 400:
        return
    assert r.headers.get("content-type", "").startswith("application/json"), ex.describe()
    body = orjson.loads(r.content)
    assert isinstance(body, dict), ex.describe()
    assert body.get("apiVersion") == "v3", ex.describe()
    assert body.get("statusCode") == r.status_code, ex.describe()
    if r.status_code == 404 and "/device/check/name/" in ex.path:
        # EdgeX answers the existence check with the status code only.
        assert "message" not in body, ex.describe()
        return
    message = body.get("message")
    assert isinstance(message, str), ex.describe()
    assert message.strip(), ex.describe()


def check_batch_items(ex: Exchange) -> None:
    """A 207 is an array of BaseResponses; a failed element names its problem."""
    if ex.response.status_code != 207:
        return
    items = orjson.loads(ex.response.content)
    assert isinstance(items, list), ex.describe()
    for item in items:
        assert item["apiVersion"] == "v3", ex.describe()
        status = item["statusCode"]
        assert status in (200, 201, 400, 404, 409), ex.describe()
        if status >= 400:
            assert item.get("message", "").strip(), ex.describe()


def all_failed(response: httpx.Response) -> bool:
    """Whether the request changed nothing by its own account: a 4xx, or a 207 of failures."""
    if 400 <= response.status_code < 500:
        return True
    if response.status_code == 207:
        items = orjson.loads(response.content)
        return all(i["statusCode"] >= 400 for i in items)
    return False


def diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> str:
    """Which parts of two snapshots differ."""
    return ", ".join(k for k in before if before[k] != after.get(k)) or "nothing"
