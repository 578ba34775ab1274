//! The system of record on embedded SQLite.
//!
//! One writer connection (SQLite allows one writer at a time anyway; holding
//! it in a mutex avoids busy-waiting) and a pool of read-only connections
//! that run in parallel under WAL. Every domain write goes through
//! [`Writer`]: it validates the record, bumps its version, writes it, and
//! appends the change log row in the same transaction. Nothing else writes
//! record tables.

use std::path::Path;
use std::sync::Mutex;

use jiff::Timestamp;
use portico_model::wire::ChangeOp;
use portico_model::{AuditEvent, AuditEventId, Kind, Record, Role, UserId};
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use uuid::Uuid;

use crate::error::{PortalError, Result};

const MIGRATIONS: &[&str] = &[
    include_str!("../../../migrations/portal/0001_records.sql"),
    include_str!("../../../migrations/portal/0002_auth.sql"),
    include_str!("../../../migrations/portal/0003_work_rules.sql"),
    include_str!("../../../migrations/portal/0004_webhooks.sql"),
    include_str!("../../../migrations/portal/0005_sync.sql"),
    include_str!("../../../migrations/portal/0006_mail.sql"),
    include_str!("../../../migrations/portal/0007_knowledge.sql"),
];

pub struct Store {
    writer: Mutex<Connection>,
    readers: r2d2::Pool<SqliteConnectionManager>,
    /// Dropping this stops the checkpointer thread.
    _checkpointer: std::sync::mpsc::Sender<()>,
}

/// How often the WAL is copied back into the database file.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(500);

/// Checkpoints the WAL from its own connection and thread, so commits never
/// pay for it: SQLite's automatic checkpoint runs inside the commit that
/// crosses the threshold and shows up as write latency spikes.
fn spawn_checkpointer(path: &Path) -> Result<std::sync::mpsc::Sender<()>> {
    let conn = Connection::open(path)?;
    conn.execute_batch("PRAGMA busy_timeout = 5000;")?;
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    std::thread::Builder::new()
        .name("sqlite-checkpoint".into())
        .spawn(move || {
            // Ends when the store (and so the sender) is dropped.
            while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                stopped.recv_timeout(CHECKPOINT_EVERY)
            {
                if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                    tracing::warn!(error = %e, "WAL checkpoint failed; will retry");
                }
            }
        })
        .map_err(|e| PortalError::Conflict(format!("cannot start the checkpoint thread: {e}")))?;
    Ok(stop)
}

/// Who is writing, for the audit trail: a person, or the system (seeder,
/// automations) when both are `None`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Actor {
    pub user_id: Option<UserId>,
    pub role: Option<Role>,
}

impl Actor {
    pub const SYSTEM: Actor = Actor {
        user_id: None,
        role: None,
    };
}

impl From<&portico_model::Viewer> for Actor {
    fn from(v: &portico_model::Viewer) -> Self {
        Actor {
            user_id: Some(v.user_id),
            role: Some(v.role),
        }
    }
}

impl Store {
    /// Opens (creating if needed) the database at `path` and brings its
    /// schema up to date.
    pub fn open(path: &Path) -> Result<Store> {
        let writer = Connection::open(path)?;
        writer.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = NORMAL;
             PRAGMA foreign_keys = ON;
             PRAGMA busy_timeout = 5000;
             PRAGMA wal_autocheckpoint = 0;",
        )?;
        migrate(&writer)?;
        let manager = SqliteConnectionManager::file(path)
            .with_init(|c| c.execute_batch("PRAGMA busy_timeout = 5000; PRAGMA query_only = ON;"));
        let readers = r2d2::Pool::builder()
            .max_size(8)
            .connection_timeout(std::time::Duration::from_secs(10))
            .build(manager)?;
        Ok(Store {
            writer: Mutex::new(writer),
            readers,
            _checkpointer: spawn_checkpointer(path)?,
        })
    }

    /// Runs `f` on a read-only connection. Blocking: call from a blocking task.
    pub fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let conn = self.readers.get()?;
        f(&conn)
    }

    /// Runs `f` in one write transaction stamped with `at` and `actor`. The
    /// transaction commits if `f` returns `Ok`, and rolls back otherwise, so a
    /// failed operation leaves no record and no change-log row behind.
    pub fn write<T>(
        &self,
        actor: Actor,
        at: Timestamp,
        f: impl FnOnce(&mut Writer<'_>) -> Result<T>,
    ) -> Result<T> {
        let mut conn = self
            .writer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut w = Writer { tx, at, actor };
        let out = f(&mut w)?;
        w.tx.commit()?;
        Ok(out)
    }

    /// Runs `f` on the writer connection outside any domain transaction: for
    /// auth bookkeeping (tokens, credentials) that is not a record.
    pub fn write_raw<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T>) -> Result<T> {
        let mut conn = self
            .writer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut conn)
    }
}

