"""The interfaces the use cases need, and nothing else.

- :class:`Store` opens transactions; a transaction (:class:`Tx`) exposes one repository per
  record type and the :class:`Outbox`. Everything done through one ``Tx`` commits or rolls
  back together, which is how a change and its system events are written atomically.
- :class:`OutboxFeed` is the relay's and the event streams' view of the outbox, also on ``Tx``.
- :class:`Bus` is a message bus: publish, subscribe, request/reply.

Adapters: ``edgemeta.store`` (SQLite, PostgreSQL) and ``edgemeta.bus`` (in-process, MQTT,
NATS). The same contract test suite runs against each of them.

Uniqueness and references are the store's job (constraints); repositories raise the domain's
errors (``DuplicateName``, ``Conflict``) when the database refuses a write.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Generic, Literal, Protocol, TypeVar

from edgemeta.domain.enrollment import Enrollment, Registration
from edgemeta.domain.events import Change
from edgemeta.domain.moves import Move
from edgemeta.domain.readings import CheckedEvent
from edgemeta.domain.records import Device, DeviceProfile, DeviceService, ProvisionWatcher
from edgemeta.security.apikeys import ApiKey

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ListQuery:
    """One page of a list: ``limit`` is already resolved (never -1), ``labels`` all must match."""

    offset: int = 0
    limit: int = 20
    labels: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """A page of records and the size of the whole filtered collection."""

    total: int
    items: list[T]


class DeviceServiceRepo(Protocol):
    """Device services, keyed by name."""

    async def add(self, service: DeviceService) -> None:
        """Insert; DuplicateName if the name or id exists."""

    async def update(self, service: DeviceService) -> None:
        """Replace the stored record whose revision is ``service.revision - 1``; else Conflict."""

    async def get(self, name: str, *, for_update: bool = False) -> DeviceService | None:
        """The service called ``name`` (locked until commit when ``for_update``)."""

    async def get_by_id(self, id_: str, *, for_update: bool = False) -> DeviceService | None:
        """The service with this id."""

    async def delete(self, name: str) -> None:
        """Delete; Conflict if devices still reference it."""

    async def page(self, query: ListQuery) -> Page[DeviceService]:
        """A page of all services, oldest first."""

    async def get_document(self, name: str) -> str | None:
        """The stored document (the wire JSON) of the service called ``name``."""

    async def documents(self, query: ListQuery) -> Page[str]:
        """:meth:`page`, as stored documents (JSON text)."""


class DeviceProfileRepo(Protocol):
    """Device profiles, keyed by name."""

    async def add(self, profile: DeviceProfile) -> None:
        """Insert; DuplicateName if the name or id exists."""

    async def update(self, profile: DeviceProfile) -> None:
        """Replace the stored record whose revision is ``profile.revision - 1``; else Conflict."""

    async def get(self, name: str, *, for_update: bool = False) -> DeviceProfile | None:
        """The profile called ``name``."""

    async def get_by_id(self, id_: str, *, for_update: bool = False) -> DeviceProfile | None:
        """The profile with this id."""

    async def delete(self, name: str) -> None:
        """Delete; Conflict if devices or provision watchers still reference it."""

    async def page(
        self, query: ListQuery, *, manufacturer: str | None = None, model: str | None = None
    ) -> Page[DeviceProfile]:
        """A page of profiles, optionally of one manufacturer and/or model, oldest first."""


class DeviceRepo(Protocol):
    """Devices, keyed by name."""

    async def add(self, device: Device) -> None:
        """Insert; DuplicateName if the name or id exists, Conflict if a reference is gone."""

    async def add_many(self, devices: Sequence[Device]) -> None:
        """Insert all, in order, or none: Conflict (not saying which) if any breaks a
        constraint; the caller's savepoint undoes the rows written before it."""

    async def owners(self, names: Sequence[str]) -> dict[str, str]:
        """The owning service of each of ``names`` that exists."""

    async def update(self, device: Device) -> None:
        """Replace the stored record whose revision is ``device.revision - 1``; else Conflict."""

    async def get(
        self, name: str, *, for_update: bool = False, for_share: bool = False
    ) -> Device | None:
        """The device called ``name`` (``for_update``: row-locked until commit; ``for_share``:
        locked against ``for_update`` only, so sharers do not wait for each other)."""

    async def get_by_id(self, id_: str, *, for_update: bool = False) -> Device | None:
        """The device with this id."""

    async def exists(self, name: str) -> bool:
        """Whether a device called ``name`` exists."""

    async def delete(self, name: str) -> None:
        """Delete the device called ``name``."""

    async def page(
        self, query: ListQuery, *, service: str | None = None, profile: str | None = None
    ) -> Page[Device]:
        """A page of devices, optionally of one service and/or profile, oldest first."""

    async def get_document(self, name: str) -> str | None:
        """The stored document (the wire JSON) of the device called ``name``."""

    async def documents(
        self, query: ListQuery, *, service: str | None = None, profile: str | None = None
    ) -> Page[str]:
        """:meth:`page`, as stored documents (JSON text)."""

    async def descendant_documents(self, name: str, max_levels: int, query: ListQuery) -> Page[str]:
        """:meth:`descendants`, as stored documents (JSON text)."""

    async def descendants(self, name: str, max_levels: int, query: ListQuery) -> Page[Device]:
        """A page of the devices below ``name`` in the parent tree (``max_levels`` <= 0: all)."""

    async def has_children(self, name: str) -> bool:
        """Whether any device names ``name`` as its parent."""

    async def count(self) -> int:
        """The number of devices."""

    async def count_by_service(self, service: str) -> int:
        """The number of devices owned by ``service``."""

    async def count_by_profiles(self, profiles: Sequence[str]) -> dict[str, int]:
        """For each profile name, the number of devices using it (absent when zero)."""

    async def count_per_service(self, limit: int) -> list[tuple[str, int]]:
        """Devices per owning service, largest first: ``limit`` services, the rest summed
        as ``"_other"`` (for metrics: a bounded number of series)."""

    async def services_using_profile(self, profile: str) -> list[str]:
        """The distinct services that own a device of ``profile``."""


