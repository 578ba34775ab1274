//! Loading the mirror from nothing, and rebuilding a local store that cannot
//! be trusted.
//!
//! Bootstrap: for each kind of [`BOOTSTRAP_KINDS`] (parents first) the
//! engine pages through `GET /v1/sync/bootstrap`. The first page pins the
//! server's snapshot seq; every page commits in one local transaction
//! together with the progress (kind, `after_id`, snapshot), so an
//! interrupted bootstrap resumes at the page it stopped at and a re-fetched
//! page changes nothing (applying keeps the newest version). When every kind
//! is in, the cursor is set to the snapshot and the pull takes over.
//!
//! Rebuild: a store that is corrupt, half-migrated or written by a newer app
//! is detected when it is opened, as far as a few pages tell (header,
//! schema version, the first page of each table and index), and otherwise
//! by the full check of every page that runs after start
//! ([`check_integrity`]); a server that asks for a resync triggers the
//! same. The mirror is only a copy of the server and is thrown away, but
//! the outbox (this desktop's unsent work, and the client id that makes
//! replays safe) is copied out and into the new store, which is built beside
//! the old one and moved into place only when complete.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use portico_model::Kind;
use portico_model::sync::{BOOTSTRAP_KINDS, BootstrapPage};
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use tokio::sync::mpsc;

use crate::engine::{EngineError, Event, Inner, Result, check_protocol};
use crate::mirror::{Columns, LoadRow, Mirror, MirrorError, SCHEMA_VERSION};
use crate::outbox::{self, Saved};
use crate::search;

/// Where an incomplete bootstrap stands.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BootstrapProgress {
    /// The change seq the pull starts from; `None` before the first page.
    pub snapshot: Option<i64>,
    /// The kind being loaded.
    pub kind: Kind,
    /// Kinds fully loaded, of `kinds_total`.
    pub kinds_done: usize,
    pub kinds_total: usize,
    /// Rows loaded so far.
    pub rows: u64,
}

/// What a bootstrap run did.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct BootstrapReport {
    pub pages: usize,
    pub rows: u64,
    pub snapshot: i64,
    /// True when it continued an interrupted bootstrap.
    pub resumed: bool,
    /// Time to load every row (the inbox is usable from then on), and of
    /// that, the time spent waiting for pages and writing them (they
    /// overlap: the next page is fetched while one is written).
    pub load_ms: u64,
    pub wait_ms: u64,
    pub write_ms: u64,
    /// Of `load_ms`: remaking the indexes and triggers and filling the
    /// inbox list rows at the end.
    pub finish_ms: u64,
    /// Rows put in the search index afterwards, and the time it took.
    pub indexed: u64,
    pub index_ms: u64,
}

/// Why the local store was rebuilt.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RebuildReason {
    /// Not a database, or damaged pages.
    Corrupt,
    /// The schema does not match its recorded version.
    HalfMigrated,
    /// Written by a newer app (higher schema version).
    NewerSchema,
    /// The server asked for a resync (history or scope changed).
    Resync,
}

/// A rebuild of the local store, for the UI and the log.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RebuildInfo {
    pub reason: RebuildReason,
    pub detail: String,
    /// Outbox rows carried into the new store.
    pub kept_mutations: usize,
    /// True when the old outbox could only be read in part.
    pub outbox_incomplete: bool,
    /// Where the unreadable store was moved for inspection.
    pub moved_to: Option<PathBuf>,
}

/// The progress row in sync_state (`bootstrap`).
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Stored {
    snapshot: Option<i64>,
    kind_index: usize,
    after_id: Option<String>,
    rows: u64,
    /// Whether this bootstrap wrote each note's mentions with its page. A
    /// bootstrap begun by an app that did not (the field absent) gets them
    /// in one pass at the end instead.
    #[serde(default)]
    mentions_written: bool,
}

fn load(conn: &Connection) -> Result<Option<Stored>> {
    let v: Option<String> = conn
        .query_row(
            "SELECT value FROM sync_state WHERE key = 'bootstrap'",
            [],
            |r| r.get(0),
        )
        .optional()?;
    // An unreadable progress row only costs a fresh start.
    Ok(v.and_then(|v| serde_json::from_str(&v).ok()))
}

