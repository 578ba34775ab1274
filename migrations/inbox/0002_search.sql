-- Portico Inbox local store, version 2: fast inbox lists and offline search
-- over the mirrored records.
--
-- Nothing here is written by the engine directly: every structure below is
-- derived from `records` by generated columns, indexes and triggers, so
-- `Mirror::apply` (and any other writer of `records`) keeps it in step inside
-- its own transaction, and a record is never listed or found in a state the
-- mirror does not hold. See docs/decisions.md, "Offline search".

-- ---------------------------------------------------------------------------
-- Fields of records that triggers and queries below read, computed from the
-- JSON. VIRTUAL: nothing is stored for them in `records`.

ALTER TABLE records ADD COLUMN status TEXT
    GENERATED ALWAYS AS (data ->> '$.status') VIRTUAL;
ALTER TABLE records ADD COLUMN assignee_id TEXT
    GENERATED ALWAYS AS (data ->> '$.assignee_id') VIRTUAL;
ALTER TABLE records ADD COLUMN team_id TEXT
    GENERATED ALWAYS AS (data ->> '$.team_id') VIRTUAL;
ALTER TABLE records ADD COLUMN product_area TEXT
    GENERATED ALWAYS AS (data ->> '$.product_area') VIRTUAL;
ALTER TABLE records ADD COLUMN conversation_id TEXT
    GENERATED ALWAYS AS (data ->> '$.conversation_id') VIRTUAL;

-- A conversation's messages in order (ids are UUIDv7: creation order).
CREATE INDEX messages_by_conversation ON records (conversation_id, id)
    WHERE kind = 'message';

-- The plan each account is on (code of the plan of its current subscription),
-- kept by triggers below: conversations, accounts and articles are filtered
-- by plan, and the plan is two records away from a conversation.
CREATE TABLE account_plan (
    account_id TEXT PRIMARY KEY,
    plan_code  TEXT
) WITHOUT ROWID;

