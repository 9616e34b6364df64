-- Optional OpenTelemetry export (issue 13, item 3): one trace per message, webhook to delivery.
-- The W3C `traceparent` of the span that wrote a row, so that the span which later picks the
-- row up (the turn, in any replica; the send; a status callback, found by its message id)
-- continues the same trace. NULL when traces are not exported.
ALTER TABLE inbound ADD COLUMN trace_parent TEXT;
ALTER TABLE outbox ADD COLUMN trace_parent TEXT;