class ProvisionWatcherRepo(Protocol):
    """Provision watchers, keyed by name."""

    async def add(self, watcher: ProvisionWatcher) -> None:
        """Insert; DuplicateName if the name or id exists."""

    async def update(self, watcher: ProvisionWatcher) -> None:
        """Replace the stored record whose revision is ``watcher.revision - 1``; else Conflict."""

    async def get(self, name: str, *, for_update: bool = False) -> ProvisionWatcher | None:
        """The watcher called ``name``."""

    async def get_by_id(self, id_: str, *, for_update: bool = False) -> ProvisionWatcher | None:
        """The watcher with this id."""

    async def delete(self, name: str) -> None:
        """Delete the watcher called ``name``."""

    async def page(
        self, query: ListQuery, *, service: str | None = None, profile: str | None = None
    ) -> Page[ProvisionWatcher]:
        """A page of watchers, optionally of one service and/or profile, oldest first."""

    async def get_document(self, name: str) -> str | None:
        """The stored document (the wire JSON) of the watcher called ``name``."""

    async def documents(
        self, query: ListQuery, *, service: str | None = None, profile: str | None = None
    ) -> Page[str]:
        """:meth:`page`, as stored documents (JSON text)."""

    async def count_by_service(self, service: str) -> int:
        """The number of watchers of ``service``."""

    async def count_by_profile(self, profile: str) -> int:
        """The number of watchers whose discovered devices use ``profile``."""


@dataclass(frozen=True, slots=True)
class OutboxEvent:
    """A system event as the outbox keeps it, ready to be wrapped and published."""

    seq: int
    event_id: str
    type: str
    action: str
    owner: str
    profile_name: str
    record_key: str
    revision: int
    correlation_id: str
    timestamp_ns: int
    details: bytes
    pos: int | None = None
    tags: tuple[tuple[str, str], ...] = ()
    traceparent: str = ""  # of the span that wrote it ("" when tracing was off)


@dataclass(frozen=True, slots=True)
class OutboxStats:
    """How far the relay is behind: events not yet published, and the oldest one's commit."""

    backlog: int
    oldest_ns: int | None  # commit time of the oldest unpublished event; None when none

    def oldest_age_seconds(self, now_ns: int | None = None) -> float:
        """Age of the oldest unpublished event (0 when there is none)."""
        if self.oldest_ns is None:
            return 0.0
        now = time.time_ns() if now_ns is None else now_ns
        return max(0.0, (now - self.oldest_ns) / 1e9)


