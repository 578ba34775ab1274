-- Outgoing webhook deliveries: a transactional outbox. A row is inserted in
-- the same transaction as the domain write that caused the event, so an event
-- exists if and only if that write committed; a background worker sends it.
--
-- Server-only: never a record, never synced, never in the change log. It holds
-- the endpoint's signing secret, which must never leave the server.
--
-- Times are unix milliseconds, so a backoff is never cut short by rounding.
CREATE TABLE webhook_deliveries (
    id              INTEGER PRIMARY KEY,
    -- The event's idempotency key, sent as `Portico-Event-Id`; receivers
    -- dedupe on it because delivery is at-least-once.
    event_id        TEXT    NOT NULL,
    event_type      TEXT    NOT NULL,
    url             TEXT    NOT NULL,
    secret          TEXT    NOT NULL,
    -- The automation that called the webhook, if any (for the delivery log).
    automation_id   TEXT,
    -- The exact JSON body sent (and signed).
    payload         TEXT    NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    delivered_at    INTEGER,
    last_status     INTEGER,
    last_error      TEXT,
    -- 1 once retries are exhausted: never sent again.
    dead            INTEGER NOT NULL DEFAULT 0 CHECK (dead IN (0, 1)),
    created_at      INTEGER NOT NULL,
    -- Enqueueing the same event for the same endpoint twice is a no-op.
    UNIQUE (event_id, url)
);

-- The worker's query: pending rows in due order.
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at)
    WHERE delivered_at IS NULL AND dead = 0;
