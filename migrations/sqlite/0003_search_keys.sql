-- Dataset search and blueprint links.
--
-- The FTS5 index refers to records by rowid. A table without an INTEGER PRIMARY KEY may have
-- its rowids renumbered by VACUUM, which would silently point the index at the wrong records,
-- so dataset_records is rebuilt with an explicit integer key `rid` and the index rebuilt from it.
DROP TRIGGER dataset_records_ai;
DROP TRIGGER dataset_records_ad;
DROP TRIGGER dataset_records_au;
DROP TABLE dataset_records_fts;
DROP INDEX dataset_records_order;
ALTER TABLE dataset_records RENAME TO dataset_records_0002;

CREATE TABLE dataset_records (
    rid INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    dataset_id TEXT NOT NULL,
    text TEXT NOT NULL,
    source TEXT,
    meta TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
INSERT INTO dataset_records (id, dataset_id, text, source, meta, created_at, updated_at)
    SELECT id, dataset_id, text, source, meta, created_at, updated_at
    FROM dataset_records_0002 ORDER BY rowid;
DROP TABLE dataset_records_0002;
CREATE INDEX dataset_records_order ON dataset_records (dataset_id, created_at, id);

CREATE VIRTUAL TABLE dataset_records_fts USING fts5 (
    text, content='dataset_records', content_rowid='rid', tokenize='porter unicode61'
);
INSERT INTO dataset_records_fts (dataset_records_fts) VALUES ('rebuild');
CREATE TRIGGER dataset_records_ai AFTER INSERT ON dataset_records BEGIN
    INSERT INTO dataset_records_fts (rowid, text) VALUES (new.rid, new.text);
END;
CREATE TRIGGER dataset_records_ad AFTER DELETE ON dataset_records BEGIN
    INSERT INTO dataset_records_fts (dataset_records_fts, rowid, text) VALUES ('delete', old.rid, old.text);
END;
CREATE TRIGGER dataset_records_au AFTER UPDATE ON dataset_records BEGIN
    INSERT INTO dataset_records_fts (dataset_records_fts, rowid, text) VALUES ('delete', old.rid, old.text);
    INSERT INTO dataset_records_fts (rowid, text) VALUES (new.rid, new.text);
END;

-- Blueprint resource listing and blueprint delete look resources up by blueprint.
CREATE INDEX bots_blueprint ON bots (blueprint_id);
CREATE INDEX datasets_blueprint ON datasets (blueprint_id);
CREATE INDEX twilio_integrations_blueprint ON twilio_integrations (blueprint_id);
CREATE INDEX contacts_blueprint ON contacts (blueprint_id);
