"""Reading and decoding request bodies: size limit, JSON, and EdgeX batch validation.

A batch body must be a JSON array whose every element validates; otherwise the whole
request is one 400 naming the first problem (``[2].device.adminState: ...``), and nothing is
processed. Only a valid batch is handled item by item (207).
"""

from __future__ import annotations

from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, TypeAdapter, ValidationError
from starlette.requests import Request

from edgemeta.domain.errors import ContractInvalid, LimitExceeded

M = TypeVar("M", bound=BaseModel)
_ADAPTERS: dict[type[BaseModel], TypeAdapter[Any]] = {}


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
    """Parse JSON; ContractInvalid naming the position of the error."""
    if not raw.strip():
        raise ContractInvalid("request body is empty")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ContractInvalid(f"request body is not valid JSON: {exc}") from None


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
