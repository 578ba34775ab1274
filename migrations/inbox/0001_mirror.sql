-- Portico Inbox local store, version 1: the mirror of what the signed-in
-- staff member may see, exactly as the server redacted it.
--
-- Records are kept by (kind, id) with the server's version; applying a change
-- only ever moves a record forward, so replayed or reordered pages converge.

CREATE TABLE records (
    kind       TEXT    NOT NULL,
    id         TEXT    NOT NULL,
    account_id TEXT,
    version    INTEGER NOT NULL,
    data       TEXT    NOT NULL,
    PRIMARY KEY (kind, id)
) WITHOUT ROWID;
CREATE INDEX records_account ON records (kind, account_id);

-- Deleted records are remembered by version so a late upsert cannot revive them.
CREATE TABLE tombstones (
    kind    TEXT    NOT NULL,
    id      TEXT    NOT NULL,
    version INTEGER NOT NULL,
    PRIMARY KEY (kind, id)
) WITHOUT ROWID;

-- Key/value sync bookkeeping: `cursor` is the last change seq applied.
CREATE TABLE sync_state (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
