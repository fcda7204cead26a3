-- A command on its way to a device's owner (issue 11): core-command writes a hold, in the same
-- transaction that finds no move of the device under way, before it sends anything, and drops
-- it once the device service answered or the wait ended. A move's commit A waits while a live
-- hold of its device exists, so the old owner is never told to release a device that a command
-- is still being delivered to. ``expires`` (Unix ms) bounds a hold left by a crashed process.
CREATE TABLE command_hold (
    id TEXT PRIMARY KEY,
    device_name TEXT NOT NULL,
    expires BIGINT NOT NULL
);
CREATE INDEX command_hold_by_device ON command_hold (device_name, expires);
