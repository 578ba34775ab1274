-- Saved replies (canned responses) for the composer: team ones (owner_id
-- NULL) and personal ones. Global rows (no account); the row rule in
-- model::policy hides a personal reply from everyone but its owner.
CREATE TABLE saved_replies (
    id         TEXT    PRIMARY KEY,
    account_id TEXT,
    version    INTEGER NOT NULL,
    data       TEXT    NOT NULL
);
CREATE INDEX saved_replies_account ON saved_replies (account_id, id);
