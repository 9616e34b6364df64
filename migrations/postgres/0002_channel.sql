-- The Twilio channel: inbound messages (unique per MessageSid), sessions, opt-outs, outbox.
CREATE TABLE inbound (
    id TEXT PRIMARY KEY,
    integration_id TEXT NOT NULL,
    message_sid TEXT NOT NULL,
    sender TEXT NOT NULL,
    recipient TEXT NOT NULL,
    body TEXT NOT NULL,
    media TEXT,
    profile_name TEXT,
    status TEXT NOT NULL DEFAULT 'pending',
    claim_token TEXT,
    lease_until BIGINT,
    attempts BIGINT NOT NULL DEFAULT 0,
    conversation_id TEXT,
    error TEXT,
    created_at BIGINT NOT NULL,
    UNIQUE (integration_id, message_sid)
);
CREATE INDEX inbound_open ON inbound (status, created_at, id);
CREATE INDEX inbound_sender ON inbound (integration_id, sender, status, created_at);

CREATE TABLE sessions (
    integration_id TEXT NOT NULL,
    address TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    last_activity_at BIGINT NOT NULL,
    PRIMARY KEY (integration_id, address)
);

CREATE TABLE opt_outs (
    integration_id TEXT NOT NULL,
    address TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (integration_id, address)
);

CREATE TABLE outbox (
    id TEXT PRIMARY KEY,
    integration_id TEXT NOT NULL,
    conversation_id TEXT,
    message_id TEXT,
    part BIGINT NOT NULL DEFAULT 0,
    recipient TEXT NOT NULL,
    sender TEXT NOT NULL,
    body TEXT NOT NULL,
    media TEXT,
    segments BIGINT NOT NULL DEFAULT 1,
    encoding TEXT NOT NULL DEFAULT 'GSM-7',
    status TEXT NOT NULL DEFAULT 'pending',
    claim_token TEXT,
    lease_until BIGINT,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    sending_since BIGINT,
    twilio_sid TEXT,
    twilio_status TEXT,
    error_code BIGINT,
    error_message TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX outbox_open ON outbox (status, next_attempt_at);
CREATE INDEX outbox_recipient ON outbox (integration_id, recipient, status, created_at);
CREATE INDEX outbox_sid ON outbox (twilio_sid);