class Outbox(Protocol):
    """The write side of the outbox: events enter in the transaction of their change."""

    async def append(self, changes: Sequence[Change], correlation_id: str) -> None:
        """Queue ``changes`` for publication when (and only if) the transaction commits."""


class OutboxFeed(Protocol):
    """The read side of the outbox, for the relay and for event streams."""

    async def pending(self, limit: int) -> list[OutboxEvent]:
        """Undelivered events in commit order, oldest first."""

    async def mark_delivered(
        self, seqs: Sequence[int], delivered_ns: int, failure: str | None = None
    ) -> list[int]:
        """Record delivery (or, with ``failure``, that the bus refused them for good);
        returns the delivery positions given to ``seqs``, in order."""

    async def delivered_since(self, pos: int, limit: int) -> list[OutboxEvent]:
        """Delivered events with a position greater than ``pos``, in delivery order."""

    async def last_position(self) -> int:
        """The highest delivery position (0 when nothing was delivered)."""

    async def purge_delivered(self, older_than_ns: int) -> int:
        """Drop delivered events older than the retention; returns how many."""

    async def stats(self) -> OutboxStats:
        """The backlog and the oldest unpublished event (an indexed query)."""


class Tx(Protocol):
    """One database transaction: repositories and the outbox, committed together."""

    @property
    def services(self) -> DeviceServiceRepo:
        """Device services."""

    @property
    def profiles(self) -> DeviceProfileRepo:
        """Device profiles."""

    @property
    def devices(self) -> DeviceRepo:
        """Devices."""

    @property
    def watchers(self) -> ProvisionWatcherRepo:
        """Provision watchers."""

    @property
    def moves(self) -> MoveRepo:
        """Device moves and initial configurations."""

    @property
    def enrollments(self) -> EnrollmentRepo:
        """Enrolments."""

    @property
    def registrations(self) -> RegistrationRepo:
        """Registration records."""

    @property
    def data(self) -> CoreDataRepo:
        """core-data: events, readings and the index of what they are associated with."""

    @property
    def outbox(self) -> Outbox:
        """The outbox (write side)."""

    @property
    def feed(self) -> OutboxFeed:
        """The outbox (read side: relay, streams, replay)."""

    @property
    def apikeys(self) -> ApiKeyRepo:
        """API keys (stored as hashes)."""

    @property
    def kv(self) -> KvRepo:
        """The core-keeper-compatible key/value entries."""

    @property
    def secret(self) -> ServerSecretRepo:
        """The server secret release keys are derived from (one row)."""


@dataclass(frozen=True, slots=True)
class KvEntry:
    """One key of the key/value store: its text value and Unix-millisecond timestamps."""

    key: str
    value: str
    created: int
    modified: int


class KvRepo(Protocol):
    """Key/value entries (core-keeper's ``/kvs``): keys are ``/``-separated paths."""

    async def tree(self, key: str) -> list[KvEntry]:
        """The entry ``key`` and every entry below it (``key/...``), ordered by key."""

    async def put(self, key: str, value: str, now_ms: int) -> None:
        """Insert or replace the value of ``key`` (``created`` kept on replace)."""

    async def delete(self, key: str) -> bool:
        """Delete the entry ``key`` only; False if there was none."""

    async def delete_below(self, key: str) -> list[str]:
        """Delete every entry below ``key`` (``key/...``); returns their keys, ordered."""


class ApiKeyRepo(Protocol):
    """API keys: only their hashes are stored (``edgemeta.security.apikeys``)."""

    async def add(self, key: ApiKey) -> None:
        """Insert a new key."""

    async def by_hash(self, key_hash: str) -> ApiKey | None:
        """The key with this hash (revoked and expired ones too), or None."""

    async def all(self) -> list[ApiKey]:
        """Every key, oldest first."""

    async def revoke(self, key_id: str, now_ms: int) -> bool:
        """Revoke a key; False if unknown or already revoked."""


class ServerSecretRepo(Protocol):
    """The server secret (``edgemeta.security.proofs``), kept as ``(scheme, text)``."""

    async def get(self) -> tuple[str, str] | None:
        """The kept secret, or None before the first start."""

    async def put_if_absent(self, scheme: str, stored: str, created_ms: int) -> None:
        """Keep this one unless a secret is kept already."""

    async def reseal(self) -> int:
        """Rewrite the kept secret under the sealer's current key; how many (0 or 1)."""


