//! The engine: the one typed API the desktop shell (and the tests) call.
//!
//! - Intents (`assign`, `set_status`, `reply`, …) validate, queue a mutation
//!   in the outbox and return as soon as it is on disk; what the person sees
//!   changes at once, because reads apply queued mutations over the server
//!   rows (see [`crate::outbox`]).
//! - [`Engine::sync_now`] pushes the outbox, then loads the mirror: a
//!   bootstrap when there is none yet (resumable), otherwise a pull of the
//!   change feed. Exactly-once is the server's idempotency on (client id,
//!   mutation id): a push whose answer got lost is simply pushed again.
//! - Everything that changes is announced on a broadcast channel of typed
//!   [`Event`]s, so the UI re-reads what it shows instead of polling.
//!
//! Time and ids come from an injected [`Clock`], so tests control them.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

use jiff::Timestamp;
use portico_model::sync::{MAX_PUSH, Mutation, MutationOp, SYNC_PROTOCOL};
use portico_model::validate::{check_len, check_nonempty, check_tag};
use portico_model::wire::{ChangeOp, ChangesPage, ErrorBody, Page};
use portico_model::{
    ConversationId, ConversationStatus, Invalid, Kind, MessageId, Priority, UserId,
};
use serde::Serialize;
use serde_json::{Map, Value};
use tokio::sync::broadcast;

use crate::bootstrap::{self, BootstrapProgress, BootstrapReport, RebuildInfo, RebuildReason};
use crate::mirror::{Mirror, MirrorError};
use crate::outbox::{self, EntryState, OutboxError, Rejection};
use crate::push::{self, PushReport};

/// Where the engine gets the time: the system clock in the app, a fixed or
/// stepped one in tests.
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

/// The real time.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// Where the engine gets the bearer token for each request; the shell keeps
/// it fresh (refresh tokens live there, not here). `None` means signed out.
pub trait TokenSource: Send + Sync {
    fn token(&self) -> Option<String>;
}

/// A token that never changes (tests, scripts).
#[derive(Debug, Clone)]
pub struct StaticToken(pub String);

impl TokenSource for StaticToken {
    fn token(&self) -> Option<String> {
        Some(self.0.clone())
    }
}

impl<F: Fn() -> Option<String> + Send + Sync> TokenSource for F {
    fn token(&self) -> Option<String> {
        self()
    }
}

/// Everything that can go wrong, with a stable [`EngineError::code`] for the
/// UI to branch on (the message is for people).
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The server could not be reached or the connection broke; queued
    /// changes stay queued and go out on a later sync.
    #[error("could not reach the server: {0}")]
    Offline(String),
    #[error("not signed in: {0}")]
    Unauthenticated(String),
    /// The server speaks another sync protocol; nothing was written.
    #[error(
        "the server does not speak sync protocol {client} (it said: {message}); update the app"
    )]
    UnsupportedProtocol {
        client: u32,
        server: Option<u32>,
        message: String,
    },
    /// The server's answer does not fit the protocol; nothing was written.
    #[error("the server's answer to {what} is malformed ({detail}); nothing was written locally")]
    Malformed { what: &'static str, detail: String },
    #[error("the server refused {what} with {status} {code}: {message}")]
    Server {
        what: &'static str,
        status: u16,
        code: String,
        message: String,
    },
    /// An intent broke a rule; nothing was queued.
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error("the local store failed: {0}")]
    Local(String),
}

impl EngineError {
    /// Stable, machine-readable.
    pub fn code(&self) -> &'static str {
        match self {
            EngineError::Offline(_) => "offline",
            EngineError::Unauthenticated(_) => "unauthenticated",
            EngineError::UnsupportedProtocol { .. } => "unsupported_protocol",
            EngineError::Malformed { .. } => "malformed_response",
            EngineError::Server { .. } => "server",
            EngineError::Invalid { .. } => "invalid",
            EngineError::Local(_) => "local_store",
        }
    }
}

impl From<Invalid> for EngineError {
    fn from(e: Invalid) -> Self {
        EngineError::Invalid {
            field: e.field,
            message: e.message,
        }
    }
}

impl From<rusqlite::Error> for EngineError {
    fn from(e: rusqlite::Error) -> Self {
        EngineError::Local(e.to_string())
    }
}

impl From<MirrorError> for EngineError {
    fn from(e: MirrorError) -> Self {
        EngineError::Local(e.to_string())
    }
}

impl From<OutboxError> for EngineError {
    fn from(e: OutboxError) -> Self {
        EngineError::Local(e.to_string())
    }
}

pub type Result<T, E = EngineError> = std::result::Result<T, E>;

/// What changed, for the UI. Serializable so the shell can forward it as is.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// These records may look different now (server change, local edit,
    /// reverted edit): re-read them.
    RecordsChanged { kind: Kind, ids: Vec<uuid::Uuid> },
    /// The number of mutations waiting for the server changed.
    OutboxChanged { pending: u64 },
    /// The server refused a mutation; the edit is reverted and the reason is
    /// listed in [`Engine::rejections`] until acknowledged.
    RejectionAdded { rejection: Rejection },
    /// Connectivity, syncing, queue length or bootstrap progress changed.
    SyncState { status: SyncStatus },
    /// The local store was rebuilt (corrupt, from a newer app, or the server
    /// asked for a resync); queued mutations were kept.
    StoreRebuilt { info: RebuildInfo },
    /// A bootstrap finished: the lists, counts and mentions, which stay
    /// empty while pages load (they are filled in one pass at the end),
    /// now hold everything. Re-read what is shown. The
    /// [`Event::RecordsChanged`] of each page came before this, when only
    /// the records themselves were readable.
    Bootstrapped { rows: u64 },
}

