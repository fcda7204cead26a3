"""Reading and decoding request bodies: size limit, JSON, and EdgeX batch validation.

A batch body must be a JSON array whose every element validates; otherwise the whole
request is one 400 naming the first problem (``[2].device.adminState: ...``), and nothing is
processed. Only a valid batch is handled item by item (207).

A body may nest at most :data:`MAX_DEPTH` arrays and objects. Free-form fields
(``properties``, ``protocols``, ``location``, ``tags``, ``attributes``) are stored and served
inside other documents, and orjson refuses to serialize past 255 levels: without this bound a
deep enough value is stored once and then makes every read of it, lists included, a 500.
"""

from __future__ import annotations

import datetime
import math
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, TypeAdapter, ValidationError
from starlette.requests import Request

from edgemeta.domain.errors import ContractInvalid, LimitExceeded

M = TypeVar("M", bound=BaseModel)
_ADAPTERS: dict[type[BaseModel], TypeAdapter[Any]] = {}

MAX_DEPTH = 64
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
    if not raw.strip():
        raise ContractInvalid("request body is empty")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ContractInvalid(f"request body is not valid JSON: {exc}") from None
    check_depth(data, "request body")
    return data


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
    errors = exc.errors(include_url=False)
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
    if len(errors) > 1:
        text += f" (and {len(errors) - 1} more problems)"
    return text


def decode_batch(raw: bytes, model: type[M]) -> list[M]:
    """A JSON array of ``model``; ContractInvalid (one 400) if anything is wrong."""
    data = parse_json(raw)
    if not isinstance(data, list):
        raise ContractInvalid("request body must be a JSON array of requests")
    adapter = _ADAPTERS.get(model)
    if adapter is None:
        adapter = _ADAPTERS[model] = TypeAdapter(list[model])  # type: ignore[valid-type]
    try:
        items: list[M] = adapter.validate_python(data)
    except ValidationError as exc:
        raise ContractInvalid(describe(exc)) from None
    return items


def decode_one(data: Any, model: type[M], prefix: str = "") -> M:
    """One object of ``model``; ContractInvalid naming the problem."""
    if not isinstance(data, dict):
        raise ContractInvalid(f"{prefix or 'request body'} must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ContractInvalid(describe(exc, prefix)) from None
