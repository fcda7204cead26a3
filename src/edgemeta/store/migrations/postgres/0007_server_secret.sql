-- The server secret (docs/security.md, release proofs): one row, made at first start. Device
-- services' release keys are derived from it. `secret` is the 32 bytes in hex; `scheme` says
-- how it is kept ('plain' today), so that encryption at rest can be added without a new table.
CREATE TABLE server_secret (
    id      INTEGER  PRIMARY KEY CHECK (id = 1),
    scheme  TEXT     NOT NULL,
    secret  TEXT     NOT NULL,
    created BIGINT   NOT NULL
);
