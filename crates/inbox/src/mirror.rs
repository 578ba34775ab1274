//! The local mirror: server records as the signed-in staff member may see
//! them, in SQLite, keyed by (kind, id) with the server's version.

use std::path::Path;

use portico_model::Kind;
use portico_model::wire::{ChangeOp, ChangesPage};
use rusqlite::types::Value as Sql;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use serde_json::{Map, Value};

const MIGRATIONS: &[&str] = &[
    include_str!("../../../migrations/inbox/0001_mirror.sql"),
    include_str!("../../../migrations/inbox/0002_search.sql"),
    include_str!("../../../migrations/inbox/0003_outbox.sql"),
    include_str!("../../../migrations/inbox/0004_sla_mentions.sql"),
    include_str!("../../../migrations/inbox/0005_plain_fields.sql"),
    include_str!("../../../migrations/inbox/0006_account_index_without_messages.sql"),
    include_str!("../../../migrations/inbox/0007_inbox_source.sql"),
];

/// The schema version this build writes (`PRAGMA user_version` after
/// migrating); a file with a higher one comes from a newer app.
pub(crate) const SCHEMA_VERSION: usize = MIGRATIONS.len();

#[derive(Debug, thiserror::Error)]
pub enum MirrorError {
    #[error("local database failed: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("a stored {0} record is not valid JSON")]
    Corrupt(&'static str),
    #[error("the server answered {status}: {message}")]
    Server { status: u16, message: String },
    #[error("could not reach the server: {0}")]
    Network(#[from] reqwest::Error),
}

impl MirrorError {
    /// Stable code for the UI to branch on.
    pub fn code(&self) -> &'static str {
        match self {
            MirrorError::Sqlite(_) | MirrorError::Corrupt(_) => "local_store",
            MirrorError::Server { status: 401, .. } => "unauthenticated",
            MirrorError::Server { .. } => "server",
            MirrorError::Network(_) => "offline",
        }
    }
}

pub struct Mirror {
    conn: Connection,
}

macro_rules! upsert_sql {
    () => {
        "INSERT INTO records (kind, id, account_id, version, data,
             status, assignee_id, team_id, product_area, conversation_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
         ON CONFLICT (kind, id) DO UPDATE SET account_id = excluded.account_id,
             version = excluded.version, data = excluded.data,
             status = excluded.status, assignee_id = excluded.assignee_id,
             team_id = excluded.team_id, product_area = excluded.product_area,
             conversation_id = excluded.conversation_id"
    };
}

/// Upserts a record whose version was checked to be newer.
const UPSERT: &str = upsert_sql!();

/// The bootstrap's upsert: the version guard is in the statement itself.
/// Public for the bootstrap benchmark, which times this very statement.
#[doc(hidden)]
pub const LOAD_UPSERT: &str = concat!(
    upsert_sql!(),
    "
         WHERE excluded.version > records.version"
);

/// The fields of a record kept as columns beside its JSON, in the order of
/// [`Columns`] (migration 0005): lists, searches and triggers read them.
pub(crate) const COLUMN_FIELDS: [&str; 5] = [
    "status",
    "assignee_id",
    "team_id",
    "product_area",
    "conversation_id",
];

/// The values of [`COLUMN_FIELDS`] for one record, each what
/// `data ->> '$.<field>'` gives: the text of a string, a number as a number,
/// NULL when the field is absent or null. Written with every row, so the
/// columns never disagree with `data`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Columns(pub [Sql; 5]);

impl Columns {
    /// From a field lookup into the record's JSON.
    pub(crate) fn from_fields<'a>(mut field: impl FnMut(&str) -> Option<&'a Value>) -> Columns {
        Columns(COLUMN_FIELDS.map(|name| sql_scalar(field(name))))
    }
}

/// A JSON value as SQLite's `->>` returns it.
fn sql_scalar(v: Option<&Value>) -> Sql {
    match v {
        None | Some(Value::Null) => Sql::Null,
        Some(Value::String(s)) => Sql::Text(s.clone()),
        Some(Value::Bool(b)) => Sql::Integer(i64::from(*b)),
        Some(Value::Number(n)) => match n.as_i64() {
            Some(i) => Sql::Integer(i),
            None => n.as_f64().map_or(Sql::Null, Sql::Real),
        },
        Some(other) => Sql::Text(other.to_string()),
    }
}

