-- Portico Inbox local store, version 5: the fields lists, searches and
-- triggers read from a record (status, assignee, team, product area,
-- conversation) become plain columns the engine writes with the row,
-- instead of VIRTUAL generated columns over `data`.
--
-- Why: SQLite computes every generated column on every insert (JSON parsed
-- again for each row), and building `messages_by_conversation` parsed every
-- message once more; on a bootstrap of a million messages that was a large
-- share of the time over the raw insert of the same rows. The engine parses
-- each row anyway (its id and version), so taking five more fields is free.
-- See docs/benchmarks.md, "Desktop bootstrap".
--
-- The rule for every writer of `records` (mirror.rs is the only one): each
-- column holds `data ->> '$.<field>'`, the same value the generated column
-- held, or NULL when the field is absent. Nothing else changes: the
-- indexes, triggers and views below are those of versions 2 and 4, and
-- they read the columns by the same names.
--
-- SQLite cannot turn a generated column into a plain one, so the table is
-- rebuilt (the documented create-copy-drop-rename). `legacy_alter_table`
-- keeps the rename from re-checking the views and triggers that name
-- `records` while it briefly does not exist; they read the new table once
-- it has the name.

PRAGMA legacy_alter_table = ON;

CREATE TABLE records_v5 (
    kind            TEXT    NOT NULL,
    id              TEXT    NOT NULL,
    account_id      TEXT,
    version         INTEGER NOT NULL,
    data            TEXT    NOT NULL,
    status          TEXT,
    assignee_id     TEXT,
    team_id         TEXT,
    product_area    TEXT,
    conversation_id TEXT,
    PRIMARY KEY (kind, id)
) WITHOUT ROWID;

INSERT INTO records_v5 (kind, id, account_id, version, data,
                        status, assignee_id, team_id, product_area, conversation_id)
SELECT kind, id, account_id, version, data,
       data ->> '$.status', data ->> '$.assignee_id', data ->> '$.team_id',
       data ->> '$.product_area', data ->> '$.conversation_id'
  FROM records;

-- Takes its indexes and triggers with it; those of a bootstrap in progress
-- are set aside in sync_state (`derived`) and come back when it ends.
DROP TABLE records;
ALTER TABLE records_v5 RENAME TO records;

PRAGMA legacy_alter_table = OFF;

CREATE INDEX records_account ON records (kind, account_id);
CREATE INDEX messages_by_conversation ON records (conversation_id, id)
    WHERE kind = 'message';

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

CREATE TRIGGER mentions_message_inserted AFTER INSERT ON records
WHEN new.kind = 'message' AND new.data ->> '$.kind' = 'internal_note'
BEGIN
    INSERT INTO mentions_refresh (id) VALUES (new.id);
END;

CREATE TRIGGER mentions_message_updated AFTER UPDATE ON records
WHEN new.kind = 'message'
BEGIN
    INSERT INTO mentions_refresh (id) VALUES (new.id);
END;

CREATE TRIGGER mentions_message_deleted AFTER DELETE ON records
WHEN old.kind = 'message'
BEGIN
    DELETE FROM mentions WHERE message_id = old.id;
END;
