-- API keys (docs/security.md): only a hash of each key is kept, never the key itself.
-- roles is a JSON list; service is '' for a key not bound to a device service; expires and
-- revoked are Unix milliseconds (revoked 0: not revoked).
CREATE TABLE api_key (
    id       TEXT    PRIMARY KEY,
    key_hash TEXT    NOT NULL UNIQUE,
    name     TEXT    NOT NULL,
    roles    TEXT    NOT NULL,
    service  TEXT    NOT NULL,
    created  INTEGER  NOT NULL,
    expires  INTEGER  NOT NULL,
    revoked  INTEGER  NOT NULL
);
CREATE INDEX api_key_created ON api_key (created);
