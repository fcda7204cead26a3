"""Symmetric-key attestation (with known-good derived keys) and allocation policies."""

from __future__ import annotations

import collections

import pytest

from edgemeta.domain.allocation import allocate, hashed, nearest
from edgemeta.domain.attestation import (
    AttestationError,
    derive_device_key,
    make_token,
    parse_token,
    verify,
)
from edgemeta.domain.enrollment import AllocationPolicy, Candidate, Match, Report


@pytest.mark.parametrize(
    ("group_key", "registration_id", "device_key"),
    [
        # The example of Azure DPS's symmetric-key how-to for legacy devices (also what
        # `openssl dgst -sha256 -mac HMAC -macopt hexkey:<key as hex>` gives).
        (
            "8isrFI1sGsIlvvFSSFRiMfCNzv21fjbE/+ah/lSh3lF8e2YG1Te7w1KpZhJFFXJrqYKi9yegxkqIChbqOS9Egw==",
            "sn-007-888-abc-mac-a1-b2-c3-d4-e5-f6",
            "Jsm0lyGpjaVYVP2g3FnmnmG9dI/9qU24wNoykUmermc=",
        ),
        # Computed with openssl for this project.
        (
            "ZWRnZW1ldGEtdGVzdC1ncm91cC1rZXktMDEyMzQ1Njc4OWFiY2RlZg==",
            "wearable-0001",
            "U1Wo7zIvkYHTJWgs7ImWsqzTuWd5BiP3ARqmC8CNUpQ=",
        ),
    ],
)
def test_derived_device_keys_match_known_good_vectors(
    group_key: str, registration_id: str, device_key: str
) -> None:
    assert derive_device_key(group_key, registration_id) == device_key


KEY = "ZWRnZW1ldGEtdGVzdC1ncm91cC1rZXktMDEyMzQ1Njc4OWFiY2RlZg=="


def test_token_round_trip_and_refusals() -> None:
    token = parse_token(make_token(KEY, "dev/1 +x", 2000, nonce="n1"))
    assert token.registration_id == "dev/1 +x" and token.nonce == "n1"
    verify(token, "dev/1 +x", (KEY,), now_s=1000)
    verify(token, "dev/1 +x", ("", KEY), now_s=1000)  # the secondary key works too
    other = derive_device_key(KEY, "someone-else")
    cases = [
        (token, "dev/1 +x", (other,), 1000, "signature"),
        (token, "dev/1 +x", (KEY,), 2001, "expired"),
        (token, "dev/2", (KEY,), 1000, "another registration"),
        (parse_token(make_token(KEY, "d", 10**9)), "d", (KEY,), 0, "too far"),
    ]
    for t, rid, keys, now, text in cases:
        with pytest.raises(AttestationError, match=text):
            verify(t, rid, keys, now_s=now)
    for bad in (
        "",
        "Bearer x",
        "SharedAccessSignature sr=a&se=x&nc=n&sig=s",
        "SharedAccessSignature sr=a&se=1",
    ):
        with pytest.raises(AttestationError):
            parse_token(bad)


SERVICES = [Candidate(service="a", weight=1), Candidate(service="b", weight=3)]


def test_hashed_is_stable_weighted_and_moves_few_when_a_service_is_added() -> None:
    ids = [f"dev-{i}" for i in range(4000)]
    first = {i: hashed(i, SERVICES) for i in ids}
    assert first == {i: hashed(i, SERVICES) for i in ids}  # stable
    share = collections.Counter(first.values())
    assert 0.2 < share["a"] / len(ids) < 0.3  # weight 1 of 4
    more = [*SERVICES, Candidate(service="c", weight=1)]
    second = {i: hashed(i, more) for i in ids}
    moved = [i for i in ids if first[i] != second[i]]
    assert all(second[i] == "c" for i in moved)  # only what must move, moves
    assert 0.15 < len(moved) / len(ids) < 0.25
    with pytest.raises(Exception, match="positive weight"):
        hashed("x", [Candidate(service="z", weight=0)])


def test_nearest_by_site_then_latency_then_hash() -> None:
    cands = [Candidate(service="east", site="E"), Candidate(service="west", site="W")]
    assert nearest(Report(registration_id="d", site="W"), cands) == "west"
    assert nearest(Report(registration_id="d", latencies={"east": 9, "west": 30}), cands) == "east"
    assert nearest(Report(registration_id="d", site="X"), cands) == hashed("d", cands)
    assert allocate(AllocationPolicy.STATIC, Report(registration_id="d"), cands) == "east"


def test_group_match() -> None:
    m = Match(name_pattern=r"badge-\d+", labels=("wearable",), identifiers={"MAC": "aa:.*"})
    assert m.matches("badge-7", ("wearable", "x"), {"MAC": "aa:01"})
    assert not m.matches("badge-x", ("wearable",), {"MAC": "aa:01"})
    assert not m.matches("badge-7", (), {"MAC": "aa:01"})
    assert not m.matches("badge-7", ("wearable",), {"MAC": "bb:01"})
