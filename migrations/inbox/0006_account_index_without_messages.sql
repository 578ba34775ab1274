-- Portico Inbox local store, version 6: `records_account` no longer holds
-- the messages.
--
-- Why: the index on (kind, account_id) held every record, a million
-- messages included, though nothing looks messages up by account except
-- the two triggers below, which reindex an account's conversations and
-- messages for search when its plan changes. Building it at the end of a
-- bootstrap was the largest single step there (about 1 s of 3 at 1M
-- messages, plus its share of the commit). Those triggers now reach the
-- messages through their conversations (`messages_by_conversation`), the
-- way a conversation's own triggers already do. See docs/decisions.md,
-- "Bootstrap", and docs/benchmarks.md, "Desktop bootstrap".
--
-- A query can use a partial index only when its WHERE repeats the index's
-- condition: every lookup by account in the engine says `kind <> 'message'`
-- beside its `kind = ...` (tests/search.rs checks their plans).
--
-- A bootstrap under way has set `records_account` aside (with the triggers
-- of `records`) and will restore the definition it saved: the DROP below
-- then fails, and the store is rebuilt from the server as any store whose
-- migration fails (it is only a copy; the outbox is kept).

DROP INDEX records_account;
CREATE INDEX records_account ON records (kind, account_id) WHERE kind <> 'message';

-- The search rows that carry an account's plan: its own, its
-- conversations' and their messages' (the same rows as before, found
-- through the conversations instead of by the messages' own account). Both
-- triggers below read it with `account_id = new.account_id`, which SQLite
-- pushes into each arm. No INDEXED BY: a bootstrap may write account plans
-- while `messages_by_conversation` is set aside, and the planner picks it
-- by itself when it is there (the only other way to a conversation's
-- messages is a scan of them all).
CREATE VIEW account_plan_docs AS
    SELECT id AS account_id, docid, kind FROM search_docs WHERE kind = 'account'
    UNION ALL
    SELECT c.account_id, d.docid, d.kind FROM records c
      JOIN search_docs d ON d.kind = 'conversation' AND d.id = c.id
     WHERE c.kind = 'conversation' AND c.kind <> 'message'
    UNION ALL
    SELECT c.account_id, d.docid, d.kind FROM records c
      JOIN records m ON m.kind = 'message' AND m.conversation_id = c.id
      JOIN search_docs d ON d.kind = 'message' AND d.id = m.id
     WHERE c.kind = 'conversation' AND c.kind <> 'message';

DROP TRIGGER account_plan_changed;
CREATE TRIGGER account_plan_changed AFTER UPDATE ON account_plan
WHEN (SELECT live FROM search_state)
BEGIN
    INSERT INTO search_reindex (docid, kind)
        SELECT docid, kind FROM account_plan_docs WHERE account_id = new.account_id;
END;

DROP TRIGGER account_plan_added;
CREATE TRIGGER account_plan_added AFTER INSERT ON account_plan
WHEN new.plan_code IS NOT NULL AND (SELECT live FROM search_state)
BEGIN
    INSERT INTO search_reindex (docid, kind)
        SELECT docid, kind FROM account_plan_docs WHERE account_id = new.account_id;
END;
