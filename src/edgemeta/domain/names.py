"""The one rule for what a name may hold: no control characters.

C0 and C1 control characters: a broker refuses them in topics, a terminal misprints them, and
PostgreSQL cannot store NUL. Every place that accepts a name (request DTOs, query strings,
core-data events, bus topic filters) asks this module, so the rule is written once.
"""

from __future__ import annotations

import re

CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def has_control_chars(value: str) -> bool:
    """Whether ``value`` holds a C0 or C1 control character."""
    return CONTROL_CHARS.search(value) is not None
