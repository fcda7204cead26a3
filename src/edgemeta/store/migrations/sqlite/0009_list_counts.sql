-- Kept counts for the lists: a list's totalCount is read here instead of counted, so it costs
-- the same at a thousand devices as at a million. The triggers below keep them in the very
-- transaction that changes a device, whichever statement does it (add, batch add, update,
-- move, delete), so they are exact whenever a transaction can see them.
--
-- kind: the table ('device'); dim: '' (the whole table), 'service', 'profile' or 'label';
-- key: the service, profile or label name ('' for the whole table). stripe: always 0 on
-- SQLite (one writer); PostgreSQL spreads a key over several rows so that concurrent
-- writers do not queue on one row, and a count is the sum over its stripes.
-- changes: how many times the key's membership changed, never decreasing (rows are kept at
-- n = 0 for it): the list's cursor cache is valid while it stays the same.
CREATE TABLE list_count (
    kind    TEXT    NOT NULL,
    dim     TEXT    NOT NULL,
    key     TEXT    NOT NULL,
    stripe  INTEGER NOT NULL,
    n       INTEGER NOT NULL,
    changes INTEGER NOT NULL,
    PRIMARY KEY (kind, dim, key, stripe)
) WITHOUT ROWID;

-- The devices already stored (a one-time scan, when this step runs).
INSERT INTO list_count (kind, dim, key, stripe, n, changes)
SELECT 'device', '', '', 0, count(*), 0 FROM device;
INSERT INTO list_count (kind, dim, key, stripe, n, changes)
SELECT 'device', 'service', service_name, 0, count(*), 0 FROM device GROUP BY service_name;
INSERT INTO list_count (kind, dim, key, stripe, n, changes)
SELECT 'device', 'profile', profile_name, 0, count(*), 0 FROM device
WHERE profile_name IS NOT NULL GROUP BY profile_name;
INSERT INTO list_count (kind, dim, key, stripe, n, changes)
SELECT 'device', 'label', l.value, 0, count(DISTINCT d.seq), 0
FROM device d, json_each(d.labels) l GROUP BY l.value;

CREATE TRIGGER device_count_insert AFTER INSERT ON device
BEGIN
    INSERT INTO list_count VALUES ('device', '', '', 0, 1, 1)
        ON CONFLICT DO UPDATE SET n = n + excluded.n, changes = changes + 1;
    INSERT INTO list_count VALUES ('device', 'service', NEW.service_name, 0, 1, 1)
        ON CONFLICT DO UPDATE SET n = n + excluded.n, changes = changes + 1;
    INSERT INTO list_count SELECT 'device', 'profile', NEW.profile_name, 0, 1, 1
        WHERE NEW.profile_name IS NOT NULL
        ON CONFLICT DO UPDATE SET n = n + excluded.n, changes = changes + 1;
    INSERT INTO list_count SELECT DISTINCT 'device', 'label', value, 0, 1, 1
        FROM json_each(NEW.labels) WHERE true
        ON CONFLICT DO UPDATE SET n = n + excluded.n, changes = changes + 1;
END;

CREATE TRIGGER device_count_delete AFTER DELETE ON device
BEGIN
    INSERT INTO list_count VALUES ('device', '', '', 0, -1, 1)
        ON CONFLICT DO UPDATE SET n = n + excluded.n, changes = changes + 1;
    INSERT INTO list_count VALUES ('device', 'service', OLD.service_name, 0, -1, 1)
        ON CONFLICT DO UPDATE SET n = n + excluded.n, changes = changes + 1;
    INSERT INTO list_count SELECT 'device', 'profile', OLD.profile_name, 0, -1, 1
        WHERE OLD.profile_name IS NOT NULL
        ON CONFLICT DO UPDATE SET n = n + excluded.n, changes = changes + 1;
    INSERT INTO list_count SELECT DISTINCT 'device', 'label', value, 0, -1, 1
        FROM json_each(OLD.labels) WHERE true
        ON CONFLICT DO UPDATE SET n = n + excluded.n, changes = changes + 1;
END;

-- Only an update that changes a membership touches the counts (most updates change none).
CREATE TRIGGER device_count_update AFTER UPDATE OF service_name, profile_name, labels ON device
WHEN OLD.service_name IS NOT NEW.service_name
    OR OLD.profile_name IS NOT NEW.profile_name
    OR OLD.labels IS NOT NEW.labels
BEGIN
    INSERT INTO list_count SELECT 'device', 'service', OLD.service_name, 0, -1, 1
        WHERE OLD.service_name IS NOT NEW.service_name
        ON CONFLICT DO UPDATE SET n = n + excluded.n, changes = changes + 1;
    INSERT INTO list_count SELECT 'device', 'service', NEW.service_name, 0, 1, 1
        WHERE OLD.service_name IS NOT NEW.service_name
        ON CONFLICT DO UPDATE SET n = n + excluded.n, changes = changes + 1;
    INSERT INTO list_count SELECT 'device', 'profile', OLD.profile_name, 0, -1, 1
        WHERE OLD.profile_name IS NOT NEW.profile_name AND OLD.profile_name IS NOT NULL
        ON CONFLICT DO UPDATE SET n = n + excluded.n, changes = changes + 1;
    INSERT INTO list_count SELECT 'device', 'profile', NEW.profile_name, 0, 1, 1
        WHERE OLD.profile_name IS NOT NEW.profile_name AND NEW.profile_name IS NOT NULL
        ON CONFLICT DO UPDATE SET n = n + excluded.n, changes = changes + 1;
    INSERT INTO list_count SELECT DISTINCT 'device', 'label', o.value, 0, -1, 1
        FROM json_each(OLD.labels) o
        WHERE o.value NOT IN (SELECT value FROM json_each(NEW.labels))
        ON CONFLICT DO UPDATE SET n = n + excluded.n, changes = changes + 1;
    INSERT INTO list_count SELECT DISTINCT 'device', 'label', w.value, 0, 1, 1
        FROM json_each(NEW.labels) w
        WHERE w.value NOT IN (SELECT value FROM json_each(OLD.labels))
        ON CONFLICT DO UPDATE SET n = n + excluded.n, changes = changes + 1;
END;
