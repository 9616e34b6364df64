-- The claim queues index only their open rows. A status-leading index over every row kept
-- one entry per message ever handled, so each claim's cost grew with history (and, on
-- PostgreSQL, with dead tuples between vacuums); these partial indexes hold only the work
-- that is waiting or in flight, so a claim costs the same on day one and day one hundred.
DROP INDEX inbound_open;
DROP INDEX inbound_sender;
DROP INDEX outbox_open;
DROP INDEX outbox_recipient;
CREATE INDEX inbound_queue ON inbound (created_at, id) WHERE status IN ('pending', 'processing');
CREATE INDEX inbound_sender_open ON inbound (integration_id, sender, created_at, id)
    WHERE status IN ('pending', 'processing');
CREATE INDEX outbox_queue ON outbox (next_attempt_at, created_at, id) WHERE status IN ('pending', 'sending');
CREATE INDEX outbox_recipient_open ON outbox (integration_id, recipient, created_at, id)
    WHERE status IN ('pending', 'sending');
