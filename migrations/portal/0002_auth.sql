-- Credentials and tokens. Never records: never synced, never in the change log.
-- Tokens are stored as SHA-256 hashes; the plain value exists only in transit.

CREATE TABLE credentials (
    user_id       TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);

-- kind: 'session' (web cookie), 'access' (short-lived bearer), 'refresh'
-- (rotating; `family` ties a chain of rotations so a replayed one revokes all).
CREATE TABLE tokens (
    hash       TEXT    PRIMARY KEY,
    kind       TEXT    NOT NULL CHECK (kind IN ('session', 'access', 'refresh')),
    user_id    TEXT    NOT NULL,
    family     TEXT,
    client_id  TEXT,
    issued_at  INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER,
    revoked_at INTEGER
);
CREATE INDEX tokens_family ON tokens (family);
CREATE INDEX tokens_user ON tokens (user_id);

-- One-time authorization codes of the OAuth code + PKCE flow.
CREATE TABLE oauth_codes (
    hash           TEXT    PRIMARY KEY,
    user_id        TEXT    NOT NULL,
    client_id      TEXT    NOT NULL,
    redirect_uri   TEXT    NOT NULL,
    code_challenge TEXT    NOT NULL,
    expires_at     INTEGER NOT NULL,
    used_at        INTEGER
);