/// One snapshot row ready to write: the record as the server shaped it,
/// already serialized, with its column fields.
#[derive(Debug, Clone)]
pub(crate) struct LoadRow {
    pub kind: Kind,
    pub id: uuid::Uuid,
    pub account_id: Option<String>,
    pub version: u64,
    pub data: String,
    pub columns: Columns,
    /// An internal note (a message of kind `internal_note`): its mentions
    /// are written with it.
    pub note: bool,
}

impl Mirror {
    pub fn open(path: &Path) -> Result<Mirror, MirrorError> {
        let conn = Connection::open(path)?;
        conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")?;
        Mirror::init(conn)
    }

    pub fn open_in_memory() -> Result<Mirror, MirrorError> {
        Mirror::init(Connection::open_in_memory()?)
    }

    /// The schema versions `(stored, this build's)` when the store at `path`
    /// was written by an older build and its migrations have yet to run:
    /// the first start after an update. `None` for a missing or new file
    /// (its migrations are quick on no rows), a current one, or one from a
    /// newer build (the engine rebuilds that one). Reads the header only.
    pub fn pending_upgrade(path: &Path) -> Result<Option<(usize, usize)>, MirrorError> {
        if !path.exists() {
            return Ok(None);
        }
        let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        let stored: usize = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        Ok((stored > 0 && stored < SCHEMA_VERSION).then_some((stored, SCHEMA_VERSION)))
    }

    fn init(conn: Connection) -> Result<Mirror, MirrorError> {
        let current: usize = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(current) {
            let tx = conn.unchecked_transaction()?;
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", i + 1)?;
            tx.commit()?;
        }
        Ok(Mirror { conn })
    }

    /// The last change seq applied (0 before the first pull).
    pub fn cursor(&self) -> Result<i64, MirrorError> {
        let v: Option<String> = self
            .conn
            .query_row(
                "SELECT value FROM sync_state WHERE key = 'cursor'",
                [],
                |r| r.get(0),
            )
            .optional()?;
        Ok(v.and_then(|s| s.parse().ok()).unwrap_or(0))
    }

    /// Applies a page of changes in one transaction and advances the cursor.
    /// A change older than what is stored (or than a deletion) is skipped, so
    /// applying the same page twice, or pages out of order, converges.
    /// Returns how many records changed.
    pub fn apply(&mut self, page: &ChangesPage) -> Result<usize, MirrorError> {
        let tx = self.conn.transaction()?;
        let changed = Mirror::apply_in(&tx, page)?;
        tx.commit()?;
        Ok(changed)
    }