fn migrate(conn: &Connection) -> Result<()> {
    let current: usize = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current) {
        let tx = conn.unchecked_transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i + 1)?;
        tx.commit()?;
        tracing::info!(version = i + 1, "applied schema migration");
    }
    Ok(())
}

/// A write transaction. See [`Store::write`].
pub struct Writer<'c> {
    tx: rusqlite::Transaction<'c>,
    at: Timestamp,
    actor: Actor,
}

impl Writer<'_> {
    pub fn conn(&self) -> &Connection {
        &self.tx
    }

    pub fn at(&self) -> Timestamp {
        self.at
    }

    /// Moves this transaction's time, for imports that keep historic
    /// timestamps (the demo seeder writes weeks of history in one go).
    pub fn backdate(&mut self, at: Timestamp) {
        self.at = at;
    }

    pub fn actor(&self) -> Actor {
        self.actor
    }

    /// A fresh UUIDv7 at this transaction's time.
    pub fn new_id<I: From<Uuid>>(&self) -> I {
        let ms = self.at.as_millisecond().max(0) as u64;
        I::from(portico_model::ids::uuid_v7(ms, rand::random()))
    }

    /// Stores a new record at version 1. Fails with `conflict` if the id exists.
    pub fn insert<R: Record>(&mut self, rec: &mut R) -> Result<()> {
        rec.stamp(1, self.at);
        rec.validate()?;
        let data = serde_json::to_string(rec).expect("records always serialize");
        let id = rec.uuid().to_string();
        let account = rec.account_id().map(|a| a.to_string());
        let sql = format!(
            "INSERT INTO {} (id, account_id, version, data) VALUES (?1, ?2, 1, ?3)",
            R::KIND.table()
        );
        match self.tx.execute(&sql, params![id, account, data]) {
            Ok(_) => {}
            Err(rusqlite::Error::SqliteFailure(e, msg))
                if e.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                tracing::debug!(?msg, "insert hit a unique constraint");
                return Err(PortalError::Conflict(format!(
                    "a {} with the same id or unique field already exists",
                    R::KIND.as_str()
                )));
            }
            Err(e) => return Err(e.into()),
        }
        self.log(
            R::KIND,
            &id,
            account.as_deref(),
            ChangeOp::Upsert,
            1,
            Some(&data),
        )
    }

    /// Stores a changed record. `rec.version` must be the version it was read
    /// at; the write fails with `version_conflict` if someone wrote since.
    pub fn update<R: Record>(&mut self, rec: &mut R) -> Result<()> {
        let expected = rec.version();
        rec.stamp(expected + 1, self.at);
        rec.validate()?;
        let data = serde_json::to_string(rec).expect("records always serialize");
        let id = rec.uuid().to_string();
        let account = rec.account_id().map(|a| a.to_string());
        let sql = format!(
            "UPDATE {} SET version = ?1, data = ?2, account_id = ?3 WHERE id = ?4 AND version = ?5",
            R::KIND.table()
        );
        let n = self
            .tx
            .execute(&sql, params![expected + 1, data, account, id, expected])?;
        if n == 0 {
            let actual = current_version(&self.tx, R::KIND, &id)?
                .ok_or_else(|| PortalError::not_found(R::KIND, &id))?;
            return Err(PortalError::VersionConflict {
                kind: R::KIND.as_str(),
                expected,
                actual,
            });
        }
        self.log(
            R::KIND,
            &id,
            account.as_deref(),
            ChangeOp::Upsert,
            expected + 1,
            Some(&data),
        )
    }

    /// Removes a record; the change log keeps a tombstone.
    pub fn delete<R: Record>(&mut self, rec: &R) -> Result<()> {
        let id = rec.uuid().to_string();
        let account = rec.account_id().map(|a| a.to_string());
        let sql = format!(
            "DELETE FROM {} WHERE id = ?1 AND version = ?2",
            R::KIND.table()
        );
        if self.tx.execute(&sql, params![id, rec.version()])? == 0 {
            return Err(PortalError::not_found(R::KIND, &id));
        }
        self.log(
            R::KIND,
            &id,
            account.as_deref(),
            ChangeOp::Delete,
            rec.version() + 1,
            None,
        )
    }

    /// Records who did what to which record. Audit events are records too,
    /// so they reach staff through the same feed.
    pub fn audit<R: Record>(
        &mut self,
        action: &str,
        rec: &R,
        detail: serde_json::Value,
    ) -> Result<()> {
        let mut event = AuditEvent {
            id: self.new_id::<AuditEventId>(),
            account_id: rec.account_id(),
            actor_id: self.actor.user_id,
            actor_role: self.actor.role,
            action: action.to_owned(),
            entity: R::KIND,
            entity_id: rec.uuid(),
            detail,
            version: 0,
            created_at: self.at,
            updated_at: self.at,
        };
        self.insert(&mut event)
    }

    fn log(
        &self,
        kind: Kind,
        id: &str,
        account: Option<&str>,
        op: ChangeOp,
        version: u64,
        row: Option<&str>,
    ) -> Result<()> {
        let op = match op {
            ChangeOp::Upsert => "upsert",
            ChangeOp::Delete => "delete",
        };
        self.tx.execute(
            "INSERT INTO change_log (kind, entity_id, account_id, op, version, row, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![kind.as_str(), id, account, op, version, row, self.at.to_string()],
        )?;
        Ok(())
    }
}

