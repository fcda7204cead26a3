"""Patterns clients write cannot stall the service (issue 15, item 1): they run on RE2 in
linear time, and what RE2 cannot run is refused with a 400 naming the pattern."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from edgemeta.domain import patterns
from tests.support.api import Api


def _group(name: str, **match: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v3",
        "enrollment": {
            "name": name,
            "kind": "group",
            "match": match,
            "allocation": {"policy": "static", "services": [{"name": "ds"}]},
        },
    }


def test_the_catastrophic_pattern_is_linear() -> None:
    # Python's re takes ~30 s for 30 characters here, doubling with each one more.
    started = time.perf_counter()
    assert not patterns.fullmatch("(a+)+b", "a" * 100_000)
    assert time.perf_counter() - started < 1.0
    assert patterns.fullmatch("badge-[0-9]+", "badge-17")
    assert not patterns.fullmatch("badge-[0-9]+", "xbadge-17")  # whole-string match


async def test_a_hostile_enrolment_cannot_stall_registrations_or_ping(api: Api) -> None:
    r = await api.post("/enrollment", [_group("evil", namePattern="(a+)+b")])
    assert r.json()[0]["statusCode"] == 201, r.text
    body = {"registrationId": "a" * 256, "token": "garbage"}
    started = time.perf_counter()
    register = api.client.post(
        "/api/v3/registration", json={"apiVersion": "v3", "registration": body}
    )
    ping = api.client.get("/api/v3/ping")
    answer, pong = await asyncio.gather(register, ping)
    elapsed = time.perf_counter() - started
    assert answer.status_code in (401, 404), answer.text  # refused, whatever the reason
    assert pong.status_code == 200
    assert elapsed < 5.0, f"a registration against (a+)+b took {elapsed:.1f}s"


@pytest.mark.parametrize(
    ("field", "pattern"),
    [
        ("namePattern", r"(a)\1"),  # backreference
        ("namePattern", "(?=admin)adm.*"),  # lookahead
        ("namePattern", "x" * 1025),  # too long
        ("namePattern", "[unclosed"),
    ],
)
async def test_patterns_re2_cannot_run_are_400_naming_the_field(
    api: Api, field: str, pattern: str
) -> None:
    r = await api.post("/enrollment", [_group("bad", **{field: pattern})])
    item = r.json()[0] if r.status_code == 207 else r.json()
    assert item["statusCode"] == 400, r.text
    assert field in item["message"], item["message"]
    assert (await api.get("/enrollment/name/bad")).status_code == 404


async def test_identifier_patterns_of_enrolments_and_watchers_are_checked(api: Api) -> None:
    r = await api.post("/enrollment", [_group("ids", identifiers={"mac": "(?<!x)00:.*"})])
    item = r.json()[0] if r.status_code == 207 else r.json()
    assert item["statusCode"] == 400 and "identifiers" in item["message"], r.text

    await api.add_service("ds")
    await api.add_profile("prof")

    def watcher(name: str, identifiers: dict[str, str]) -> dict[str, Any]:
        return {
            "apiVersion": "v3",
            "provisionWatcher": {
                "name": name,
                "identifiers": identifiers,
                "blockingIdentifiers": {"port": ["(not a regex"]},  # literal values in EdgeX
                "serviceName": "ds",
                "adminState": "UNLOCKED",
                "discoveredDevice": {"profileName": "prof", "adminState": "UNLOCKED"},
            },
        }

    r = await api.post("/provisionwatcher", [watcher("w-bad", {"address": r"(\d)\1"})])
    item = r.json()[0] if r.status_code == 207 else r.json()
    assert item["statusCode"] == 400 and "identifiers" in item["message"], r.text
    r = await api.post("/provisionwatcher", [watcher("w-ok", {"address": r"10\.0\.0\.[0-9]+"})])
    item = r.json()[0] if r.status_code == 207 else r.json()
    assert item["statusCode"] == 201, r.text
