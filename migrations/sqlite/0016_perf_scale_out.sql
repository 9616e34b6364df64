-- Scale-out on one database (issue 14, item 3) and burst debounce (item 4).
--
-- Inbound order: ties between messages of one millisecond are broken by the order the
-- database inserted them (on PostgreSQL a sequence shared by the replicas; here the rowid,
-- which SQLite gives in insertion order and which every index entry ends with), no longer by
-- the per-process counter in the id.
DROP INDEX inbound_queue;
DROP INDEX inbound_sender_open;
CREATE INDEX inbound_queue ON inbound (created_at) WHERE status IN ('pending', 'processing');
CREATE INDEX inbound_sender_open ON inbound (integration_id, sender, created_at)
    WHERE status IN ('pending', 'processing');

-- A sender number's send rate (see the PostgreSQL migration): its next free slot.
CREATE TABLE send_slots (
    sender TEXT PRIMARY KEY,
    interval_us INTEGER NOT NULL,
    granted_from_us INTEGER NOT NULL,
    next_at_us INTEGER NOT NULL
);

-- Burst debounce window in milliseconds (NULL or 0: off).
ALTER TABLE twilio_integrations ADD COLUMN burst_window INTEGER;
