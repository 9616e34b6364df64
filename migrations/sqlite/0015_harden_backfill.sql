-- Where each integration's inbound backfill resumes: messages Twilio received for the number
-- since then are listed through its REST API and the ones whose webhook never arrived are
-- recorded. `setup` creates the row (messages from before Chatwire served the number are not
-- Chatwire's to answer); integrations already set up start from the migration's time.
CREATE TABLE inbound_backfill (
    integration_id TEXT PRIMARY KEY,
    since_ms BIGINT NOT NULL
);
INSERT INTO inbound_backfill (integration_id, since_ms)
SELECT id, CAST(strftime('%s', 'now') AS INTEGER) * 1000 FROM twilio_integrations
WHERE phone_number IS NOT NULL AND account_sid IS NOT NULL;