/// The engine's state for a status bar.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct SyncStatus {
    /// The last request reached the server.
    pub online: bool,
    pub syncing: bool,
    /// Mutations the server has not confirmed yet.
    pub pending: u64,
    /// `Some` while the mirror is not complete yet.
    pub bootstrap: Option<BootstrapProgress>,
    /// `Some` while the offline search index is being built (after a
    /// bootstrap): search answers from part of the mirror until it is done.
    pub search_index: Option<IndexProgress>,
    /// The code of the last sync's error, if it failed.
    pub last_error: Option<String>,
    /// The last rebuild of the local store in this run (damage found at
    /// open or by the check after start, or a resync), for the status bar
    /// to say what happened.
    pub rebuilt: Option<RebuildInfo>,
}

/// How far the search index build is.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct IndexProgress {
    pub done: u64,
    pub total: u64,
}

/// A record as the person should see it: the server row with this desktop's
/// unconfirmed edits applied.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LocalRecord {
    pub data: Map<String, Value>,
    /// True when edits the server has not confirmed are shown (or, for a
    /// message, when it exists only here so far).
    pub pending: bool,
}

/// What an intent queued.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Queued {
    pub mutation_id: u64,
    /// The id minted for a reply or note (the server keeps it).
    pub message_id: Option<MessageId>,
}

/// What a pull brought.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PullReport {
    pub pages: usize,
    pub changes: usize,
    pub cursor: i64,
}

/// What one [`Engine::sync_now`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct SyncReport {
    pub push: PushReport,
    pub bootstrap: Option<BootstrapReport>,
    pub pull: PullReport,
    /// The server asked for a resync and the store was rebuilt.
    pub resynced: bool,
}

/// Rows indexed per step of a search index build (~2 s of work on the
/// benchmark machine; the store is free between steps).
const INDEX_STEP: u64 = 50_000;

/// How the engine talks to the server; [`EngineConfig::new`] has defaults.
#[derive(Clone)]
pub struct EngineConfig {
    pub base_url: String,
    pub tokens: Arc<dyn TokenSource>,
    pub clock: Arc<dyn Clock>,
    /// Rows per bootstrap page (the server caps it at 5,000).
    pub bootstrap_page: usize,
    /// Changes per pull page (the server caps it at 1,000).
    pub pull_page: usize,
    /// Mutations per push (at most [`MAX_PUSH`]).
    pub push_batch: usize,
    /// Per-request timeout; a request that takes longer counts as offline.
    pub timeout: Duration,
}

impl EngineConfig {
    pub fn new(base_url: impl Into<String>, tokens: impl TokenSource + 'static) -> EngineConfig {
        EngineConfig {
            base_url: base_url.into(),
            tokens: Arc::new(tokens),
            clock: Arc::new(SystemClock),
            bootstrap_page: 1_000,
            pull_page: 1_000,
            push_batch: MAX_PUSH,
            timeout: Duration::from_secs(30),
        }
    }
}

/// The HTTP side: one client, the base URL (changeable), the token source.
pub(crate) struct Api {
    http: reqwest::Client,
    base: RwLock<String>,
    tokens: Arc<dyn TokenSource>,
    online: AtomicBool,
}

/// The full cause chain of an error, for messages (reqwest's own `Display`
/// hides the interesting part, e.g. "connection refused").
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cur = c.source();
    }
    out
}

/// Answers that mean "not now" rather than "no": the server (or a proxy in
/// front of it) is up but cannot serve the request: stopping, restarting or
/// overloaded. portal-core itself answers 503 to a request in flight when
/// its runtime stops, so a server killed mid-request shows up either as a
/// dropped connection or as a 503, depending on which the race lets out
/// first. Both are the same interruption to the engine: offline, nothing
/// queued is touched, and the next sync resumes (a push that may have been
/// applied is replayed under its idempotency key).
fn unavailable(status: u16) -> bool {
    matches!(status, 502..=504)
}

impl Api {
    pub(crate) async fn get<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        what: &'static str,
    ) -> Result<T> {
        let url = format!("{}{path}", self.base());
        self.send(self.http.get(url), what).await
    }

    pub(crate) async fn post<B: Serialize, T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
        what: &'static str,
    ) -> Result<T> {
        let url = format!("{}{path}", self.base());
        self.send(self.http.post(url).json(body), what).await
    }

    /// A file's bytes (an attachment), with the same errors as [`Api::get`].
    pub(crate) async fn get_bytes(&self, path: &str, what: &'static str) -> Result<bytes::Bytes> {
        let url = format!("{}{path}", self.base());
        self.send_raw(self.http.get(url), what).await
    }

    fn base(&self) -> String {
        self.base
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .trim_end_matches('/')
            .to_owned()
    }

    /// Sends, then parses the whole body before anything is written, so a
    /// broken or foreign answer becomes a typed error and never a half write.
    async fn send<T: serde::de::DeserializeOwned>(
        &self,
        req: reqwest::RequestBuilder,
        what: &'static str,
    ) -> Result<T> {
        let bytes = self.send_raw(req, what).await?;
        serde_json::from_slice(&bytes).map_err(|e| EngineError::Malformed {
            what,
            detail: e.to_string(),
        })
    }

    /// Sends with the session's token; a success's whole body, or the
    /// server's refusal as a typed error.
    async fn send_raw(
        &self,
        req: reqwest::RequestBuilder,
        what: &'static str,
    ) -> Result<bytes::Bytes> {
        let token = self
            .tokens
            .token()
            .ok_or_else(|| EngineError::Unauthenticated("no token: sign in first".to_owned()))?;
        let resp = match req.bearer_auth(token).send().await {
            Ok(r) => r,
            Err(e) => {
                self.online.store(false, Ordering::Relaxed);
                return Err(EngineError::Offline(chain(&e)));
            }
        };
        let status = resp.status();
        let bytes = match resp.bytes().await {
            Ok(b) => b,
            Err(e) => {
                self.online.store(false, Ordering::Relaxed);
                return Err(EngineError::Offline(chain(&e)));
            }
        };
        self.online.store(true, Ordering::Relaxed);
        if !status.is_success() {
            let (code, message) = match serde_json::from_slice::<ErrorBody>(&bytes) {
                Ok(b) => (b.error.code, b.error.message),
                Err(_) => (
                    format!("http_{}", status.as_u16()),
                    status
                        .canonical_reason()
                        .unwrap_or("unknown error")
                        .to_owned(),
                ),
            };
            if unavailable(status.as_u16()) {
                self.online.store(false, Ordering::Relaxed);
                return Err(EngineError::Offline(format!(
                    "the server is unavailable ({} {code}: {message})",
                    status.as_u16()
                )));
            }
            return Err(match (status.as_u16(), code.as_str()) {
                (_, "unsupported_protocol") => EngineError::UnsupportedProtocol {
                    client: SYNC_PROTOCOL,
                    server: None,
                    message,
                },
                (401, _) => EngineError::Unauthenticated(message),
                (status, _) => EngineError::Server {
                    what,
                    status,
                    code,
                    message,
                },
            });
        }
        Ok(bytes)
    }
}

