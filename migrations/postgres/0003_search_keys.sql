-- Dataset search and blueprint links. (SQLite's 0003 also gives dataset records a stable
-- integer key for its FTS index; PostgreSQL keeps the tsvector in the row, so needs none.)

-- Blueprint resource listing and blueprint delete look resources up by blueprint.
CREATE INDEX bots_blueprint ON bots (blueprint_id);
CREATE INDEX datasets_blueprint ON datasets (blueprint_id);
CREATE INDEX twilio_integrations_blueprint ON twilio_integrations (blueprint_id);
CREATE INDEX contacts_blueprint ON contacts (blueprint_id);