impl std::ops::Deref for Writer<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        &self.tx
    }
}

fn current_version(conn: &Connection, kind: Kind, id: &str) -> Result<Option<u64>> {
    let sql = format!("SELECT version FROM {} WHERE id = ?1", kind.table());
    Ok(conn.query_row(&sql, [id], |r| r.get(0)).optional()?)
}

/// Parses the `data` column of a record table.
pub fn parse<R: Record>(data: &str) -> Result<R> {
    serde_json::from_str(data).map_err(|source| PortalError::Corrupt {
        kind: R::KIND,
        source,
    })
}

/// One record by id.
pub fn get<R: Record>(conn: &Connection, id: Uuid) -> Result<Option<R>> {
    let sql = format!("SELECT data FROM {} WHERE id = ?1", R::KIND.table());
    let data: Option<String> = conn
        .query_row(&sql, [id.to_string()], |r| r.get(0))
        .optional()?;
    data.as_deref().map(parse).transpose()
}

/// One record by id, or `not_found`.
pub fn require<R: Record>(conn: &Connection, id: Uuid) -> Result<R> {
    get(conn, id)?.ok_or_else(|| PortalError::not_found(R::KIND, id))
}

/// Records selected by `sql`, which must select the `data` column first.
pub fn query<R: Record>(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<R>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map(params, |r| r.get::<_, String>(0))?;
    let mut out = Vec::new();
    for data in rows {
        out.push(parse(&data?)?);
    }
    Ok(out)
}

/// A page of an account's records, newest first, strictly before `before`.
pub fn list_for_account<R: Record>(
    conn: &Connection,
    account: portico_model::AccountId,
    before: Option<Uuid>,
    limit: usize,
) -> Result<Vec<R>> {
    let sql = format!(
        "SELECT data FROM {} WHERE account_id = ?1 AND id < ?2 ORDER BY id DESC LIMIT ?3",
        R::KIND.table()
    );
    query(
        conn,
        &sql,
        params![account.to_string(), before_key(before), limit as i64],
    )
}

/// A page of all records of a kind, newest first, strictly before `before`.
pub fn list_all<R: Record>(
    conn: &Connection,
    before: Option<Uuid>,
    limit: usize,
) -> Result<Vec<R>> {
    let sql = format!(
        "SELECT data FROM {} WHERE id < ?1 ORDER BY id DESC LIMIT ?2",
        R::KIND.table()
    );
    query(conn, &sql, params![before_key(before), limit as i64])
}

/// Upper bound for "ids before": every hyphenated UUID sorts below "g".
fn before_key(before: Option<Uuid>) -> String {
    before.map(|u| u.to_string()).unwrap_or_else(|| "g".into())
}

/// Counts rows of a kind matching an account (e.g. seats held).
pub fn count_for_account(
    conn: &Connection,
    kind: Kind,
    account: portico_model::AccountId,
) -> Result<u32> {
    let sql = format!(
        "SELECT count(*) FROM {} WHERE account_id = ?1",
        kind.table()
    );
    Ok(conn.query_row(&sql, [account.to_string()], |r| r.get(0))?)
}