/// Fails unless the server speaks our protocol.
pub(crate) fn check_protocol(server: u32) -> Result<()> {
    if server == SYNC_PROTOCOL {
        Ok(())
    } else {
        Err(EngineError::UnsupportedProtocol {
            client: SYNC_PROTOCOL,
            server: Some(server),
            message: format!("the server answered with sync protocol {server}"),
        })
    }
}

pub(crate) struct Db {
    pub mirror: Mirror,
    pub path: PathBuf,
    /// A bootstrap's checkpoint thread finishing its last copy into the
    /// file at `path` (see `bootstrap::Checkpointer`): waited for before the
    /// store is replaced, as its connection must not outlive the file.
    pub copying: Option<std::thread::JoinHandle<()>>,
}

pub(crate) struct Inner {
    db: Mutex<Db>,
    /// One sync at a time: a second caller waits and then syncs again.
    sync: tokio::sync::Mutex<()>,
    pub api: Api,
    pub clock: Arc<dyn Clock>,
    pub client_id: uuid::Uuid,
    pub bootstrap_page: usize,
    pub pull_page: usize,
    pub push_batch: usize,
    events: broadcast::Sender<Event>,
    syncing: AtomicBool,
    last_error: Mutex<Option<String>>,
    last_rebuild: Mutex<Option<RebuildInfo>>,
    /// Rebuilds so far in this run: a check of the store that a rebuild
    /// replaced meanwhile is about a file that is gone.
    rebuilds: AtomicU64,
    /// Set while the search index is built in steps.
    indexing: Mutex<Option<IndexProgress>>,
}

impl Inner {
    /// The store, for one short synchronous step. Never held across an await.
    pub(crate) fn db(&self) -> MutexGuard<'_, Db> {
        self.db.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn emit(&self, event: Event) {
        // Nobody listening is fine: the UI subscribes when it wants to.
        let _ = self.events.send(event);
    }

    pub(crate) fn status(&self) -> Result<SyncStatus> {
        let (pending, bootstrap) = {
            let db = self.db();
            (
                outbox::pending_count(db.mirror.conn())?,
                bootstrap::progress(db.mirror.conn())?,
            )
        };
        Ok(SyncStatus {
            online: self.api.online.load(Ordering::Relaxed),
            syncing: self.syncing.load(Ordering::Relaxed),
            pending,
            bootstrap,
            search_index: *self.indexing.lock().unwrap_or_else(|p| p.into_inner()),
            last_error: self
                .last_error
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
            rebuilt: self
                .last_rebuild
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        })
    }

    pub(crate) fn emit_status(&self) {
        if let Ok(status) = self.status() {
            self.emit(Event::SyncState { status });
        }
    }

    pub(crate) fn emit_outbox(&self) {
        if let Ok(pending) = outbox::pending_count(self.db().mirror.conn()) {
            self.emit(Event::OutboxChanged { pending });
        }
    }

    /// Announces changed records grouped by kind.
    pub(crate) fn emit_records(&self, mut changed: Vec<(Kind, uuid::Uuid)>) {
        changed.sort_by_key(|(k, id)| (k.as_str(), *id));
        changed.dedup();
        let mut i = 0;
        while i < changed.len() {
            let kind = changed[i].0;
            let ids: Vec<uuid::Uuid> = changed[i..]
                .iter()
                .take_while(|(k, _)| *k == kind)
                .map(|(_, id)| *id)
                .collect();
            i += ids.len();
            self.emit(Event::RecordsChanged { kind, ids });
        }
    }

    fn set_indexing(&self, progress: Option<IndexProgress>) {
        *self.indexing.lock().unwrap_or_else(|p| p.into_inner()) = progress;
        self.emit_status();
    }

    fn set_rebuilt(&self, info: RebuildInfo) {
        self.rebuilds.fetch_add(1, Ordering::Relaxed);
        *self.last_rebuild.lock().unwrap_or_else(|p| p.into_inner()) = Some(info.clone());
        self.emit(Event::StoreRebuilt { info });
    }
}

/// A fresh UUIDv7 at the clock's time (random bits from the OS).
pub(crate) fn mint_uuid(clock: &dyn Clock) -> uuid::Uuid {
    let now = clock.now();
    let ts = uuid::Timestamp::from_unix(
        uuid::NoContext,
        now.as_second().max(0) as u64,
        now.subsec_nanosecond().max(0) as u32,
    );
    uuid::Uuid::new_v7(ts)
}

/// The sync engine. Cheap to clone; every clone drives the same store.
#[derive(Clone)]
pub struct Engine {
    pub(crate) inner: Arc<Inner>,
}

enum Pulled {
    Done(PullReport),
    Resync,
}

impl Engine {
    /// Opens (or creates) the local store at `path` for the server at
    /// `base_url`. A store that is unreadable, half-migrated or from a newer
    /// app, or whose tables' first pages are damaged, is detected here and
    /// rebuilt empty, keeping its queued mutations; the next
    /// [`Engine::sync_now`] reloads it from the server. Damage deeper in the
    /// file is left to [`Engine::check_store`], which reads every page and
    /// is meant to run after the first screen is shown.
    pub fn open(
        path: impl AsRef<Path>,
        base_url: impl Into<String>,
        tokens: impl TokenSource + 'static,
    ) -> Result<Engine> {
        Engine::open_with(path, EngineConfig::new(base_url, tokens))
    }

