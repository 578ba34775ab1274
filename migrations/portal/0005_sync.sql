-- Sync pushes: every mutation a client pushed, with the outcome it got, so a
-- replayed push is answered with the stored outcome and applied at most once.
-- Keyed by user as well, so one user's client id cannot read another's.
CREATE TABLE client_mutations (
    user_id     TEXT    NOT NULL,
    client_id   TEXT    NOT NULL,
    mutation_id INTEGER NOT NULL,
    outcome     TEXT    NOT NULL,
    at          TEXT    NOT NULL,
    PRIMARY KEY (user_id, client_id, mutation_id)
) WITHOUT ROWID;