    /// [`Mirror::apply`] inside the caller's transaction, so the sync engine
    /// commits a page together with its own bookkeeping (bootstrap progress,
    /// confirmed mutations) or not at all.
    pub(crate) fn apply_in(tx: &Connection, page: &ChangesPage) -> Result<usize, MirrorError> {
        // Cached: preparing an insert into `records` compiles every trigger
        // on it (~0.6 ms), more than writing a row costs.
        let mut stored_version = tx.prepare_cached(
            "SELECT max(v) FROM (SELECT version AS v FROM records WHERE kind = ?1 AND id = ?2
             UNION ALL SELECT version FROM tombstones WHERE kind = ?1 AND id = ?2)",
        )?;
        let mut upsert = tx.prepare_cached(UPSERT)?;
        let mut delete = tx.prepare_cached("DELETE FROM records WHERE kind = ?1 AND id = ?2")?;
        let mut delete_messages = tx.prepare_cached(
            "DELETE FROM records WHERE kind = 'message' AND conversation_id = ?1",
        )?;
        let mut tombstone = tx.prepare_cached(
            "INSERT INTO tombstones (kind, id, version) VALUES (?1, ?2, ?3)
             ON CONFLICT (kind, id) DO UPDATE SET version = excluded.version",
        )?;
        let mut changed = 0;
        for c in &page.changes {
            let (kind, id) = (c.kind.as_str(), c.id.to_string());
            let stored: Option<i64> = stored_version
                .query_row(params![kind, id], |r| r.get(0))
                .optional()?
                .flatten();
            if stored.is_some_and(|v| v >= c.version as i64) {
                continue;
            }
            match (&c.op, &c.row) {
                (ChangeOp::Upsert, Some(row)) => {
                    let account = row.get("account_id").and_then(Value::as_str);
                    let data = serde_json::to_string(row).expect("a JSON map serializes");
                    let Columns([status, assignee, team, area, conversation]) =
                        Columns::from_fields(|name| row.get(name));
                    upsert.execute(params![
                        kind,
                        id,
                        account,
                        c.version,
                        data,
                        status,
                        assignee,
                        team,
                        area,
                        conversation
                    ])?;
                }
                _ => {
                    delete.execute(params![kind, id])?;
                    tombstone.execute(params![kind, id, c.version])?;
                    if c.kind == Kind::Conversation {
                        // A conversation gone from this desk (deleted, or out
                        // of the viewer's team access) takes its messages.
                        delete_messages.execute([&id])?;
                    }
                }
            }
            changed += 1;
        }
        if page.next_after > 0 {
            tx.prepare_cached(
                "INSERT INTO sync_state (key, value) VALUES ('cursor', ?1)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value
                 WHERE CAST(sync_state.value AS INTEGER) < CAST(excluded.value AS INTEGER)",
            )?
            .execute([page.next_after.to_string()])?;
        }
        Ok(changed)
    }

    /// Writes snapshot rows (bootstrap) inside the caller's transaction: one
    /// statement per row, the version guard in the upsert itself. Only for a
    /// store whose change feed has not started (no tombstones yet: a deleted
    /// record cannot come back through here); a re-fetched page keeps the
    /// newer of each row. Returns how many rows were written.
    pub(crate) fn load_rows_in(tx: &Connection, rows: &[LoadRow]) -> Result<usize, MirrorError> {
        let mut upsert = tx.prepare_cached(LOAD_UPSERT)?;
        let mut refresh_mentions =
            tx.prepare_cached("INSERT INTO mentions_refresh (id) VALUES (?1)")?;
        let mut written = 0;
        let mut id = String::with_capacity(36);
        for r in rows {
            let Columns([status, assignee, team, area, conversation]) = &r.columns;
            id.clear();
            id.push_str(
                r.id.hyphenated()
                    .encode_lower(&mut uuid::Uuid::encode_buffer()),
            );
            written += upsert.execute(params![
                r.kind.as_str(),
                id,
                r.account_id,
                r.version,
                r.data,
                status,
                assignee,
                team,
                area,
                conversation
            ])?;
            if r.note {
                // What the `mentions_message_*` triggers do when they are
                // not set aside: the note's mentions, read back from the
                // row as stored (so whichever version won is the one
                // indexed), by the same statement.
                refresh_mentions.execute([&id])?;
            }
        }
        Ok(written)
    }

    /// The connection, for the engine's reads of its own tables.
    pub(crate) fn conn(&self) -> &Connection {
        &self.conn
    }

    /// The connection, for the engine's transactions over its own tables.
    pub(crate) fn conn_mut(&mut self) -> &mut Connection {
        &mut self.conn
    }

    /// One mirrored record as the server shaped it.
    pub fn get(
        &self,
        kind: Kind,
        id: uuid::Uuid,
    ) -> Result<Option<Map<String, Value>>, MirrorError> {
        let data: Option<String> = self
            .conn
            .query_row(
                "SELECT data FROM records WHERE kind = ?1 AND id = ?2",
                params![kind.as_str(), id.to_string()],
                |r| r.get(0),
            )
            .optional()?;
        data.map(|d| match serde_json::from_str(&d) {
            Ok(Value::Object(m)) => Ok(m),
            _ => Err(MirrorError::Corrupt(kind.as_str())),
        })
        .transpose()
    }

    /// How many records of a kind are mirrored.
    pub fn count(&self, kind: Kind) -> Result<u64, MirrorError> {
        Ok(self.conn.query_row(
            "SELECT count(*) FROM records WHERE kind = ?1",
            [kind.as_str()],
            |r| r.get(0),
        )?)
    }
}
