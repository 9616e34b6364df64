-- The channel log (issue 13 point 5): what passed between Chatwire and its providers, as
-- RapidPro's Courier keeps it. Refused webhooks with their reason (and the request, so one
-- can be replayed once the configuration is fixed), every send attempt with the provider's
-- answer and timing, and status callbacks. Pruned after CHATWIRE_CHANNEL_LOG_DAYS.
CREATE TABLE channel_log (
    id TEXT PRIMARY KEY,
    created_at BIGINT NOT NULL,
    kind TEXT NOT NULL,
    channel TEXT NOT NULL,
    integration_id TEXT,
    outcome TEXT NOT NULL,
    reason TEXT,
    detail TEXT,
    url TEXT,
    message_sid TEXT,
    correlation_id TEXT,
    error_code BIGINT,
    elapsed_ms BIGINT,
    request_path TEXT,
    request_headers TEXT,
    request_body TEXT,
    replayed_at BIGINT,
    replay_outcome TEXT
);
CREATE INDEX channel_log_time ON channel_log (created_at, id);
CREATE INDEX channel_log_integration ON channel_log (integration_id, created_at);

-- The id that ties a send to the webhook whose turn caused it (the inbound message's provider
-- id), for logs and the channel log.
ALTER TABLE outbox ADD COLUMN correlation_id TEXT;
