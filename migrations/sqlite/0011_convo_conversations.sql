-- Twilio Conversations integrations (one service, many numbers and channels), WhatsApp's
-- 24-hour reply window per recipient, and the template a message outside it goes out as.
CREATE TABLE conversations_integrations (
    id TEXT PRIMARY KEY,
    alias TEXT UNIQUE,
    name TEXT NOT NULL DEFAULT '',
    description TEXT NOT NULL DEFAULT '',
    meta TEXT,
    blueprint_id TEXT,
    bot_id TEXT,
    account_sid TEXT,
    auth_token TEXT,
    service_sid TEXT,
    identity TEXT NOT NULL DEFAULT 'chatwire-bot',
    contact_collection INTEGER NOT NULL DEFAULT 0,
    session_duration INTEGER,
    session_end TEXT NOT NULL DEFAULT 'closed',
    allow_from TEXT NOT NULL DEFAULT '*',
    send_rate REAL,
    whatsapp_template TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX conversations_integrations_order ON conversations_integrations (created_at, id);
CREATE INDEX conversations_integrations_blueprint ON conversations_integrations (blueprint_id);

CREATE TABLE whatsapp_windows (
    integration_id TEXT NOT NULL,
    address TEXT NOT NULL,
    last_inbound_at INTEGER NOT NULL,
    PRIMARY KEY (integration_id, address)
);

ALTER TABLE twilio_integrations ADD COLUMN whatsapp_template TEXT;