@dataclass(frozen=True, slots=True)
class DataQuery:
    """A core-data list filter: any of device, resource name and origin range (ns)."""

    device: str | None = None
    resource: str | None = None
    start: int | None = None
    end: int | None = None


@dataclass(frozen=True, slots=True)
class DataAssociation:
    """One row of the association index: how many events (kind ``source``) or readings
    (kind ``resource``) a device holds for one name of its profile."""

    profile_name: str
    kind: str
    name: str
    device_name: str
    count: int


class CoreDataRepo(Protocol):
    """core-data's events and readings, and the association index kept with them.

    The index is written in the transaction of every insert and delete, so it is exact: a
    rules check reads it, never the readings.
    """

    async def add_event(self, event: CheckedEvent) -> bool:
        """Store an event and its readings; False (nothing stored) if its id exists."""

    async def event_document(self, id_: str) -> str | None:
        """The event with its readings, as JSON text."""

    async def event_documents(self, query: DataQuery, page: ListQuery) -> Page[str]:
        """Events, newest origin first, with their readings."""

    async def reading_documents(self, query: DataQuery, page: ListQuery) -> Page[str]:
        """Readings, newest origin first."""

    async def count_events(self, device: str | None = None) -> int:
        """How many events (of one device)."""

    async def count_readings(self, device: str | None = None) -> int:
        """How many readings (of one device)."""

    async def delete_events(
        self,
        *,
        id_: str | None = None,
        device: str | None = None,
        older_than: int | None = None,
        limit: int = 5000,
    ) -> tuple[int, int]:
        """Delete up to ``limit`` matching events with their readings (one filter given);
        returns (events, readings) deleted."""

    async def associations(
        self, *, profile: str | None = None, device: str | None = None
    ) -> list[DataAssociation]:
        """Index rows with a count above zero, of one profile or one device."""

    async def auto_event_users(self, profile: str, sources: Sequence[str]) -> dict[str, str]:
        """For each of ``sources``, one device of ``profile`` whose autoEvents name it."""

    async def lock_device(self, name: str) -> Device | None:
        """Read a device, holding it against deletion and profile changes until commit."""

    async def lock_profile(self, name: str) -> DeviceProfile | None:
        """Read a profile, holding it against changes and deletion until commit."""


class Lease(Protocol):
    """An exclusive role among the processes sharing a store (e.g. the one outbox relay)."""

    async def acquire(self) -> bool:
        """Try to take (or confirm holding) the role; never blocks. True while held."""

    async def release(self) -> None:
        """Give the role up."""


class Sealer(Protocol):
    """Encrypts secrets before the store writes them (edgemeta.security.sealing.Keyring)."""

    def seal(self, plaintext: str, place: str) -> str:
        """``plaintext`` sealed for ``place`` (a value's row and field)."""

    def open(self, stored: str, place: str) -> str:
        """A stored value opened; unsealed (legacy plaintext) values come back as they are."""