-- ---------------------------------------------------------------------------
-- Inbox lists
--
-- One compact row per mirrored conversation with the fields lists filter and
-- sort on, as plain columns (the account's plan included), kept by triggers.
-- Plain columns, unlike generated ones, make an index *covering*: a list
-- walks index entries only and reads the records of the page it returns,
-- never a JSON document per candidate.
CREATE TABLE inbox (
    id            TEXT PRIMARY KEY,
    account_id    TEXT,
    status        TEXT,
    -- urgent 3, high 2, normal 1, low 0: "most urgent first" is index order.
    priority_rank INTEGER,
    -- Milliseconds since the epoch, whatever the fractional digits sent.
    updated_ms    INTEGER NOT NULL,
    assignee_id   TEXT,
    team_id       TEXT,
    channel       TEXT,
    product_area  TEXT,
    plan_code     TEXT
) WITHOUT ROWID;

-- One index per way a view narrows the list: everything (by status), one
-- assignee (mine; unassigned is NULL), one team. After the leading column
-- each is ordered (status, priority, updated, id), so a list is a few ordered
-- index walks merged (see query.rs), never a sort of every match; the
-- trailing columns let the other filters be checked on the entry itself.
CREATE INDEX inbox_by_status ON inbox
    (status, priority_rank, updated_ms, id, assignee_id, team_id, channel, product_area, plan_code);
CREATE INDEX inbox_by_assignee ON inbox
    (assignee_id, status, priority_rank, updated_ms, id, team_id, channel, product_area, plan_code);
CREATE INDEX inbox_by_team ON inbox
    (team_id, status, priority_rank, updated_ms, id, assignee_id, channel, product_area, plan_code);
CREATE INDEX inbox_by_account ON inbox (account_id);

-- "Procedure": INSERT INTO inbox_refresh (id) ... rewrites those rows from
-- the conversation records.
CREATE VIEW inbox_refresh AS SELECT NULL AS id;
CREATE TRIGGER inbox_refresh INSTEAD OF INSERT ON inbox_refresh
BEGIN
    INSERT INTO inbox (id, account_id, status, priority_rank, updated_ms, assignee_id,
                       team_id, channel, product_area, plan_code)
    SELECT r.id, r.account_id, r.status,
           CASE r.data ->> '$.priority'
               WHEN 'urgent' THEN 3 WHEN 'high' THEN 2 WHEN 'normal' THEN 1 WHEN 'low' THEN 0
           END,
           coalesce(CAST(round(unixepoch(r.data ->> '$.updated_at', 'subsec') * 1000) AS INTEGER), 0),
           r.assignee_id, r.team_id, r.data ->> '$.channel', r.product_area,
           (SELECT plan_code FROM account_plan WHERE account_id = r.account_id)
      FROM records r WHERE r.kind = 'conversation' AND r.id = new.id
    ON CONFLICT (id) DO UPDATE SET
        account_id = excluded.account_id, status = excluded.status,
        priority_rank = excluded.priority_rank, updated_ms = excluded.updated_ms,
        assignee_id = excluded.assignee_id, team_id = excluded.team_id,
        channel = excluded.channel, product_area = excluded.product_area,
        plan_code = excluded.plan_code;
END;

CREATE TRIGGER inbox_conversation_inserted AFTER INSERT ON records
WHEN new.kind = 'conversation'
BEGIN
    INSERT INTO inbox_refresh (id) VALUES (new.id);
END;

CREATE TRIGGER inbox_conversation_updated AFTER UPDATE ON records
WHEN new.kind = 'conversation'
BEGIN
    INSERT INTO inbox_refresh (id) VALUES (new.id);
END;

CREATE TRIGGER inbox_conversation_deleted AFTER DELETE ON records
WHEN old.kind = 'conversation'
BEGIN
    DELETE FROM inbox WHERE id = old.id;
END;

-- ---------------------------------------------------------------------------
-- Offline search
--
-- One FTS5 table per kind: accounts (name, domain), conversations (subject;
-- tags), messages (body), articles (title; summary and body). Separate tables
-- keep each kind's statistics its own (a subject is not length-normalised
-- against article bodies) and keep the cost of ranking one kind
-- proportional to that kind: bm25 counts every row holding a query word,
-- across the whole table, on every query.
--
-- The tables are contentless (the text stays in `records` only) with
-- contentless_delete, so a row is removed by its rowid alone. Rowids
-- ("docids") come from `search_docs`, one range per kind, counting down: the
-- newest record of a kind has the lowest docid, so "newest matches first" is
-- the index's natural ascending order.
CREATE TABLE search_kinds (
    kind TEXT PRIMARY KEY,
    base INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO search_kinds (kind, base) VALUES
    ('account',      1 << 40),
    ('conversation', 2 << 40),
    ('message',      3 << 40),
    ('article',      4 << 40);

CREATE TABLE search_docs (
    docid INTEGER PRIMARY KEY,
    kind  TEXT NOT NULL,
    id    TEXT NOT NULL,
    UNIQUE (kind, id)
);

-- `live` = 1: the triggers below index every change as it is written. A bulk
-- load (bootstrap) may set it to 0 and rebuild the index once at the end
-- (search.rs: `suspend_indexing`, `rebuild_index`), which is several times
-- cheaper than indexing row by row.
CREATE TABLE search_state (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    live INTEGER NOT NULL
);
INSERT INTO search_state (id, live) VALUES (1, 1);

-- `tags` holds the filter values as tokens ('0' + field letter + hex of the
-- value + '0'): s status, a assignee (empty = unassigned), t team, r product
-- area, p plan code ('0p0' on an article for every plan). Hex keeps any value
-- one token; the leading digit keeps them apart from words users type; the
-- trailing digit keeps the porter stemmer from touching them. A filter is
-- then part of the full-text match, not a join after it.
--
-- Prefix indexes of 4 and 5 characters answer the word being typed without
-- expanding it over the vocabulary; prefix matching starts at 4 characters.
CREATE VIRTUAL TABLE search_accounts USING fts5 (
    title, body, tags, content = '', contentless_delete = 1,
    tokenize = 'porter unicode61 remove_diacritics 2', prefix = '4 5');
CREATE VIRTUAL TABLE search_conversations USING fts5 (
    title, body, tags, content = '', contentless_delete = 1,
    tokenize = 'porter unicode61 remove_diacritics 2', prefix = '4 5');
CREATE VIRTUAL TABLE search_messages USING fts5 (
    title, body, tags, content = '', contentless_delete = 1,
    tokenize = 'porter unicode61 remove_diacritics 2', prefix = '4 5');
CREATE VIRTUAL TABLE search_articles USING fts5 (
    title, body, tags, content = '', contentless_delete = 1,
    tokenize = 'porter unicode61 remove_diacritics 2', prefix = '4 5');

INSERT INTO search_accounts (search_accounts, rank) VALUES ('automerge', 16);
INSERT INTO search_conversations (search_conversations, rank) VALUES ('automerge', 16);
INSERT INTO search_messages (search_messages, rank) VALUES ('automerge', 16);
INSERT INTO search_articles (search_articles, rank) VALUES ('automerge', 16);

-- What each search row holds, derived from the records (also read back to
-- build snippets, since the FTS tables keep no text).
CREATE VIEW search_source AS
SELECT
    d.docid AS docid,
    d.kind AS kind,
    CASE r.kind
        WHEN 'conversation' THEN r.data ->> '$.subject'
        WHEN 'account' THEN concat_ws(' ', r.data ->> '$.name', r.data ->> '$.domain')
        WHEN 'article' THEN r.data ->> '$.title'
        ELSE ''
    END AS title,
    CASE r.kind
        WHEN 'conversation' THEN coalesce((SELECT group_concat(value, ' ') FROM json_each(r.data, '$.tags')), '')
        WHEN 'message' THEN r.data ->> '$.body'
        WHEN 'article' THEN concat_ws(' ', r.data ->> '$.summary', r.data ->> '$.body')
        ELSE ''
    END AS body,
    concat_ws(' ',
        CASE WHEN c.id IS NOT NULL THEN concat_ws(' ',
            '0s' || hex(c.status) || '0',
            '0a' || hex(c.assignee_id) || '0',
            '0t' || hex(c.team_id) || '0',
            '0r' || hex(c.product_area) || '0')
        END,
        CASE WHEN r.kind = 'article' THEN concat_ws(' ',
            '0r' || hex(r.product_area) || '0',
            (SELECT coalesce(group_concat('0p' || hex(value) || '0', ' '), '0p0')
               FROM json_each(r.data, '$.plans')))
        END,
        CASE WHEN ap.plan_code IS NOT NULL THEN '0p' || hex(ap.plan_code) || '0' END
    ) AS tags
FROM search_docs d
JOIN records r ON r.kind = d.kind AND r.id = d.id
LEFT JOIN records c ON c.kind = 'conversation'
    AND c.id = CASE r.kind WHEN 'conversation' THEN r.id WHEN 'message' THEN r.conversation_id END
LEFT JOIN account_plan ap ON r.kind IN ('account', 'conversation', 'message')
    AND ap.account_id = CASE r.kind WHEN 'account' THEN r.id ELSE r.account_id END;

-- "Procedure": INSERT INTO search_index (docid, kind) ... adds those rows
-- (not yet in their table) from `search_source`. The only place the row
-- shape is written.
CREATE VIEW search_index AS SELECT NULL AS docid, NULL AS kind;
CREATE TRIGGER search_index INSTEAD OF INSERT ON search_index
BEGIN
    INSERT INTO search_accounts (rowid, title, body, tags)
        SELECT docid, title, body, tags FROM search_source
         WHERE new.kind = 'account' AND docid = new.docid;
    INSERT INTO search_conversations (rowid, title, body, tags)
        SELECT docid, title, body, tags FROM search_source
         WHERE new.kind = 'conversation' AND docid = new.docid;
    INSERT INTO search_messages (rowid, title, body, tags)
        SELECT docid, title, body, tags FROM search_source
         WHERE new.kind = 'message' AND docid = new.docid;
    INSERT INTO search_articles (rowid, title, body, tags)
        SELECT docid, title, body, tags FROM search_source
         WHERE new.kind = 'article' AND docid = new.docid;
END;

-- "Procedure": INSERT INTO search_reindex (docid, kind) ... rewrites rows
-- already indexed, or removes them if their record is gone. Only the kind's
-- own table is touched: a contentless table records a deletion even for a
-- rowid it never held.
CREATE VIEW search_reindex AS SELECT NULL AS docid, NULL AS kind;
CREATE TRIGGER search_reindex INSTEAD OF INSERT ON search_reindex
BEGIN
    DELETE FROM search_accounts WHERE new.kind = 'account' AND rowid = new.docid;
    DELETE FROM search_conversations WHERE new.kind = 'conversation' AND rowid = new.docid;
    DELETE FROM search_messages WHERE new.kind = 'message' AND rowid = new.docid;
    DELETE FROM search_articles WHERE new.kind = 'article' AND rowid = new.docid;
    INSERT INTO search_index (docid, kind) VALUES (new.docid, new.kind);
END;

-- A new searchable record gets the next (lower) docid of its kind's range.
-- A conversation also re-indexes messages that arrived before it, so they
-- take its filter values.
CREATE TRIGGER search_record_inserted AFTER INSERT ON records
WHEN new.kind IN ('account', 'conversation', 'message', 'article')
    AND (SELECT live FROM search_state)
BEGIN
    INSERT INTO search_docs (docid, kind, id)
        SELECT coalesce(
                   (SELECT min(docid) FROM search_docs
                     WHERE docid > k.base AND docid < k.base + (1 << 40)),
                   k.base + (1 << 40)) - 1,
               new.kind, new.id
          FROM search_kinds k WHERE k.kind = new.kind
        ON CONFLICT (kind, id) DO NOTHING;
    INSERT INTO search_index (docid, kind)
        SELECT docid, kind FROM search_docs WHERE kind = new.kind AND id = new.id;
    INSERT INTO search_reindex (docid, kind)
        SELECT d.docid, d.kind FROM records m INDEXED BY messages_by_conversation
          JOIN search_docs d ON d.kind = 'message' AND d.id = m.id
         WHERE new.kind = 'conversation' AND m.kind = 'message' AND m.conversation_id = new.id;
END;

-- A record's searchable text or filter values changed. A conversation's
-- messages carry its filter values, so they follow them. Most conversation
-- updates (a new message bumps `last_message_at`, SLA clocks tick) change
-- neither and cost nothing here.
CREATE TRIGGER search_record_updated AFTER UPDATE ON records
WHEN new.kind IN ('account', 'conversation', 'message', 'article')
    AND (SELECT live FROM search_state)
BEGIN
    INSERT INTO search_reindex (docid, kind)
        SELECT docid, kind FROM search_docs
         WHERE kind = new.kind AND id = new.id
           AND (new.kind <> 'conversation'
                OR old.data ->> '$.subject' IS NOT new.data ->> '$.subject'
                OR old.data -> '$.tags' IS NOT new.data -> '$.tags'
                OR old.status IS NOT new.status
                OR old.assignee_id IS NOT new.assignee_id
                OR old.team_id IS NOT new.team_id
                OR old.product_area IS NOT new.product_area
                OR old.account_id IS NOT new.account_id)
           AND old.data IS NOT new.data
        UNION ALL
        SELECT d.docid, d.kind FROM records m INDEXED BY messages_by_conversation
          JOIN search_docs d ON d.kind = 'message' AND d.id = m.id
         WHERE new.kind = 'conversation'
           AND (old.status IS NOT new.status
                OR old.assignee_id IS NOT new.assignee_id
                OR old.team_id IS NOT new.team_id
                OR old.product_area IS NOT new.product_area
                OR old.account_id IS NOT new.account_id)
           AND m.kind = 'message' AND m.conversation_id = new.id;
END;

CREATE TRIGGER search_record_deleted AFTER DELETE ON records
WHEN old.kind IN ('account', 'conversation', 'message', 'article')
    AND (SELECT live FROM search_state)
BEGIN
    INSERT INTO search_reindex (docid, kind)
        SELECT docid, kind FROM search_docs WHERE kind = old.kind AND id = old.id;
    DELETE FROM search_docs WHERE kind = old.kind AND id = old.id;
END;

-- ---------------------------------------------------------------------------
-- Which plan each account is on (always kept, also while indexing is
-- suspended: inbox lists filter on it)

-- "Procedure": INSERT INTO account_plan_refresh (account_id) ... recomputes
-- the plan of those accounts: the plan of the latest subscription not
-- canceled, else of the latest one.
CREATE VIEW account_plan_refresh AS SELECT NULL AS account_id;
CREATE TRIGGER account_plan_refresh INSTEAD OF INSERT ON account_plan_refresh
BEGIN
    INSERT INTO account_plan (account_id, plan_code) VALUES (
        new.account_id,
        (SELECT p.data ->> '$.code'
           FROM records s
           JOIN records p ON p.kind = 'plan' AND p.id = s.data ->> '$.plan_id'
          WHERE s.kind = 'subscription' AND s.account_id = new.account_id
          ORDER BY s.status = 'canceled', s.data ->> '$.current_period_end' DESC, s.id DESC
          LIMIT 1))
    ON CONFLICT (account_id) DO UPDATE SET plan_code = excluded.plan_code
        WHERE plan_code IS NOT excluded.plan_code;
END;

-- A subscription that starts, changes or ends, or a plan that appears,
-- changes code or goes, moves accounts between plans.
CREATE TRIGGER account_plan_record_inserted AFTER INSERT ON records
WHEN new.kind IN ('subscription', 'plan')
BEGIN
    INSERT INTO account_plan_refresh (account_id)
        SELECT new.account_id WHERE new.kind = 'subscription'
        UNION
        SELECT account_id FROM records
         WHERE new.kind = 'plan' AND kind = 'subscription' AND data ->> '$.plan_id' = new.id;
END;

CREATE TRIGGER account_plan_record_updated AFTER UPDATE ON records
WHEN new.kind IN ('subscription', 'plan')
BEGIN
    INSERT INTO account_plan_refresh (account_id)
        SELECT new.account_id WHERE new.kind = 'subscription'
        UNION
        SELECT old.account_id WHERE new.kind = 'subscription'
        UNION
        SELECT account_id FROM records
         WHERE new.kind = 'plan' AND old.data ->> '$.code' IS NOT new.data ->> '$.code'
           AND kind = 'subscription' AND data ->> '$.plan_id' = new.id;
END;

CREATE TRIGGER account_plan_record_deleted AFTER DELETE ON records
WHEN old.kind IN ('subscription', 'plan')
BEGIN
    INSERT INTO account_plan_refresh (account_id)
        SELECT old.account_id WHERE old.kind = 'subscription'
        UNION
        SELECT account_id FROM records
         WHERE old.kind = 'plan' AND kind = 'subscription' AND data ->> '$.plan_id' = old.id;
END;

-- An account's plan changed: its conversations' list rows carry it...
CREATE TRIGGER inbox_account_plan_changed AFTER UPDATE ON account_plan
BEGIN
    UPDATE inbox SET plan_code = new.plan_code WHERE account_id = new.account_id;
END;

CREATE TRIGGER inbox_account_plan_added AFTER INSERT ON account_plan
BEGIN
    UPDATE inbox SET plan_code = new.plan_code WHERE account_id = new.account_id;
END;

-- ... and so do its own search row and its conversations' and messages'.
CREATE TRIGGER account_plan_changed AFTER UPDATE ON account_plan
WHEN (SELECT live FROM search_state)
BEGIN
    INSERT INTO search_reindex (docid, kind)
        SELECT docid, kind FROM search_docs WHERE kind = 'account' AND id = new.account_id
        UNION ALL
        SELECT d.docid, d.kind FROM records r JOIN search_docs d ON d.kind = r.kind AND d.id = r.id
         WHERE r.kind IN ('conversation', 'message') AND r.account_id = new.account_id;
END;

CREATE TRIGGER account_plan_added AFTER INSERT ON account_plan
WHEN new.plan_code IS NOT NULL AND (SELECT live FROM search_state)
BEGIN
    INSERT INTO search_reindex (docid, kind)
        SELECT docid, kind FROM search_docs WHERE kind = 'account' AND id = new.account_id
        UNION ALL
        SELECT d.docid, d.kind FROM records r JOIN search_docs d ON d.kind = r.kind AND d.id = r.id
         WHERE r.kind IN ('conversation', 'message') AND r.account_id = new.account_id;
END;
