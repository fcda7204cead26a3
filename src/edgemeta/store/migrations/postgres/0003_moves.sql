-- Moves of devices between device services: durable operations and their history.
-- At most one unfinished move per device: the partial unique index is the rule.
CREATE TABLE device_move (
    seq          BIGSERIAL PRIMARY KEY,
    id           TEXT   NOT NULL CONSTRAINT device_move_id_key UNIQUE,
    device_name  TEXT   NOT NULL,
    from_service TEXT   NOT NULL,
    to_service   TEXT   NOT NULL,
    state        TEXT   NOT NULL,
    created      BIGINT NOT NULL,
    modified     BIGINT NOT NULL,
    revision     BIGINT NOT NULL,
    content      TEXT   NOT NULL
);
CREATE UNIQUE INDEX device_move_device_name_key ON device_move (device_name)
    WHERE state IN ('requested', 'assigning', 'releasing');
CREATE INDEX device_move_by_device ON device_move (device_name, created, seq);
CREATE INDEX device_move_from ON device_move (from_service, created, seq);
CREATE INDEX device_move_to ON device_move (to_service, created, seq);
CREATE INDEX device_move_unfinished ON device_move (modified)
    WHERE state IN ('requested', 'assigning', 'releasing');

-- A device's initial configuration, as first provisioned; never changed by later updates.
CREATE TABLE device_initial (
    name    TEXT   PRIMARY KEY,
    created BIGINT NOT NULL,
    content TEXT   NOT NULL
);

-- Extra SystemEvent tags of an outbox event (e.g. the move it belongs to), as JSON.
ALTER TABLE outbox ADD COLUMN tags TEXT;
