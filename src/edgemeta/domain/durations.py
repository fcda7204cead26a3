"""Go duration strings (``"15s"``, ``"1h30m"``, ``"250ms"``), as EdgeX parses them.

EdgeX validates ``autoEvents[].interval`` with Go's ``time.ParseDuration``; its DTO validator
also accepts a ``d`` (day) suffix. We accept exactly what Go accepts, plus ``d``, and return
nanoseconds.
"""

from __future__ import annotations

import re
from functools import lru_cache

_UNITS_NS: dict[str, int] = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,  # U+00B5 micro sign
    "μs": 1_000,  # U+03BC greek mu
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60 * 1_000_000_000,
    "h": 3600 * 1_000_000_000,
    "d": 86400 * 1_000_000_000,
}

# ASCII digits only, as Go (Python's \d would also take other scripts' digits).
_PART = re.compile(r"([0-9]+\.?[0-9]*|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h|d)")
_MAX_NS = 2**63 - 1


class DurationError(ValueError):
    """The text is not a Go duration."""


@lru_cache(maxsize=4096)  # the same few intervals are parsed over and over
def parse_duration(text: str) -> int:
    """Parse a Go duration (plus ``d`` for days) into nanoseconds; raise DurationError."""
    s = text.strip()
    if not s:
        raise DurationError(f"invalid duration {text!r}")
    sign = 1
    if s[0] in "+-":
        sign = -1 if s[0] == "-" else 1
        s = s[1:]
    if s == "0":
        return 0
    pos = 0
    total = 0.0
    while pos < len(s):
        m = _PART.match(s, pos)
        if m is None:
            raise DurationError(f"invalid duration {text!r}")
        total += float(m.group(1)) * _UNITS_NS[m.group(2)]
        pos = m.end()
    if total > _MAX_NS:
        raise DurationError(f"duration {text!r} is out of range")
    return sign * int(total)
