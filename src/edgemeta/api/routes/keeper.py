"""core-keeper's key/value API (``/kvs/key/{key}``), its ping and version, on their own port.

The shapes are go-mod-core-contracts v4's: ``UpdateKeysRequest`` in (``{"value": ...}``),
``MultiKVResponse`` (``response: [{"key", "created", "modified", "value"}]``) or
``KeysResponse`` (``response: ["key", ...]``) out. Only the key/value store is served, not
core-keeper's service registry (docs/compatibility.md).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from edgemeta.api.body import parse_json, read_body
from edgemeta.api.handlers import endpoint
from edgemeta.api.health import Readiness
from edgemeta.api.responses import ok
from edgemeta.api.routes.common import service_routes
from edgemeta.domain.errors import ContractInvalid
from edgemeta.usecases.keeper import Keeper

SERVICE_NAME = "core-keeper"
# Go's strconv.ParseBool, which core-keeper reads its query flags with.
_BOOL = {
    **dict.fromkeys(("1", "t", "T", "TRUE", "true", "True"), True),
    **dict.fromkeys(("0", "f", "F", "FALSE", "false", "False"), False),
}


@dataclass(frozen=True, slots=True)
class KeeperContext:
    """What the core-keeper routes need."""

    keeper: Keeper
    max_body_bytes: int = 16 * 1024 * 1024
    readiness: Readiness | None = None  # the readiness checks, with the bus (bootstrap)


def _flag(params: Mapping[str, str], name: str) -> bool:
    """A boolean query parameter as core-keeper reads it (Go's ``strconv.ParseBool``)."""
    raw = (params.get(name) or "").strip()
    if not raw:
        return False
    if raw not in _BOOL:
        raise ContractInvalid(f"failed to parse querystring {name} into bool: {raw!r}")
    return _BOOL[raw]


def _key(request: Request) -> str:
    """The key in the path, percent-decoded once (the router saw the raw path)."""
    raw: str = request.path_params["key"]
    try:
        return unquote(raw, errors="strict")
    except UnicodeDecodeError:
        raise ContractInvalid("the key is not valid UTF-8 once decoded") from None


def _value_of(body: Any) -> Any:
    """``value`` of an UpdateKeysRequest (member names match in any case, as Go decodes)."""
    if not isinstance(body, dict):
        raise ContractInvalid("request body must be a JSON object with a value")
    for name, value in body.items():
        if name.lower() == "value":
            return value
    return None


def routes(ctx: KeeperContext) -> list[Route]:
    """The core-keeper routes (``{key:path}``: a key holds ``/``)."""
    keeper = ctx.keeper

    @endpoint
    async def get_keys(request: Request) -> Response:
        keys_only = _flag(request.query_params, "keyOnly")
        plaintext = _flag(request.query_params, "plaintext")
        entries = await keeper.get(_key(request))
        if keys_only:
            return ok(response=[e.key for e in entries])
        return ok(
            response=[
                {
                    "key": e.key,
                    "created": e.created,
                    "modified": e.modified,
                    "value": e.value
                    if plaintext
                    else base64.b64encode(e.value.encode()).decode("ascii"),
                }
                for e in entries
            ]
        )

    @endpoint
    async def put_keys(request: Request) -> Response:
        flatten = _flag(request.query_params, "flatten")
        key = _key(request)
        value = _value_of(parse_json(await read_body(request, ctx.max_body_bytes)))
        return ok(response=await keeper.put(key, value, flatten_value=flatten))

    @endpoint
    async def delete_keys(request: Request) -> Response:
        prefix_match = _flag(request.query_params, "prefixMatch")
        return ok(response=await keeper.delete(_key(request), prefix_match=prefix_match))

    return [
        *service_routes(SERVICE_NAME, store=ctx.keeper.store, readiness=ctx.readiness),
        Route("/kvs/key/{key:path}", get_keys, methods=["GET"]),
        Route("/kvs/key/{key:path}", put_keys, methods=["PUT"]),
        Route("/kvs/key/{key:path}", delete_keys, methods=["DELETE"]),
    ]
