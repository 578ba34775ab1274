-- The email channel (crates/portal/src/mail). Server-only tables: never
-- records, never synced. What agents see of a mail lives on its `Message`
-- record (`email`, `delivery`); these tables hold the machinery around it.
-- Times are unix milliseconds.

-- Every mail that reached us (IMAP or the inbound hook), with what became of
-- it. `dedupe_key` is the Message-ID (or a hash of the bytes when there is
-- none): the same mail fetched twice, or by both routes, is taken once.
-- `raw` keeps the original (up to the size limit) so nothing received is
-- lost, whatever the parse made of it.
CREATE TABLE mail_inbound (
    id              INTEGER PRIMARY KEY,
    source          TEXT    NOT NULL,
    dedupe_key      TEXT    NOT NULL UNIQUE,
    header_id       TEXT,
    from_addr       TEXT    NOT NULL,
    subject         TEXT    NOT NULL,
    size            INTEGER NOT NULL,
    truncated       INTEGER NOT NULL DEFAULT 0,
    -- conversation | reply | held | auto_reply | bounce | list | own | rejected
    disposition     TEXT    NOT NULL,
    detail          TEXT,
    conversation_id TEXT,
    message_id      TEXT,
    contact_id      TEXT,
    received_at     INTEGER NOT NULL,
    raw             BLOB    NOT NULL
);
CREATE INDEX mail_inbound_contact ON mail_inbound (contact_id) WHERE contact_id IS NOT NULL;

-- Every Message-ID seen or sent in a conversation: how a reply's
-- In-Reply-To / References find their thread.
CREATE TABLE mail_threads (
    header_id       TEXT PRIMARY KEY,
    conversation_id TEXT NOT NULL,
    message_id      TEXT
);

-- Per-mailbox IMAP position. `last_uid` moves in the same transaction as the
-- mail it covers, so a restart resumes exactly after the last stored mail.
CREATE TABLE mailbox_state (
    mailbox     TEXT    PRIMARY KEY,
    uidvalidity INTEGER NOT NULL,
    last_uid    INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);

-- Agents' replies waiting to go out over SMTP (a transactional outbox, as
-- for webhooks): queued in the transaction that stores the reply.
CREATE TABLE mail_outbound (
    id              INTEGER PRIMARY KEY,
    message_id      TEXT    NOT NULL UNIQUE,
    conversation_id TEXT    NOT NULL,
    in_reply_to     TEXT,
    refs            TEXT    NOT NULL DEFAULT '',
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    sent_at         INTEGER,
    failed          INTEGER NOT NULL DEFAULT 0 CHECK (failed IN (0, 1)),
    last_error      TEXT,
    created_at      INTEGER NOT NULL
);
CREATE INDEX mail_outbound_due ON mail_outbound (next_attempt_at)
    WHERE sent_at IS NULL AND failed = 0;

-- Attachment bytes, served only through `/v1/attachments/{id}` after the
-- policy allows the message they belong to.
CREATE TABLE mail_attachments (
    id           TEXT    PRIMARY KEY,
    message_id   TEXT    NOT NULL,
    account_id   TEXT    NOT NULL,
    filename     TEXT    NOT NULL,
    content_type TEXT    NOT NULL,
    size         INTEGER NOT NULL,
    sha256       TEXT    NOT NULL,
    data         BLOB    NOT NULL
);
CREATE INDEX mail_attachments_message ON mail_attachments (message_id);

-- Senders we could not place on an account: their mail waits here (as
-- `held` rows of mail_inbound) until staff link them to an account.
CREATE TABLE mail_contacts (
    id                TEXT    PRIMARY KEY,
    email             TEXT    NOT NULL UNIQUE,
    name              TEXT    NOT NULL,
    reason            TEXT    NOT NULL,
    first_seen        INTEGER NOT NULL,
    last_seen         INTEGER NOT NULL,
    linked_account_id TEXT,
    linked_user_id    TEXT,
    linked_at         INTEGER
);

-- Domains staff have verified as belonging to an account: mail from any
-- address there is placed on that account.
CREATE TABLE mail_domains (
    domain      TEXT    PRIMARY KEY,
    account_id  TEXT    NOT NULL,
    verified_at INTEGER NOT NULL
);

-- Team signatures appended to email replies.
CREATE TABLE mail_signatures (
    team_id   TEXT PRIMARY KEY,
    signature TEXT NOT NULL
);

-- Key of the reply tokens (HMAC), made once per database.
CREATE TABLE mail_settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
INSERT INTO mail_settings (key, value) VALUES ('reply_token_key', lower(hex(randomblob(32))));
