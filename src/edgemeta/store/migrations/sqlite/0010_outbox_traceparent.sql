-- The W3C traceparent of the span that wrote an event (NULL when tracing is off), so that the
-- relay, which publishes later, continues that trace and carries it in the envelope.
ALTER TABLE outbox ADD COLUMN traceparent TEXT;
