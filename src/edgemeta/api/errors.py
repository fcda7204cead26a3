"""The one table from error kind to HTTP status (EdgeX ``codeMapping``)."""

from __future__ import annotations

from edgemeta.domain.errors import EdgeMetaError, Kind

STATUS: dict[Kind, int] = {
    Kind.CONTRACT_INVALID: 400,
    Kind.UNAUTHORIZED: 401,
    Kind.FORBIDDEN: 403,
    Kind.NOT_FOUND: 404,
    Kind.DUPLICATE_NAME: 409,
    Kind.STATUS_CONFLICT: 409,
    Kind.LIMIT_EXCEEDED: 413,
    Kind.RANGE_NOT_SATISFIABLE: 416,
    Kind.SERVICE_LOCKED: 423,
    Kind.SERVER_ERROR: 500,
    Kind.NOT_IMPLEMENTED: 501,
    Kind.SERVICE_UNAVAILABLE: 503,
    Kind.TIMEOUT: 504,
    Kind.INSUFFICIENT_STORAGE: 507,
}


def status_of(exc: EdgeMetaError) -> int:
    """The HTTP status for an error."""
    return STATUS[exc.kind]
