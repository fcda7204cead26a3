-- core-metadata records. Each table keeps the record's document in `content` and, beside it,
-- the columns the database must see to keep names unique and references whole. Constraint
-- names follow <table>_<column>_key / _fkey: the store reports violations by them.

CREATE TABLE device_service (
    seq      BIGSERIAL PRIMARY KEY,
    id       TEXT   NOT NULL CONSTRAINT device_service_id_key UNIQUE,
    name     TEXT   NOT NULL CONSTRAINT device_service_name_key UNIQUE,
    created  BIGINT NOT NULL,
    revision BIGINT NOT NULL,
    labels   TEXT[] NOT NULL,
    content  TEXT   NOT NULL
);
CREATE INDEX device_service_order ON device_service (created, seq);
CREATE INDEX device_service_labels ON device_service USING GIN (labels);

CREATE TABLE device_profile (
    seq          BIGSERIAL PRIMARY KEY,
    id           TEXT   NOT NULL CONSTRAINT device_profile_id_key UNIQUE,
    name         TEXT   NOT NULL CONSTRAINT device_profile_name_key UNIQUE,
    manufacturer TEXT   NOT NULL,
    model        TEXT   NOT NULL,
    created      BIGINT NOT NULL,
    revision     BIGINT NOT NULL,
    labels       TEXT[] NOT NULL,
    content      TEXT   NOT NULL
);
CREATE INDEX device_profile_order ON device_profile (created, seq);
CREATE INDEX device_profile_manufacturer ON device_profile (manufacturer, model, created, seq);
CREATE INDEX device_profile_model ON device_profile (model, created, seq);
CREATE INDEX device_profile_labels ON device_profile USING GIN (labels);

CREATE TABLE device (
    seq          BIGSERIAL PRIMARY KEY,
    id           TEXT   NOT NULL CONSTRAINT device_id_key UNIQUE,
    name         TEXT   NOT NULL CONSTRAINT device_name_key UNIQUE,
    service_name TEXT   NOT NULL CONSTRAINT device_service_name_fkey
                        REFERENCES device_service (name),
    profile_name TEXT   CONSTRAINT device_profile_name_fkey REFERENCES device_profile (name),
    parent       TEXT,
    created      BIGINT NOT NULL,
    revision     BIGINT NOT NULL,
    labels       TEXT[] NOT NULL,
    content      TEXT   NOT NULL
);
CREATE INDEX device_order ON device (created, seq);
CREATE INDEX device_by_service ON device (service_name, created, seq);
CREATE INDEX device_by_profile ON device (profile_name, created, seq);
CREATE INDEX device_by_parent ON device (parent);
CREATE INDEX device_labels ON device USING GIN (labels);

CREATE TABLE provision_watcher (
    seq          BIGSERIAL PRIMARY KEY,
    id           TEXT   NOT NULL CONSTRAINT provision_watcher_id_key UNIQUE,
    name         TEXT   NOT NULL CONSTRAINT provision_watcher_name_key UNIQUE,
    service_name TEXT   NOT NULL,
    profile_name TEXT   CONSTRAINT provision_watcher_profile_name_fkey
                        REFERENCES device_profile (name),
    created      BIGINT NOT NULL,
    revision     BIGINT NOT NULL,
    labels       TEXT[] NOT NULL,
    content      TEXT   NOT NULL
);
CREATE INDEX provision_watcher_order ON provision_watcher (created, seq);
CREATE INDEX provision_watcher_by_service ON provision_watcher (service_name, created, seq);
CREATE INDEX provision_watcher_by_profile ON provision_watcher (profile_name, created, seq);
CREATE INDEX provision_watcher_labels ON provision_watcher USING GIN (labels);

-- The transactional outbox: system events written with their change, published by the relay.
CREATE TABLE outbox (
    seq            BIGSERIAL PRIMARY KEY,
    event_id       TEXT   NOT NULL,
    type           TEXT   NOT NULL,
    action         TEXT   NOT NULL,
    owner          TEXT   NOT NULL,
    profile_name   TEXT   NOT NULL,
    record_key     TEXT   NOT NULL,
    revision       BIGINT NOT NULL,
    correlation_id TEXT   NOT NULL,
    timestamp_ns   BIGINT NOT NULL,
    details        TEXT   NOT NULL,
    pos            BIGINT CONSTRAINT outbox_pos_key UNIQUE,
    delivered_ns   BIGINT
);
CREATE INDEX outbox_pending ON outbox (seq) WHERE pos IS NULL;
CREATE INDEX outbox_delivered ON outbox (delivered_ns) WHERE pos IS NOT NULL;

CREATE TABLE outbox_position (
    id  INTEGER PRIMARY KEY CHECK (id = 1),
    pos BIGINT NOT NULL
);
INSERT INTO outbox_position (id, pos) VALUES (1, 0);
