-- Studio flows and FAQ bots (Chatwire additions to the bot resource): the exported Studio flow
-- JSON, FAQ settings (JSON), the bot's language for fixed texts, and per-bot label overrides.
ALTER TABLE bots ADD COLUMN flow TEXT;
ALTER TABLE bots ADD COLUMN faq TEXT;
ALTER TABLE bots ADD COLUMN lang TEXT NOT NULL DEFAULT 'en';
ALTER TABLE bots ADD COLUMN labels TEXT;

-- One row per Studio flow execution (the running state itself travels in the conversation's
-- engine_state); current_state/expires_at describe the widget waiting for a reply.
CREATE TABLE flow_executions (
    id TEXT PRIMARY KEY,
    bot_id TEXT NOT NULL,
    conversation_id TEXT,
    contact_address TEXT NOT NULL,
    channel_address TEXT,
    status TEXT NOT NULL DEFAULT 'active',
    trigger_event TEXT NOT NULL,
    current_state TEXT,
    expires_at INTEGER,
    error TEXT,
    data TEXT,
    context TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX flow_executions_order ON flow_executions (bot_id, created_at, id);
CREATE INDEX flow_executions_contact ON flow_executions (bot_id, contact_address, status);

-- Each transition an execution took, as Studio's Steps resource lists them.
CREATE TABLE flow_steps (
    execution_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    name TEXT NOT NULL,
    transitioned_from TEXT NOT NULL,
    transitioned_to TEXT NOT NULL,
    widget_type TEXT,
    context TEXT,
    error TEXT,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (execution_id, seq)
);

-- Content ratings given to FAQ answers ("Was this answer helpful?"), with the comment asked
-- after a rating that wants one.
CREATE TABLE faq_ratings (
    id TEXT PRIMARY KEY,
    bot_id TEXT NOT NULL,
    conversation_id TEXT,
    record_id TEXT NOT NULL,
    rating_id TEXT NOT NULL,
    negative INTEGER NOT NULL DEFAULT 0,
    comment TEXT,
    created_at INTEGER NOT NULL
);
CREATE INDEX faq_ratings_order ON faq_ratings (bot_id, created_at, id);
