-- Portico Inbox local store, version 3: the outbox of changes made on this
-- desktop, possibly offline, waiting for the server.
--
-- Server rows in `records` are never edited locally: what the person sees is
-- the server row with the outbox's live mutations applied in id order (the
-- optimistic overlay), recomputed on read. So a confirmation or a rejection
-- only has to change a row here, and a reverted edit cannot leave a trace.
--
-- `id` is the mutation id: with the installation's `client_id` (in
-- sync_state) it is the idempotency key the server applies at most once. It
-- grows by one per mutation and is minted from sync_state `last_mutation_id`,
-- never from max(id) here, so confirmed-and-dropped ids are never reused.
--
-- `state`:
--   pending   queued; part of the overlay; pushed next.
--   applied   the server applied it; still part of the overlay until a pull
--             that started after the push lands its effect, then dropped.
--   processed the server reports it processed (pull's last_mutation_id) but
--             this client never saw the outcome (answer lost); left out of
--             the overlay (the server row already holds it, or it was
--             refused) and pushed again, whose replay returns the outcome.
--   rejected  refused (`code`, `message`); left out of the overlay, kept
--             for the person until acknowledged.
CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY,
    conversation_id TEXT    NOT NULL,
    op              TEXT    NOT NULL,
    state           TEXT    NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'applied', 'processed', 'rejected')),
    code            TEXT,
    message         TEXT,
    created_at      TEXT    NOT NULL,
    CHECK ((state = 'rejected') = (code IS NOT NULL))
);
CREATE INDEX outbox_conversation ON outbox (conversation_id, id);
CREATE INDEX outbox_state ON outbox (state, id);
