-- Kept counts for the lists: a list's totalCount is read here instead of counted, so it costs
-- the same at a thousand devices as at a million. The triggers below keep them in the very
-- transaction that changes devices, whichever statement does it (add, batch add, update,
-- move, delete, a multi-row INSERT or COPY), so they are exact whenever a transaction can
-- see them.
--
-- kind: the table ('device'); dim: '' (the whole table), 'service', 'profile' or 'label';
-- key: the service, profile or label name ('' for the whole table).
-- stripe: concurrent transactions would all queue on the whole table's row (its lock is held
-- to COMMIT), so each transaction adds its deltas to one of 16 rows per key, chosen by its
-- transaction id; a count is the sum over the stripes (one may go negative: only the sum means
-- anything). Within one statement the rows are locked in key order, the whole table's first.
-- changes: how many times the key's membership changed, never decreasing (rows stay at
-- n = 0 for it): the list's cursor cache is valid while the sum stays the same.
CREATE TABLE list_count (
    kind    TEXT    NOT NULL,
    dim     TEXT    NOT NULL,
    key     TEXT    NOT NULL,
    stripe  INTEGER NOT NULL,
    n       BIGINT  NOT NULL,
    changes BIGINT  NOT NULL,
    PRIMARY KEY (kind, dim, key, stripe)
);

-- The devices already stored (a one-time scan, when this step runs).
INSERT INTO list_count (kind, dim, key, stripe, n, changes)
SELECT 'device', '', '', 0, count(*), 0 FROM device;
INSERT INTO list_count (kind, dim, key, stripe, n, changes)
SELECT 'device', 'service', service_name, 0, count(*), 0 FROM device GROUP BY service_name;
INSERT INTO list_count (kind, dim, key, stripe, n, changes)
SELECT 'device', 'profile', profile_name, 0, count(*), 0 FROM device
WHERE profile_name IS NOT NULL GROUP BY profile_name;
INSERT INTO list_count (kind, dim, key, stripe, n, changes)
SELECT 'device', 'label', l, 0, count(DISTINCT d.seq), 0
FROM device d, unnest(d.labels) AS l GROUP BY l;

-- One statement-level trigger per event (a trigger with transition tables takes one event):
-- a batch written with one multi-row statement updates each count once, not once per row.
CREATE FUNCTION device_list_counts() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    s INTEGER := (txid_current() % 16)::INTEGER;
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO list_count AS c (kind, dim, key, stripe, n, changes)
        SELECT 'device', d.dim, d.key, s, sum(d.delta), count(*)
        FROM (
            SELECT '' AS dim, '' AS key, 1 AS delta FROM new_rows
            UNION ALL SELECT 'service', service_name, 1 FROM new_rows
            UNION ALL SELECT 'profile', profile_name, 1 FROM new_rows
                WHERE profile_name IS NOT NULL
            UNION ALL SELECT 'label', l, 1
                FROM new_rows, LATERAL (SELECT DISTINCT unnest(labels)) AS x(l)
        ) d
        GROUP BY d.dim, d.key ORDER BY d.dim, d.key
        ON CONFLICT (kind, dim, key, stripe)
        DO UPDATE SET n = c.n + EXCLUDED.n, changes = c.changes + EXCLUDED.changes;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO list_count AS c (kind, dim, key, stripe, n, changes)
        SELECT 'device', d.dim, d.key, s, sum(d.delta), count(*)
        FROM (
            SELECT '' AS dim, '' AS key, -1 AS delta FROM old_rows
            UNION ALL SELECT 'service', service_name, -1 FROM old_rows
            UNION ALL SELECT 'profile', profile_name, -1 FROM old_rows
                WHERE profile_name IS NOT NULL
            UNION ALL SELECT 'label', l, -1
                FROM old_rows, LATERAL (SELECT DISTINCT unnest(labels)) AS x(l)
        ) d
        GROUP BY d.dim, d.key ORDER BY d.dim, d.key
        ON CONFLICT (kind, dim, key, stripe)
        DO UPDATE SET n = c.n + EXCLUDED.n, changes = c.changes + EXCLUDED.changes;
    ELSE
        -- Each row's old and new memberships (seq never changes): only what differs counts.
        INSERT INTO list_count AS c (kind, dim, key, stripe, n, changes)
        SELECT 'device', d.dim, d.key, s, sum(d.delta), count(*)
        FROM (
            SELECT 'service' AS dim, o.service_name AS key, -1 AS delta
                FROM old_rows o JOIN new_rows w ON w.seq = o.seq
                WHERE o.service_name IS DISTINCT FROM w.service_name
            UNION ALL SELECT 'service', w.service_name, 1
                FROM old_rows o JOIN new_rows w ON w.seq = o.seq
                WHERE o.service_name IS DISTINCT FROM w.service_name
            UNION ALL SELECT 'profile', o.profile_name, -1
                FROM old_rows o JOIN new_rows w ON w.seq = o.seq
                WHERE o.profile_name IS DISTINCT FROM w.profile_name
                    AND o.profile_name IS NOT NULL
            UNION ALL SELECT 'profile', w.profile_name, 1
                FROM old_rows o JOIN new_rows w ON w.seq = o.seq
                WHERE o.profile_name IS DISTINCT FROM w.profile_name
                    AND w.profile_name IS NOT NULL
            UNION ALL SELECT 'label', l, -1
                FROM old_rows o JOIN new_rows w ON w.seq = o.seq,
                    LATERAL (SELECT DISTINCT unnest(o.labels)) AS x(l)
                WHERE o.labels IS DISTINCT FROM w.labels AND NOT (l = ANY (w.labels))
            UNION ALL SELECT 'label', l, 1
                FROM old_rows o JOIN new_rows w ON w.seq = o.seq,
                    LATERAL (SELECT DISTINCT unnest(w.labels)) AS x(l)
                WHERE o.labels IS DISTINCT FROM w.labels AND NOT (l = ANY (o.labels))
        ) d
        GROUP BY d.dim, d.key ORDER BY d.dim, d.key
        ON CONFLICT (kind, dim, key, stripe)
        DO UPDATE SET n = c.n + EXCLUDED.n, changes = c.changes + EXCLUDED.changes;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER device_count_insert AFTER INSERT ON device
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION device_list_counts();
CREATE TRIGGER device_count_delete AFTER DELETE ON device
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION device_list_counts();
CREATE TRIGGER device_count_update AFTER UPDATE ON device
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION device_list_counts();
