-- One row the readiness probe rewrites: a node that cannot write (full disk, read-only
-- directory, lost primary) must stop being sent webhooks it would answer with 503.
CREATE TABLE health (
    id INTEGER PRIMARY KEY,
    checked_at BIGINT NOT NULL
);
