"""Regular expressions that clients write (enrolment ``namePattern`` and identifier patterns,
provision-watcher ``identifiers``, autoEvent ``sourceName``), matched in linear time.

Python's ``re`` backtracks: ``(a+)+b`` against 30 ``a`` takes seconds, and it runs on the event
loop, so one hostile enrolment could stall every request. RE2 (the ``google-re2`` bindings)
guarantees time linear in the input and is the engine of Go's ``regexp``, so patterns mean
exactly what they mean in EdgeX's own services. What RE2 lacks (backreferences, lookaround) is
refused when the pattern is written, with a 400 naming the pattern.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import re2

MAX_PATTERN = 1024  # characters; also the documents' limit

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # a refused pattern is the client's error, not a log line
_OPTIONS.max_mem = 1 << 20  # bytes of compiled program: bounds what one pattern may cost


class PatternError(ValueError):
    """A pattern RE2 cannot compile, or one that is too long."""


@lru_cache(maxsize=2048)
def _compiled(source: str) -> Any:
    if len(source) > MAX_PATTERN:
        raise PatternError(f"is longer than {MAX_PATTERN} characters")
    try:
        return re2.compile(source, _OPTIONS)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        if isinstance(reason, bytes):
            reason = reason.decode(errors="replace")
        raise PatternError(
            f"is not a valid regular expression ({reason}; RE2/Go syntax: no backreferences"
            " or lookaround)"
        ) from None


def check(source: str) -> str:
    """``source`` if it compiles; PatternError otherwise."""
    _compiled(source)
    return source


def valid(source: str) -> bool:
    """Whether ``source`` compiles."""
    try:
        _compiled(source)
    except PatternError:
        return False
    return True


def fullmatch(source: str, text: str) -> bool:
    """Whether the whole of ``text`` matches ``source`` (an invalid pattern matches nothing)."""
    try:
        pattern = _compiled(source)
    except PatternError:
        return False
    return pattern.fullmatch(text) is not None


def search(source: str, text: str) -> bool:
    """Whether ``source`` matches anywhere in ``text`` (Go's ``regexp.MatchString``, as EdgeX's
    device SDKs match provision-watcher identifiers); an invalid pattern matches nothing."""
    try:
        pattern = _compiled(source)
    except PatternError:
        return False
    return pattern.search(text) is not None
