-- Portico Inbox local store, version 4: the SLA-due list and the mentions
-- index, both kept by triggers like the rest of the derived tables (so sync
-- writes nothing extra and a crash leaves nothing to reconcile).

-- When the conversation's running SLA clock next falls due (the earliest
-- pending first-response, next-response or resolution due, milliseconds
-- since the epoch), or NULL when no clock runs: no SLA, waiting on the
-- customer (paused), or resolved. A breach keeps its due, so "due before
-- now" is the breached set. Same rule as `query::sla_due` in Rust.
ALTER TABLE inbox ADD COLUMN sla_due_ms INTEGER;

-- The SLA list walks this index in due order and checks the view's other
-- filters on the entries; conversations without a running clock are not in it.
CREATE INDEX inbox_by_sla_due ON inbox
    (sla_due_ms, id, status, assignee_id, team_id, priority_rank, updated_ms, channel, product_area, plan_code)
    WHERE sla_due_ms IS NOT NULL;

DROP TRIGGER inbox_refresh;
CREATE TRIGGER inbox_refresh INSTEAD OF INSERT ON inbox_refresh
BEGIN
    INSERT INTO inbox (id, account_id, status, priority_rank, updated_ms, assignee_id,
                       team_id, channel, product_area, plan_code, sla_due_ms)
    SELECT r.id, r.account_id, r.status,
           CASE r.data ->> '$.priority'
               WHEN 'urgent' THEN 3 WHEN 'high' THEN 2 WHEN 'normal' THEN 1 WHEN 'low' THEN 0
           END,
           coalesce(CAST(round(unixepoch(r.data ->> '$.updated_at', 'subsec') * 1000) AS INTEGER), 0),
           r.assignee_id, r.team_id, r.data ->> '$.channel', r.product_area,
           (SELECT plan_code FROM account_plan WHERE account_id = r.account_id),
           CASE WHEN r.status IN ('pending', 'resolved')
                  OR r.data ->> '$.sla.paused_since' IS NOT NULL
                  OR r.data ->> '$.sla.resolved_at' IS NOT NULL THEN NULL
                ELSE (SELECT min(v) FROM (
                        SELECT CAST(round(unixepoch(r.data ->> '$.sla.first_response_due', 'subsec') * 1000) AS INTEGER) AS v
                        UNION ALL
                        SELECT CAST(round(unixepoch(r.data ->> '$.sla.next_response_due', 'subsec') * 1000) AS INTEGER)
                        UNION ALL
                        SELECT CAST(round(unixepoch(r.data ->> '$.sla.resolution_due', 'subsec') * 1000) AS INTEGER)))
           END
      FROM records r WHERE r.kind = 'conversation' AND r.id = new.id
    ON CONFLICT (id) DO UPDATE SET
        account_id = excluded.account_id, status = excluded.status,
        priority_rank = excluded.priority_rank, updated_ms = excluded.updated_ms,
        assignee_id = excluded.assignee_id, team_id = excluded.team_id,
        channel = excluded.channel, product_area = excluded.product_area,
        plan_code = excluded.plan_code, sla_due_ms = excluded.sla_due_ms;
END;

-- Stores made by version 3 get the new column filled once.
INSERT INTO inbox_refresh (id) SELECT id FROM inbox;

-- Who each internal note mentions, written when the note is stored, so the
-- Mentions view is an index walk (newest first) instead of a scan of every
-- note's JSON on each open.
CREATE TABLE mentions (
    user_id    TEXT NOT NULL,
    message_id TEXT NOT NULL,
    PRIMARY KEY (user_id, message_id)
) WITHOUT ROWID;
CREATE INDEX mentions_by_message ON mentions (message_id);

CREATE VIEW mentions_refresh AS SELECT NULL AS id;
CREATE TRIGGER mentions_refresh INSTEAD OF INSERT ON mentions_refresh
BEGIN
    DELETE FROM mentions WHERE message_id = new.id;
    INSERT OR IGNORE INTO mentions (user_id, message_id)
    SELECT j.value, r.id FROM records r, json_each(r.data, '$.mentions') j
     WHERE r.kind = 'message' AND r.id = new.id
       AND r.data ->> '$.kind' = 'internal_note' AND j.type = 'text';
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

INSERT INTO mentions_refresh (id)
    SELECT id FROM records WHERE kind = 'message' AND data ->> '$.kind' = 'internal_note';
