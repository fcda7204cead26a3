-- core-data: events, their readings, and the association index that tells core-metadata,
-- without reading a single reading, which profiles, resources, commands and devices hold data.
-- Events and readings are immutable: rows are inserted and deleted, never updated.

CREATE TABLE core_event (
    seq          BIGSERIAL PRIMARY KEY,
    id           TEXT    NOT NULL UNIQUE,
    device_name  TEXT    NOT NULL,
    profile_name TEXT    NOT NULL,
    source_name  TEXT    NOT NULL,
    origin       BIGINT  NOT NULL,
    content      TEXT    NOT NULL
);
CREATE INDEX core_event_origin ON core_event (origin);
CREATE INDEX core_event_device ON core_event (device_name, origin);

CREATE TABLE core_reading (
    seq           BIGSERIAL PRIMARY KEY,
    event_seq     BIGINT  NOT NULL REFERENCES core_event (seq),
    device_name   TEXT    NOT NULL,
    resource_name TEXT    NOT NULL,
    origin        BIGINT  NOT NULL,
    content       TEXT    NOT NULL
);
CREATE INDEX core_reading_event ON core_reading (event_seq);
CREATE INDEX core_reading_origin ON core_reading (origin);
CREATE INDEX core_reading_device ON core_reading (device_name, origin);
CREATE INDEX core_reading_resource ON core_reading (resource_name, origin);

-- kind 'source': events whose sourceName is `name`; kind 'resource': readings of resource
-- `name`. Counted per device, in the transaction of every insert and delete.
CREATE TABLE core_data_association (
    profile_name TEXT    NOT NULL,
    kind         TEXT    NOT NULL,
    name         TEXT    NOT NULL,
    device_name  TEXT    NOT NULL,
    count        BIGINT  NOT NULL,
    PRIMARY KEY (profile_name, kind, name, device_name)
);
CREATE INDEX core_data_association_device ON core_data_association (device_name);