fn is_done(conn: &Connection) -> Result<bool> {
    Ok(conn
        .query_row(
            "SELECT 1 FROM sync_state WHERE key = 'bootstrapped'",
            [],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

/// Whether the mirror still needs (the rest of) a bootstrap. A store filled
/// by the plain change-feed pull of earlier versions (a cursor, no
/// bootstrap ever started) is complete already.
pub(crate) fn needed(conn: &Connection, cursor: i64) -> Result<bool> {
    if is_done(conn)? {
        return Ok(false);
    }
    Ok(load(conn)?.is_some() || cursor == 0)
}

/// `Some` while a bootstrap is needed or under way.
pub(crate) fn progress(conn: &Connection) -> Result<Option<BootstrapProgress>> {
    let cursor: i64 = conn
        .query_row(
            "SELECT value FROM sync_state WHERE key = 'cursor'",
            [],
            |r| r.get::<_, String>(0),
        )
        .optional()?
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    if !needed(conn, cursor)? {
        return Ok(None);
    }
    let s = load(conn)?.unwrap_or_default();
    Ok(Some(BootstrapProgress {
        snapshot: s.snapshot,
        kind: BOOTSTRAP_KINDS[s.kind_index.min(BOOTSTRAP_KINDS.len() - 1)],
        kinds_done: s.kind_index.min(BOOTSTRAP_KINDS.len()),
        kinds_total: BOOTSTRAP_KINDS.len(),
        rows: s.rows,
    }))
}

/// A bootstrap page with each row kept as the server's JSON text: it is
/// stored as it came, so it is parsed once (for its id and version) and
/// never rebuilt and serialized again.
type RawPage = BootstrapPage<Box<RawValue>>;

/// What the mirror needs to know of a row besides its text: its key and
/// version, and the fields it keeps as columns ([`crate::mirror::COLUMN_FIELDS`]), taken
/// in the same parse.
#[derive(Deserialize)]
struct RowHead {
    id: uuid::Uuid,
    version: u64,
    #[serde(default)]
    account_id: Option<String>,
    #[serde(default)]
    status: Option<serde_json::Value>,
    #[serde(default)]
    assignee_id: Option<serde_json::Value>,
    #[serde(default)]
    team_id: Option<serde_json::Value>,
    #[serde(default)]
    product_area: Option<serde_json::Value>,
    #[serde(default)]
    conversation_id: Option<serde_json::Value>,
    /// A message's kind (`internal_note`, ...): notes are where mentions
    /// are.
    #[serde(default)]
    kind: Option<serde_json::Value>,
}

impl RowHead {
    fn columns(&self) -> Columns {
        Columns::from_fields(|name| match name {
            "status" => self.status.as_ref(),
            "assignee_id" => self.assignee_id.as_ref(),
            "team_id" => self.team_id.as_ref(),
            "product_area" => self.product_area.as_ref(),
            "conversation_id" => self.conversation_id.as_ref(),
            _ => None,
        })
    }
}

/// Checks a page against what was asked and turns its rows into rows to
/// write. Nothing is written for a page that fails here.
fn check_page(
    page: RawPage,
    kind: Kind,
    snapshot: Option<i64>,
    limit: usize,
) -> Result<Vec<LoadRow>> {
    check_protocol(page.protocol)?;
    let bad = |detail: String| EngineError::Malformed {
        what: "bootstrap",
        detail,
    };
    if page.kind != kind {
        return Err(bad(format!(
            "asked for {} and got {}",
            kind.as_str(),
            page.kind.as_str()
        )));
    }
    if page.snapshot < 0 || snapshot.is_some_and(|s| s != page.snapshot) {
        return Err(bad(format!(
            "snapshot {} where {snapshot:?} was pinned",
            page.snapshot
        )));
    }
    if page.rows.len() > limit {
        return Err(bad(format!(
            "{} rows for a limit of {limit}",
            page.rows.len()
        )));
    }
    if let Some(next) = &page.next_after_id
        && next.parse::<uuid::Uuid>().is_err()
    {
        return Err(bad(format!("next_after_id {next:?} is not an id")));
    }
    let mut rows = Vec::with_capacity(page.rows.len());
    for raw in page.rows {
        if !raw.get().starts_with('{') {
            return Err(bad("a row that is not a JSON object".into()));
        }
        let head: RowHead = serde_json::from_str(raw.get())
            .map_err(|e| bad(format!("a row without a valid id and version: {e}")))?;
        if head.version == 0 {
            return Err(bad(format!("row {} without a valid version", head.id)));
        }
        rows.push(LoadRow {
            kind,
            id: head.id,
            columns: head.columns(),
            account_id: head.account_id,
            version: head.version,
            note: kind == Kind::Message
                && head.kind.as_ref().and_then(serde_json::Value::as_str) == Some("internal_note"),
            data: Box::<str>::from(raw).into(),
        });
    }
    Ok(rows)
}

fn page_url(inner: &Inner, state: &Stored) -> String {
    let kind = BOOTSTRAP_KINDS[state.kind_index];
    let mut url = format!(
        "/v1/sync/bootstrap?kind={}&limit={}",
        kind.as_str(),
        inner.bootstrap_page
    );
    if let Some(a) = &state.after_id {
        url.push_str(&format!("&after_id={a}"));
    }
    if let Some(s) = state.snapshot {
        url.push_str(&format!("&snapshot={s}"));
    }
    url
}

/// How many checked pages may wait for the writer: the fetch task (server,
/// network, parsing) runs this far ahead, so the writer always has a page
/// ready and never waits to be woken between pages, and a page that takes
/// the server longer than usual is absorbed by the queue (about 1.5 MB a
/// page of messages).
const PAGES_AHEAD: usize = 4;

/// A page fetched and checked, its rows ready to write.
struct Checked {
    snapshot: i64,
    scope: String,
    next_after_id: Option<String>,
    rows: Vec<LoadRow>,
}

/// Fetches the page `state` points at and checks it (parsing each row's
/// head): on the fetch task, this work too overlaps the writes.
async fn fetch_checked(inner: Arc<Inner>, state: Stored) -> Result<Checked> {
    let kind = BOOTSTRAP_KINDS[state.kind_index];
    let page = inner
        .api
        .get::<RawPage>(&page_url(&inner, &state), "bootstrap")
        .await?;
    let (snapshot, scope, next_after_id) = (
        page.snapshot,
        page.scope.clone(),
        page.next_after_id.clone(),
    );
    let rows = check_page(page, kind, state.snapshot, inner.bootstrap_page)?;
    Ok(Checked {
        snapshot,
        scope,
        next_after_id,
        rows,
    })
}

/// A checked page and the progress to store with it.
struct Fetched {
    page: Checked,
    progress: Stored,
}

/// Where the bootstrap stands once `page`, fetched at `state`, is written.
/// The snapshot is pinned by the first page, so the next request is known
/// before this page is written.
fn advance(state: &Stored, page: &Checked) -> Stored {
    let mut next = state.clone();
    next.snapshot = Some(page.snapshot);
    next.rows += page.rows.len() as u64;
    match &page.next_after_id {
        Some(a) => next.after_id = Some(a.clone()),
        None => {
            next.kind_index += 1;
            next.after_id = None;
        }
    }
    next
}

/// Fetches every page from `state` on, in order, into `pages`; stops at the
/// first error (sent on as the last item) or when the writer is gone.
async fn fetch_all(inner: Arc<Inner>, mut state: Stored, pages: mpsc::Sender<Result<Fetched>>) {
    while state.kind_index < BOOTSTRAP_KINDS.len() {
        let page = match fetch_checked(inner.clone(), state.clone()).await {
            Ok(page) => page,
            Err(e) => {
                let _ = pages.send(Err(e)).await;
                return;
            }
        };
        let progress = advance(&state, &page);
        state = progress.clone();
        if pages.send(Ok(Fetched { page, progress })).await.is_err() {
            return;
        }
    }
}

/// The fetch task; dropped (the load failed or was abandoned), it stops.
struct Fetcher(tokio::task::JoinHandle<()>);

impl Drop for Fetcher {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What the writer did, for the report.
#[derive(Default)]
struct Written {
    /// Handed back for the end step's commit.
    checkpointer: Option<Checkpointer>,
    progress: Stored,
    pages: usize,
    rows: u64,
    wait_ms: u64,
    write_ms: u64,
}

/// Writes the pages as they come, each in one transaction with its
/// progress, on a thread of its own (blocking). Returns when the fetch task
/// has sent the last page; an error (the fetch's or the store's) ends it
/// with the pages before it committed.
fn write_all(
    inner: &Inner,
    mut progress: Stored,
    mut pages: mpsc::Receiver<Result<Fetched>>,
    checkpointer: Option<Checkpointer>,
) -> Result<Written> {
    let mut done = Written::default();
    while progress.kind_index < BOOTSTRAP_KINDS.len() {
        let waited = std::time::Instant::now();
        let fetched = pages
            .blocking_recv()
            .ok_or_else(|| EngineError::Local("fetching the bootstrap pages stopped".into()))??;
        done.wait_ms += waited.elapsed().as_millis() as u64;
        let Fetched {
            page: Checked { scope, rows, .. },
            progress: next,
        } = fetched;
        let started = std::time::Instant::now();
        {
            let mut db = inner.db();
            let tx = db.mirror.conn_mut().transaction()?;
            Mirror::load_rows_in(&tx, &rows)?;
            set_state(
                &tx,
                "bootstrap",
                &serde_json::to_string(&next).expect("progress serializes"),
            )?;
            // The scope the rows were shaped for; pulls send it back.
            set_state(&tx, "scope", &scope)?;
            if BOOTSTRAP_KINDS.get(next.kind_index) == Some(&Kind::Message)
                && next.kind_index > progress.kind_index
            {
                remake_before_messages(&tx)?;
            }
            tx.commit()?;
            if let Some(c) = &checkpointer {
                c.after_commit(db.mirror.conn())?;
            }
        }
        done.write_ms += started.elapsed().as_millis() as u64;
        // A page holds one kind and each id once (the server's primary
        // key), so its ids go out as they are: grouping them through
        // `Inner::emit_records` sorted every page, 0.26 s of a 1M-row load.
        if !rows.is_empty() {
            inner.emit(Event::RecordsChanged {
                kind: BOOTSTRAP_KINDS[progress.kind_index],
                ids: rows.iter().map(|r| r.id).collect(),
            });
        }
        progress = next;
        done.pages += 1;
        done.rows += rows.len() as u64;
        inner.emit_status();
    }
    done.progress = progress;
    done.checkpointer = checkpointer;
    Ok(done)
}

fn set_state(tx: &Connection, key: &str, value: &str) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO sync_state (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )?
    .execute([key, value])?;
    Ok(())
}

/// Page cache during a bootstrap and a search index build, in KiB as
/// SQLite takes it (negative): 64 MiB, against SQLite's default of 2 MB.
pub(crate) const BULK_CACHE_KIB: i64 = -65_536;

/// SQLite's default page cache (2 MB), put back after a bulk step.
pub(crate) const DEFAULT_CACHE_KIB: i64 = -2_000;

/// SQLite's default automatic checkpoint (every 1,000 pages of log), put
/// back after a bootstrap.
const DEFAULT_AUTOCHECKPOINT: i64 = 1_000;

/// Log size (in 4 KiB frames, so 64 MiB) past which the bootstrap's writer
/// finishes the copy itself between two pages, so that the log starts over
/// instead of growing with the load. With no limit the log held the whole
/// load (749 MB at 1M messages): a checkpoint running beside a steady
/// stream of commits never catches up with the newest one, and SQLite only
/// starts the log over at a write after a checkpoint that did.
const WAL_RESTART_FRAMES: i64 = 16_384;

/// Copies the write-ahead log into the database file from a connection and
/// thread of its own while the bootstrap writes, woken after each page's
/// commit. SQLite's automatic checkpoint runs inside the commit that
/// crosses its threshold, on the writer's path: the bootstrap's commits
/// took as long as its inserts (1.6 s each at 1M messages), most of it
/// copying and syncing. Now the writer only appends to the log, and the
/// copying overlaps its next pages (docs/benchmarks.md, "Desktop
/// bootstrap"). Dropped, the thread finishes the copy it was asked for
/// and ends.
struct Checkpointer {
    wake: std::sync::mpsc::SyncSender<()>,
    /// Frames in the log when the thread last copied it.
    frames: Arc<std::sync::atomic::AtomicI64>,
    /// [`WAL_RESTART_FRAMES`], smaller in tests.
    restart_frames: i64,
}

impl Checkpointer {
    /// Turns the writer's automatic checkpoint off and starts the thread,
    /// whose handle goes to `copying` (waited for before the store's file
    /// is replaced: the thread's connection must not outlive it); `None`
    /// for a store without a file (in memory, no log).
    fn start(
        writer: &Connection,
        copying: &mut Option<std::thread::JoinHandle<()>>,
    ) -> Result<Option<Checkpointer>> {
        let Some(path) = writer.path().filter(|p| !p.is_empty()) else {
            return Ok(None);
        };
        // One thread at a time on the file.
        if let Some(earlier) = copying.take() {
            let _ = earlier.join();
        }
        let conn = Connection::open(path)?;
        // One wake-up waiting is enough: a checkpoint copies everything
        // committed before it starts.
        let (wake, woken) = std::sync::mpsc::sync_channel::<()>(1);
        let frames = Arc::new(std::sync::atomic::AtomicI64::new(0));
        let seen = frames.clone();
        let thread = std::thread::Builder::new()
            .name("bootstrap-checkpoint".into())
            .spawn(move || {
                while woken.recv().is_ok() {
                    // (busy, frames in the log, frames copied)
                    match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get(1)) {
                        Ok(n) => seen.store(n, std::sync::atomic::Ordering::Relaxed),
                        // The next page's wake-up tries again; the writer's
                        // restart below copies whatever is left.
                        Err(e) => tracing::warn!(error = %e, "bootstrap WAL checkpoint failed"),
                    }
                }
            })
            .map_err(|e| EngineError::Local(format!("cannot start the checkpoint thread: {e}")))?;
        *copying = Some(thread);
        writer.pragma_update(None, "wal_autocheckpoint", 0)?;
        Ok(Some(Checkpointer {
            wake,
            frames,
            restart_frames: WAL_RESTART_FRAMES,
        }))
    }

    /// After each commit of the writer (outside any transaction): wakes the
    /// thread, or once the log has grown past [`WAL_RESTART_FRAMES`]
    /// finishes the copy on the writer (the thread has done most of it) so
    /// that the next page starts the log over.
    fn after_commit(&self, writer: &Connection) -> Result<()> {
        if self.frames.load(std::sync::atomic::Ordering::Relaxed) >= self.restart_frames {
            // Busy (the thread is copying) is fine: the next page tries again.
            writer.query_row("PRAGMA wal_checkpoint(RESTART)", [], |_| Ok(()))?;
            self.frames.store(0, std::sync::atomic::Ordering::Relaxed);
        } else {
            self.wake();
        }
        Ok(())
    }

    /// Asks for a copy of everything committed so far (unless one is
    /// waiting already).
    fn wake(&self) {
        let _ = self.wake.try_send(());
    }
}

/// An index or trigger on `records`, kept aside during a bootstrap.
#[derive(Debug, Serialize, Deserialize)]
struct Derived {
    kind: String,
    name: String,
    sql: String,
}

/// Drops the indexes and triggers on `records` for a bulk load, keeping
/// their definitions in sync_state (so an interrupted load still restores
/// them). Each of them costs every written row: on the benchmark the
/// secondary index on (kind, account_id) alone took as long as writing the
/// rows, and calling the triggers (even those whose condition is false)
/// another third; building the indexes once after, by sorting, costs a
/// tenth of that (figures in docs/benchmarks.md).
fn suspend_derived(tx: &Connection) -> Result<()> {
    let saved: Option<String> = tx
        .query_row(
            "SELECT value FROM sync_state WHERE key = 'derived'",
            [],
            |r| r.get(0),
        )
        .optional()?;
    if saved.is_some() {
        // Resuming: set aside already. Whatever a migration made again in
        // between (it recreates the indexes and triggers of `records`) is
        // set aside again; the saved definitions still restore it.
        let again: Vec<(String, String)> = tx
            .prepare(
                "SELECT type, name FROM sqlite_schema
                  WHERE tbl_name = 'records' AND type IN ('index', 'trigger') AND sql IS NOT NULL",
            )?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        for (kind, name) in again {
            drop_derived(tx, &kind, &name)?;
        }
        return Ok(());
    }
    let derived: Vec<Derived> = tx
        .prepare(
            "SELECT type, name, sql FROM sqlite_schema
              WHERE tbl_name = 'records' AND type IN ('index', 'trigger') AND sql IS NOT NULL
              ORDER BY type, name",
        )?
        .query_map([], |r| {
            Ok(Derived {
                kind: r.get(0)?,
                name: r.get(1)?,
                sql: r.get(2)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    set_state(
        tx,
        "derived",
        &serde_json::to_string(&derived).expect("definitions serialize"),
    )?;
    for d in &derived {
        drop_derived(tx, &d.kind, &d.name)?;
    }
    Ok(())
}

fn drop_derived(tx: &Connection, kind: &str, name: &str) -> Result<()> {
    let what = if kind == "index" { "INDEX" } else { "TRIGGER" };
    tx.execute_batch(&format!("DROP {what} \"{}\"", name.replace('"', "\"\"")))?;
    Ok(())
}

/// The definitions [`suspend_derived`] set aside, if any.
fn saved_derived(tx: &Connection) -> Result<Option<Vec<Derived>>> {
    let saved: Option<String> = tx
        .query_row(
            "SELECT value FROM sync_state WHERE key = 'derived'",
            [],
            |r| r.get(0),
        )
        .optional()?;
    saved
        .map(|saved| {
            serde_json::from_str(&saved).map_err(|e| {
                EngineError::Local(format!("the saved store schema is unreadable: {e}"))
            })
        })
        .transpose()
}

/// Makes one set-aside index or trigger again, unless it is there already
/// (made before the messages, or by a migration that ran in between).
fn remake(tx: &Connection, d: &Derived) -> Result<()> {
    let exists = tx
        .query_row(
            "SELECT 1 FROM sqlite_schema WHERE type = ?1 AND name = ?2",
            [&d.kind, &d.name],
            |_| Ok(()),
        )
        .optional()?
        .is_some();
    if !exists {
        tx.execute_batch(&d.sql)?;
    }
    Ok(())
}

/// Indexes on `records` that leave the messages out (migration 0006), made
/// again when the kinds before the messages are in: then they sort the
/// 125k records of those kinds, not a table a million messages larger (at
/// the end they scan every row to find those), and a message written
/// afterwards costs them only their condition. A bootstrap resumed after
/// this point sets them aside again and makes them at the end.
const BEFORE_MESSAGES: [&str; 1] = ["records_account"];

fn remake_before_messages(tx: &Connection) -> Result<()> {
    for d in saved_derived(tx)?.unwrap_or_default() {
        if d.kind == "index" && BEFORE_MESSAGES.contains(&d.name.as_str()) {
            remake(tx, &d)?;
        }
    }
    Ok(())
}

/// Puts back what [`suspend_derived`] dropped and fills what the triggers
/// would have kept (each account's plan, the inbox list rows, and the
/// mentions when the load did not write them) in one pass.
/// The search index is rebuilt separately, in steps.
fn restore_derived(tx: &Connection, mentions_written: bool) -> Result<()> {
    let Some(derived) = saved_derived(tx)? else {
        return Ok(());
    };
    for d in &derived {
        remake(tx, d)?;
    }
    tx.execute_batch(
        "DELETE FROM sync_state WHERE key = 'derived';
         INSERT INTO account_plan_refresh (account_id)
             SELECT DISTINCT account_id FROM records
              WHERE kind = 'subscription' AND account_id IS NOT NULL;
         DELETE FROM inbox;",
    )?;
    // The list rows are written with the inbox's own indexes set aside and
    // those built after by sorting: five wide indexes kept row by row over
    // 100k conversations outgrow the page cache (2.0 s of the end step on
    // the benchmark, most of it spilling).
    let indexes: Vec<(String, String)> = tx
        .prepare(
            "SELECT name, sql FROM sqlite_schema
              WHERE tbl_name = 'inbox' AND type = 'index' AND sql IS NOT NULL",
        )?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    for (name, _) in &indexes {
        drop_derived(tx, "index", name)?;
    }
    // One pass over the conversations (migration 0007), not the
    // `inbox_refresh` trigger once per conversation.
    tx.execute_batch(
        "INSERT INTO inbox (id, account_id, status, priority_rank, updated_ms, assignee_id,
                            team_id, channel, product_area, plan_code, sla_due_ms)
         SELECT id, account_id, status, priority_rank, updated_ms, assignee_id,
                team_id, channel, product_area, plan_code, sla_due_ms
           FROM inbox_source;",
    )?;
    for (_, sql) in &indexes {
        tx.execute_batch(sql)?;
    }
    // The mentions were written with each note's page (a pass over every
    // message here cost 0.6-1.2 s of the end step at 1M messages); only a
    // bootstrap begun by an app that did not write them gets the pass.
    if mentions_written {
        return Ok(());
    }
    tx.execute_batch(
        "DELETE FROM mentions;
         -- instr first: a byte search rules out the messages that are not
         -- notes without parsing their JSON (a million on the benchmark).
         INSERT INTO mentions (user_id, message_id)
             SELECT DISTINCT j.value, r.id FROM records r, json_each(r.data, '$.mentions') j
              WHERE r.kind = 'message'
                AND instr(r.data, '\"internal_note\"') > 0
                AND r.data ->> '$.kind' = 'internal_note'
                AND j.type = 'text';",
    )?;
    Ok(())
}

/// Loads every kind, resuming a bootstrap that was interrupted.
///
/// Built for speed on a fresh store: the indexes and triggers on `records`
/// are dropped for the load and made again at the end, search indexing is
/// suspended (the index is rebuilt once afterwards, in steps, see
/// [`crate::engine::Engine::sync_now`]), rows are written as the server's
/// text with the version guard inside the insert, and pages are written one
/// after the other on a blocking thread while a task fetches and checks the
/// next ones, up to [`PAGES_AHEAD`] ahead; the log is copied into the
/// database file by a thread of its own ([`Checkpointer`]), not inside the
/// commits. Inbox lists fill when the load completes; until then the status
/// shows its progress.
pub(crate) async fn run(inner: &Arc<Inner>) -> Result<BootstrapReport> {
    // A bigger page cache for the load: the inserts, and above all the
    // sorts that remake the indexes at the end, spill far less.
    inner
        .db()
        .mirror
        .conn()
        .pragma_update(None, "cache_size", BULK_CACHE_KIB)?;
    let loaded = load_all(inner).await;
    // Whether it completed or not, the connection's usual settings come
    // back: the desktop's memory budget, and commits that checkpoint.
    let db = inner.db();
    db.mirror
        .conn()
        .pragma_update(None, "cache_size", DEFAULT_CACHE_KIB)?;
    db.mirror
        .conn()
        .pragma_update(None, "wal_autocheckpoint", DEFAULT_AUTOCHECKPOINT)?;
    loaded
}

async fn load_all(inner: &Arc<Inner>) -> Result<BootstrapReport> {
    let started = std::time::Instant::now();
    let (state, checkpointer) = {
        let mut db = inner.db();
        let db = &mut *db;
        let checkpointer = Checkpointer::start(db.mirror.conn(), &mut db.copying)?;
        let tx = db.mirror.conn_mut().transaction()?;
        search::suspend_indexing_in(&tx)?;
        suspend_derived(&tx)?;
        let state = load(&tx)?.unwrap_or(Stored {
            mentions_written: true,
            ..Stored::default()
        });
        tx.commit()?;
        (state, checkpointer)
    };
    let mut report = BootstrapReport {
        resumed: state.snapshot.is_some(),
        ..BootstrapReport::default()
    };
    // Pages are fetched and checked on a task of their own, up to
    // PAGES_AHEAD ahead, and written one after the other on a blocking
    // thread: neither waits for the other as long as the queue holds a page.
    let (queue, pages) = mpsc::channel(PAGES_AHEAD);
    let _fetcher = Fetcher(tokio::spawn(fetch_all(inner.clone(), state.clone(), queue)));
    let writer = inner.clone();
    let written =
        tokio::task::spawn_blocking(move || write_all(&writer, state, pages, checkpointer))
            .await
            .map_err(|e| {
                EngineError::Local(format!("writing the bootstrap pages stopped: {e}"))
            })??;
    report.pages = written.pages;
    report.rows = written.rows;
    report.wait_ms = written.wait_ms;
    report.write_ms = written.write_ms;
    let state = written.progress;
    let snapshot = state.snapshot.unwrap_or(0);
    let finishing = std::time::Instant::now();
    {
        let mut db = inner.db();
        let tx = db.mirror.conn_mut().transaction()?;
        restore_derived(&tx, state.mentions_written)?;
        set_state(&tx, "cursor", &snapshot.to_string())?;
        set_state(&tx, "bootstrapped", &snapshot.to_string())?;
        tx.execute("DELETE FROM sync_state WHERE key = 'bootstrap'", [])?;
        tx.commit()?;
    }
    // The new indexes are copied beside the search index build that comes
    // next, instead of in this commit; then the thread ends.
    if let Some(c) = written.checkpointer {
        c.wake();
    }
    report.snapshot = snapshot;
    report.finish_ms = finishing.elapsed().as_millis() as u64;
    inner.emit_status();
    inner.emit(Event::Bootstrapped { rows: report.rows });
    report.load_ms = started.elapsed().as_millis() as u64;
    tracing::info!(
        pages = report.pages,
        rows = report.rows,
        snapshot,
        ms = report.load_ms,
        "bootstrap complete; the search index is built next"
    );
    Ok(report)
}

// ----- the local store's health and rebuild -----------------------------

/// `path` with a suffix appended to the file name (`inbox.db` → `inbox.db-x`).
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn remove_db_files(path: &Path) -> std::io::Result<()> {
    for p in [
        path.to_path_buf(),
        sibling(path, "-wal"),
        sibling(path, "-shm"),
    ] {
        match std::fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn io(what: &str, e: std::io::Error) -> EngineError {
    EngineError::Local(format!("{what}: {e}"))
}

/// Tables every store of this schema has; a store missing one is
/// half-migrated.
const TABLES: [&str; 4] = ["records", "tombstones", "sync_state", "outbox"];

/// Errors that say nothing about the file's content: it is busy (another
/// instance holds it), unreadable for permissions, or the disk failed. They
/// fail the open instead of triggering a rebuild, which would throw away a
/// healthy store (and another instance's work) for a passing condition.
fn transient(e: &rusqlite::Error) -> bool {
    use rusqlite::ErrorCode::*;
    matches!(
        e.sqlite_error_code(),
        Some(
            DatabaseBusy
                | DatabaseLocked
                | CannotOpen
                | PermissionDenied
                | ReadOnly
                | SystemIoFailure
                | DiskFull
                | OutOfMemory
        )
    )
}

/// Why a file cannot be used: a reason to rebuild, or a condition that
/// should fail the open and leave the file alone.
enum Unusable {
    Rebuild(RebuildReason, String),
    Fail(EngineError),
}

/// Errors that say the file's content is damaged.
fn damaged(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase)
    )
}

fn classify(e: rusqlite::Error, otherwise: RebuildReason) -> Unusable {
    if transient(&e) {
        Unusable::Fail(EngineError::Local(format!(
            "cannot open the local store: {e}"
        )))
    } else {
        let reason = if damaged(&e) {
            RebuildReason::Corrupt
        } else {
            otherwise
        };
        Unusable::Rebuild(reason, e.to_string())
    }
}

/// Whether the file at `path` can be opened as a store of this app, judged
/// from what a start can afford to read whatever the store's size: the
/// header (a file that is not a database), the schema version (a newer
/// app's file) and the first entry of every table and index (a damaged
/// root page), a few hundred pages at most (2 ms at 100k conversations). Damage deeper in the file is
/// found by [`check_integrity`], which reads every page and runs in the
/// background once the inbox is on screen: at 100k conversations it reads
/// 2 GB, seconds of work, more than the whole start-up budget
/// (docs/benchmarks.md, "Desktop app: cold start").
fn check_file(path: &Path) -> Result<(), Unusable> {
    if !path.exists() {
        return Ok(());
    }
    let corrupt = |e| classify(e, RebuildReason::Corrupt);
    let conn =
        Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE).map_err(corrupt)?;
    // Closing the last connection checkpoints the write-ahead log left by a
    // crash, and that syncs the file: up to a second at start when the disk
    // is still writing the file back. The store's own connection, opened
    // next, checkpoints in its time.
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
        true,
    )
    .map_err(corrupt)?;
    let version: usize = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(corrupt)?;
    if version > SCHEMA_VERSION {
        return Err(Unusable::Rebuild(
            RebuildReason::NewerSchema,
            format!("schema version {version}, this app knows up to {SCHEMA_VERSION}"),
        ));
    }
    probe_tables(&conn)
}

/// Reads the first entry of every table and index: each read walks from
/// the b-tree's root page down to its first leaf, so a damaged root (the
/// page every query of that table or index starts from) is found now, in
/// microseconds, rather than by the first screen's queries. Each read is
/// pinned to its b-tree: `NOT INDEXED` for a table with rowids, its primary
/// key order for one without (the planner would otherwise read a smaller
/// covering index instead), `INDEXED BY` for an index (partial indexes are
/// left to the full check: a query must repeat their condition to use them).
fn probe_tables(conn: &Connection) -> Result<(), Unusable> {
    let damage = |e: rusqlite::Error| -> Result<(), Unusable> {
        if damaged(&e) || transient(&e) {
            Err(classify(e, RebuildReason::Corrupt))
        } else {
            // A probe the planner cannot run says nothing about the file.
            tracing::warn!(error = %e, "a start-time probe of the local store did not run");
            Ok(())
        }
    };
    let quote = |name: &str| format!("\"{}\"", name.replace('"', "\"\""));
    let names = |sql: &str, arg: &str| -> rusqlite::Result<Vec<(String, bool)>> {
        conn.prepare(sql)?
            .query_map([arg], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect()
    };
    let tables = match names(
        "SELECT name, wr FROM pragma_table_list WHERE schema = ?1 AND type = 'table'
            AND name NOT LIKE 'sqlite_%'",
        "main",
    ) {
        Ok(t) => t,
        Err(e) => return damage(e),
    };
    for (table, without_rowid) in tables {
        let mut probes = Vec::new();
        if without_rowid {
            match names(
                "SELECT name, 0 FROM pragma_table_info(?1) WHERE pk > 0 ORDER BY pk",
                &table,
            ) {
                Ok(pk) => probes.push(format!(
                    "SELECT * FROM {} ORDER BY {} LIMIT 1",
                    quote(&table),
                    pk.iter()
                        .map(|(c, _)| quote(c))
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
                Err(e) => damage(e)?,
            }
        } else {
            probes.push(format!(
                "SELECT * FROM {} NOT INDEXED LIMIT 1",
                quote(&table)
            ));
        }
        match names(
            "SELECT name, partial FROM pragma_index_list(?1) WHERE origin != 'pk' OR ?1 IN
                (SELECT name FROM pragma_table_list WHERE wr = 0)",
            &table,
        ) {
            Ok(indexes) => probes.extend(indexes.iter().filter(|(_, partial)| !partial).map(
                |(index, _)| {
                    format!(
                        "SELECT 1 FROM {} INDEXED BY {} LIMIT 1",
                        quote(&table),
                        quote(index)
                    )
                },
            )),
            Err(e) => damage(e)?,
        }
        for probe in probes {
            if let Err(e) = conn.query_row(&probe, [], |_| Ok(())).optional() {
                damage(e)?;
            }
        }
    }
    Ok(())
}

/// Lines of `quick_check`'s verdict kept for the log and the UI.
const VERDICT_LINES: usize = 10;

/// The full check of the store at `path`: every page read and checked
/// (`PRAGMA quick_check`: b-tree structure, free space, record formats;
/// not the agreement of indexes with their tables that `integrity_check`
/// adds by reading the file again per index). It runs on a connection of
/// its own and only reads, so the app keeps reading and writing meanwhile
/// (the write-ahead log: the check sees the store as it was when it
/// began). `Ok(None)`: sound. `Ok(Some(detail))`: damaged, saying where.
/// `Err`: the check could not run (busy, disk error, anything but damage),
/// which says nothing about the content and must not throw the store away.
pub(crate) fn check_integrity(path: &Path) -> Result<Option<String>> {
    let verdict_of = |e: rusqlite::Error| {
        if damaged(&e) {
            Ok(Some(e.to_string()))
        } else {
            Err(EngineError::Local(format!(
                "cannot check the local store: {e}"
            )))
        }
    };
    let conn = match Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY) {
        Ok(c) => c,
        Err(e) => return verdict_of(e),
    };
    let verdict = conn
        .prepare(&format!("PRAGMA quick_check({VERDICT_LINES})"))
        .and_then(|mut s| s.query_map([], |r| r.get::<_, String>(0))?.collect());
    let lines: Vec<String> = match verdict {
        Ok(lines) => lines,
        Err(e) => return verdict_of(e),
    };
    Ok((lines != ["ok"]).then(|| lines.join("; ")))
}

/// After migrating: every table of the schema must be there, or the file's
/// version number lies (half-migrated).
fn check_tables(conn: &Connection) -> Result<(), Unusable> {
    for table in TABLES {
        let present = conn
            .query_row(
                "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?1",
                [table],
                |_| Ok(()),
            )
            .optional()
            .map_err(|e| classify(e, RebuildReason::Corrupt))?
            .is_some();
        if !present {
            return Err(Unusable::Rebuild(
                RebuildReason::HalfMigrated,
                format!("the {table} table is missing"),
            ));
        }
    }
    Ok(())
}

/// Finishes or discards a rebuild that was interrupted (the app stopped
/// between building the new store and moving it into place).
fn finish_interrupted(path: &Path) -> Result<()> {
    let tmp = sibling(path, ".rebuild");
    if !tmp.exists() {
        return Ok(());
    }
    let complete = Connection::open_with_flags(&tmp, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .and_then(|c| {
            c.query_row(
                "SELECT 1 FROM sync_state WHERE key = 'rebuild_complete'",
                [],
                |_| Ok(()),
            )
            .optional()
        })
        .ok()
        .flatten()
        .is_some();
    if complete && !path.exists() {
        std::fs::rename(&tmp, path).map_err(|e| io("moving the rebuilt store into place", e))?;
    } else {
        remove_db_files(&tmp).map_err(|e| io("removing an unfinished rebuild", e))?;
    }
    Ok(())
}

/// Opens the store at `path`, rebuilding it (keeping the outbox) when it
/// cannot be used as it is.
pub(crate) fn open_store(path: &Path) -> Result<(Mirror, Option<RebuildInfo>)> {
    let started = std::time::Instant::now();
    finish_interrupted(path)?;
    let problem = match check_file(path) {
        // A migration that fails, or a table missing after migrating, means
        // the schema is not what its version number says.
        Ok(()) => match Mirror::open(path) {
            Ok(m) => match check_tables(m.conn()) {
                Ok(()) => {
                    let ms = started.elapsed().as_millis() as u64;
                    tracing::info!(ms, "local store opened");
                    return Ok((m, None));
                }
                Err(p) => p,
            },
            Err(MirrorError::Sqlite(e)) => classify(e, RebuildReason::HalfMigrated),
            Err(e) => Unusable::Rebuild(RebuildReason::HalfMigrated, e.to_string()),
        },
        Err(p) => p,
    };
    let (reason, detail) = match problem {
        Unusable::Rebuild(reason, detail) => (reason, detail),
        Unusable::Fail(e) => return Err(e),
    };
    tracing::warn!(?reason, %detail, "local store unusable; rebuilding it");
    let saved = match Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY) {
        Ok(c) => outbox::save(&c),
        Err(_) => Saved {
            incomplete: true,
            ..Saved::default()
        },
    };
    let (mirror, info) = replace_store(path, saved, reason, detail, true)?;
    Ok((mirror, Some(info)))
}

/// Builds an empty store holding `saved` beside `path`, then moves it into
/// place; the old file is kept as `<path>.bad` when `keep_old`, else removed.
/// The caller must have closed its connection to the old file.
pub(crate) fn replace_store(
    path: &Path,
    saved: Saved,
    reason: RebuildReason,
    detail: String,
    keep_old: bool,
) -> Result<(Mirror, RebuildInfo)> {
    let tmp = sibling(path, ".rebuild");
    remove_db_files(&tmp).map_err(|e| io("clearing an old rebuild", e))?;
    {
        let mut fresh = Mirror::open(&tmp)?;
        let tx = fresh.conn_mut().transaction()?;
        outbox::restore(&tx, &saved)?;
        tx.execute(
            "INSERT INTO sync_state (key, value) VALUES ('rebuild_complete', '1')",
            [],
        )?;
        tx.commit()?;
        // Dropping the connection checkpoints the WAL into the file.
    }
    let moved_to = if keep_old && path.exists() {
        let bad = sibling(path, ".bad");
        remove_db_files(&bad).map_err(|e| io("clearing an old copy", e))?;
        std::fs::rename(path, &bad).map_err(|e| io("moving the damaged store aside", e))?;
        for ext in ["-wal", "-shm"] {
            let _ = std::fs::rename(sibling(path, ext), sibling(&bad, ext));
        }
        Some(bad)
    } else {
        None
    };
    // The old write-ahead log belongs to the old file: left behind, SQLite
    // would replay it into the new one.
    remove_db_files(path).map_err(|e| io("removing the old store", e))?;
    std::fs::rename(&tmp, path).map_err(|e| io("moving the rebuilt store into place", e))?;
    let mirror = Mirror::open(path)?;
    mirror
        .conn()
        .execute("DELETE FROM sync_state WHERE key = 'rebuild_complete'", [])?;
    let info = RebuildInfo {
        reason,
        detail,
        kept_mutations: saved.rows.len(),
        outbox_incomplete: saved.incomplete,
        moved_to,
    };
    tracing::warn!(
        ?info,
        "local store rebuilt; it reloads from the server on the next sync"
    );
    Ok((mirror, info))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sqlite(code: std::ffi::c_int) -> rusqlite::Error {
        rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None)
    }

    #[test]
    fn the_bootstrap_log_starts_over_instead_of_holding_the_whole_load() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("inbox.db");
        let mut conn = Connection::open(&path).unwrap();
        conn.execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t (v BLOB NOT NULL);")
            .unwrap();
        let mut copying = None;
        let mut checkpointer = Checkpointer::start(&conn, &mut copying)
            .unwrap()
            .expect("a store in a file has a log to copy");
        let automatic: i64 = conn
            .query_row("PRAGMA wal_autocheckpoint", [], |r| r.get(0))
            .unwrap();
        assert_eq!(automatic, 0, "commits no longer copy the log themselves");
        // 1 MiB of log before the writer finishes a copy; 32 MiB written.
        checkpointer.restart_frames = 256;
        for _ in 0..200 {
            let tx = conn.transaction().unwrap();
            for _ in 0..20 {
                tx.execute("INSERT INTO t (v) VALUES (zeroblob(8192))", [])
                    .unwrap();
            }
            tx.commit().unwrap();
            checkpointer.after_commit(&conn).unwrap();
        }
        let log = std::fs::metadata(sibling(&path, "-wal")).unwrap().len();
        assert!(
            log < 16 << 20,
            "the log holds {log} bytes of a 32 MiB load: it never started over"
        );
        let rows: i64 = conn
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 4_000, "every committed row is there");
        drop(checkpointer);
        copying
            .expect("the thread's handle is kept")
            .join()
            .expect("the thread ends once the writer lets it go");
        drop(conn);
        let reopened = Connection::open(&path).unwrap();
        let rows: i64 = reopened
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 4_000, "and still there once the copies are done");
    }

    #[test]
    fn a_busy_store_fails_the_open_instead_of_being_rebuilt() {
        // Rebuilding here would move another instance's healthy store aside.
        assert!(matches!(
            classify(
                sqlite(rusqlite::ffi::SQLITE_BUSY),
                RebuildReason::HalfMigrated
            ),
            Unusable::Fail(_)
        ));
        assert!(matches!(
            classify(
                sqlite(rusqlite::ffi::SQLITE_CANTOPEN),
                RebuildReason::Corrupt
            ),
            Unusable::Fail(_)
        ));
    }

    #[test]
    fn damage_is_corruption_whatever_step_found_it() {
        assert!(matches!(
            classify(
                sqlite(rusqlite::ffi::SQLITE_NOTADB),
                RebuildReason::HalfMigrated
            ),
            Unusable::Rebuild(RebuildReason::Corrupt, _)
        ));
        assert!(matches!(
            classify(
                sqlite(rusqlite::ffi::SQLITE_ERROR),
                RebuildReason::HalfMigrated
            ),
            Unusable::Rebuild(RebuildReason::HalfMigrated, _)
        ));
    }

    /// Overwrites page `page` of the file at `path` with garbage.
    fn damage_page(path: &Path, page: u64) {
        use std::io::{Seek, SeekFrom, Write};
        let size: u64 = Connection::open(path)
            .unwrap()
            .query_row("PRAGMA page_size", [], |r| r.get(0))
            .unwrap();
        let mut f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
        f.seek(SeekFrom::Start((page - 1) * size)).unwrap();
        f.write_all(&vec![0xA5; size as usize]).unwrap();
    }

    #[test]
    fn the_start_probe_finds_a_damaged_index_root_and_the_full_check_a_damaged_leaf() {
        let dir = tempfile::tempdir().unwrap();
        let store = |name: &str| -> PathBuf {
            let path = dir.path().join(name);
            drop(Mirror::open(&path).unwrap());
            Connection::open(&path)
                .unwrap()
                .execute_batch(
                    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000)
                     INSERT INTO outbox (conversation_id, op, state, created_at)
                         SELECT printf('%036d', i), '{}', 'pending', '2026-11-26T00:00:00Z' FROM n;",
                )
                .unwrap();
            path
        };
        let sound = store("sound.db");
        assert!(check_file(&sound).is_ok(), "a sound store opens");
        assert_eq!(check_integrity(&sound).unwrap(), None, "and is sound");

        let index_root = store("index.db");
        let root: u64 = Connection::open(&index_root)
            .unwrap()
            .query_row(
                "SELECT rootpage FROM sqlite_schema WHERE name = 'outbox_state'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        damage_page(&index_root, root);
        assert!(
            matches!(
                check_file(&index_root),
                Err(Unusable::Rebuild(RebuildReason::Corrupt, _))
            ),
            "an index's root page is read at open, not only its table's"
        );

        let leaf = store("leaf.db");
        let middle: u64 = Connection::open(&leaf)
            .unwrap()
            .query_row(
                "SELECT pageno FROM dbstat WHERE name = 'outbox' AND pagetype = 'leaf'
                  ORDER BY path LIMIT 1 OFFSET 5",
                [],
                |r| r.get(0),
            )
            .unwrap();
        damage_page(&leaf, middle);
        assert!(
            check_file(&leaf).is_ok(),
            "a leaf in the middle of a table is beyond what a start reads"
        );
        assert!(
            check_integrity(&leaf).unwrap().is_some(),
            "the full check finds it"
        );
    }
}
