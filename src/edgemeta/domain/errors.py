"""The one error tree of edgemeta.

Every failure the service reports is an :class:`EdgeMetaError` carrying a :class:`Kind`.
The kinds are EdgeX's error kinds (go-mod-core-contracts ``errors/types.go``); the API layer
turns a kind into an HTTP status with one table (``edgemeta.api.errors``), and nothing below
the API knows about HTTP.

Messages are lower case and name the thing they are about, e.g.
``device 'thermo-1' not found``.

Tree::

    EdgeMetaError
    ├── ContractInvalid      bad input (400)
    ├── Unauthorized         a registration could not prove who it is (401)
    ├── Forbidden            the caller is known but not allowed (403)
    ├── NotFound             an entity named in the path or body does not exist (404)
    ├── Conflict             duplicate name, delete while referenced, stale revision (409)
    ├── LimitExceeded        a body or a capacity over its limit (413)
    ├── RangeNotSatisfiable  offset past the end of a list (416)
    ├── Locked               a setting forbids the change (423)
    ├── Unsupported          the operation exists in the API but edgemeta does not offer it (501)
    ├── ServiceUnavailable   a peer (device service, broker, database) did not answer (503)
    ├── InsufficientStorage  the disk holding the database is full (507)
    └── ServerError          everything unexpected (500)
"""

from __future__ import annotations

from enum import StrEnum


class Kind(StrEnum):
    """EdgeX error kinds that edgemeta produces."""

    CONTRACT_INVALID = "ContractInvalid"
    UNAUTHORIZED = "Unauthorized"
    FORBIDDEN = "Forbidden"
    NOT_FOUND = "EntityDoesNotExist"
    DUPLICATE_NAME = "DuplicateName"
    STATUS_CONFLICT = "StatusConflict"
    LIMIT_EXCEEDED = "LimitExceeded"
    RANGE_NOT_SATISFIABLE = "RangeNotSatisfiable"
    SERVICE_LOCKED = "ServiceLocked"
    NOT_IMPLEMENTED = "NotImplemented"
    SERVICE_UNAVAILABLE = "ServiceUnavailable"
    # EdgeX's KindTimeout: a peer was asked and did not answer in time (core-command's 504).
    TIMEOUT = "Timeout"
    # Not an EdgeX kind: EdgeX answers a full disk with a 500. 507 says what happened.
    INSUFFICIENT_STORAGE = "InsufficientStorage"
    SERVER_ERROR = "UnexpectedServerError"


class EdgeMetaError(Exception):
    """Base of every error edgemeta reports to a caller."""

    kind: Kind = Kind.SERVER_ERROR

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ContractInvalid(EdgeMetaError):
    """The request is malformed or violates a rule of the contract."""

    kind = Kind.CONTRACT_INVALID


class Unauthorized(EdgeMetaError):
    """Credentials are missing, wrong, expired or replayed (the detail is logged, not told)."""

    kind = Kind.UNAUTHORIZED


class Forbidden(EdgeMetaError):
    """The caller is known but not allowed (e.g. its enrolment is disabled)."""

    kind = Kind.FORBIDDEN


class NotFound(EdgeMetaError):
    """A named entity does not exist."""

    kind = Kind.NOT_FOUND


class Conflict(EdgeMetaError):
    """The request conflicts with the stored state (duplicate, reference, revision)."""

    kind = Kind.STATUS_CONFLICT


class DuplicateName(Conflict):
    """An entity with this name (or id) already exists."""

    kind = Kind.DUPLICATE_NAME


class LimitExceeded(EdgeMetaError):
    """A size or capacity limit was exceeded."""

    kind = Kind.LIMIT_EXCEEDED


class RangeNotSatisfiable(EdgeMetaError):
    """The requested page starts past the end of the collection."""

    kind = Kind.RANGE_NOT_SATISFIABLE


class Locked(EdgeMetaError):
    """A configuration switch forbids the operation."""

    kind = Kind.SERVICE_LOCKED


class Unsupported(EdgeMetaError):
    """The API has this operation, but edgemeta does not provide it (yet)."""

    kind = Kind.NOT_IMPLEMENTED


class ServiceUnavailable(EdgeMetaError):
    """A peer the operation needs did not answer in time."""

    kind = Kind.SERVICE_UNAVAILABLE


class PeerTimeout(EdgeMetaError):
    """A peer was asked and did not answer in time (a command's device service)."""

    kind = Kind.TIMEOUT


class InsufficientStorage(EdgeMetaError):
    """The database could not write: its disk (or its size limit) is full."""

    kind = Kind.INSUFFICIENT_STORAGE


class ServerError(EdgeMetaError):
    """An unexpected failure inside edgemeta."""

    kind = Kind.SERVER_ERROR
