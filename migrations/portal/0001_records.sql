-- Portico portal-core schema, version 1.
--
-- Every record kind has its own table holding the record as JSON (`data`),
-- written only through the store's single write path. `account_id` is a real
-- column because every scoped read filters on it; other query fields are
-- generated columns over `data`, indexed where lists filter or sort on them.
-- Timestamps sort as integers (`unixepoch`), ids (UUIDv7 text) by creation.

CREATE TABLE accounts (
    id         TEXT    PRIMARY KEY,
    account_id TEXT,
    version    INTEGER NOT NULL,
    data       TEXT    NOT NULL
);
CREATE INDEX accounts_account ON accounts (account_id, id);

CREATE TABLE workspaces (
    id         TEXT    PRIMARY KEY,
    account_id TEXT,
    version    INTEGER NOT NULL,
    data       TEXT    NOT NULL
);
CREATE INDEX workspaces_account ON workspaces (account_id, id);

CREATE TABLE plans (
    id         TEXT    PRIMARY KEY,
    account_id TEXT,
    version    INTEGER NOT NULL,
    data       TEXT    NOT NULL,
    code TEXT GENERATED ALWAYS AS (data ->> '$.code') VIRTUAL
);
CREATE INDEX plans_account ON plans (account_id, id);

CREATE TABLE subscriptions (
    id         TEXT    PRIMARY KEY,
    account_id TEXT,
    version    INTEGER NOT NULL,
    data       TEXT    NOT NULL
);
CREATE INDEX subscriptions_account ON subscriptions (account_id, id);

CREATE TABLE seats (
    id         TEXT    PRIMARY KEY,
    account_id TEXT,
    version    INTEGER NOT NULL,
    data       TEXT    NOT NULL,
    user_id TEXT GENERATED ALWAYS AS (data ->> '$.user_id') VIRTUAL
);
CREATE INDEX seats_account ON seats (account_id, id);

CREATE TABLE invoices (
    id         TEXT    PRIMARY KEY,
    account_id TEXT,
    version    INTEGER NOT NULL,
    data       TEXT    NOT NULL
);
CREATE INDEX invoices_account ON invoices (account_id, id);

CREATE TABLE usage_meters (
    id         TEXT    PRIMARY KEY,
    account_id TEXT,
    version    INTEGER NOT NULL,
    data       TEXT    NOT NULL
);
CREATE INDEX usage_meters_account ON usage_meters (account_id, id);

CREATE TABLE usage_records (
    id         TEXT    PRIMARY KEY,
    account_id TEXT,
    version    INTEGER NOT NULL,
    data       TEXT    NOT NULL
);
CREATE INDEX usage_records_account ON usage_records (account_id, id);

CREATE TABLE users (
    id         TEXT    PRIMARY KEY,
    account_id TEXT,
    version    INTEGER NOT NULL,
    data       TEXT    NOT NULL,
    email TEXT GENERATED ALWAYS AS (lower(data ->> '$.email')) VIRTUAL
);
CREATE INDEX users_account ON users (account_id, id);

CREATE TABLE teams (
    id         TEXT    PRIMARY KEY,
    account_id TEXT,
    version    INTEGER NOT NULL,
    data       TEXT    NOT NULL
);
CREATE INDEX teams_account ON teams (account_id, id);

CREATE TABLE requests (
    id         TEXT    PRIMARY KEY,
    account_id TEXT,
    version    INTEGER NOT NULL,
    data       TEXT    NOT NULL,
    status TEXT GENERATED ALWAYS AS (data ->> '$.status') VIRTUAL
);
CREATE INDEX requests_account ON requests (account_id, id);

CREATE TABLE conversations (
    id         TEXT    PRIMARY KEY,
    account_id TEXT,
    version    INTEGER NOT NULL,
    data       TEXT    NOT NULL,
    status      TEXT    GENERATED ALWAYS AS (data ->> '$.status') VIRTUAL,
    assignee_id TEXT    GENERATED ALWAYS AS (data ->> '$.assignee_id') VIRTUAL,
    team_id     TEXT    GENERATED ALWAYS AS (data ->> '$.team_id') VIRTUAL,
    priority    TEXT    GENERATED ALWAYS AS (data ->> '$.priority') VIRTUAL,
    channel     TEXT    GENERATED ALWAYS AS (data ->> '$.channel') VIRTUAL,
    updated_ts  INTEGER GENERATED ALWAYS AS (unixepoch(data ->> '$.updated_at')) VIRTUAL
);
CREATE INDEX conversations_account ON conversations (account_id, id);

