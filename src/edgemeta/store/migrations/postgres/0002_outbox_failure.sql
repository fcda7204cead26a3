-- An event the bus refuses for good (a topic it cannot carry, a payload over its limit) is
-- set aside rather than retried forever: it gets its delivery position, so streams and replay
-- still show it, and `failure` says why no broker has it.
ALTER TABLE outbox ADD COLUMN failure TEXT;
