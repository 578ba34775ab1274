-- Knowledge and AI: drafts awaiting review, content gaps, and the cursor of
-- the drafter (the change-log position up to which customer messages have
-- been given a draft).

CREATE TABLE drafts (
    id         TEXT    PRIMARY KEY,
    account_id TEXT,
    version    INTEGER NOT NULL,
    data       TEXT    NOT NULL,
    conversation_id TEXT GENERATED ALWAYS AS (data ->> '$.conversation_id') VIRTUAL,
    message_id      TEXT GENERATED ALWAYS AS (data ->> '$.message_id') VIRTUAL,
    state           TEXT GENERATED ALWAYS AS (data ->> '$.state') VIRTUAL
);
CREATE INDEX drafts_account ON drafts (account_id, id);
CREATE INDEX drafts_state ON drafts (state, id);
CREATE INDEX drafts_conversation ON drafts (conversation_id, id);
-- One draft per customer message, however often the drafter retries.
CREATE UNIQUE INDEX drafts_message ON drafts (message_id);

CREATE TABLE content_gaps (
    id         TEXT    PRIMARY KEY,
    account_id TEXT,
    version    INTEGER NOT NULL,
    data       TEXT    NOT NULL,
    key TEXT GENERATED ALWAYS AS (data ->> '$.key') VIRTUAL
);
CREATE INDEX content_gaps_account ON content_gaps (account_id, id);
CREATE UNIQUE INDEX content_gaps_key ON content_gaps (key);

CREATE TABLE knowledge_cursor (
    name TEXT PRIMARY KEY,
    seq  INTEGER NOT NULL
);