CREATE TABLE messages (
    id         TEXT    PRIMARY KEY,
    account_id TEXT,
    version    INTEGER NOT NULL,
    data       TEXT    NOT NULL,
    conversation_id TEXT GENERATED ALWAYS AS (data ->> '$.conversation_id') VIRTUAL
);
CREATE INDEX messages_account ON messages (account_id, id);

CREATE TABLE articles (
    id         TEXT    PRIMARY KEY,
    account_id TEXT,
    version    INTEGER NOT NULL,
    data       TEXT    NOT NULL,
    slug TEXT GENERATED ALWAYS AS (data ->> '$.slug') VIRTUAL
);
CREATE INDEX articles_account ON articles (account_id, id);

CREATE TABLE release_notes (
    id         TEXT    PRIMARY KEY,
    account_id TEXT,
    version    INTEGER NOT NULL,
    data       TEXT    NOT NULL
);
CREATE INDEX release_notes_account ON release_notes (account_id, id);

CREATE TABLE community_posts (
    id         TEXT    PRIMARY KEY,
    account_id TEXT,
    version    INTEGER NOT NULL,
    data       TEXT    NOT NULL
);
CREATE INDEX community_posts_account ON community_posts (account_id, id);

CREATE TABLE onboarding_paths (
    id         TEXT    PRIMARY KEY,
    account_id TEXT,
    version    INTEGER NOT NULL,
    data       TEXT    NOT NULL
);
CREATE INDEX onboarding_paths_account ON onboarding_paths (account_id, id);

CREATE TABLE onboarding_progress (
    id         TEXT    PRIMARY KEY,
    account_id TEXT,
    version    INTEGER NOT NULL,
    data       TEXT    NOT NULL
);
CREATE INDEX onboarding_progress_account ON onboarding_progress (account_id, id);

CREATE TABLE audit_events (
    id         TEXT    PRIMARY KEY,
    account_id TEXT,
    version    INTEGER NOT NULL,
    data       TEXT    NOT NULL,
    entity_id TEXT GENERATED ALWAYS AS (data ->> '$.entity_id') VIRTUAL
);
CREATE INDEX audit_events_account ON audit_events (account_id, id);

CREATE INDEX conversations_recent   ON conversations (updated_ts DESC, id DESC);
CREATE INDEX conversations_status   ON conversations (status, updated_ts DESC, id DESC);
CREATE INDEX conversations_assignee ON conversations (assignee_id, status, updated_ts DESC, id DESC);
CREATE INDEX conversations_team     ON conversations (team_id, status, updated_ts DESC, id DESC);
CREATE INDEX conversations_account_recent ON conversations (account_id, updated_ts DESC, id DESC);
CREATE INDEX messages_conversation  ON messages (conversation_id, id);
CREATE UNIQUE INDEX users_email     ON users (email);
CREATE INDEX requests_status        ON requests (status, id);
CREATE UNIQUE INDEX seats_user      ON seats (user_id);
CREATE UNIQUE INDEX articles_slug   ON articles (slug);
CREATE UNIQUE INDEX plans_code      ON plans (code);
CREATE UNIQUE INDEX subscriptions_one_per_account ON subscriptions (account_id);
CREATE INDEX audit_events_entity    ON audit_events (entity_id, id);

-- The sync feed: one row per committed record write, appended in the same
-- transaction. `seq` is the single commit order (one writer at a time).
CREATE TABLE change_log (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    kind       TEXT    NOT NULL,
    entity_id  TEXT    NOT NULL,
    account_id TEXT,
    op         TEXT    NOT NULL CHECK (op IN ('upsert', 'delete')),
    version    INTEGER NOT NULL,
    row        TEXT,
    at         TEXT    NOT NULL
);
CREATE INDEX change_log_account ON change_log (account_id, seq);
