-- The channel seam: every queued message names the channel that carries it, so the pipeline and
-- the outbox pick the channel from the row instead of assuming Twilio; provider columns lose
-- their Twilio names for the same reason.
ALTER TABLE inbound ADD COLUMN channel TEXT NOT NULL DEFAULT 'twilio';
ALTER TABLE outbox ADD COLUMN channel TEXT NOT NULL DEFAULT 'twilio';
ALTER TABLE outbox RENAME COLUMN twilio_sid TO provider_sid;
ALTER TABLE outbox RENAME COLUMN twilio_status TO provider_status;

-- Idempotency keys of API calls that send (initiate, flow/execute): written in the same
-- transaction as what the call recorded, so a retried call finds the first one's answer.
CREATE TABLE idempotency_keys (
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    response TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (scope, key)
);
