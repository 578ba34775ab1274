-- Portico Inbox local store, version 7: what a conversation's inbox list
-- row holds is said once, in the view `inbox_source`, and read both by the
-- trigger that keeps one row (`inbox_refresh`, as before) and by the end of
-- a bootstrap, which fills every row in one INSERT ... SELECT.
--
-- Why: the bootstrap filled the list by calling the trigger once per
-- conversation (a scan for the ids, then a lookup of each record by its
-- key and one trigger program per row): 0.34 s for 100k conversations. A
-- single scan of the conversations into the table does the same work once.
-- See docs/benchmarks.md, "Desktop bootstrap".
--
-- The columns and their rules are those of version 4 (0004_sla_mentions.sql),
-- moved here unchanged.

CREATE VIEW inbox_source AS
    SELECT r.id, r.account_id, r.status,
           -- urgent 3, high 2, normal 1, low 0.
           CASE r.data ->> '$.priority'
               WHEN 'urgent' THEN 3 WHEN 'high' THEN 2 WHEN 'normal' THEN 1 WHEN 'low' THEN 0
           END AS priority_rank,
           coalesce(CAST(round(unixepoch(r.data ->> '$.updated_at', 'subsec') * 1000) AS INTEGER), 0)
               AS updated_ms,
           r.assignee_id, r.team_id, r.data ->> '$.channel' AS channel, r.product_area,
           (SELECT plan_code FROM account_plan WHERE account_id = r.account_id) AS plan_code,
           -- When the running SLA clock next falls due; NULL when none runs
           -- (same rule as `query::sla_due` in Rust).
           CASE WHEN r.status IN ('pending', 'resolved')
                  OR r.data ->> '$.sla.paused_since' IS NOT NULL
                  OR r.data ->> '$.sla.resolved_at' IS NOT NULL THEN NULL
                ELSE (SELECT min(v) FROM (
                        SELECT CAST(round(unixepoch(r.data ->> '$.sla.first_response_due', 'subsec') * 1000) AS INTEGER) AS v
                        UNION ALL
                        SELECT CAST(round(unixepoch(r.data ->> '$.sla.next_response_due', 'subsec') * 1000) AS INTEGER)
                        UNION ALL
                        SELECT CAST(round(unixepoch(r.data ->> '$.sla.resolution_due', 'subsec') * 1000) AS INTEGER)))
           END AS sla_due_ms
      FROM records r WHERE r.kind = 'conversation';

DROP TRIGGER inbox_refresh;
CREATE TRIGGER inbox_refresh INSTEAD OF INSERT ON inbox_refresh
BEGIN
    INSERT INTO inbox (id, account_id, status, priority_rank, updated_ms, assignee_id,
                       team_id, channel, product_area, plan_code, sla_due_ms)
    SELECT id, account_id, status, priority_rank, updated_ms, assignee_id,
           team_id, channel, product_area, plan_code, sla_due_ms
      FROM inbox_source WHERE id = new.id
    ON CONFLICT (id) DO UPDATE SET
        account_id = excluded.account_id, status = excluded.status,
        priority_rank = excluded.priority_rank, updated_ms = excluded.updated_ms,
        assignee_id = excluded.assignee_id, team_id = excluded.team_id,
        channel = excluded.channel, product_area = excluded.product_area,
        plan_code = excluded.plan_code, sla_due_ms = excluded.sla_due_ms;
END;
