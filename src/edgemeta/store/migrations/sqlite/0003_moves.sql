-- Moves of devices between device services: durable operations and their history.
-- At most one unfinished move per device: the partial unique index is the rule.
CREATE TABLE device_move (
    seq          INTEGER PRIMARY KEY,
    id           TEXT    NOT NULL UNIQUE,
    device_name  TEXT    NOT NULL,
    from_service TEXT    NOT NULL,
    to_service   TEXT    NOT NULL,
    state        TEXT    NOT NULL,
    created      INTEGER NOT NULL,
    modified     INTEGER NOT NULL,
    revision     INTEGER NOT NULL,
    content      TEXT    NOT NULL
);
CREATE UNIQUE INDEX device_move_one_active ON device_move (device_name)
    WHERE state IN ('requested', 'assigning', 'releasing');
CREATE INDEX device_move_by_device ON device_move (device_name, created, seq);
CREATE INDEX device_move_from ON device_move (from_service, created, seq);
CREATE INDEX device_move_to ON device_move (to_service, created, seq);
CREATE INDEX device_move_unfinished ON device_move (modified)
    WHERE state IN ('requested', 'assigning', 'releasing');

-- A device's initial configuration, as first provisioned; never changed by later updates.
CREATE TABLE device_initial (
    name    TEXT    PRIMARY KEY,
    created INTEGER NOT NULL,
    content TEXT    NOT NULL
);

-- Extra SystemEvent tags of an outbox event (e.g. the move it belongs to), as JSON.
ALTER TABLE outbox ADD COLUMN tags TEXT;