    /// [`Engine::open`] with every setting.
    pub fn open_with(path: impl AsRef<Path>, config: EngineConfig) -> Result<Engine> {
        let path = path.as_ref().to_path_buf();
        let (mirror, rebuilt) = bootstrap::open_store(&path)?;
        let client_id = outbox::client_id(mirror.conn(), || mint_uuid(config.clock.as_ref()))?;
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(10)))
            .build()
            .map_err(|e| EngineError::Local(format!("cannot start the HTTP client: {e}")))?;
        let (events, _) = broadcast::channel(1024);
        let inner = Inner {
            db: Mutex::new(Db {
                mirror,
                path,
                copying: None,
            }),
            sync: tokio::sync::Mutex::new(()),
            api: Api {
                http,
                base: RwLock::new(config.base_url),
                tokens: config.tokens,
                online: AtomicBool::new(false),
            },
            clock: config.clock,
            client_id,
            bootstrap_page: config.bootstrap_page.clamp(1, 5_000),
            pull_page: config.pull_page.clamp(1, 1_000),
            push_batch: config.push_batch.clamp(1, MAX_PUSH),
            events,
            syncing: AtomicBool::new(false),
            last_error: Mutex::new(None),
            last_rebuild: Mutex::new(rebuilt),
            rebuilds: AtomicU64::new(0),
            indexing: Mutex::new(None),
        };
        Ok(Engine {
            inner: Arc::new(inner),
        })
    }

    /// Events from now on. A receiver that falls behind by more than 1,024
    /// events gets `Lagged` and should re-read everything it shows.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.inner.events.subscribe()
    }

    /// This installation's id: with a mutation id, the idempotency key.
    pub fn client_id(&self) -> uuid::Uuid {
        self.inner.client_id
    }

    /// Points the engine at another server address (the same server moved).
    pub fn set_base_url(&self, base_url: impl Into<String>) {
        *self
            .inner
            .api
            .base
            .write()
            .unwrap_or_else(|p| p.into_inner()) = base_url.into();
    }

    // ----- intents -------------------------------------------------------

    /// Assigns (or with `None` unassigns) a conversation. Last writer wins.
    pub fn assign(&self, conversation: ConversationId, assignee: Option<UserId>) -> Result<Queued> {
        self.enqueue(MutationOp::Assign {
            conversation_id: conversation,
            assignee_id: assignee,
        })
    }

    /// Moves a conversation to `status`. With `if_version` (the version the
    /// person saw) the server refuses it if someone changed the conversation
    /// since; the edit is then reverted and listed in [`Engine::rejections`].
    /// Snoozing needs a time: use [`Engine::snooze`].
    pub fn set_status(
        &self,
        conversation: ConversationId,
        status: ConversationStatus,
        if_version: Option<u64>,
    ) -> Result<Queued> {
        self.enqueue(MutationOp::SetStatus {
            conversation_id: conversation,
            status,
            snoozed_until: None,
            if_version,
        })
    }

    /// Snoozes a conversation until `until` (guarded like [`Engine::set_status`]).
    pub fn snooze(
        &self,
        conversation: ConversationId,
        until: Timestamp,
        if_version: Option<u64>,
    ) -> Result<Queued> {
        self.enqueue(MutationOp::SetStatus {
            conversation_id: conversation,
            status: ConversationStatus::Snoozed,
            snoozed_until: Some(until),
            if_version,
        })
    }

    /// Sets the priority. Last writer wins.
    pub fn set_priority(&self, conversation: ConversationId, priority: Priority) -> Result<Queued> {
        self.enqueue(MutationOp::SetPriority {
            conversation_id: conversation,
            priority,
        })
    }

    /// Adds tags (set semantics: a present tag is a no-op).
    pub fn add_tags<S: Into<String>>(
        &self,
        conversation: ConversationId,
        tags: impl IntoIterator<Item = S>,
    ) -> Result<Queued> {
        self.enqueue(MutationOp::AddTags {
            conversation_id: conversation,
            tags: tags.into_iter().map(Into::into).collect(),
        })
    }

    /// Removes tags (an absent tag is a no-op).
    pub fn remove_tags<S: Into<String>>(
        &self,
        conversation: ConversationId,
        tags: impl IntoIterator<Item = S>,
    ) -> Result<Queued> {
        self.enqueue(MutationOp::RemoveTags {
            conversation_id: conversation,
            tags: tags.into_iter().map(Into::into).collect(),
        })
    }

    /// Replies to the customer. The message id is minted here, so the
    /// server stores the reply once however often the push is retried.
    pub fn reply(&self, conversation: ConversationId, body: impl Into<String>) -> Result<Queued> {
        self.enqueue(MutationOp::Reply {
            conversation_id: conversation,
            message_id: MessageId(mint_uuid(self.inner.clock.as_ref())),
            body: body.into(),
        })
    }

    /// Writes an internal note, optionally mentioning staff.
    pub fn note(
        &self,
        conversation: ConversationId,
        body: impl Into<String>,
        mentions: Vec<UserId>,
    ) -> Result<Queued> {
        self.enqueue(MutationOp::Note {
            conversation_id: conversation,
            message_id: MessageId(mint_uuid(self.inner.clock.as_ref())),
            body: body.into(),
            mentions,
        })
    }

    /// Queues any mutation (the intents above are shorthands). Validated
    /// first, so a mutation the server would refuse for its shape is never
    /// queued. Only the outbox row is written: the overlay is derived from
    /// it on read, so the queued row and the optimistic view appear in the
    /// same transaction by construction.
    pub fn enqueue(&self, op: MutationOp) -> Result<Queued> {
        check_op(&op)?;
        let at = self.inner.clock.now();
        let mutation_id = {
            let mut db = self.inner.db();
            let tx = db.mirror.conn_mut().transaction()?;
            let id = outbox::enqueue(&tx, &op, at)?;
            tx.commit()?;
            id
        };
        let message_id = message_of(&op);
        let mut changed = vec![(Kind::Conversation, op.conversation_id().0)];
        changed.extend(message_id.map(|m| (Kind::Message, m.0)));
        if let MutationOp::ApproveDraft { draft_id, .. }
        | MutationOp::RejectDraft { draft_id, .. } = &op
        {
            changed.push((Kind::Draft, draft_id.0));
        }
        self.inner.emit_records(changed);
        self.inner.emit_outbox();
        Ok(Queued {
            mutation_id,
            message_id,
        })
    }

    // ----- reads -----------------------------------------------------------

    /// A conversation as the person should see it: the server row with this
    /// desktop's live edits applied in order. `None` if it is not mirrored.
    pub fn conversation(&self, id: ConversationId) -> Result<Option<LocalRecord>> {
        let db = self.inner.db();
        let Some(mut row) = db.mirror.get(Kind::Conversation, id.0)? else {
            return Ok(None);
        };
        let ops = outbox::live_ops(db.mirror.conn(), id)?;
        for e in &ops {
            let on_server = match message_of(&e.op) {
                Some(m) => db.mirror.get(Kind::Message, m.0)?.is_some(),
                None => false,
            };
            outbox::apply_to_conversation(&mut row, &e.op, e.created_at, on_server);
        }
        Ok(Some(LocalRecord {
            data: row,
            pending: ops.iter().any(|e| e.state == EntryState::Pending),
        }))
    }

    /// A conversation's messages in id (creation) order: the server's, and
    /// queued replies and notes not on the server yet (`pending`).
    pub fn messages(&self, conversation: ConversationId) -> Result<Vec<LocalRecord>> {
        let db = self.inner.db();
        let conn = db.mirror.conn();
        let mut out: Vec<(uuid::Uuid, LocalRecord)> = Vec::new();
        {
            let mut stmt = conn.prepare_cached(
                // `conversation_id` is the generated column of the search
                // schema, indexed for exactly this read.
                "SELECT id, data FROM records WHERE kind = 'message' AND conversation_id = ?1",
            )?;
            let rows = stmt.query_map([conversation.to_string()], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })?;
            for row in rows {
                let (id, data) = row?;
                let (Ok(id), Ok(Value::Object(data))) =
                    (id.parse(), serde_json::from_str::<Value>(&data))
                else {
                    return Err(MirrorError::Corrupt("message").into());
                };
                out.push((
                    id,
                    LocalRecord {
                        data,
                        pending: false,
                    },
                ));
            }
        }
        let account = db
            .mirror
            .get(Kind::Conversation, conversation.0)?
            .and_then(|c| c.get("account_id").cloned());
        for e in outbox::live_ops(conn, conversation)? {
            if let Some((id, data)) = outbox::pending_message(&e.op, account.as_ref(), e.created_at)
                && !out.iter().any(|(known, _)| *known == id.0)
            {
                out.push((
                    id.0,
                    LocalRecord {
                        data,
                        pending: true,
                    },
                ));
            }
        }
        out.sort_by_key(|(id, _)| *id);
        Ok(out.into_iter().map(|(_, r)| r).collect())
    }

    /// A mirrored record exactly as the server shaped it (no local edits).
    pub fn record(&self, kind: Kind, id: uuid::Uuid) -> Result<Option<Map<String, Value>>> {
        Ok(self.inner.db().mirror.get(kind, id)?)
    }

    /// How many records of a kind are mirrored.
    pub fn count(&self, kind: Kind) -> Result<u64> {
        Ok(self.inner.db().mirror.count(kind)?)
    }

    /// Runs a read against the mirror (for views this API does not cover).
    pub fn read<T>(&self, f: impl FnOnce(&Mirror) -> T) -> T {
        f(&self.inner.db().mirror)
    }

    // ----- status ----------------------------------------------------------

    /// Whether the last request reached the server.
    pub fn online(&self) -> bool {
        self.inner.api.online.load(Ordering::Relaxed)
    }

    /// Mutations the server has not confirmed yet.
    pub fn pending_count(&self) -> Result<u64> {
        Ok(outbox::pending_count(self.inner.db().mirror.conn())?)
    }

    /// The queue as it will be pushed, in id order.
    pub fn pending_mutations(&self) -> Result<Vec<Mutation>> {
        Ok(outbox::to_push(self.inner.db().mirror.conn(), usize::MAX)?)
    }

    /// `Some` while the mirror is incomplete: where the bootstrap stands.
    pub fn bootstrap_progress(&self) -> Result<Option<BootstrapProgress>> {
        bootstrap::progress(self.inner.db().mirror.conn())
    }

    /// Refused mutations, oldest first, until acknowledged.
    pub fn rejections(&self) -> Result<Vec<Rejection>> {
        Ok(outbox::rejections(self.inner.db().mirror.conn())?)
    }

    /// The person has seen a rejection; false if there was none with that id.
    pub fn acknowledge_rejection(&self, mutation_id: u64) -> Result<bool> {
        let done = outbox::acknowledge(self.inner.db().mirror.conn(), mutation_id)?;
        if done {
            self.inner.emit_outbox();
        }
        Ok(done)
    }

    /// Everything a status bar shows.
    pub fn status(&self) -> Result<SyncStatus> {
        self.inner.status()
    }

    /// The last rebuild of the local store (at open or on resync), if any.
    pub fn last_rebuild(&self) -> Option<RebuildInfo> {
        self.inner
            .last_rebuild
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    // ----- sync ------------------------------------------------------------

    /// Pushes the outbox, then brings the mirror up to date: a bootstrap
    /// (resumed where it stopped) when the mirror is incomplete, otherwise a
    /// pull. On a network failure everything queued stays queued; calling
    /// again later is always safe.
    pub async fn sync_now(&self) -> Result<SyncReport> {
        let _one = self.inner.sync.lock().await;
        self.inner.syncing.store(true, Ordering::Relaxed);
        self.inner.emit_status();
        let result = self.sync_locked().await;
        *self
            .inner
            .last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner()) =
            result.as_ref().err().map(|e| e.code().to_owned());
        self.inner.syncing.store(false, Ordering::Relaxed);
        self.inner.emit_status();
        result
    }

    async fn sync_locked(&self) -> Result<SyncReport> {
        // A push the server could not take (a 5xx, a malformed answer) does
        // not stop the pull: the person still gets everyone else's changes,
        // and the push error is returned afterwards. Unreachable, signed
        // out or another protocol stops everything.
        let mut report = SyncReport::default();
        let mut push_error = None;
        match push::run(&self.inner).await {
            Ok(p) => report.push = p,
            Err(e @ (EngineError::Server { .. } | EngineError::Malformed { .. })) => {
                tracing::warn!(error = %e, "push failed; pulling anyway");
                push_error = Some(e);
            }
            Err(e) => return Err(e),
        }
        // Rounds: a resync rebuilds and loads again; a mutation whose answer
        // was lost (the server processed it) is pushed again to learn its
        // outcome, and the following pull confirms it.
        let mut resynced_now = false;
        for _ in 0..4 {
            if self.needs_bootstrap()? {
                report.bootstrap = Some(bootstrap::run(&self.inner).await?);
            }
            match self.pull_locked().await? {
                Pulled::Done(p) => {
                    report.pull.pages += p.pages;
                    report.pull.changes += p.changes;
                    report.pull.cursor = p.cursor;
                }
                Pulled::Resync if resynced_now => {
                    return Err(EngineError::Malformed {
                        what: "changes",
                        detail: "the server asked for a resync again right after one".into(),
                    });
                }
                Pulled::Resync => {
                    self.rebuild(
                        RebuildReason::Resync,
                        "the server asked for a resync".into(),
                        false,
                    )?;
                    report.resynced = true;
                    resynced_now = true;
                    continue;
                }
            }
            if push_error.is_some() || !outbox::has_processed(self.inner.db().mirror.conn())? {
                break;
            }
            let again = push::run(&self.inner).await?;
            report.push.add(&again);
        }
        if let Some((indexed, ms)) = self.build_search_index().await?
            && let Some(b) = report.bootstrap.as_mut()
        {
            b.indexed = indexed;
            b.index_ms = ms;
        }
        match push_error {
            Some(e) => Err(e),
            None => Ok(report),
        }
    }

    /// Builds the search index if it is suspended (after a bootstrap, or a
    /// build that was interrupted), in steps of [`INDEX_STEP`] rows, each
    /// its own transaction on a blocking thread: the store stays readable
    /// between steps and the status shows progress. Returns the rows indexed
    /// and the time taken, or `None` when the index was live already.
    async fn build_search_index(&self) -> Result<Option<(u64, u64)>> {
        if crate::search::indexing_live(&self.inner.db().mirror)? {
            return Ok(None);
        }
        let started = std::time::Instant::now();
        let inner = self.inner.clone();
        let mut build = tokio::task::spawn_blocking(move || -> Result<_> {
            let mut db = inner.db();
            db.mirror
                .conn()
                .pragma_update(None, "cache_size", bootstrap::BULK_CACHE_KIB)?;
            let tx = db.mirror.conn_mut().transaction()?;
            let build = crate::search::IndexBuild::start_in(&tx)?;
            tx.commit()?;
            Ok(build)
        })
        .await
        .map_err(|e| EngineError::Local(format!("building the search index stopped: {e}")))??;
        loop {
            self.inner.set_indexing(Some(IndexProgress {
                done: build.done,
                total: build.total,
            }));
            let inner = self.inner.clone();
            let (next, finished) = tokio::task::spawn_blocking(move || -> Result<_> {
                let mut db = inner.db();
                let tx = db.mirror.conn_mut().transaction()?;
                let finished = build.step_in(&tx, INDEX_STEP)?;
                tx.commit()?;
                Ok((build, finished))
            })
            .await
            .map_err(|e| EngineError::Local(format!("building the search index stopped: {e}")))??;
            build = next;
            if finished {
                break;
            }
        }
        self.inner.db().mirror.conn().pragma_update(
            None,
            "cache_size",
            bootstrap::DEFAULT_CACHE_KIB,
        )?;
        self.inner.set_indexing(None);
        let ms = started.elapsed().as_millis() as u64;
        tracing::info!(rows = build.done, ms, "search index built");
        Ok(Some((build.done, ms)))
    }

    /// Pushes the outbox only (no pull). For shells that push on every edit
    /// and for tests that interleave pushes and pulls.
    pub async fn push_now(&self) -> Result<PushReport> {
        let _one = self.inner.sync.lock().await;
        push::run(&self.inner).await
    }

    /// Pulls only (bootstrapping first if the mirror is incomplete). A resync
    /// request rebuilds the store and loads it again.
    pub async fn pull_now(&self) -> Result<PullReport> {
        let _one = self.inner.sync.lock().await;
        for _ in 0..2 {
            if self.needs_bootstrap()? {
                bootstrap::run(&self.inner).await?;
            }
            match self.pull_locked().await? {
                Pulled::Done(p) => {
                    self.build_search_index().await?;
                    return Ok(p);
                }
                Pulled::Resync => {
                    self.rebuild(
                        RebuildReason::Resync,
                        "the server asked for a resync".into(),
                        false,
                    )?;
                }
            }
        }
        Err(EngineError::Malformed {
            what: "changes",
            detail: "the server asked for a resync again right after one".into(),
        })
    }

    fn needs_bootstrap(&self) -> Result<bool> {
        let db = self.inner.db();
        bootstrap::needed(db.mirror.conn(), db.mirror.cursor()?)
    }

    /// Checks every page of the local store (see
    /// [`bootstrap::check_integrity`]) and, when it is damaged, rebuilds it
    /// as a damaged store found at open is: the damaged file moved aside
    /// for inspection, the outbox and client id carried over, the mirror
    /// reloaded by the next sync. Returns that rebuild, or `None` when the
    /// store is sound (or a resync replaced it meanwhile). Reads and edits keep working while it runs: the
    /// desk runs it in the background once the inbox is on screen.
    pub async fn check_store(&self) -> Result<Option<RebuildInfo>> {
        let path = self.inner.db().path.clone();
        let rebuilds = self.inner.rebuilds.load(Ordering::Relaxed);
        let started = std::time::Instant::now();
        let damage = tokio::task::spawn_blocking(move || bootstrap::check_integrity(&path))
            .await
            .map_err(|e| EngineError::Local(format!("checking the local store stopped: {e}")))??;
        let ms = started.elapsed().as_millis() as u64;
        let Some(detail) = damage else {
            tracing::info!(ms, "local store checked: sound");
            return Ok(None);
        };
        tracing::warn!(ms, %detail, "local store damaged; rebuilding it");
        // Never under a sync: a bootstrap page must not be written into a
        // store that was swapped while it was fetched.
        let _one = self.inner.sync.lock().await;
        if self.inner.rebuilds.load(Ordering::Relaxed) != rebuilds {
            tracing::info!("the damaged store was already replaced (resync)");
            return Ok(None);
        }
        Ok(Some(self.rebuild(RebuildReason::Corrupt, detail, true)?))
    }

    /// Rebuilds the store from nothing, keeping the outbox (and, when
    /// `keep_old`, the old file as `<path>.bad`); the caller loads it again
    /// with a bootstrap.
    fn rebuild(
        &self,
        reason: RebuildReason,
        detail: String,
        keep_old: bool,
    ) -> Result<RebuildInfo> {
        let info = {
            let mut db = self.inner.db();
            let saved = outbox::save(db.mirror.conn());
            // Close the old connections before their file is replaced: a
            // connection closing after that would delete the new store's
            // write-ahead log (SQLite removes `-wal` by name).
            if let Some(copying) = db.copying.take() {
                let _ = copying.join();
            }
            let old = std::mem::replace(&mut db.mirror, Mirror::open_in_memory()?);
            drop(old);
            let path = db.path.clone();
            let (mirror, info) = bootstrap::replace_store(&path, saved, reason, detail, keep_old)?;
            db.mirror = mirror;
            info
        };
        self.inner.set_rebuilt(info.clone());
        self.inner.emit_outbox();
        self.inner.emit_status();
        Ok(info)
    }

    /// Pulls the change feed until drained. Each page commits in one
    /// transaction; the last also confirms mutations (see
    /// [`outbox::confirm_pulled`]), so their overlay is dropped in the same
    /// commit that brings their effect.
    async fn pull_locked(&self) -> Result<Pulled> {
        let inner = &self.inner;
        let mut report = PullReport {
            cursor: inner.db().mirror.cursor()?,
            ..PullReport::default()
        };
        let scope: Option<String> = {
            use rusqlite::OptionalExtension;
            let db = inner.db();
            db.mirror
                .conn()
                .query_row(
                    "SELECT value FROM sync_state WHERE key = 'scope'",
                    [],
                    |r| r.get(0),
                )
                .optional()?
        };
        let scope_param = scope
            .filter(|s: &String| !s.is_empty())
            .map(|s| {
                format!(
                    "&scope={}",
                    url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>()
                )
            })
            .unwrap_or_default();
        let mut arrived = std::collections::BTreeSet::new();
        loop {
            let after = report.cursor;
            let page: ChangesPage = inner
                .api
                .get(
                    &format!(
                        "/v1/sync/changes?after={after}&limit={}&client_id={}{scope_param}",
                        inner.pull_page, inner.client_id
                    ),
                    "changes",
                )
                .await?;
            check_protocol(page.protocol)?;
            if page.resync {
                return Ok(Pulled::Resync);
            }
            check_changes(&page, after, inner.pull_page)?;
            arrived.extend(
                page.changes
                    .iter()
                    .filter(|c| c.kind == Kind::Conversation && c.op == ChangeOp::Upsert)
                    .map(|c| c.id),
            );
            let (touched, cursor) = {
                let mut db = inner.db();
                let tx = db.mirror.conn_mut().transaction()?;
                report.changes += Mirror::apply_in(&tx, &page)?;
                let confirmed = if page.has_more {
                    Vec::new()
                } else {
                    outbox::confirm_pulled(&tx, page.last_mutation_id)?
                };
                tx.commit()?;
                (confirmed, db.mirror.cursor()?)
            };
            report.pages += 1;
            report.cursor = cursor;
            let mut changed: Vec<(Kind, uuid::Uuid)> =
                page.changes.iter().map(|c| (c.kind, c.id)).collect();
            changed.extend(touched.iter().map(|c| (Kind::Conversation, c.0)));
            inner.emit_records(changed);
            if !touched.is_empty() {
                inner.emit_outbox();
            }
            if !page.has_more {
                self.fill_missing_messages(arrived).await?;
                return Ok(Pulled::Done(report));
            }
        }
    }
}

