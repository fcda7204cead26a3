-- The core-keeper-compatible key/value store (docs/compatibility.md): any key, EdgeX's own
-- services' configuration included. value is the text EdgeX's keeper stores (before its
-- base64 encoding); created and modified are Unix milliseconds.
CREATE TABLE kv (
    name     TEXT     PRIMARY KEY,
    value    TEXT     NOT NULL,
    created  INTEGER  NOT NULL,
    modified INTEGER  NOT NULL
);
