"""The pieces every resource's JSON shape is built from.

- Request DTOs decode the way EdgeX's Go server does: keys match **case-insensitively**
  (Go's ``encoding/json``: ``"Device"``, ``"baseaddress"`` and ``"basicinfo"`` all land on
  their fields; an exact match wins over a folded one); unknown keys are ignored; ``null``
  means "absent" for every optional field; types are strict, as in Go (a string is not a
  number, ``1.0`` is not an integer, ``"true"`` is not a boolean).
- Beyond EdgeX, lengths are bounded (names 256 characters, free text 16 KiB, 256 labels) and
  names may not contain control characters, so nothing unbounded or unprintable reaches a
  topic, a URL or the store. These limits are listed in ``docs/compatibility.md``.
- Documents (``*_doc`` / ``*_from``) follow the Go DTO tags of go-mod-core-contracts: fields
  tagged ``omitempty`` are left out when empty, the rest are always written. One document
  serves the API response, the system event's ``details`` and the store's ``content``
  column, so what is stored is exactly what is served. ``*_from`` functions read documents
  this package wrote and trust them (requests are validated by the DTOs before any record
  exists).

Here: the envelope, the base class with its key folding, the bounded string types, and the
AutoEvent shape that devices, provision watchers and enrolments share.

"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal, Self, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)
from pydantic.alias_generators import to_camel

from edgemeta.domain.durations import DurationError, parse_duration
from edgemeta.domain.ids import is_uuid
from edgemeta.domain.names import has_control_chars
from edgemeta.domain.records import AutoEvent, Retention

T = TypeVar("T")
NAME_MAX = 256
TEXT_MAX = 16 * 1024
LABELS_MAX = 256


def _name(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    if has_control_chars(value):
        raise ValueError("must not contain control characters")
    return value


def _no_nul(value: str) -> str:
    # PostgreSQL text cannot hold NUL; nothing legitimate needs it.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


def _ref_name(value: str) -> str:
    # A reference that may be empty ("no profile", "no parent") but is otherwise a name.
    if has_control_chars(value):
        raise ValueError("must not contain control characters")
    return value


def _request_id(value: str | None) -> str:
    if not value:
        return ""
    if not is_uuid(value):
        raise ValueError("must be a UUID or empty")
    return value


def _uuid_or_empty(value: str | None) -> str | None:
    if value and not is_uuid(value):
        raise ValueError("must be a UUID")
    return value


def _interval(value: str) -> str:
    try:
        ns = parse_duration(value)
    except DurationError:
        raise ValueError("must be a duration such as 500ms, 15s or 1h") from None
    if ns < 1_000_000:
        raise ValueError("must be at least 1ms")
    return value


def _retention_duration(value: str) -> str:
    if value:
        try:
            ns = parse_duration(value)
        except DurationError:
            raise ValueError("must be a duration such as 24h") from None
        if ns < 0:
            raise ValueError("must not be negative")
    return value


Name = Annotated[str, StringConstraints(max_length=NAME_MAX), AfterValidator(_name)]
RefName = Annotated[str, StringConstraints(max_length=NAME_MAX), AfterValidator(_ref_name)]
Text = Annotated[str, StringConstraints(max_length=TEXT_MAX), AfterValidator(_no_nul)]
Label = Annotated[str, StringConstraints(max_length=NAME_MAX), AfterValidator(_name)]
Labels = Annotated[list[Label], Field(max_length=LABELS_MAX)]
Uuid = Annotated[str, AfterValidator(_uuid_or_empty)]
ApiVersion = Annotated[str, StringConstraints(min_length=1, max_length=16)]
RequestId = Annotated[str | None, AfterValidator(_request_id)]
AdminStateWire = Literal["LOCKED", "UNLOCKED"]
OperatingStateWire = Literal["UP", "DOWN", "UNKNOWN"]
Object = dict[str, Any]
_KEY_TABLES: dict[type, tuple[dict[str, str], frozenset[str]]] = {}


def fold_keys(data: Mapping[str, Any], table: Mapping[str, str]) -> dict[str, Any]:
    """``data`` with keys matched case-insensitively to ``table``; unknown keys dropped.

    ``table`` maps a lower-cased key to its declared spelling. The one key folding of
    every JSON shape: request DTOs (:class:`Wire`) and core-data events.

    An exactly spelled key wins over a case-folded one, as in Go's ``encoding/json``.
    """
    out: dict[str, Any] = {}
    folded: list[tuple[str, Any]] = []
    for key, value in data.items():
        if not isinstance(key, str):
            continue  # a dict built in Python, not decoded JSON: no such field
        name = table.get(key.lower())
        if name is None:
            continue
        if key == name:
            out[name] = value
        else:
            folded.append((name, value))
    for name, value in folded:
        out.setdefault(name, value)
    return out


class Wire(BaseModel):
    """Base of every request DTO: strict types, camelCase keys matched case-insensitively."""

    model_config = ConfigDict(
        strict=True,
        extra="ignore",
        frozen=True,
        alias_generator=to_camel,
        populate_by_name=True,
    )

    @classmethod
    def _key_table(cls) -> tuple[dict[str, str], frozenset[str]]:
        found = _KEY_TABLES.get(cls)
        if found is None:
            table = {(f.alias or n).lower(): f.alias or n for n, f in cls.model_fields.items()}
            found = _KEY_TABLES[cls] = (table, frozenset(table.values()))
        return found

    @model_validator(mode="before")
    @classmethod
    def _fold_keys(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        table, exact = cls._key_table()
        if exact.issuperset(data):
            return data  # the common case: every key already spelled as declared
        return fold_keys(data, table)


def require_target(id_: str | None, name: str | None) -> None:
    """Update DTOs name their record by ``id`` or ``name``; at least one must be given."""
    if not id_ and not name:
        raise ValueError("either id or name is required")


class Targeted(Wire):
    """Base of the update (PATCH) DTOs: ``id`` or ``name`` names the record to change."""

    id: Uuid | None = None
    name: Name | None = None

    @model_validator(mode="after")
    def _target(self) -> Self:
        require_target(self.id, self.name)
        return self


class Envelope(Wire):
    """EdgeX BaseRequest: ``apiVersion`` required, ``requestId`` empty or a UUID."""

    api_version: ApiVersion
    request_id: RequestId = ""


class RetentionDTO(Wire):
    """AutoEvent retention."""

    max_cap: Annotated[int, Field(ge=0, le=2**63 - 1)] | None = None
    min_cap: Annotated[int, Field(ge=0, le=2**63 - 1)] | None = None
    duration: (
        Annotated[str, StringConstraints(max_length=64), AfterValidator(_retention_duration)] | None
    ) = None


class AutoEventDTO(Wire):
    """AutoEvent."""

    interval: Annotated[str, StringConstraints(max_length=64), AfterValidator(_interval)]
    on_change: bool | None = None
    on_change_threshold: Annotated[float, Field(ge=0)] | None = None
    source_name: Name
    retention: RetentionDTO | None = None


AutoEvents = Annotated[list[AutoEventDTO], Field(max_length=1024)]
Protocols = Annotated[dict[str, Object], Field(max_length=64)]


def labels_of(labels: list[str] | None) -> tuple[str, ...]:
    """Labels of a request (absent is none)."""
    return tuple(labels or ())


def opt_labels_of(labels: list[str] | None) -> tuple[str, ...] | None:
    """Labels of a patch: None when absent (unchanged)."""
    return None if labels is None else tuple(labels)


def auto_event_record(a: AutoEventDTO) -> AutoEvent:
    """AutoEvent."""
    r = a.retention
    return AutoEvent(
        interval=a.interval,
        source_name=a.source_name,
        on_change=bool(a.on_change),
        on_change_threshold=a.on_change_threshold or 0.0,
        retention=Retention(
            max_cap=(r.max_cap or 0) if r else 0,
            min_cap=(r.min_cap or 0) if r else 0,
            duration=(r.duration or "") if r else "",
        ),
    )


def auto_events_of(items: list[AutoEventDTO] | None) -> tuple[AutoEvent, ...]:
    """AutoEvents of a request (absent is none)."""
    return tuple(auto_event_record(a) for a in items or ())


def opt_auto_events_of(items: list[AutoEventDTO] | None) -> tuple[AutoEvent, ...] | None:
    """AutoEvents of a patch: None when absent (unchanged)."""
    return None if items is None else auto_events_of(items)


API_VERSION = "v3"
Doc = dict[str, Any]


def stamps(doc: Doc, created: int, modified: int) -> None:
    """Write ``created``/``modified`` into ``doc`` when set (``omitempty``)."""
    if created:
        doc["created"] = created
    if modified:
        doc["modified"] = modified


def auto_event_doc(a: AutoEvent) -> Doc:
    """The AutoEvent DTO; ``retention`` is always written, as EdgeX does."""
    return {
        "interval": a.interval,
        "onChange": a.on_change,
        "onChangeThreshold": a.on_change_threshold,
        "sourceName": a.source_name,
        "retention": {
            "maxCap": a.retention.max_cap,
            "minCap": a.retention.min_cap,
            "duration": a.retention.duration,
        },
    }


def auto_event_from(doc: Doc) -> AutoEvent:
    """Read an AutoEvent document."""
    r = doc.get("retention") or {}
    return AutoEvent(
        interval=doc["interval"],
        source_name=doc["sourceName"],
        on_change=bool(doc.get("onChange", False)),
        on_change_threshold=float(doc.get("onChangeThreshold", 0.0)),
        retention=Retention(
            max_cap=int(r.get("maxCap", 0)),
            min_cap=int(r.get("minCap", 0)),
            duration=str(r.get("duration", "")),
        ),
    )


def given(**fields: Any) -> dict[str, Any]:
    """The fields that are given (not None), for a record constructor: its defaults do the rest.

    So a default (an enrolment's hold-down, a webhook's timeout, an initial admin state) is
    written once, on the domain dataclass, and not again in each conversion.
    """
    return {k: v for k, v in fields.items() if v is not None}


def opt(convert: Callable[[Any], T], value: Any) -> T | None:
    """``convert(value)``, or None when ``value`` is None."""
    return None if value is None else convert(value)
