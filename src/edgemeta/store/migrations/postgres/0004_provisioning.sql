-- Enrolments (who may register, where they go, what state moves with them), registration
-- records (one per device), and the nonces of registration tokens (replay protection).
CREATE TABLE enrollment (
    seq             BIGSERIAL PRIMARY KEY,
    id              TEXT    NOT NULL UNIQUE,
    name            TEXT    NOT NULL UNIQUE,
    kind            TEXT    NOT NULL,
    registration_id TEXT    NOT NULL,
    enabled         BIGINT    NOT NULL,
    priority        BIGINT    NOT NULL,
    created         BIGINT    NOT NULL,
    revision        BIGINT    NOT NULL,
    content         TEXT    NOT NULL
);
CREATE UNIQUE INDEX enrollment_individual ON enrollment (registration_id) WHERE kind = 'individual';
CREATE INDEX enrollment_groups ON enrollment (priority, created) WHERE kind = 'group';
CREATE INDEX enrollment_order ON enrollment (created, seq);

CREATE TABLE registration (
    registration_id TEXT    PRIMARY KEY,
    enrollment      TEXT    NOT NULL,
    status          TEXT    NOT NULL,
    created         BIGINT    NOT NULL,
    modified        BIGINT    NOT NULL,
    revision        BIGINT    NOT NULL,
    content         TEXT    NOT NULL
);
CREATE INDEX registration_by_enrollment ON registration (enrollment, created);

CREATE TABLE registration_nonce (
    registration_id TEXT    NOT NULL,
    nonce           TEXT    NOT NULL,
    expiry          BIGINT    NOT NULL,
    PRIMARY KEY (registration_id, nonce)
);
CREATE INDEX registration_nonce_expiry ON registration_nonce (expiry);
