-- Core management resources. Timestamps are epoch milliseconds; JSON is stored as text;
-- booleans are 0/1 integers so both backends decode them the same way.
CREATE TABLE api_tokens (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL DEFAULT '',
    token_hash TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
);

CREATE TABLE blueprints (
    id TEXT PRIMARY KEY,
    alias TEXT UNIQUE,
    name TEXT NOT NULL DEFAULT '',
    description TEXT NOT NULL DEFAULT '',
    meta TEXT,
    visibility TEXT NOT NULL DEFAULT 'private',
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
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
    record_max_tokens INTEGER,
    search_min_score REAL,
    search_max_records INTEGER,
    search_max_tokens INTEGER,
    match_instruction TEXT,
    mismatch_instruction TEXT,
    separators TEXT,
    visibility TEXT NOT NULL DEFAULT 'private',
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX datasets_order ON datasets (created_at, id);

CREATE TABLE dataset_records (
    id TEXT PRIMARY KEY,
    dataset_id TEXT NOT NULL,
    text TEXT NOT NULL,
    source TEXT,
    meta TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX dataset_records_order ON dataset_records (dataset_id, created_at, id);

CREATE VIRTUAL TABLE dataset_records_fts USING fts5 (
    text, content='dataset_records', content_rowid='rowid', tokenize='porter unicode61'
);
CREATE TRIGGER dataset_records_ai AFTER INSERT ON dataset_records BEGIN
    INSERT INTO dataset_records_fts (rowid, text) VALUES (new.rowid, new.text);
END;
CREATE TRIGGER dataset_records_ad AFTER DELETE ON dataset_records BEGIN
    INSERT INTO dataset_records_fts (dataset_records_fts, rowid, text) VALUES ('delete', old.rowid, old.text);
END;
CREATE TRIGGER dataset_records_au AFTER UPDATE ON dataset_records BEGIN
    INSERT INTO dataset_records_fts (dataset_records_fts, rowid, text) VALUES ('delete', old.rowid, old.text);
    INSERT INTO dataset_records_fts (rowid, text) VALUES (new.rowid, new.text);
END;

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
    privacy INTEGER NOT NULL DEFAULT 0,
    moderation INTEGER NOT NULL DEFAULT 0,
    blueprint_id TEXT,
    visibility TEXT NOT NULL DEFAULT 'private',
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
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
    contact_collection INTEGER NOT NULL DEFAULT 0,
    session_duration INTEGER,
    allow_from TEXT NOT NULL DEFAULT '*',
    phone_number TEXT,
    send_rate REAL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
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
    verified_at INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
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
    privacy INTEGER,
    moderation INTEGER,
    expires_at INTEGER,
    engine_state TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
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
    tokens INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX messages_order ON messages (conversation_id, created_at, id);
