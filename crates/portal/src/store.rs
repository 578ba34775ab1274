//! The system of record on embedded SQLite.
//!
//! One writer connection (SQLite allows one writer at a time anyway; holding
//! it in a mutex avoids busy-waiting) and a pool of read-only connections
//! that run in parallel under WAL. Every domain write goes through
//! [`Writer`]: it validates the record, bumps its version, writes it, and
//! appends the change log row in the same transaction. Nothing else writes
//! record tables.

use std::path::Path;
use std::sync::{Arc, Mutex};

use jiff::Timestamp;
use portico_model::wire::ChangeOp;
use portico_model::{AuditEvent, AuditEventId, Kind, Record, Role, TeamId, UserId};
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
    include_str!("../../../migrations/portal/0009_saved_replies.sql"),
    // 0008 landed after 0009: the list's order is the applied order
    // (`user_version`), so it comes last.
    include_str!("../../../migrations/portal/0008_portal.sql"),
    include_str!("../../../migrations/portal/0011_invitation_inviter.sql"),
    CLUSTER_BY_ID,
];

/// Migration 0013: conversations and messages rewritten in id order, so a
/// walk in id order (bootstrap pages, keyset lists) reads the table in its
/// own order. The seed runs it again after writing, see
/// [`Store::cluster_by_id`].
const CLUSTER_BY_ID: &str =
    include_str!("../../../migrations/portal/0013_messages_in_id_order.sql");

pub struct Store {
    /// Shared with the checkpointer, which holds it for a moment to let
    /// the WAL start over.
    writer: Arc<Mutex<Connection>>,
    readers: r2d2::Pool<SqliteConnectionManager>,
    /// Told of every committed transaction's changes, in commit order.
    on_commit: std::sync::RwLock<Option<CommitListener>>,
    /// Dropping this stops the checkpointer thread.
    _checkpointer: std::sync::mpsc::Sender<()>,
}

/// Receives the change-log rows of each committed transaction, in commit
/// order (it is called with the writer still held). The live hub fans
/// changes out from here instead of reading them back from the log.
pub type CommitListener = Arc<dyn Fn(&[RawChange]) + Send + Sync>;