/// Messages read through the API per request when filling a conversation.
const FILL_PAGE: usize = 200;

impl Engine {
    /// Conversations that changed in this pull but hold fewer messages here
    /// than they count get their messages read through the API and applied
    /// like feed changes. This is how a conversation that *entered* the
    /// viewer's view (moved into a team-access agent's team) brings its
    /// earlier messages: the feed only carries what was posted after. A
    /// conversation that left the view meanwhile (404) is skipped; the
    /// feed's removal follows. (A customer's count includes internal notes
    /// they never get, so theirs are re-read when the conversation changes.)
    async fn fill_missing_messages(
        &self,
        conversations: std::collections::BTreeSet<uuid::Uuid>,
    ) -> Result<()> {
        use rusqlite::OptionalExtension;
        for id in conversations {
            let missing = {
                let db = self.inner.db();
                let conn = db.mirror.conn();
                let counted: Option<i64> = conn
                    .query_row(
                        "SELECT data ->> '$.message_count' FROM records WHERE kind = 'conversation' AND id = ?1",
                        [id.to_string()],
                        |r| r.get(0),
                    )
                    .optional()?
                    .flatten();
                let held: i64 = conn.query_row(
                    "SELECT count(*) FROM records WHERE kind = 'message' AND conversation_id = ?1",
                    [id.to_string()],
                    |r| r.get(0),
                )?;
                counted.is_some_and(|c| held < c)
            };
            if !missing {
                continue;
            }
            let mut cursor: Option<String> = None;
            loop {
                let mut path = format!("/v1/conversations/{id}/messages?limit={FILL_PAGE}");
                if let Some(c) = &cursor {
                    path.push_str(&format!(
                        "&cursor={}",
                        url::form_urlencoded::byte_serialize(c.as_bytes()).collect::<String>()
                    ));
                }
                let page: Page<Map<String, Value>> =
                    match self.inner.api.get(&path, "messages").await {
                        Ok(p) => p,
                        Err(EngineError::Server { status: 404, .. }) => break,
                        Err(e) => return Err(e),
                    };
                let mut changes = Vec::with_capacity(page.items.len());
                for row in page.items {
                    let parsed = row
                        .get("id")
                        .and_then(Value::as_str)
                        .and_then(|s| s.parse().ok());
                    let version = row
                        .get("version")
                        .and_then(Value::as_u64)
                        .filter(|v| *v > 0);
                    let (Some(mid), Some(version)) = (parsed, version) else {
                        return Err(EngineError::Malformed {
                            what: "messages",
                            detail: "a message without a valid id and version".into(),
                        });
                    };
                    changes.push(portico_model::wire::Change {
                        seq: 0,
                        kind: Kind::Message,
                        id: mid,
                        op: ChangeOp::Upsert,
                        version,
                        row: Some(row),
                    });
                }
                let ids: Vec<(Kind, uuid::Uuid)> = changes.iter().map(|c| (c.kind, c.id)).collect();
                let page_changes = ChangesPage {
                    protocol: SYNC_PROTOCOL,
                    changes,
                    next_after: 0,
                    has_more: false,
                    last_mutation_id: None,
                    resync: false,
                };
                {
                    let mut db = self.inner.db();
                    let tx = db.mirror.conn_mut().transaction()?;
                    Mirror::apply_in(&tx, &page_changes)?;
                    tx.commit()?;
                }
                self.inner.emit_records(ids);
                match page.next_cursor {
                    Some(c) => cursor = Some(c),
                    None => break,
                }
            }
        }
        Ok(())
    }
}

