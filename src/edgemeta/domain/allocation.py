"""Allocation: choosing the device service for a registration (pure functions).

- ``static``: the first candidate.
- ``hashed``: weighted rendezvous hashing of the registration id over the candidates: stable
  (a device keeps its service while the set does not change), spread by weight, and adding or
  removing a candidate moves only the devices that must move.
- ``nearest``: the candidate at the reported site; else the lowest reported latency; else the
  hashed choice.
- ``custom``: decided by a webhook (in the use case); these functions give the fallback.

Only usable candidates (known and unlocked services) are offered to these functions.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence

from edgemeta.domain.enrollment import AllocationPolicy, Candidate, Report
from edgemeta.domain.errors import ContractInvalid


def _score(registration_id: str, candidate: Candidate) -> float:
    # Weighted rendezvous (highest random weight) hashing: -w / ln(u), u uniform in (0, 1).
    digest = hashlib.sha256(f"{candidate.service}\0{registration_id}".encode()).digest()
    u = (int.from_bytes(digest[:8], "big") + 1) / (2**64 + 2)
    return -max(candidate.weight, 0) / math.log(u)


def hashed(registration_id: str, candidates: Sequence[Candidate]) -> str:
    """The weighted, stable hash choice."""
    weighted = [c for c in candidates if c.weight > 0]
    if not weighted:
        raise ContractInvalid("no device service with a positive weight to allocate to")
    return max(weighted, key=lambda c: (_score(registration_id, c), c.service)).service


def nearest(report: Report, candidates: Sequence[Candidate]) -> str:
    """The service at the reported site, else the fastest reported, else the hashed one."""
    if report.site:
        at_site = [c for c in candidates if c.site == report.site]
        if at_site:
            return hashed(report.registration_id, at_site)
    measured = [
        (report.latencies[c.service], c.service)
        for c in candidates
        if c.service in report.latencies
    ]
    if measured:
        return min(measured)[1]
    return hashed(report.registration_id, candidates)


def allocate(policy: AllocationPolicy, report: Report, candidates: Sequence[Candidate]) -> str:
    """The device service for ``report`` under ``policy`` (``custom``: use its fallback)."""
    if not candidates:
        raise ContractInvalid("the enrollment has no usable device service to allocate to")
    if policy == AllocationPolicy.STATIC:
        return candidates[0].service
    if policy == AllocationPolicy.NEAREST:
        return nearest(report, candidates)
    return hashed(report.registration_id, candidates)