/// One piece of work for [`Store::write_each`].
pub type Work<T> = Box<dyn FnOnce(&mut Writer<'_>) -> Result<T> + Send>;

/// A conversation's team and assignee: what team access is decided on.
pub type ParentScope = (Option<TeamId>, Option<UserId>);

/// A change-log row as stored: the full record, before any redaction.
#[derive(Debug, Clone)]
pub struct RawChange {
    pub seq: i64,
    pub kind: Kind,
    pub id: Uuid,
    pub op: ChangeOp,
    pub version: u64,
    /// The record as stored (JSON text): each exit parses it straight into
    /// its record type to redact it (or, for a viewer who sees all of it,
    /// sends it as it is), so no generic JSON value is built in between.
    pub row: Option<String>,
    pub account_id: Option<String>,
    /// For a message: its conversation's team and assignee as they are now
    /// (a message carries neither; staff with team access see a message
    /// with its conversation, see `policy::in_conversation_scope`).
    pub parent: Option<ParentScope>,
}

/// A conversation's team and assignee as stored (text ids; an unreadable
/// one counts as none, which only ever narrows what team access shows).
pub fn parent_scope(team: Option<String>, assignee: Option<String>) -> ParentScope {
    (
        team.and_then(|t| t.parse().ok()).map(TeamId),
        assignee.and_then(|a| a.parse().ok()).map(UserId),
    )
}

/// Prepared statements kept per connection: every record table has its own
/// insert, update and lookup, and re-parsing SQL showed in write profiles.
const STATEMENT_CACHE: usize = 256;

/// How often the WAL is copied back into the database file. Often: each
/// pass copies and fsyncs what was committed since the last one, and a
/// commit that lands during a big pass waits on the disk with it. Under the
/// live chat benchmark (~55 MB of WAL per second) passes every 50 ms
/// instead of 500 ms halved the stored-change p99 (3.4-4.8 → 1.7-3.1 ms);
/// every 5 s was worse again (docs/benchmarks.md, "Live hub"). A pass with
/// nothing new to copy only reads the WAL index.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(50);

/// WAL size (in 4 KiB frames, so 1 GiB) past which the checkpointer
/// finishes a checkpoint with writers held off, so the WAL starts over. A
/// safety valve for sustained load, set high because holding writers costs
/// two fsyncs: with a 64 MiB valve the live chat benchmark's p99 went from
/// ~16 ms to 150-380 ms on a busy disk.
const RESTART_FRAMES: i64 = 262_144;

/// Checkpoints the WAL from its own connection and thread, so commits never
/// pay for it: SQLite's automatic checkpoint runs inside the commit that
/// crosses the threshold and shows up as write latency spikes.
///
/// A checkpoint running beside a steady stream of commits never catches up
/// with the newest frame, and SQLite only starts the WAL over when a write
/// begins after a *complete* checkpoint: without help the WAL grows for as
/// long as writes keep coming (measured: ~58 MB/s under the live chat
/// benchmark, every commit extending the file; its 24 s pauses between
/// chat turns were not pauses in writing: the AI drafter, behind, kept
/// committing drafts through them). So
/// once the WAL passes
/// [`RESTART_FRAMES`], the checkpointer takes the writer for a moment (the
/// copying is mostly done by then: only the frames since the last pass and
/// two fsyncs remain) and runs a `RESTART` checkpoint, which waits (at most
/// 100 ms) for readers to leave the WAL; the next write starts it over.
fn spawn_checkpointer(
    path: &Path,
    writer: Arc<Mutex<Connection>>,
) -> Result<std::sync::mpsc::Sender<()>> {
    let conn = Connection::open(path)?;
    // Bounds how long a `RESTART` waits for readers while writers are held.
    conn.execute_batch("PRAGMA busy_timeout = 100;")?;
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    // Returns (busy, frames in the WAL).
    let checkpoint = move |mode: &str| -> rusqlite::Result<(bool, i64)> {
        conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |r| {
            Ok((r.get::<_, i64>(0)? != 0, r.get(1)?))
        })
    };
    std::thread::Builder::new()
        .name("sqlite-checkpoint".into())
        .spawn(move || {
            // A long read kept the WAL in use: let it finish before holding
            // writers again.
            let mut no_restart_before = std::time::Instant::now();
            // Ends when the store (and so the sender) is dropped.
            while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                stopped.recv_timeout(CHECKPOINT_EVERY)
            {
                let frames = match checkpoint("PASSIVE") {
                    Ok((_, frames)) => frames,
                    Err(e) => {
                        tracing::warn!(error = %e, "WAL checkpoint failed; will retry");
                        continue;
                    }
                };
                if frames >= RESTART_FRAMES && std::time::Instant::now() >= no_restart_before {
                    let _held = writer.lock().unwrap_or_else(|p| p.into_inner());
                    match checkpoint("RESTART") {
                        Ok((false, _)) => {}
                        Ok((true, _)) => {
                            tracing::info!(frames, "a reader kept the WAL from starting over; retrying in 10 s");
                            no_restart_before = std::time::Instant::now() + std::time::Duration::from_secs(10);
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, frames, "WAL restart checkpoint failed; will retry")
                        }
                    }
                }
            }
        })
        .map_err(|e| PortalError::Conflict(format!("cannot start the checkpoint thread: {e}")))?;
    Ok(stop)
}