pub(crate) fn message_of(op: &MutationOp) -> Option<MessageId> {
    match op {
        MutationOp::Reply { message_id, .. }
        | MutationOp::Note { message_id, .. }
        | MutationOp::ApproveDraft { message_id, .. } => Some(*message_id),
        _ => None,
    }
}

/// The rules a mutation must meet to be queued (the server's own rules for
/// its shape), so it is not refused later for something knowable now.
fn check_op(op: &MutationOp) -> Result<(), Invalid> {
    match op {
        MutationOp::AddTags { tags, .. } | MutationOp::RemoveTags { tags, .. } => {
            if tags.is_empty() {
                return Err(Invalid::new("tags", "give at least one tag"));
            }
            if tags.len() > 20 {
                return Err(Invalid::new("tags", "at most 20 tags"));
            }
            tags.iter().try_for_each(|t| check_tag(t))
        }
        MutationOp::SetStatus {
            status,
            snoozed_until,
            ..
        } => match (status, snoozed_until) {
            (ConversationStatus::Snoozed, None) => Err(Invalid::new(
                "snoozed_until",
                "give snoozed_until when snoozing",
            )),
            (s, Some(_)) if *s != ConversationStatus::Snoozed => Err(Invalid::new(
                "snoozed_until",
                "only a snoozed conversation has snoozed_until",
            )),
            _ => Ok(()),
        },
        MutationOp::Reply { body, .. } => check_body(body),
        MutationOp::Note { body, mentions, .. } => {
            check_body(body)?;
            if mentions.len() > 50 {
                return Err(Invalid::new("mentions", "at most 50 mentions"));
            }
            Ok(())
        }
        MutationOp::ApproveDraft {
            body, run_actions, ..
        } => {
            check_body(body)?;
            if run_actions.len() > 20 {
                return Err(Invalid::new("run_actions", "at most 20 actions"));
            }
            Ok(())
        }
        MutationOp::RejectDraft { reason, .. } => {
            // Reviewers say why: the reason is what improves the next draft.
            check_nonempty("reason", reason)?;
            check_len("reason", reason, 2000)
        }
        MutationOp::Assign { .. } | MutationOp::SetPriority { .. } => Ok(()),
    }
}

