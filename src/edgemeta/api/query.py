"""List query parameters `offset`, `limit`, `labels` (EdgeX ParseGetAllObjectsRequestQueryString).

- ``offset``: 0 .. 2^31-1, default 0;
- ``limit``: -1 .. MaxResultCount, default 20; -1 means MaxResultCount; above it is 400;
- ``labels``: comma-separated, every one must match;
- a page that starts past the end is 416 (``offset == totalCount`` is an empty 200).

Integers are what Go's ``strconv.Atoi`` reads: an optional sign and ASCII digits (Python's
``int`` would also take spaces, ``_`` and non-ASCII digits). Names in the query (``labels``,
``descendantsOf``) follow the name rules: at most 256 characters without control characters,
and at most 256 labels; a filter that breaks them could never match, and SQLite cannot even
build a query with a thousand labels.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from edgemeta.documents import LABELS_MAX, NAME_MAX
from edgemeta.domain.errors import ContractInvalid, RangeNotSatisfiable
from edgemeta.domain.names import has_control_chars
from edgemeta.ports import ListQuery

MAX_OFFSET = 2**31 - 1
DEFAULT_LIMIT = 20
_INTEGER = re.compile(r"[+-]?[0-9]{1,20}")


def _int(params: Mapping[str, str], key: str, default: int, low: int, high: int) -> int:
    raw = params.get(key)
    if raw is None or raw == "":
        return default
    if not _INTEGER.fullmatch(raw):
        raise ContractInvalid(f"failed to parse querystring {key}'s value {raw!r} into integer")
    value = int(raw, 10)
    if not low <= value <= high:
        raise ContractInvalid(
            f"querystring {key}'s value {value} is out of min {low} ~ max {high} range"
        )
    return value


def _check_name(key: str, value: str) -> str:
    if len(value) > NAME_MAX:
        raise ContractInvalid(f"querystring {key} has a name longer than {NAME_MAX} characters")
    if has_control_chars(value):
        raise ContractInvalid(f"querystring {key} must not contain control characters")
    return value


def labels(params: Mapping[str, str]) -> tuple[str, ...]:
    """The ``labels`` filter."""
    raw = params.get("labels") or ""
    found = tuple(_check_name("labels", x) for x in (p.strip() for p in raw.split(",")) if x)
    if len(found) > LABELS_MAX:
        raise ContractInvalid(f"querystring labels names more than {LABELS_MAX} labels")
    return found


def name_param(params: Mapping[str, str], key: str) -> str:
    """A query parameter that names a record (empty when absent)."""
    return _check_name(key, params.get(key) or "")


def list_query(
    params: Mapping[str, str], max_result_count: int, *, with_labels: bool = True
) -> ListQuery:
    """Parse offset, limit and (optionally) labels."""
    offset = _int(params, "offset", 0, 0, MAX_OFFSET)
    limit = _int(params, "limit", DEFAULT_LIMIT, -1, max_result_count)
    if limit == -1:
        limit = max_result_count
    return ListQuery(offset=offset, limit=limit, labels=labels(params) if with_labels else ())


def check_range(total: int, query: ListQuery) -> None:
    """416 when the page starts past the end of a non-empty collection."""
    if total > 0 and query.limit != 0 and query.offset > total:
        raise RangeNotSatisfiable(
            f"query objects bounds out of range. length:{total} offset:{query.offset}"
        )


def int_param(params: Mapping[str, str], key: str, default: int, low: int, high: int) -> int:
    """Another integer query parameter, with the same error messages."""
    return _int(params, key, default, low, high)


def flag(params: Mapping[str, str], key: str) -> bool:
    """A boolean query flag: only ``true`` (any case) counts as true, as in EdgeX."""
    return (params.get(key) or "").lower() == "true"
