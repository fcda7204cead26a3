"""Reading and decoding request bodies: size limit, JSON, and EdgeX batch validation.

A batch body must be a JSON array whose every element validates; otherwise the whole
request is one 400 naming the first problem (``[2].device.adminState: ...``), and nothing is
processed. Only a valid batch is handled item by item (207).

A body may nest at most :data:`MAX_DEPTH` arrays and objects. Free-form fields
(``properties``, ``protocols``, ``location``, ``tags``, ``attributes``) are stored and served
inside other documents, and orjson refuses to serialize past 255 levels: without this bound a
deep enough value is stored once and then makes every read of it, lists included, a 500.

A batch holds at most ``max_items`` requests (``EDGEMETA_MAX_BATCH``): a longer one is a 413
before any item is validated. The depth check and validation run :data:`CHUNK` items at a
time and yield to the event loop between chunks, so a large batch never holds the loop for
longer than one chunk takes (a few milliseconds) and other requests are answered meanwhile.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import math
import re
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, TypeAdapter, ValidationError
from starlette.requests import Request

from edgemeta.domain.errors import ContractInvalid, LimitExceeded

M = TypeVar("M", bound=BaseModel)
_ADAPTERS: dict[type[BaseModel], TypeAdapter[Any]] = {}

MAX_DEPTH = 64
CHUNK = 250  # batch items validated between two yields to the event loop
WHOLE_BODY = 256 * 1024  # a batch body up to this size is parsed at once (see _array_chunks)
_INT_MIN = -(2**63)
_INT_MAX = 2**64 - 1


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refusing more than ``limit`` bytes (413) without reading it all first."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise LimitExceeded(f"request body of {declared} bytes exceeds the limit of {limit}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise LimitExceeded(f"request body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_json(raw: bytes) -> Any:
    """Parse JSON; ContractInvalid naming the position of the error or the excess depth."""
    data = _loads(raw)
    check_depth(data, "request body")
    return data


def _loads(raw: bytes) -> Any:
    if not raw.strip():
        raise ContractInvalid("request body is empty")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ContractInvalid(f"request body is not valid JSON: {exc}") from None


def check_depth(data: Any, what: str) -> None:
    """ContractInvalid if ``data`` nests arrays and objects deeper than MAX_DEPTH."""
    level: list[Any] = [data]
    depth = 0
    while level:
        containers = [v for v in level if isinstance(v, (dict, list))]
        if not containers:
            return
        depth += 1
        if depth > MAX_DEPTH:
            raise ContractInvalid(f"{what} is nested deeper than {MAX_DEPTH} levels")
        level = []
        for c in containers:
            level.extend(c.values() if isinstance(c, dict) else c)


def json_compatible(data: Any, where: str = "") -> Any:
    """``data`` (as a YAML loader builds it) as JSON values; ContractInvalid naming what is not.

    Dates and timestamps become ISO 8601 strings; byte strings, sets, non-string keys,
    integers outside 64 bits and non-finite numbers are refused, as JSON cannot carry them.
    """
    check_depth(data, where or "document")
    return _json_value(data, where)


def _json_value(value: Any, where: str) -> Any:
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        if not _INT_MIN <= value <= _INT_MAX:
            raise ContractInvalid(f"{where or 'value'}: integer {value} is out of 64-bit range")
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ContractInvalid(f"{where or 'value'}: {value} is not a JSON number")
        return value
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    if isinstance(value, list):
        return [_json_value(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise ContractInvalid(f"{where or 'document'}: key {k!r} is not a string")
            out[k] = _json_value(v, f"{where}.{k}" if where else k)
        return out
    raise ContractInvalid(f"{where or 'value'}: a {type(value).__name__} is not a JSON value")


def describe(exc: ValidationError, prefix: str = "") -> str:
    """One line naming the first invalid field (and how many more there are)."""
    return _describe(exc.errors(include_url=False), prefix)


def _describe(errors: Any, prefix: str = "", total: int | None = None) -> str:
    first = errors[0]
    path = prefix
    for part in first["loc"]:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    msg = str(first["msg"])
    if first["type"] == "missing":
        msg = "is required"
    elif msg.startswith("Value error, "):
        msg = msg.removeprefix("Value error, ")
    text = f"{path}: {msg}" if path else msg
    count = len(errors) if total is None else total
    if count > 1:
        text += f" (and {count - 1} more problems)"
    return text


async def decode_batch(raw: bytes, model: type[M], max_items: int) -> list[M]:
    """A JSON array of at most ``max_items`` requests of type ``model``.

    LimitExceeded (413) for a longer array, ContractInvalid (one 400, naming the first
    problem) if anything is wrong; parsed and validated :data:`CHUNK` items at a time,
    yielding to the event loop between chunks.
    """
    adapter = _ADAPTERS.get(model)
    if adapter is None:
        adapter = _ADAPTERS[model] = TypeAdapter(list[model])  # type: ignore[valid-type]
    items: list[M] = []
    first: list[Any] = []  # the first chunk's errors that has any, indexes made absolute
    problems = 0
    start = 0
    async for chunk in _array_chunks(raw, max_items):
        check_depth(chunk, "request body")  # the array itself is level one, as for the body
        try:
            items.extend(adapter.validate_python(chunk))
        except ValidationError as exc:
            errors = exc.errors(include_url=False)
            problems += len(errors)
            if not first:
                index = int(errors[0]["loc"][0])  # a list's errors start with the item's index
                first = [dict(errors[0], loc=(index + start, *errors[0]["loc"][1:]))]
        start += len(chunk)
    if first:
        raise ContractInvalid(_describe(first, total=problems))
    return items


# The standard library's C scanner: one JSON value from a position, and where it ends.
_SCAN: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]
_SPACE = re.compile(r"[ \t\n\r]*")


def _skip(text: str, i: int) -> int:
    """The position of the first non-whitespace character at or after ``i``."""
    match = _SPACE.match(text, i)
    return match.end() if match is not None else i


class _Unreadable(Exception):
    """The array walk met something it does not parse: the whole body goes to orjson."""


async def _array_chunks(raw: bytes, max_items: int) -> AsyncIterator[list[Any]]:
    """The elements of the JSON array ``raw``, :data:`CHUNK` at a time.

    Parsing a 16 MiB body at once holds the event loop for half a second, and only then says
    whether it holds too many items. So the array is walked element by element (the standard
    library's C scanner finds where each one ends), yielding to the event loop between chunks
    and refusing element ``max_items + 1`` as soon as it is reached; each chunk is parsed with
    orjson, like every other body. Anything the walk does not read (not an array, invalid
    JSON, NaN, integers orjson refuses) is parsed whole by :func:`_loads`, for its message.
    """
    if not raw.strip():
        raise ContractInvalid("request body is empty")
    if len(raw) <= WHOLE_BODY:
        # Small enough to parse at once in well under a millisecond: orjson alone, instead
        # of the walk's scan plus orjson (which parsed every element twice). Anything it
        # does not take as an array goes the walk's way, for the same answer.
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            data = None
        if isinstance(data, list):
            _check_count(len(data), max_items)
            for i in range(0, len(data), CHUNK):
                if i:
                    await asyncio.sleep(0)
                yield data[i : i + CHUNK]
            return
    done = 0  # elements already yielded by the walk
    try:
        async for chunk in _walk(raw.decode(), max_items):
            done += len(chunk)
            yield chunk
        return
    except (_Unreadable, UnicodeDecodeError):
        pass
    data = _loads(raw)
    if not isinstance(data, list):
        check_depth(data, "request body")
        raise ContractInvalid("request body must be a JSON array of requests")
    _check_count(len(data), max_items)
    for i in range(done, len(data), CHUNK):
        if i > done:
            await asyncio.sleep(0)
        yield data[i : i + CHUNK]


async def _walk(text: str, max_items: int) -> AsyncIterator[list[Any]]:
    i = _skip(text, 0)
    if text[i : i + 1] != "[":
        raise _Unreadable
    i = _skip(text, i + 1)
    if text[i : i + 1] == "]":
        if _skip(text, i + 1) != len(text):
            raise _Unreadable
        return
    count = 0
    done = False
    while not done:
        if count:
            await asyncio.sleep(0)  # let other requests in between chunks
        first = i
        last = i
        for _ in range(CHUNK):
            try:
                _, last = _SCAN(text, i)
            except (StopIteration, ValueError, RecursionError):
                raise _Unreadable from None  # invalid, an integer too long, too deep
            count += 1
            _check_count(count, max_items)
            i = _skip(text, last)
            sep = text[i : i + 1]
            if sep == "]":
                if _skip(text, i + 1) != len(text):
                    raise _Unreadable
                done = True
                break
            if sep != ",":
                raise _Unreadable
            i = _skip(text, i + 1)
        try:
            yield orjson.loads("[" + text[first:last] + "]")
        except orjson.JSONDecodeError:
            raise _Unreadable from None  # what orjson refuses (NaN, huge integers)


def _check_count(count: int, max_items: int) -> None:
    if count > max_items:
        raise LimitExceeded(f"a batch may hold at most {max_items} requests (EDGEMETA_MAX_BATCH)")


def decode_one(data: Any, model: type[M], prefix: str = "") -> M:
    """One object of ``model``; ContractInvalid naming the problem."""
    if not isinstance(data, dict):
        raise ContractInvalid(f"{prefix or 'request body'} must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ContractInvalid(describe(exc, prefix)) from None
