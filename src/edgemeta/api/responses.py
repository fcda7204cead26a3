"""EdgeX response bodies: ``BaseResponse`` and friends, serialized with orjson.

Key order follows EdgeX's Go structs: ``apiVersion, requestId, message, statusCode``, then
the resource keys; ``requestId`` and ``message`` are left out when empty.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

from edgemeta.documents import API_VERSION

JSON_TYPE = "application/json"


def base(status: int, *, message: str = "", request_id: str = "") -> dict[str, Any]:
    """A BaseResponse body."""
    body: dict[str, Any] = {"apiVersion": API_VERSION}
    if request_id:
        body["requestId"] = request_id
    if message:
        body["message"] = message
    body["statusCode"] = status
    return body


def respond(status: int, body: Any) -> Response:
    """A JSON response with this status."""
    return Response(orjson.dumps(body), status_code=status, media_type=JSON_TYPE)


def ok(**resource: Any) -> Response:
    """200 with a BaseResponse followed by the given resource keys."""
    body = base(200)
    body.update(resource)
    return respond(200, body)


def error(status: int, message: str, request_id: str = "") -> Response:
    """An error: a single BaseResponse whose statusCode is the HTTP status."""
    return respond(status, base(status, message=message, request_id=request_id))


_OK_HEAD = b'{"apiVersion":"' + API_VERSION.encode() + b'","statusCode":200'


def stored_one(key: str, document: str) -> Response:
    """200 with one stored document under ``key``, spliced in without re-encoding it."""
    body = b'%s,"%s":%s}' % (_OK_HEAD, key.encode(), document.encode())
    return Response(body, status_code=200, media_type=JSON_TYPE)


def stored_page(key: str, total: int, documents: list[str]) -> Response:
    """200 with ``totalCount`` and a list of stored documents, spliced in as they are."""
    items = ",".join(documents).encode()
    body = b'%s,"totalCount":%d,"%s":[%s]}' % (_OK_HEAD, total, key.encode(), items)
    return Response(body, status_code=200, media_type=JSON_TYPE)
