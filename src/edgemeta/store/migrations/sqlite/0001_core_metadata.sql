-- core-metadata records. Each table keeps the record's document in `content` and, beside it,
-- the columns the database must see to keep names unique and references whole.

CREATE TABLE device_service (
    seq      INTEGER PRIMARY KEY,
    id       TEXT    NOT NULL UNIQUE,
    name     TEXT    NOT NULL UNIQUE,
    created  INTEGER NOT NULL,
    revision INTEGER NOT NULL,
    labels   TEXT    NOT NULL,
    content  TEXT    NOT NULL
);
CREATE INDEX device_service_order ON device_service (created, seq);

CREATE TABLE device_profile (
    seq          INTEGER PRIMARY KEY,
    id           TEXT    NOT NULL UNIQUE,
    name         TEXT    NOT NULL UNIQUE,
    manufacturer TEXT    NOT NULL,
    model        TEXT    NOT NULL,
    created      INTEGER NOT NULL,
    revision     INTEGER NOT NULL,
    labels       TEXT    NOT NULL,
    content      TEXT    NOT NULL
);
CREATE INDEX device_profile_order ON device_profile (created, seq);
CREATE INDEX device_profile_manufacturer ON device_profile (manufacturer, model, created, seq);
CREATE INDEX device_profile_model ON device_profile (model, created, seq);

CREATE TABLE device (
    seq          INTEGER PRIMARY KEY,
    id           TEXT    NOT NULL UNIQUE,
    name         TEXT    NOT NULL UNIQUE,
    service_name TEXT    NOT NULL REFERENCES device_service (name),
    profile_name TEXT    REFERENCES device_profile (name),
    parent       TEXT,
    created      INTEGER NOT NULL,
    revision     INTEGER NOT NULL,
    labels       TEXT    NOT NULL,
    content      TEXT    NOT NULL
);
CREATE INDEX device_order ON device (created, seq);
CREATE INDEX device_by_service ON device (service_name, created, seq);
CREATE INDEX device_by_profile ON device (profile_name, created, seq);
CREATE INDEX device_by_parent ON device (parent);

CREATE TABLE provision_watcher (
    seq          INTEGER PRIMARY KEY,
    id           TEXT    NOT NULL UNIQUE,
    name         TEXT    NOT NULL UNIQUE,
    service_name TEXT    NOT NULL,
    profile_name TEXT    REFERENCES device_profile (name),
    created      INTEGER NOT NULL,
    revision     INTEGER NOT NULL,
    labels       TEXT    NOT NULL,
    content      TEXT    NOT NULL
);
CREATE INDEX provision_watcher_order ON provision_watcher (created, seq);
CREATE INDEX provision_watcher_by_service ON provision_watcher (service_name, created, seq);
CREATE INDEX provision_watcher_by_profile ON provision_watcher (profile_name, created, seq);

-- The transactional outbox: system events written with their change, published by the relay.
CREATE TABLE outbox (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id       TEXT    NOT NULL,
    type           TEXT    NOT NULL,
    action         TEXT    NOT NULL,
    owner          TEXT    NOT NULL,
    profile_name   TEXT    NOT NULL,
    record_key     TEXT    NOT NULL,
    revision       INTEGER NOT NULL,
    correlation_id TEXT    NOT NULL,
    timestamp_ns   INTEGER NOT NULL,
    details        TEXT    NOT NULL,
    pos            INTEGER UNIQUE,
    delivered_ns   INTEGER
);
CREATE INDEX outbox_pending ON outbox (seq) WHERE pos IS NULL;
CREATE INDEX outbox_delivered ON outbox (delivered_ns) WHERE pos IS NOT NULL;

CREATE TABLE outbox_position (
    id  INTEGER PRIMARY KEY CHECK (id = 1),
    pos INTEGER NOT NULL
);
INSERT INTO outbox_position (id, pos) VALUES (1, 0);
