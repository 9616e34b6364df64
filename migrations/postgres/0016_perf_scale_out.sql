-- Scale-out on one database (issue 14, item 3) and burst debounce (item 4).
--
-- Inbound order across replicas: each replica stamps `created_at` from its own clock and its
-- ids carry a per-process counter, so two messages of one sender that reached two replicas in
-- the same millisecond were ordered by chance. A database sequence numbers every inbound row
-- as it is inserted, whichever replica inserts it, and breaks those ties instead.
CREATE SEQUENCE inbound_seq;
ALTER TABLE inbound ADD COLUMN seq BIGINT NOT NULL DEFAULT nextval('inbound_seq');
ALTER SEQUENCE inbound_seq OWNED BY inbound.seq;
DROP INDEX inbound_queue;
DROP INDEX inbound_sender_open;
CREATE INDEX inbound_queue ON inbound (created_at, seq) WHERE status IN ('pending', 'processing');
CREATE INDEX inbound_sender_open ON inbound (integration_id, sender, created_at, seq)
    WHERE status IN ('pending', 'processing');

-- A sender number's send rate, held here so that every replica books from one schedule:
-- `next_at_us` is the number's next free send slot, `granted_from_us` where the last booking
-- started (so a booking returns how many slots it got), at `interval_us` between sends.
CREATE TABLE send_slots (
    sender TEXT PRIMARY KEY,
    interval_us BIGINT NOT NULL,
    granted_from_us BIGINT NOT NULL,
    next_at_us BIGINT NOT NULL
);

-- Burst debounce: a person's messages that arrive within this many milliseconds of each other
-- get one bot turn over all of them (NULL or 0: off, every message its own turn).
ALTER TABLE twilio_integrations ADD COLUMN burst_window BIGINT;
