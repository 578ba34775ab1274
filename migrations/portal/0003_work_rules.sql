-- Work rules: routing rules, SLA policies, automations, alerts (records, same
-- layout as 0001), the webhook secrets automations sign with (never a record),
-- and the SLA sweep's index over conversations.

CREATE TABLE routing_rules (
    id         TEXT    PRIMARY KEY,
    account_id TEXT,
    version    INTEGER NOT NULL,
    data       TEXT    NOT NULL
);
CREATE INDEX routing_rules_account ON routing_rules (account_id, id);

CREATE TABLE sla_policies (
    id         TEXT    PRIMARY KEY,
    account_id TEXT,
    version    INTEGER NOT NULL,
    data       TEXT    NOT NULL
);
CREATE INDEX sla_policies_account ON sla_policies (account_id, id);

CREATE TABLE automations (
    id         TEXT    PRIMARY KEY,
    account_id TEXT,
    version    INTEGER NOT NULL,
    data       TEXT    NOT NULL,
    event      TEXT    GENERATED ALWAYS AS (data ->> '$.event') VIRTUAL
);
CREATE INDEX automations_account ON automations (account_id, id);
CREATE INDEX automations_event ON automations (event);

CREATE TABLE alerts (
    id           TEXT    PRIMARY KEY,
    account_id   TEXT,
    version      INTEGER NOT NULL,
    data         TEXT    NOT NULL,
    recipient_id TEXT    GENERATED ALWAYS AS (data ->> '$.recipient_id') VIRTUAL
);
CREATE INDEX alerts_account ON alerts (account_id, id);
CREATE INDEX alerts_recipient ON alerts (recipient_id, id);

-- Shared secrets for automations' webhooks, set by the admin who writes the
-- automation. Server-only: not a record, never synced.
CREATE TABLE automation_secrets (
    automation_id TEXT PRIMARY KEY,
    secret        TEXT NOT NULL
);

-- The SLA sweep looks only at conversations whose clock needs a look by now.
ALTER TABLE conversations ADD COLUMN sla_next_ts INTEGER
    GENERATED ALWAYS AS (unixepoch(data ->> '$.sla_next_check')) VIRTUAL;
CREATE INDEX conversations_sla_next ON conversations (sla_next_ts) WHERE sla_next_ts IS NOT NULL;
