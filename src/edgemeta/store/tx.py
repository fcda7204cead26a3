"""A transaction's view of the SQL store: the repositories and the outbox on one driver."""

from __future__ import annotations

from edgemeta.ports import Sealer
from edgemeta.store.apikeys import SqlApiKeyRepo
from edgemeta.store.coredata import SqlCoreDataRepo
from edgemeta.store.cursors import ListCursors
from edgemeta.store.driver import DocTexts, Driver
from edgemeta.store.kv import SqlKvRepo
from edgemeta.store.moves import SqlMoveRepo
from edgemeta.store.outbox import SqlOutbox, SqlOutboxFeed
from edgemeta.store.provisioning import SqlEnrollmentRepo, SqlRegistrationRepo
from edgemeta.store.repos import (
    SqlDeviceProfileRepo,
    SqlDeviceRepo,
    SqlDeviceServiceRepo,
    SqlProvisionWatcherRepo,
)
from edgemeta.store.secrets import SqlServerSecretRepo


class SqlTx:
    """Repositories bound to one driver (one connection, one transaction)."""

    __slots__ = (
        "apikeys",
        "data",
        "devices",
        "enrollments",
        "feed",
        "kv",
        "moves",
        "outbox",
        "profiles",
        "registrations",
        "secret",
        "services",
        "watchers",
    )

    def __init__(
        self, db: Driver, sealer: Sealer | None = None, cursors: ListCursors | None = None
    ) -> None:
        texts = DocTexts()  # a record's document, serialized once per write
        cursors = cursors if cursors is not None else ListCursors()  # the store's, if given
        self.services = SqlDeviceServiceRepo(db, texts, cursors)
        self.profiles = SqlDeviceProfileRepo(db, texts, cursors)
        self.devices = SqlDeviceRepo(db, texts, cursors)
        self.watchers = SqlProvisionWatcherRepo(db, texts, cursors)
        self.moves = SqlMoveRepo(db, texts)
        self.enrollments = SqlEnrollmentRepo(db, sealer)
        self.registrations = SqlRegistrationRepo(db)
        self.data = SqlCoreDataRepo(db)
        self.outbox = SqlOutbox(db, texts)
        self.feed = SqlOutboxFeed(db)
        self.apikeys = SqlApiKeyRepo(db)
        self.kv = SqlKvRepo(db)
        self.secret = SqlServerSecretRepo(db, sealer)
