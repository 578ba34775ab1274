-- Customer portal: feature votes (one per user and request) and files
-- attached to requests (bytes kept here, never under a web root, served
-- only as downloads to viewers who may see the request).

CREATE TABLE request_votes (
    request_id TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    account_id TEXT NOT NULL,
    voted_at   TEXT NOT NULL,
    PRIMARY KEY (request_id, user_id)
) WITHOUT ROWID;

CREATE TABLE request_attachments (
    -- Random (v4) id: attachment ids reveal nothing and cannot be guessed.
    id           TEXT    PRIMARY KEY,
    request_id   TEXT    NOT NULL,
    account_id   TEXT    NOT NULL,
    name         TEXT    NOT NULL,
    content_type TEXT    NOT NULL,
    size         INTEGER NOT NULL,
    sha256       TEXT    NOT NULL,
    uploaded_by  TEXT    NOT NULL,
    uploaded_at  TEXT    NOT NULL,
    bytes        BLOB    NOT NULL
);
CREATE INDEX request_attachments_request ON request_attachments (request_id);

-- Mail Portico sends on its own behalf (invitations) goes through the same
-- outbox as agents' replies: `kind` says which table holds its content.
ALTER TABLE mail_outbound ADD COLUMN kind TEXT NOT NULL DEFAULT 'reply';
CREATE TABLE mail_notices (
    id         TEXT    PRIMARY KEY,
    to_address TEXT    NOT NULL,
    to_name    TEXT    NOT NULL,
    subject    TEXT    NOT NULL,
    body       TEXT    NOT NULL,
    created_at INTEGER NOT NULL
);

-- Invitation links: one-time tokens, stored hashed.
CREATE TABLE invitations (
    token_hash TEXT    PRIMARY KEY,
    user_id    TEXT    NOT NULL,
    account_id TEXT    NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER,
    created_at INTEGER NOT NULL
);
CREATE INDEX invitations_user ON invitations (user_id);
