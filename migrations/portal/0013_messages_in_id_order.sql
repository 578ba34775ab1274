-- Portico portal-core schema: conversations and messages stored in id order.
--
-- Both are rowid tables with a TEXT primary key (UUIDv7, so id order is
-- creation order). A live server appends rows in id order anyway, but rows
-- written out of it (the seed writes each conversation with its messages;
-- an import does the same) leave the table in one order and its id index in
-- another: a read in id order, which is how bootstrap pages and every
-- keyset list walk these tables, then fetches each row from a different
-- table page. On 1M messages reading them in pages of 2,000 by id took 3×
-- as long as reading them in rowid order (docs/benchmarks.md, "Desktop
-- bootstrap"); with the rows in id order the two are the same walk.
--
-- The rows are copied out in id order and written back into the emptied
-- table, so it gets fresh rowids in id order while its definition (the
-- generated columns added over time) stays exactly as the earlier
-- migrations made it. The secondary indexes are dropped first and built
-- again after (building by sorting, not row by row) with their definitions
-- from 0001 and 0003. Nothing refers to these rows by rowid. One-time cost
-- on upgrade: about 20-40 s at 100k conversations and 1M messages.
--
-- `Store::cluster_by_id` runs the same text after the seed, which writes
-- out of order (it is a no-op on tables already in order, bar the copy).

DROP INDEX IF EXISTS messages_account;
DROP INDEX IF EXISTS messages_conversation;
CREATE TEMP TABLE messages_by_id AS
    SELECT id, account_id, version, data FROM messages ORDER BY id;
DELETE FROM messages;
INSERT INTO messages (id, account_id, version, data)
    SELECT id, account_id, version, data FROM temp.messages_by_id ORDER BY rowid;
DROP TABLE temp.messages_by_id;
CREATE INDEX messages_account ON messages (account_id, id);
CREATE INDEX messages_conversation  ON messages (conversation_id, id);

DROP INDEX IF EXISTS conversations_account;
DROP INDEX IF EXISTS conversations_recent;
DROP INDEX IF EXISTS conversations_status;
DROP INDEX IF EXISTS conversations_assignee;
DROP INDEX IF EXISTS conversations_team;
DROP INDEX IF EXISTS conversations_account_recent;
DROP INDEX IF EXISTS conversations_sla_next;
CREATE TEMP TABLE conversations_by_id AS
    SELECT id, account_id, version, data FROM conversations ORDER BY id;
DELETE FROM conversations;
INSERT INTO conversations (id, account_id, version, data)
    SELECT id, account_id, version, data FROM temp.conversations_by_id ORDER BY rowid;
DROP TABLE temp.conversations_by_id;
CREATE INDEX conversations_account ON conversations (account_id, id);
CREATE INDEX conversations_recent   ON conversations (updated_ts DESC, id DESC);
CREATE INDEX conversations_status   ON conversations (status, updated_ts DESC, id DESC);
CREATE INDEX conversations_assignee ON conversations (assignee_id, status, updated_ts DESC, id DESC);
CREATE INDEX conversations_team     ON conversations (team_id, status, updated_ts DESC, id DESC);
CREATE INDEX conversations_account_recent ON conversations (account_id, updated_ts DESC, id DESC);
CREATE INDEX conversations_sla_next ON conversations (sla_next_ts) WHERE sla_next_ts IS NOT NULL;