class Store(Protocol):
    """A database behind the repositories."""

    description: str

    def write(self) -> AbstractAsyncContextManager[Tx]:
        """A read-write transaction; commits on normal exit, rolls back on an exception."""

    def read(self) -> AbstractAsyncContextManager[Tx]:
        """A read-only view (no writes may be made through it)."""

    def on_commit(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` after every write transaction this process commits that queued
        system events in the outbox (the relay's wake-up; other commits have nothing for it)."""

    def batch(self) -> AbstractAsyncContextManager[None]:
        """One transaction for everything the current task does inside: each ``write()``
        becomes a savepoint (its exception undoes it alone), ``read()`` sees the batch's
        writes, and all of it commits together at the end. Nothing that waits on anything but
        the database may run inside (on SQLite it holds the only connection)."""

    def lease(self, name: str) -> Lease:
        """A lease on role ``name``, exclusive among the processes sharing this store."""

    def use_sealer(self, sealer: Sealer) -> None:
        """Seal secrets with ``sealer`` from now on (before any request is served)."""

    async def outbox_stats(self) -> OutboxStats:
        """The outbox backlog and the oldest unpublished event's commit time (for metrics)."""

    def time_transactions(self, listener: Callable[[float], None]) -> None:
        """Tell ``listener`` the seconds each committed write transaction took (for metrics)."""

    def pool_stats(self) -> dict[str, int]:
        """Database connections by state (``in_use``, ``idle``), for metrics."""

    async def schema_version(self) -> tuple[int, int]:
        """(the newest migration applied in the database, the newest this code has): the
        readiness probe's "migrations applied" check. Raises like any query when the
        database does not answer."""

    async def close(self) -> None:
        """Release connections."""


@dataclass(frozen=True, slots=True)
class Message:
    """A message received from the bus."""

    topic: str
    payload: bytes


class Subscription(Protocol):
    """Messages on one topic filter, until closed."""

    def __aiter__(self) -> AsyncIterator[Message]:
        """Iterate over received messages."""

    async def get(self) -> Message:
        """The next message (bound the wait with ``asyncio.timeout``)."""

    async def close(self) -> None:
        """Stop receiving."""


class Bus(Protocol):
    """A message bus with EdgeX topic semantics (``/`` levels, ``+`` and ``#`` wildcards)."""

    description: str

    async def start(self) -> None:
        """Connect (adapters reconnect by themselves after a loss)."""

    async def close(self) -> None:
        """Disconnect."""

    async def publish(self, topic: str, payload: bytes) -> None:
        """Publish; raise ServiceUnavailable if the broker did not take it."""

    async def publish_batch(self, messages: Sequence[tuple[str, bytes]]) -> int:
        """Publish in order; return how many, from the first, the broker confirmed."""

    async def subscribe(self, topic_filter: str) -> Subscription:
        """Subscribe to a topic filter; messages arrive on the returned subscription."""

    def has_subscribers(self, topic: str) -> bool | None:
        """Whether anyone listens on ``topic``: True/False if the bus knows, else None."""


class Meter(Protocol):
    """Where the use cases report what operators count (``edgemeta.observability``)."""

    def move_started(self) -> None:
        """A move began (it is in flight)."""

    def move_ended(self, state: str, reason: str) -> None:
        """A move reached its final ``state``; ``reason`` is why it was made."""

    def move_step(self, step: str, seconds: float) -> None:
        """A move's ``step`` (accept, release, assign) took ``seconds``."""

    def move_ack_timeout(self) -> None:
        """An old owner did not confirm a release in time."""

    def registration(self, outcome: str, reason: str) -> None:
        """A registration ended: ``registered`` (reason: the attestation) or ``refused``
        (reason: the error kind)."""

    def ingested(self, stored: int, duplicates: int, refused: int) -> None:
        """A batch of bus events was ingested."""


class MoveRepo(Protocol):
    """Device moves (operations and their history) and initial device configurations."""

    async def add(self, move: Move) -> None:
        """Record a new move; Conflict if the device already has an unfinished one."""

    async def update(self, move: Move) -> None:
        """Store the move if it is still at ``move.revision - 1``; else Conflict."""

    async def get(self, id_: str, *, for_update: bool = False) -> Move | None:
        """The move with this id."""

    async def active(self, device_name: str) -> Move | None:
        """The device's unfinished move, if any."""

    async def stale(self, modified_before: int, limit: int = 100) -> list[Move]:
        """Unfinished moves nobody advanced since ``modified_before`` (ms)."""

    async def page(
        self, query: ListQuery, *, device: str | None = None, service: str | None = None
    ) -> Page[Move]:
        """Moves of one device, or from or to one service, oldest first."""

    async def hold_commands(self, hold_id: str, device_name: str, expires: int) -> None:
        """Note a command on its way to the device's owner, live until ``expires`` (Unix ms).

        Call it in the transaction that found no move of the device under way, with the
        device row locked, so a move's commit A sees the hold or the command sees the move.
        """

    async def drop_command_hold(self, hold_id: str) -> None:
        """The command is answered or given up: its hold no longer fences moves."""

    async def commands_in_flight(self, device_name: str, now: int) -> int | None:
        """When the device's last live command hold expires (ms); None when none is live."""

    async def save_initial(self, device: Device) -> None:
        """Keep a device's configuration as first provisioned."""

    async def save_initial_many(self, devices: Sequence[Device]) -> None:
        """:meth:`save_initial` for each device, in one statement."""

    async def initial(self, name: str) -> Device | None:
        """A device's initial configuration."""

    async def drop_initial(self, name: str) -> None:
        """Forget a deleted device's initial configuration."""


class EnrollmentRepo(Protocol):
    """Enrolments, keyed by name."""

    async def add(self, enrollment: Enrollment) -> None:
        """Insert; DuplicateName for a taken name, or a second individual enrolment."""

    async def update(self, enrollment: Enrollment) -> None:
        """Replace revision ``enrollment.revision - 1``; else Conflict."""

    async def get(self, name: str, *, for_update: bool = False) -> Enrollment | None:
        """The enrolment called ``name``."""

    async def individual(self, registration_id: str) -> Enrollment | None:
        """The individual enrolment of a registration id."""

    async def groups(self) -> list[Enrollment]:
        """Group enrolments, highest priority first."""

    async def delete(self, name: str) -> None:
        """Delete."""

    async def page(self, query: ListQuery) -> Page[Enrollment]:
        """All enrolments, oldest first."""

    async def reseal(self) -> int:
        """Rewrite every enrolment's secrets under the sealer's current key; how many."""


class RegistrationRepo(Protocol):
    """Registration records and token nonces."""

    async def get(self, registration_id: str, *, for_update: bool = False) -> Registration | None:
        """A device's registration record."""

    async def save(self, registration: Registration) -> None:
        """Insert revision 1 or replace revision - 1; else Conflict."""

    async def page(self, query: ListQuery, *, enrollment: str | None = None) -> Page[Registration]:
        """Records, all or of one enrolment."""

    async def use_nonce(self, registration_id: str, nonce: str, expiry: int) -> bool:
        """Record a token nonce; False if seen before."""

    async def forget_nonces(self, expired_before: int) -> int:
        """Drop expired nonces."""

    async def add_challenge(self, nonce: str, expiry: int, now_s: int) -> None:
        """Keep a server nonce until ``expiry`` (unix s); drop the ones expired by ``now_s``."""

    async def take_challenge(self, nonce: str, now_s: int) -> bool:
        """Spend a server nonce: True once, while it has not expired; False after."""


class ReleaseWatch(Protocol):
    """Waits for one device service to confirm it released a device."""

    async def wait(self) -> None:
        """Return once the release is confirmed (bound the wait with ``asyncio.timeout``)."""

    async def close(self) -> None:
        """Stop waiting."""


class Releases(Protocol):
    """How the move engine hears that an old owner let go of a device."""

    async def watch(self, service: str, move_id: str, device: str = "") -> ReleaseWatch:
        """Start listening for ``service``'s release of ``device`` in the move (before telling
        it); the device is part of what a proof proves."""

    def nobody_listens(self, service: str, profile_name: str, *, by_delete: bool = False) -> bool:
        """True when the bus knows that no device service listens as ``service``."""


class AllocationHook(Protocol):
    """Custom allocation: asks a webhook which device service a registration goes to."""

    async def decide(
        self, url: str, time_limit: float, request: dict[str, object], *, secret: str = ""
    ) -> str:
        """The chosen service name; raise ServiceUnavailable if the webhook fails or times out."""


class DeviceValidator(Protocol):
    """Asks a device's owning service whether it accepts the device (EdgeX validate/device)."""

    def asks(self, service_name: str) -> bool:
        """Whether ``validate`` would wait on anyone now (False: it accepts at once).

        Lets a batch of adds run as one database transaction when nothing can wait.
        """

    async def validate(self, service_name: str, device: Device, correlation_id: str) -> None:
        """Return if accepted; raise ServiceUnavailable (no answer) or ServerError (rejected)."""


@dataclass(frozen=True, slots=True)
class CommandCall:
    """One command to deliver to a device service (core-command's request)."""

    service: str
    base_address: str
    device: str
    command: str
    method: Literal["get", "set"]
    settings: Mapping[str, Any] | None  # a set's values, checked; None for a get
    query: Mapping[str, str]  # ds-pushevent, ds-returnevent
    correlation_id: str


@dataclass(frozen=True, slots=True)
class CommandAnswer:
    """The device service's answer: an HTTP status and a JSON body (EdgeX's response)."""

    status: int
    body: bytes


class Commander(Protocol):
    """Delivers a command to its device service and waits for the answer."""

    async def call(self, call: CommandCall, wait_s: float) -> CommandAnswer:
        """The answer; ServiceUnavailable when nobody can take it, PeerTimeout when asked and
        not answered within ``wait_s`` seconds."""
        ...