/// Lets any thread waiting for this CPU run before the next step of a
/// write (a record written, the commit, the fan-out to live sockets).
///
/// Writes are throughput work; what waits on a busy 2-core node is latency
/// work: socket tasks showing a chat message as it arrives (docs/live.md).
/// The scheduler lets a running thread finish its slice (milliseconds)
/// before a thread that just woke on its CPU gets it, so a socket task that
/// woke behind a chat commit (about 0.4 ms of CPU per message on the CI
/// machine) waited for it, and that was the arrival p99. Yielding at each
/// step bounds the wait to one step (tens of µs): measured in alternated
/// runs, arrival p99 0.8-1.4 ms → 0.3-0.5 ms (docs/benchmarks.md, "the
/// writer gives way"). Unlike a lower priority for the writer (nice,
/// `SCHED_IDLE`), a yield never starves it on a loaded machine: it only
/// moves it behind threads already waiting, and costs one syscall when
/// none is.
fn give_way() {
    std::thread::yield_now();
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
        // `temp_store = MEMORY`: a savepoint's sub-journal (the original of
        // each page it changes) stays in memory instead of a temporary
        // file created and deleted per group commit of several messages.
        writer.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = NORMAL;
             PRAGMA foreign_keys = ON;
             PRAGMA busy_timeout = 5000;
             PRAGMA wal_autocheckpoint = 0;
             PRAGMA temp_store = MEMORY;",
        )?;
        writer.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        migrate(&writer)?;
        let manager = SqliteConnectionManager::file(path).with_init(|c| {
            c.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
            c.execute_batch("PRAGMA busy_timeout = 5000; PRAGMA query_only = ON;")
        });
        let readers = r2d2::Pool::builder()
            .max_size(8)
            .connection_timeout(std::time::Duration::from_secs(10))
            .build(manager)?;
        let writer = Arc::new(Mutex::new(writer));
        Ok(Store {
            _checkpointer: spawn_checkpointer(path, writer.clone())?,
            writer,
            readers,
            on_commit: Default::default(),
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
        let listener = self.on_commit.read().unwrap().clone();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut w = Writer {
            tx,
            at,
            actor,
            committed: listener.as_ref().map(|_| Vec::new()),
        };
        let out = f(&mut w)?;
        w.commit(listener)?;
        Ok(out)
    }

    /// Group commit: runs each piece of work in a savepoint of its own
    /// inside one write transaction, stamped with its own actor and time,
    /// and commits once for all of them. Work that fails rolls back to its
    /// savepoint (its records and change-log rows are gone) and gets its
    /// error in the answer; the others still commit. The listener sees the
    /// whole transaction's changes at once, in `seq` order.
    ///
    /// The outer `Err` means nothing was committed (the transaction could
    /// not begin, roll back to a savepoint, or commit): no work is stored.
    ///
    /// A batch of one piece (most chat batches) runs without a savepoint:
    /// if it fails, the whole transaction rolls back, and it holds nothing
    /// else. A savepoint is not free: SQLite keeps the original of every
    /// page it changes in a sub-journal, and past 64 KiB (16 pages; a chat
    /// message changes about 28) spills it to a temporary file, created,
    /// written and deleted in every transaction (measured: a third of the
    /// chat writer's CPU per message, docs/benchmarks.md "Live hub").
    pub fn write_each<T>(
        &self,
        mut work: Vec<(Actor, Timestamp, Work<T>)>,
    ) -> Result<Vec<Result<T>>> {
        if work.len() == 1 {
            let (actor, at, f) = work.pop().expect("one piece of work");
            let mut failed = None;
            let out = self.write(actor, at, |w| {
                // Any error rolls the transaction back; the piece's own
                // error is its answer, not a failure of the batch.
                f(w).map_err(|e| {
                    failed = Some(e);
                    PortalError::Unavailable
                })
            });
            return match (out, failed) {
                (Ok(out), _) => Ok(vec![Ok(out)]),
                (Err(_), Some(own)) => Ok(vec![Err(own)]),
                (Err(e), None) => Err(e),
            };
        }
        let Some(first_at) = work.first().map(|(_, at, _)| *at) else {
            return Ok(Vec::new());
        };
        self.write(Actor::SYSTEM, first_at, |w| {
            let mut answers = Vec::with_capacity(work.len());
            for (actor, at, f) in work {
                w.actor = actor;
                w.at = at;
                let logged = w.committed.as_ref().map_or(0, Vec::len);
                w.tx.execute_batch("SAVEPOINT work")?;
                match f(w) {
                    Ok(out) => {
                        w.tx.execute_batch("RELEASE work")?;
                        answers.push(Ok(out));
                    }
                    Err(e) => {
                        // Fails (and so fails the batch) if SQLite already
                        // rolled the whole transaction back.
                        w.tx.execute_batch("ROLLBACK TO work; RELEASE work")?;
                        if let Some(changes) = &mut w.committed {
                            changes.truncate(logged);
                        }
                        answers.push(Err(e));
                    }
                }
            }
            Ok(answers)
        })
    }

    /// Sets (or with `None` removes) the listener told of every commit.
    pub fn set_commit_listener(&self, listener: Option<CommitListener>) {
        *self.on_commit.write().unwrap() = listener;
    }

    /// Rewrites conversations and messages in id order (migration 0013's
    /// statements): for the seed, which writes each conversation with its
    /// messages and so out of id order, where a live server appends in id
    /// order (UUIDv7 ids are minted as records are created).
    pub fn cluster_by_id(&self) -> Result<()> {
        self.write_raw(|c| {
            let tx = c.transaction()?;
            tx.execute_batch(CLUSTER_BY_ID)?;
            tx.commit()?;
            Ok(())
        })
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
        // Said first: some rewrite whole tables (0013 takes about 50 s per
        // million messages), and a silent start looks hung.
        if current > 0 {
            tracing::info!(version = i + 1, "applying schema migration");
        }
        let started = std::time::Instant::now();
        let tx = conn.unchecked_transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i + 1)?;
        tx.commit()?;
        tracing::info!(
            version = i + 1,
            ms = started.elapsed().as_millis() as u64,
            "applied schema migration"
        );
    }
    Ok(())
}

