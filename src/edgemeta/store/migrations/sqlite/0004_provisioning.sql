-- Enrolments (who may register, where they go, what state moves with them), registration
-- records (one per device), and the nonces of registration tokens (replay protection).
CREATE TABLE enrollment (
    seq             INTEGER PRIMARY KEY,
    id              TEXT    NOT NULL UNIQUE,
    name            TEXT    NOT NULL UNIQUE,
    kind            TEXT    NOT NULL,
    registration_id TEXT    NOT NULL,
    enabled         INTEGER    NOT NULL,
    priority        INTEGER    NOT NULL,
    created         INTEGER    NOT NULL,
    revision        INTEGER    NOT NULL,
    content         TEXT    NOT NULL
);
CREATE UNIQUE INDEX enrollment_individual ON enrollment (registration_id) WHERE kind = 'individual';
CREATE INDEX enrollment_groups ON enrollment (priority, created) WHERE kind = 'group';
CREATE INDEX enrollment_order ON enrollment (created, seq);

CREATE TABLE registration (
    registration_id TEXT    PRIMARY KEY,
    enrollment      TEXT    NOT NULL,
    status          TEXT    NOT NULL,
    created         INTEGER    NOT NULL,
    modified        INTEGER    NOT NULL,
    revision        INTEGER    NOT NULL,
    content         TEXT    NOT NULL
);
CREATE INDEX registration_by_enrollment ON registration (enrollment, created);

CREATE TABLE registration_nonce (
    registration_id TEXT    NOT NULL,
    nonce           TEXT    NOT NULL,
    expiry          INTEGER    NOT NULL,
    PRIMARY KEY (registration_id, nonce)
);
CREATE INDEX registration_nonce_expiry ON registration_nonce (expiry);
