-- Human hand-off: agents, their console sessions, and one row per hand-off of a conversation.
-- A conversation is owned by its bot unless it has an open hand-off (queued, with an agent, or
-- waiting for the person's message to an absent team); the partial unique indexes make "open"
-- a single row per conversation and per sender, which is what lets two agents race for one
-- conversation and exactly one win.
CREATE TABLE agents (
    id TEXT PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'away',
    max_conversations BIGINT NOT NULL DEFAULT 5,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE agent_integrations (
    agent_id TEXT NOT NULL,
    integration_id TEXT NOT NULL,
    PRIMARY KEY (agent_id, integration_id)
);
CREATE INDEX agent_integrations_integration ON agent_integrations (integration_id);

CREATE TABLE agent_sessions (
    token_hash TEXT PRIMARY KEY,
    agent_id TEXT NOT NULL,
    csrf TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX agent_sessions_agent ON agent_sessions (agent_id);

CREATE TABLE handoffs (
    id TEXT PRIMARY KEY,
    conversation_id TEXT NOT NULL,
    integration_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    person TEXT NOT NULL,
    ours TEXT NOT NULL,
    bot_id TEXT,
    state TEXT NOT NULL,
    agent_id TEXT,
    reason TEXT,
    attributes TEXT,
    ticket_text TEXT,
    told_ahead BIGINT,
    queued_at BIGINT NOT NULL,
    assigned_at BIGINT,
    last_activity_at BIGINT NOT NULL,
    closed_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX handoffs_open_conversation ON handoffs (conversation_id)
    WHERE state IN ('queued', 'agent', 'leaving_message');
CREATE UNIQUE INDEX handoffs_open_sender ON handoffs (integration_id, person)
    WHERE state IN ('queued', 'agent', 'leaving_message');
CREATE INDEX handoffs_state ON handoffs (state, integration_id, queued_at);
CREATE INDEX handoffs_agent ON handoffs (agent_id, state);