/// A write transaction. See [`Store::write`].
pub struct Writer<'c> {
    tx: rusqlite::Transaction<'c>,
    at: Timestamp,
    actor: Actor,
    /// This transaction's change-log rows, kept only when someone listens.
    committed: Option<Vec<RawChange>>,
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
        give_way();
        rec.stamp(1, self.at);
        rec.validate()?;
        let data = serde_json::to_string(rec).expect("records always serialize");
        let id = rec.uuid().to_string();
        let account = rec.account_id().map(|a| a.to_string());
        let sql = format!(
            "INSERT INTO {} (id, account_id, version, data) VALUES (?1, ?2, 1, ?3)",
            R::KIND.table()
        );
        match self
            .tx
            .prepare_cached(&sql)
            .and_then(|mut s| s.execute(params![id, account, data]))
        {
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
        give_way();
        let expected = rec.version();
        rec.stamp(expected + 1, self.at);
        rec.validate()?;
        let data = serde_json::to_string(rec).expect("records always serialize");
        let id = rec.uuid().to_string();
        let account = rec.account_id().map(|a| a.to_string());
        // `account_id` is set only when it changes: SQLite rewrites every
        // index on a column named in `SET`, even to the same value, and a
        // record rarely moves between accounts (one WAL page less per
        // update: each chat message updates its conversation).
        let same_account = format!(
            "UPDATE {} SET version = ?1, data = ?2 WHERE id = ?3 AND version = ?4 AND account_id IS ?5",
            R::KIND.table()
        );
        let mut n = self.tx.prepare_cached(&same_account)?.execute(params![
            expected + 1,
            data,
            id,
            expected,
            account
        ])?;
        if n == 0 {
            let moved = format!(
                "UPDATE {} SET version = ?1, data = ?2, account_id = ?3 WHERE id = ?4 AND version = ?5",
                R::KIND.table()
            );
            n = self.tx.prepare_cached(&moved)?.execute(params![
                expected + 1,
                data,
                account,
                id,
                expected
            ])?;
        }
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
        give_way();
        let id = rec.uuid().to_string();
        let account = rec.account_id().map(|a| a.to_string());
        let sql = format!(
            "DELETE FROM {} WHERE id = ?1 AND version = ?2",
            R::KIND.table()
        );
        if self
            .tx
            .prepare_cached(&sql)?
            .execute(params![id, rec.version()])?
            == 0
        {
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

    /// Commits and tells the listener (still holding the writer, so
    /// listeners see transactions in commit order).
    fn commit(mut self, listener: Option<CommitListener>) -> Result<()> {
        self.attach_parents()?;
        let Writer { tx, committed, .. } = self;
        give_way();
        tx.commit()?;
        if let (Some(listener), Some(changes)) = (listener, committed)
            && !changes.is_empty()
        {
            give_way();
            listener(&changes);
        }
        Ok(())
    }

    /// Gives each message change its conversation's team and assignee as
    /// they stand at the end of this transaction, as the change feed reads
    /// them (`api::sync::read_raw`).
    fn attach_parents(&mut self) -> Result<()> {
        let Some(committed) = &mut self.committed else {
            return Ok(());
        };
        /// The one field of a message row this needs (the rest is skipped).
        #[derive(serde::Deserialize)]
        struct InConversation {
            conversation_id: String,
        }
        for change in committed.iter_mut().filter(|c| c.kind == Kind::Message) {
            let Some(conv) = change
                .row
                .as_deref()
                .and_then(|r| serde_json::from_str::<InConversation>(r).ok())
                .map(|m| m.conversation_id)
            else {
                continue;
            };
            change.parent = self
                .tx
                .prepare_cached("SELECT team_id, assignee_id FROM conversations WHERE id = ?1")?
                .query_row([&conv], |r| Ok(parent_scope(r.get(0)?, r.get(1)?)))
                .optional()?;
        }
        Ok(())
    }

    fn log(
        &mut self,
        kind: Kind,
        id: &str,
        account: Option<&str>,
        op: ChangeOp,
        version: u64,
        row: Option<&str>,
    ) -> Result<()> {
        let op_text = match op {
            ChangeOp::Upsert => "upsert",
            ChangeOp::Delete => "delete",
        };
        self.tx.prepare_cached(
            "INSERT INTO change_log (kind, entity_id, account_id, op, version, row, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?.execute(
            params![kind.as_str(), id, account, op_text, version, row, self.at.to_string()],
        )?;
        if let Some(committed) = &mut self.committed {
            // `seq` is the AUTOINCREMENT rowid just assigned.
            let seq = self.tx.last_insert_rowid();
            committed.push(RawChange {
                seq,
                kind,
                id: id.parse().map_err(|_| {
                    PortalError::Conflict(format!("change {seq} has a malformed id"))
                })?,
                op,
                version,
                row: row.map(str::to_owned),
                account_id: account.map(str::to_owned),
                parent: None,
            });
        }
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
    Ok(conn
        .prepare_cached(&sql)?
        .query_row([id], |r| r.get(0))
        .optional()?)
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
        .prepare_cached(&sql)?
        .query_row([id.to_string()], |r| r.get(0))
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Every row of a table as (rowid order) id, version, data.
    fn rows(c: &Connection, table: &str) -> Vec<(String, i64, String)> {
        c.prepare(&format!(
            "SELECT id, version, data FROM {table} ORDER BY rowid"
        ))
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(|r| r.unwrap())
        .collect()
    }

    /// The schema of a table and its indexes, as SQLite keeps it.
    fn schema(c: &Connection, table: &str) -> Vec<(String, String)> {
        c.prepare("SELECT name, sql FROM sqlite_schema WHERE tbl_name = ?1 AND sql IS NOT NULL ORDER BY name")
            .unwrap()
            .query_map([table], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(|r| r.unwrap())
            .collect()
    }

    /// `.cargo/config.toml` builds SQLite without the page cache shared by
    /// every connection of the process and without the allocation counter:
    /// both are a mutex taken per page or per allocation by every thread.
    #[test]
    fn sqlite_build_has_no_process_wide_page_cache_or_memory_counter() {
        let c = Connection::open_in_memory().unwrap();
        let options: Vec<String> = c
            .prepare("PRAGMA compile_options")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        assert!(
            !options.iter().any(|o| o == "ENABLE_MEMORY_MANAGEMENT"),
            "connections must keep separate page caches (LIBSQLITE3_FLAGS in .cargo/config.toml): {options:?}"
        );
        assert!(
            options.iter().any(|o| o == "DEFAULT_MEMSTATUS=0"),
            "SQLite must not count every allocation under a global mutex (LIBSQLITE3_FLAGS in .cargo/config.toml): {options:?}"
        );
    }

    #[test]
    fn clustering_by_id_keeps_every_row_and_index_and_stores_them_in_id_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("portal.db")).unwrap();
        crate::seed::seed(
            &store,
            crate::seed::SeedSize::TINY,
            "2026-11-15T12:00:00Z".parse().unwrap(),
        )
        .unwrap();
        // Written out of id order, as an import (or a seed before 0013) does.
        store
            .write_raw(|c| {
                for table in ["messages", "conversations"] {
                    c.execute_batch(&format!(
                        "CREATE TEMP TABLE shuffled AS SELECT id, account_id, version, data FROM {table}
                          ORDER BY substr(id, 30) DESC;
                         DELETE FROM {table};
                         INSERT INTO {table} (id, account_id, version, data)
                             SELECT id, account_id, version, data FROM temp.shuffled ORDER BY rowid;
                         DROP TABLE temp.shuffled;"
                    ))?;
                }
                Ok(())
            })
            .unwrap();
        let in_id_order = |rows: &[(String, i64, String)]| rows.windows(2).all(|w| w[0].0 < w[1].0);
        let before = store
            .read(|c| Ok(["messages", "conversations"].map(|t| (rows(c, t), schema(c, t)))))
            .unwrap();
        assert!(
            before.iter().all(|(r, _)| r.len() > 1 && !in_id_order(r)),
            "the test starts from tables out of id order"
        );

        store.cluster_by_id().unwrap();

        let after = store
            .read(|c| Ok(["messages", "conversations"].map(|t| (rows(c, t), schema(c, t)))))
            .unwrap();
        for ((rows_before, schema_before), (rows_after, schema_after)) in before.iter().zip(&after)
        {
            assert!(in_id_order(rows_after), "stored in id order afterwards");
            let mut sorted = rows_before.clone();
            sorted.sort();
            assert_eq!(&sorted, rows_after, "every row kept, byte for byte");
            assert_eq!(
                schema_before, schema_after,
                "the table and its indexes as they were"
            );
        }
        // The generated columns and their indexes answer as before.
        let (conversation, listed): (String, i64) = store
            .read(|c| {
                let conversation: String =
                    c.query_row("SELECT data ->> '$.conversation_id' FROM messages LIMIT 1", [], |r| r.get(0))?;
                let listed = c.query_row(
                    "SELECT count(*) FROM messages INDEXED BY messages_conversation WHERE conversation_id = ?1",
                    [&conversation],
                    |r| r.get(0),
                )?;
                Ok((conversation, listed))
            })
            .unwrap();
        assert!(
            listed > 0,
            "conversation {conversation} lists its messages through the index"
        );
        assert_eq!(
            store
                .read(|c| Ok(c.query_row("PRAGMA integrity_check", [], |r| r.get::<_, String>(0))?))
                .unwrap(),
            "ok"
        );
    }
}
