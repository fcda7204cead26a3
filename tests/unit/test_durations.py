"""Go durations, and only Go's."""

from __future__ import annotations

import pytest

from edgemeta.domain.durations import DurationError, parse_duration


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("0", 0),
        ("15s", 15 * 10**9),
        ("1h30m", 5400 * 10**9),
        ("250ms", 250 * 10**6),
        ("1.5s", 1_500_000_000),
        ("2d", 2 * 86400 * 10**9),
        ("10us", 10_000),
        ("3µs", 3000),
    ],
)
def test_parses(text: str, ns: int) -> None:
    assert parse_duration(text) == ns


@pytest.mark.parametrize(
    "text", ["", "s", "15", "1x", "\u0661\u0665s", "1 s", "--1s", "9999999999h"]
)
def test_refuses(text: str) -> None:
    with pytest.raises(DurationError):
        parse_duration(text)