fn check_body(body: &str) -> Result<(), Invalid> {
    check_nonempty("body", body)?;
    check_len("body", body, 64 * 1024)
}

/// A change page must move forward and carry a row with every upsert;
/// otherwise it is not applied at all.
fn check_changes(page: &ChangesPage, after: i64, limit: usize) -> Result<()> {
    let bad = |detail: String| EngineError::Malformed {
        what: "changes",
        detail,
    };
    if page.next_after < after {
        return Err(bad(format!(
            "next_after {} is before the cursor {after}",
            page.next_after
        )));
    }
    if page.has_more && page.next_after == after {
        return Err(bad("has_more without moving the cursor".into()));
    }
    if page.changes.len() > limit {
        return Err(bad(format!(
            "{} changes for a limit of {limit}",
            page.changes.len()
        )));
    }
    for c in &page.changes {
        if c.seq <= after || c.seq > page.next_after {
            return Err(bad(format!(
                "change seq {} outside ({after}, {}]",
                c.seq, page.next_after
            )));
        }
        match (c.op, &c.row) {
            (ChangeOp::Upsert, None) => {
                return Err(bad(format!("upsert {} without a row", c.seq)));
            }
            (ChangeOp::Upsert, Some(row)) => {
                let id = row.get("id").and_then(Value::as_str);
                if id != Some(c.id.to_string().as_str()) {
                    return Err(bad(format!("upsert {} row id does not match", c.seq)));
                }
            }
            (ChangeOp::Delete, _) => {}
        }
    }
    Ok(())
}
