-- Core management resources. Timestamps are epoch milliseconds; JSON is stored as text;
-- booleans are 0/1 integers so both backends decode them the same way.
CREATE TABLE api_tokens (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL DEFAULT '',
    token_hash TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);

CREATE TABLE blueprints (
    id TEXT PRIMARY KEY,
    alias TEXT UNIQUE,
    name TEXT NOT NULL DEFAULT '',
    description TEXT NOT NULL DEFAULT '',
    meta TEXT,
    visibility TEXT NOT NULL DEFAULT 'private',
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX blueprints_order ON blueprints (created_at, id);

CREATE TABLE datasets (
    id TEXT PRIMARY KEY,
    alias TEXT UNIQUE,
    name TEXT NOT NULL DEFAULT '',
    description TEXT NOT NULL DEFAULT '',
    meta TEXT,
    blueprint_id TEXT,
    store TEXT NOT NULL DEFAULT 'default',
    reranker TEXT,
    record_max_tokens BIGINT,
    search_min_score DOUBLE PRECISION,
    search_max_records BIGINT,
    search_max_tokens BIGINT,
    match_instruction TEXT,
    mismatch_instruction TEXT,
    separators TEXT,
    visibility TEXT NOT NULL DEFAULT 'private',
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX datasets_order ON datasets (created_at, id);

CREATE TABLE dataset_records (
    id TEXT PRIMARY KEY,
    dataset_id TEXT NOT NULL,
    text TEXT NOT NULL,
    source TEXT,
    meta TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX dataset_records_order ON dataset_records (dataset_id, created_at, id);

ALTER TABLE dataset_records ADD COLUMN tsv tsvector
    GENERATED ALWAYS AS (to_tsvector('english', text)) STORED;
CREATE INDEX dataset_records_tsv ON dataset_records USING GIN (tsv);

CREATE TABLE bots (
    id TEXT PRIMARY KEY,
    alias TEXT UNIQUE,
    name TEXT NOT NULL DEFAULT '',
    description TEXT NOT NULL DEFAULT '',
    meta TEXT,
    model TEXT NOT NULL DEFAULT '',
    backstory TEXT NOT NULL DEFAULT '',
    dataset_id TEXT,
    skillset_id TEXT,
    privacy BIGINT NOT NULL DEFAULT 0,
    moderation BIGINT NOT NULL DEFAULT 0,
    blueprint_id TEXT,
    visibility TEXT NOT NULL DEFAULT 'private',
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX bots_order ON bots (created_at, id);

CREATE TABLE twilio_integrations (
    id TEXT PRIMARY KEY,
    alias TEXT UNIQUE,
    name TEXT NOT NULL DEFAULT '',
    description TEXT NOT NULL DEFAULT '',
    meta TEXT,
    blueprint_id TEXT,
    bot_id TEXT,
    account_sid TEXT,
    auth_token TEXT,
    voice TEXT,
    contact_collection BIGINT NOT NULL DEFAULT 0,
    session_duration BIGINT,
    allow_from TEXT NOT NULL DEFAULT '*',
    phone_number TEXT,
    send_rate DOUBLE PRECISION,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX twilio_integrations_order ON twilio_integrations (created_at, id);

CREATE TABLE contacts (
    id TEXT PRIMARY KEY,
    alias TEXT UNIQUE,
    name TEXT NOT NULL DEFAULT '',
    description TEXT NOT NULL DEFAULT '',
    meta TEXT,
    blueprint_id TEXT,
    fingerprint TEXT NOT NULL UNIQUE,
    email TEXT,
    phone TEXT,
    nick TEXT,
    preferences TEXT,
    verified_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX contacts_order ON contacts (created_at, id);
CREATE INDEX contacts_phone ON contacts (phone);

CREATE TABLE conversations (
    id TEXT PRIMARY KEY,
    alias TEXT UNIQUE,
    name TEXT NOT NULL DEFAULT '',
    description TEXT NOT NULL DEFAULT '',
    meta TEXT,
    contact_id TEXT,
    task_id TEXT,
    space_id TEXT,
    bot_id TEXT,
    dataset_id TEXT,
    skillset_id TEXT,
    backstory TEXT,
    model TEXT,
    privacy BIGINT,
    moderation BIGINT,
    expires_at BIGINT,
    engine_state TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX conversations_order ON conversations (created_at, id);
CREATE INDEX conversations_bot ON conversations (bot_id);
CREATE INDEX conversations_contact ON conversations (contact_id);

CREATE TABLE messages (
    id TEXT PRIMARY KEY,
    conversation_id TEXT NOT NULL,
    type TEXT NOT NULL,
    text TEXT NOT NULL DEFAULT '',
    name TEXT NOT NULL DEFAULT '',
    description TEXT NOT NULL DEFAULT '',
    meta TEXT,
    tokens BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX messages_order ON messages (conversation_id, created_at, id);
