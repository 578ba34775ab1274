//! The desktop app's command surface: every command the UI sends and every
//! event it receives, over one typed API. The Tauri shell forwards
//! [`Command`]s from `invoke` and [`DeskEvent`]s to the window; the
//! development bridge (`inbox-bridge`) serves the very same surface over
//! loopback HTTP for browser tests. Neither adds a rule of its own.
//!
//! A [`Desk`] owns the sign-in [`Session`], the [`Engine`] over the local
//! store once someone is signed in, the live socket, the background sync
//! loop and the notification [`Watch`].

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use portico_model::live::{ClientFrame, ServerFrame, Viewer};
use portico_model::{
    AccountId, ArticleId, ConversationId, ConversationStatus, DraftId, Kind, Message, MessageId,
    Priority, SavedReplyId, User, UserId,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::{Notify, broadcast, mpsc, watch};

use crate::engine::{Clock, Engine, EngineConfig, EngineError, Event, SyncStatus, SystemClock};
use crate::live::{self, LiveEvent};
use crate::mirror::Mirror;
use crate::notify::{self, Notice, Watch};
use crate::query::{InboxFilters, InboxQuery, Sort, View};
use crate::search::SearchQuery;
use crate::secrets::{Keychain, SecretStore};
use crate::session::{self, Identity, Session, SessionError, SessionTokens};

/// How the desk is set up by its shell.
#[derive(Debug, Clone)]
pub struct DeskConfig {
    /// portal-core's address, e.g. `http://127.0.0.1:8080`.
    pub server: String,
    /// Where the local store and the (non-secret) identity file live.
    pub data_dir: PathBuf,
    /// Open the system browser on sign-in (off in tests that drive the
    /// sign-in page themselves).
    pub open_browser: bool,
    /// Show desktop notifications.
    pub notifications: bool,
    /// Sync this often while online (the live socket prompts sooner).
    pub sync_every: Duration,
    /// Start the browser sign-in at once when nobody is signed in (the
    /// one-command demo).
    pub sign_in_at_start: bool,
    /// Where saved attachments go (the shell passes the platform's
    /// downloads folder).
    pub downloads_dir: PathBuf,
}

impl DeskConfig {
    pub fn new(server: impl Into<String>, data_dir: impl Into<PathBuf>) -> DeskConfig {
        let data_dir: PathBuf = data_dir.into();
        DeskConfig {
            server: server.into(),
            downloads_dir: data_dir.join("downloads"),
            data_dir,
            open_browser: true,
            notifications: true,
            sync_every: Duration::from_secs(10),
            sign_in_at_start: false,
        }
    }
}

/// A list of the inbox, as the UI asks for it (the signed-in member is
/// filled in by the desk).
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListRequest {
    pub view: View,
    #[serde(default)]
    pub filters: InboxFilters,
    pub sort: Sort,
    pub limit: usize,
    #[serde(default)]
    pub after: Option<crate::query::Cursor>,
}

/// Everything the UI can ask.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case", deny_unknown_fields)]
pub enum Command {
    /// Who is signed in, keychain, sync status: [`DeskState`].
    State,
    /// Starts a browser sign-in: [`SignInStarted`].
    SignIn,
    /// Signs out and removes the local store. Refused while changes are
    /// unsent unless `discard_unsent`.
    SignOut {
        #[serde(default)]
        discard_unsent: bool,
    },
    /// A page of a conversation list: `ConversationRow[]`.
    List {
        request: Box<ListRequest>,
    },
    /// Internal notes mentioning me: `Mention[]`.
    Mentions {
        limit: usize,
    },
    /// Alerts for me on key accounts: `Alert[]`.
    Alerts {
        limit: usize,
    },
    /// AI drafts waiting for review: `DraftView[]`.
    Drafts {
        limit: usize,
    },
    /// Approve a draft, as written (`body` null) or edited, running only
    /// the proposed actions picked: `Queued`.
    ApproveDraft {
        id: DraftId,
        #[serde(default)]
        body: Option<String>,
        #[serde(default)]
        run_actions: Vec<u32>,
    },
    /// Reject a draft, saying why: `Queued`.
    RejectDraft {
        id: DraftId,
        reason: String,
    },
    /// A mirrored help-centre article (what a draft cites): `Article | null`.
    Article {
        id: ArticleId,
    },
    /// One conversation: `ConversationDetail | null`.
    Open {
        id: ConversationId,
    },
    /// Offline search: `Hit[]`.
    Search {
        text: String,
        limit: usize,
    },
    /// Staff to assign to or mention: `User[]`.
    Staff,
    /// Saved replies for the composer (the team's and mine): `SavedReply[]`.
    CannedReplies,
    /// A saved reply filled in for a conversation: `FilledReply`.
    FillReply {
        id: SavedReplyId,
        conversation: ConversationId,
    },
    Assign {
        id: ConversationId,
        assignee: Option<UserId>,
    },
    SetStatus {
        id: ConversationId,
        status: ConversationStatus,
        #[serde(default)]
        if_version: Option<u64>,
    },
    Snooze {
        id: ConversationId,
        #[cfg_attr(feature = "ts", ts(type = "string"))]
        until: jiff::Timestamp,
        #[serde(default)]
        if_version: Option<u64>,
    },
    SetPriority {
        id: ConversationId,
        priority: Priority,
    },
    AddTags {
        id: ConversationId,
        tags: Vec<String>,
    },
    RemoveTags {
        id: ConversationId,
        tags: Vec<String>,
    },
    /// A reply to the customer. With `seen` (the last message shown when
    /// the person started writing) the desk refuses with
    /// `answered_meanwhile` if someone else has replied since, unless
    /// `confirm` says to send anyway.
    Reply {
        id: ConversationId,
        body: String,
        #[serde(default)]
        seen: Option<MessageId>,
        #[serde(default)]
        confirm: bool,
    },
    Note {
        id: ConversationId,
        body: String,
        #[serde(default)]
        mentions: Vec<UserId>,
    },
    /// Refused changes with reasons: `Rejection[]`.
    Rejections,
    AcknowledgeRejection {
        mutation_id: u64,
    },
    /// Sync now instead of waiting for the next round.
    SyncNow,
    /// I am looking at (and maybe replying in) a conversation: others see
    /// it as a collision indicator.
    Viewing {
        id: ConversationId,
        replying: bool,
    },
    Left {
        id: ConversationId,
    },
    /// Senders whose mail is held because no account claims them:
    /// `HeldContact[]`. Online only (the held mail is on the server).
    HeldContacts,
    /// Links a held sender to an account; its held mail becomes
    /// conversations there, which arrive with the next sync: `Linked`.
    /// Online only.
    LinkContact {
        #[cfg_attr(feature = "ts", ts(type = "string"))]
        id: uuid::Uuid,
        account_id: AccountId,
    },
    /// Saves a stored attachment of a mirrored email message into the
    /// downloads folder (never replacing a file there): `SavedFile`.
    /// Online only (attachments stay on the server).
    SaveAttachment {
        message_id: MessageId,
        #[cfg_attr(feature = "ts", ts(type = "string"))]
        attachment_id: uuid::Uuid,
    },
    /// Accounts in the local store whose name or domain contains `text`,
    /// for picking one (works offline): `Account[]`.
    Accounts {
        text: String,
        limit: usize,
    },
}

/// `state`'s answer.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeskState {
    pub server: String,
    pub identity: Option<Identity>,
    pub keychain: Keychain,
    /// `None` while signed out.
    pub status: Option<SyncStatus>,
    /// A browser sign-in in progress: the page to open.
    pub signing_in: Option<String>,
    /// Why the last sign-in or session restore failed.
    pub sign_in_error: Option<String>,
    /// The live socket is connected.
    pub live: bool,
    /// The local store is being upgraded for this version of the app (the
    /// first start after an update); the inbox opens when it is done.
    pub upgrading: Option<StoreUpgrade>,
    /// The local store could not be opened: why, in words.
    pub store_error: Option<String>,
}

/// A one-time upgrade of the local store's schema, for the waiting screen.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreUpgrade {
    pub from_version: u32,
    pub to_version: u32,
    /// The store file's size, to say how much there is to rewrite.
    pub size_bytes: u64,
    /// How long it has been running.
    pub elapsed_ms: u64,
}

/// `save_attachment`'s answer: where the file was written.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SavedFile {
    pub path: String,
}

/// `sign_in`'s answer.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SignInStarted {
    pub authorize_url: String,
    /// Whether the system browser was opened (otherwise open the link).
    pub browser_opened: bool,
}

/// What the UI is told, as it happens.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum DeskEvent {
    /// From the engine: records changed, outbox, sync state, rejections.
    Engine { event: Event },
    /// Signed in, out, or a sign-in attempt ended: re-read `state`.
    Session,
    /// Others viewing a conversation (collision indicator).
    Presence {
        conversation_id: ConversationId,
        viewers: Vec<Viewer>,
    },
    Typing {
        conversation_id: ConversationId,
        name: String,
        typing: bool,
    },
    /// A chat message as it arrives, before it is stored: shown as
    /// arriving until its record syncs (see the live `message` frame).
    Arriving { message: Box<Message> },
    /// An arriving message was refused and will not be stored: take it off
    /// the screen.
    Withdrawn {
        conversation_id: ConversationId,
        message_id: MessageId,
    },
    /// A notification was raised (also shown in the app).
    Notice { notice: Notice },
    /// The live socket connected or dropped.
    Live { connected: bool },
}

/// A command's failure, for the UI: a stable code and words for people.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct DeskError {
    pub code: String,
    pub message: String,
}

impl DeskError {
    fn new(code: &str, message: impl Into<String>) -> DeskError {
        DeskError {
            code: code.to_owned(),
            message: message.into(),
        }
    }
}

impl From<EngineError> for DeskError {
    fn from(e: EngineError) -> Self {
        DeskError::new(e.code(), e.to_string())
    }
}

impl From<SessionError> for DeskError {
    fn from(e: SessionError) -> Self {
        DeskError::new(e.code(), e.to_string())
    }
}

/// What runs while someone is signed in.
struct Running {
    engine: Engine,
    me: Identity,
    stop: watch::Sender<bool>,
    live_out: mpsc::Sender<ClientFrame>,
    kick: Arc<Notify>,
}

struct State {
    running: Option<Running>,
    signing_in: Option<String>,
    sign_in_error: Option<String>,
    live: bool,
    /// An upgrade of the store running in the background, and since when.
    upgrading: Option<(StoreUpgrade, std::time::Instant)>,
    store_error: Option<String>,
}

/// How long the full check of the local store waits for the first paint
/// before it starts anyway (a shell that never reports one, the sign-in
/// screen).
const STORE_CHECK_LATEST: Duration = Duration::from_secs(3);

/// The desktop app's core, shared by the Tauri shell and the HTTP bridge.
#[derive(Clone)]
pub struct Desk {
    config: Arc<DeskConfig>,
    session: Arc<Session>,
    clock: Arc<dyn Clock>,
    state: Arc<Mutex<State>>,
    events: broadcast::Sender<DeskEvent>,
    /// Signalled when the first inbox rows are on screen.
    painted: Arc<Notify>,
}

impl Desk {
    /// Opens the desk. A member who signed in before gets the local inbox at
    /// once (offline-capable); the session is restored in the background.
    /// Must run inside a tokio runtime.
    pub fn open(config: DeskConfig, secrets: SecretStore) -> Result<Desk, DeskError> {
        std::fs::create_dir_all(&config.data_dir).map_err(|e| {
            DeskError::new(
                "local_store",
                format!("cannot create {}: {e}", config.data_dir.display()),
            )
        })?;
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let session = Arc::new(Session::new(&config.server, clock.clone(), secrets));
        let (events, _) = broadcast::channel(1024);
        let desk = Desk {
            config: Arc::new(config),
            session,
            clock,
            state: Arc::new(Mutex::new(State {
                running: None,
                signing_in: None,
                sign_in_error: None,
                live: false,
                upgrading: None,
                store_error: None,
            })),
            events,
            painted: Arc::new(Notify::new()),
        };
        if let Some(me) = desk.saved_identity() {
            // An older store is upgraded behind the window, which says so,
            // instead of before it (7.5 s at 100k conversations for the
            // v4 → v5 rewrite, docs/benchmarks.md).
            match Mirror::pending_upgrade(&desk.store_path()) {
                Ok(Some((from, to))) => desk.upgrade_then_start(me, from, to),
                _ => {
                    desk.start(me.clone())?;
                    let d = desk.clone();
                    tokio::spawn(async move { d.restore(me).await });
                }
            }
        } else if desk.config.sign_in_at_start {
            let d = desk.clone();
            tokio::spawn(async move {
                if let Err(e) = d.sign_in().await {
                    tracing::warn!(error = %e.message, "could not start the sign-in");
                }
            });
        }
        Ok(desk)
    }

    /// The shell calls this when the first inbox rows are painted: the full
    /// check of the local store starts then, so it does not compete with
    /// the first screen for the disk and the CPU.
    pub fn inbox_painted(&self) {
        self.painted.notify_one();
    }

    /// Events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<DeskEvent> {
        self.events.subscribe()
    }

    /// The engine while someone is signed in (for benchmarks and tests).
    pub fn engine(&self) -> Option<Engine> {
        self.lock().running.as_ref().map(|r| r.engine.clone())
    }

    /// Runs one command; the answer is JSON for the shell to pass on.
    pub async fn call(&self, cmd: Command) -> Result<Value, DeskError> {
        match cmd {
            Command::State => json(self.desk_state()),
            Command::SignIn => json(self.sign_in().await?),
            Command::SignOut { discard_unsent } => {
                self.sign_out(discard_unsent).await?;
                Ok(Value::Null)
            }
            Command::List { request } => {
                let (engine, me) = self.signed_in()?;
                let q = InboxQuery {
                    me: me.user_id,
                    view: request.view,
                    filters: request.filters,
                    sort: request.sort,
                    limit: request.limit,
                    after: request.after,
                };
                json(engine.inbox(&q)?)
            }
            Command::Mentions { limit } => {
                let (engine, me) = self.signed_in()?;
                json(engine.mentions(me.user_id, limit)?)
            }
            Command::Alerts { limit } => {
                let (engine, me) = self.signed_in()?;
                json(engine.key_account_alerts(me.user_id, limit)?)
            }
            Command::Drafts { limit } => json(self.signed_in()?.0.drafts_to_review(limit)?),
            Command::ApproveDraft {
                id,
                body,
                run_actions,
            } => self.intent(|e| e.approve_draft(id, body, run_actions)),
            Command::RejectDraft { id, reason } => self.intent(|e| e.reject_draft(id, reason)),
            Command::Article { id } => json(self.signed_in()?.0.record(Kind::Article, id.0)?),
            Command::Open { id } => json(self.signed_in()?.0.open_conversation(id)?),
            Command::Search { text, limit } => {
                let mut q = SearchQuery::new(text);
                q.limit = limit;
                json(self.signed_in()?.0.search(&q)?)
            }
            Command::Staff => json::<Vec<User>>(self.signed_in()?.0.staff()?),
            Command::CannedReplies => json(self.signed_in()?.0.saved_replies()?),
            Command::FillReply { id, conversation } => {
                let (engine, me) = self.signed_in()?;
                json(engine.fill_saved_reply(id, conversation, me.user_id)?)
            }
            Command::Assign { id, assignee } => self.intent(|e| e.assign(id, assignee)),
            Command::SetStatus {
                id,
                status,
                if_version,
            } => {
                if status == ConversationStatus::Snoozed {
                    return Err(DeskError::new(
                        "invalid",
                        "snooze with the snooze command, which takes a time",
                    ));
                }
                self.intent(|e| e.set_status(id, status, if_version))
            }
            Command::Snooze {
                id,
                until,
                if_version,
            } => {
                if until <= self.clock.now() {
                    return Err(DeskError::new(
                        "invalid",
                        "snooze until a time in the future",
                    ));
                }
                self.intent(|e| e.snooze(id, until, if_version))
            }
            Command::SetPriority { id, priority } => self.intent(|e| e.set_priority(id, priority)),
            Command::AddTags { id, tags } => self.intent(|e| e.add_tags(id, tags)),
            Command::RemoveTags { id, tags } => self.intent(|e| e.remove_tags(id, tags)),
            Command::Reply {
                id,
                body,
                seen,
                confirm,
            } => {
                let (engine, me) = self.signed_in()?;
                let left = crate::replies::placeholders(&body);
                if !confirm && !left.is_empty() {
                    return Err(DeskError::new(
                        "unfilled_placeholder",
                        format!(
                            "the reply still holds {}: fill it in or remove it, or send anyway",
                            left.iter()
                                .map(|p| format!("{{{{{p}}}}}"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    ));
                }
                if !confirm && let Some(m) = engine.answered_since(id, seen, me.user_id)? {
                    return Err(DeskError::new(
                        "answered_meanwhile",
                        format!(
                            "{} replied while you were writing: “{}”. Send yours anyway?",
                            if m.author_name.is_empty() {
                                "Someone"
                            } else {
                                &m.author_name
                            },
                            notify::excerpt(&m.body)
                        ),
                    ));
                }
                self.intent(|e| e.reply(id, body))
            }
            Command::Note { id, body, mentions } => self.intent(|e| e.note(id, body, mentions)),
            Command::Rejections => json(self.signed_in()?.0.rejections()?),
            Command::AcknowledgeRejection { mutation_id } => {
                json(self.signed_in()?.0.acknowledge_rejection(mutation_id)?)
            }
            Command::SyncNow => {
                self.kick();
                Ok(Value::Null)
            }
            Command::Viewing { id, replying } => {
                // The hub takes presence only from a subscriber: subscribe
                // first (again is harmless), then say what I am doing.
                self.live_send(ClientFrame::Subscribe {
                    conversation_id: id,
                });
                self.live_send(ClientFrame::Viewing {
                    conversation_id: id,
                    replying,
                });
                Ok(Value::Null)
            }
            Command::Left { id } => {
                self.live_send(ClientFrame::Left {
                    conversation_id: id,
                });
                Ok(Value::Null)
            }
            Command::SaveAttachment {
                message_id,
                attachment_id,
            } => {
                let (engine, _) = self.signed_in()?;
                let path = engine
                    .save_attachment(message_id, attachment_id, &self.config.downloads_dir)
                    .await
                    .map_err(|e| match e {
                        EngineError::Offline(why) => DeskError::new(
                            "offline",
                            format!(
                                "attachments are kept on the server, which cannot be reached now; try again when online ({why})"
                            ),
                        ),
                        other => online_error(other),
                    })?;
                json(SavedFile {
                    path: path.display().to_string(),
                })
            }
            Command::HeldContacts => {
                let (engine, _) = self.signed_in()?;
                json(engine.held_contacts().await.map_err(held_error)?)
            }
            Command::LinkContact { id, account_id } => {
                let (engine, _) = self.signed_in()?;
                let linked = engine
                    .link_contact(id, account_id)
                    .await
                    .map_err(held_error)?;
                // The new conversations come with the next pull: now.
                self.kick();
                json(linked)
            }
            Command::Accounts { text, limit } => {
                json(self.signed_in()?.0.accounts_named(&text, limit)?)
            }
        }
    }

    /// Queues an intent and asks the sync loop to push it now: the screen
    /// already shows it (from the local store), the server hears at once
    /// when online.
    fn intent(
        &self,
        f: impl FnOnce(&Engine) -> crate::engine::Result<crate::engine::Queued>,
    ) -> Result<Value, DeskError> {
        let (engine, _) = self.signed_in()?;
        let queued = f(&engine)?;
        self.kick();
        json(queued)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn signed_in(&self) -> Result<(Engine, Identity), DeskError> {
        self.not_upgrading()?;
        self.lock()
            .running
            .as_ref()
            .map(|r| (r.engine.clone(), r.me.clone()))
            .ok_or_else(|| DeskError::new("unauthenticated", "sign in first"))
    }

    fn not_upgrading(&self) -> Result<(), DeskError> {
        match self.lock().upgrading {
            Some(_) => Err(DeskError::new(
                "store_upgrading",
                "the local inbox is being upgraded for this version; it opens when that is done",
            )),
            None => Ok(()),
        }
    }

    fn kick(&self) {
        if let Some(r) = &self.lock().running {
            r.kick.notify_one();
        }
    }

    fn live_send(&self, frame: ClientFrame) {
        if let Some(r) = &self.lock().running {
            // A full queue or a closed socket drops the signal: presence is
            // best effort and re-sent on the next open.
            let _ = r.live_out.try_send(frame);
        }
    }

    fn emit(&self, e: DeskEvent) {
        let _ = self.events.send(e);
    }

    pub fn desk_state(&self) -> DeskState {
        let st = self.lock();
        DeskState {
            server: self.config.server.clone(),
            identity: st.running.as_ref().map(|r| r.me.clone()),
            keychain: self.session.secrets().state().clone(),
            status: st.running.as_ref().and_then(|r| r.engine.status().ok()),
            signing_in: st.signing_in.clone(),
            sign_in_error: st.sign_in_error.clone(),
            live: st.live,
            upgrading: st.upgrading.as_ref().map(|(u, since)| StoreUpgrade {
                elapsed_ms: since.elapsed().as_millis() as u64,
                ..u.clone()
            }),
            store_error: st.store_error.clone(),
        }
    }

    async fn sign_in(&self) -> Result<SignInStarted, DeskError> {
        self.not_upgrading()?;
        if self.lock().running.is_some() {
            return Err(DeskError::new("already_signed_in", "sign out first"));
        }
        let attempt = self.session.begin().await?;
        let url = attempt.authorize_url.clone();
        {
            let mut st = self.lock();
            st.signing_in = Some(url.clone());
            st.sign_in_error = None;
        }
        // Listen for the redirect before the browser can come back.
        let desk = self.clone();
        tokio::spawn(async move {
            let result = desk.session.finish(attempt).await;
            let outcome = match result {
                Ok(me) => desk.save_identity(&me).and_then(|()| desk.start(me)),
                Err(e) => Err(e.into()),
            };
            {
                let mut st = desk.lock();
                st.signing_in = None;
                if let Err(e) = &outcome {
                    tracing::warn!(error = %e.message, "sign-in failed");
                    st.sign_in_error = Some(e.message.clone());
                }
            }
            desk.emit(DeskEvent::Session);
        });
        let browser_opened = self.config.open_browser && {
            let url = url.clone();
            tokio::task::spawn_blocking(move || session::open_in_browser(&url))
                .await
                .unwrap_or(false)
        };
        Ok(SignInStarted {
            authorize_url: url,
            browser_opened,
        })
    }

    async fn sign_out(&self, discard_unsent: bool) -> Result<(), DeskError> {
        // The store being rewritten is not deleted from under the upgrade.
        self.not_upgrading()?;
        if let Some(r) = &self.lock().running {
            let pending = r.engine.pending_count()?;
            if pending > 0 && !discard_unsent {
                return Err(DeskError::new(
                    "unsent_changes",
                    format!(
                        "{pending} change(s) have not reached the server yet; go online first, or sign out discarding them"
                    ),
                ));
            }
        }
        let running = self.lock().running.take();
        if let Some(r) = running {
            let _ = r.stop.send(true);
            drop(r);
        }
        self.session.sign_out().await;
        // The local store holds customer data: it goes with the sign-in.
        for name in ["inbox.db", "inbox.db-wal", "inbox.db-shm", "identity.json"] {
            let _ = std::fs::remove_file(self.config.data_dir.join(name));
        }
        self.lock().live = false;
        self.emit(DeskEvent::Session);
        Ok(())
    }

    fn identity_path(&self) -> PathBuf {
        self.config.data_dir.join("identity.json")
    }

    fn saved_identity(&self) -> Option<Identity> {
        let text = std::fs::read_to_string(self.identity_path()).ok()?;
        serde_json::from_str(&text).ok()
    }

    fn save_identity(&self, me: &Identity) -> Result<(), DeskError> {
        let text = serde_json::to_string(me).expect("identity serializes");
        std::fs::write(self.identity_path(), text)
            .map_err(|e| DeskError::new("local_store", format!("cannot save the sign-in: {e}")))
    }

    fn store_path(&self) -> PathBuf {
        self.config.data_dir.join("inbox.db")
    }

    fn engine_config(&self) -> EngineConfig {
        let mut cfg = EngineConfig::new(
            self.config.server.clone(),
            SessionTokens(self.session.clone()),
        );
        cfg.clock = self.clock.clone();
        cfg
    }

    /// Opens the engine for `me` and starts the loops.
    fn start(&self, me: Identity) -> Result<(), DeskError> {
        let engine = Engine::open_with(self.store_path(), self.engine_config())?;
        self.run(engine, me);
        Ok(())
    }

    /// Upgrades the store from schema `from` to `to` on a blocking thread,
    /// then starts as [`Desk::start`] does. Meanwhile `state` reports the
    /// upgrade (the UI shows a waiting screen) and commands that need the
    /// store answer `store_upgrading`. Ends with a `Session` event.
    fn upgrade_then_start(&self, me: Identity, from: usize, to: usize) {
        let path = self.store_path();
        let size_bytes = std::fs::metadata(&path).map_or(0, |m| m.len());
        tracing::info!(from, to, size_bytes, "upgrading the local store");
        self.lock().upgrading = Some((
            StoreUpgrade {
                from_version: from as u32,
                to_version: to as u32,
                size_bytes,
                elapsed_ms: 0,
            },
            std::time::Instant::now(),
        ));
        let (desk, cfg) = (self.clone(), self.engine_config());
        tokio::spawn(async move {
            let started = std::time::Instant::now();
            let opened = tokio::task::spawn_blocking(move || Engine::open_with(&path, cfg))
                .await
                .map_err(|e| DeskError::new("local_store", format!("the upgrade stopped: {e}")))
                .and_then(|r| r.map_err(DeskError::from));
            desk.lock().upgrading = None;
            match opened {
                Ok(engine) => {
                    tracing::info!(
                        ms = started.elapsed().as_millis() as u64,
                        "local store upgraded"
                    );
                    desk.run(engine, me.clone());
                    desk.emit(DeskEvent::Session);
                    desk.restore(me).await;
                }
                Err(e) => {
                    tracing::error!(code = %e.code, error = %e.message, "the local store could not be upgraded");
                    desk.lock().store_error = Some(format!(
                        "The local inbox could not be upgraded for this version: {}",
                        e.message
                    ));
                    desk.emit(DeskEvent::Session);
                }
            }
        });
    }

    /// Starts the loops over an opened engine.
    fn run(&self, engine: Engine, me: Identity) {
        let (stop, stop_rx) = watch::channel(false);
        let (live_out, live_rx) = mpsc::channel(64);
        let kick = Arc::new(Notify::new());
        self.lock().running = Some(Running {
            engine: engine.clone(),
            me: me.clone(),
            stop,
            live_out,
            kick: kick.clone(),
        });
        self.forward_engine_events(&engine, stop_rx.clone());
        self.spawn_store_check(engine.clone(), kick.clone(), stop_rx.clone());
        self.spawn_sync(engine.clone(), me, kick.clone(), stop_rx.clone());
        self.spawn_live(engine, kick, live_rx, stop_rx);
    }

    /// Restores the session at start: the stored refresh token is traded
    /// for an access token. Offline, the inbox stays usable and the sync
    /// loop tries again; refused, the person is signed out.
    async fn restore(&self, me: Identity) {
        match self.session.restore().await {
            Ok(Some(_)) => self.kick(),
            Ok(None) => {
                self.lock().sign_in_error = Some(match self.session.secrets().state() {
                    Keychain::Available => "sign in again to sync".to_owned(),
                    Keychain::MemoryOnly { .. } => {
                        "no keychain on this computer: sign in again after each start".to_owned()
                    }
                });
                tracing::info!(user = %me.email, "no stored sign-in; working from the local store");
            }
            Err(SessionError::Offline(e)) => {
                tracing::info!(error = %e, "offline at start; working from the local store");
            }
            Err(e) => {
                tracing::warn!(error = %e, "the stored sign-in was refused");
                self.lock().sign_in_error = Some(e.to_string());
            }
        }
        self.emit(DeskEvent::Session);
    }

    fn forward_engine_events(&self, engine: &Engine, mut stop: watch::Receiver<bool>) {
        let mut rx = engine.subscribe();
        let desk = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stop.changed() => return,
                    e = rx.recv() => match e {
                        Ok(event) => desk.emit(DeskEvent::Engine { event }),
                        Err(broadcast::error::RecvError::Lagged(_)) => {
                            // The UI re-reads everything on a status event.
                            if let Some(Ok(status)) = desk.engine().map(|e| e.status()) {
                                desk.emit(DeskEvent::Engine { event: Event::SyncState { status } });
                            }
                        }
                        Err(broadcast::error::RecvError::Closed) => return,
                    }
                }
            }
        });
    }

    /// The full check of the local store ([`Engine::check_store`]), once the
    /// inbox is on screen (or after [`STORE_CHECK_LATEST`]). Damage found
    /// rebuilds the store: the UI hears `store_rebuilt`, the status says
    /// why, and the sync started here reloads it from the server.
    fn spawn_store_check(
        &self,
        engine: Engine,
        kick: Arc<Notify>,
        mut stop: watch::Receiver<bool>,
    ) {
        let painted = self.painted.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = stop.changed() => return,
                _ = painted.notified() => {}
                _ = tokio::time::sleep(STORE_CHECK_LATEST) => {}
            }
            // Stopping (sign-out) drops the check; a rebuild, once begun,
            // has no await inside and finishes.
            let checked = tokio::select! {
                _ = stop.changed() => return,
                checked = engine.check_store() => checked,
            };
            match checked {
                Ok(Some(_)) => kick.notify_one(),
                Ok(None) => {}
                Err(e) => tracing::warn!(
                    error = %e,
                    "could not check the local store; it is checked again at the next start"
                ),
            }
        });
    }

    /// Syncs now and then: at once when kicked (an edit, a live change),
    /// every `sync_every` online, with growing pauses offline. Changes
    /// pulled are checked for notifications.
    fn spawn_sync(
        &self,
        engine: Engine,
        me: Identity,
        kick: Arc<Notify>,
        mut stop: watch::Receiver<bool>,
    ) {
        let desk = self.clone();
        tokio::spawn(async move {
            let mut changes = engine.subscribe();
            let mut watch = Watch::new(me.user_id);
            let mut offline_rounds = 0u32;
            let mut was_online = false;
            loop {
                if *stop.borrow() {
                    return;
                }
                match desk.session.refresh_if_due().await {
                    Err(SessionError::Refused(m)) => {
                        tracing::warn!(%m, "sign-in expired");
                        desk.lock().sign_in_error = Some(format!("sign in again: {m}"));
                        desk.emit(DeskEvent::Session);
                    }
                    Err(e) => tracing::debug!(error = %e, "no fresh token yet"),
                    Ok(()) => {}
                }
                let result = if desk.session.access_token().is_some() {
                    Some(engine.sync_now().await)
                } else {
                    None
                };
                let online = matches!(result, Some(Ok(_)));
                let mut changed: Vec<(Kind, uuid::Uuid)> = Vec::new();
                loop {
                    match changes.try_recv() {
                        Ok(Event::RecordsChanged { kind, ids }) => {
                            changed.extend(ids.into_iter().map(|id| (kind, id)));
                        }
                        Ok(_) => {}
                        Err(broadcast::error::TryRecvError::Lagged(_)) => continue,
                        Err(_) => break,
                    }
                }
                if online {
                    if !watch.primed() {
                        if let Err(e) = watch.prime(&engine) {
                            tracing::warn!(error = %e, "cannot read what to notify about");
                        }
                    } else {
                        let notices = watch.observe(&engine, &changed);
                        desk.deliver(notify::bundle(notices, !was_online)).await;
                    }
                } else if let Some(Err(e)) = &result {
                    tracing::info!(error = %e, "sync failed");
                } else if watch.primed() {
                    // Local edits while offline: remember what is mine now.
                    let _ = watch.observe(&engine, &changed);
                }
                was_online = online;
                offline_rounds = if online { 0 } else { offline_rounds + 1 };
                let pause = if online {
                    desk.config.sync_every
                } else {
                    Duration::from_millis(500 * 2u64.pow(offline_rounds.min(5)))
                        .min(Duration::from_secs(8))
                };
                tokio::select! {
                    _ = stop.changed() => return,
                    _ = kick.notified() => {}
                    _ = tokio::time::sleep(pause) => {}
                }
            }
        });
    }

    async fn deliver(&self, notices: Vec<Notice>) {
        for n in notices {
            self.emit(DeskEvent::Notice { notice: n.clone() });
            if !self.config.notifications {
                continue;
            }
            let shown = tokio::task::spawn_blocking(move || notify::show(&n)).await;
            match shown {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "no desktop notification (no daemon?)"),
                Err(e) => tracing::warn!(error = %e, "notification task failed"),
            }
        }
    }

    /// The live socket: changes prompt a pull, presence and typing go to
    /// the UI.
    fn spawn_live(
        &self,
        engine: Engine,
        kick: Arc<Notify>,
        outgoing: mpsc::Receiver<ClientFrame>,
        stop: watch::Receiver<bool>,
    ) {
        let cursor = engine.read(|m| m.cursor()).unwrap_or(0);
        let (cursor_tx, _) = watch::channel(cursor);
        let (events_tx, mut events_rx) = broadcast::channel(256);
        let session = self.session.clone();
        let base = self.config.server.clone();
        let stop_live = stop.clone();
        tokio::spawn(async move {
            live::run(
                base,
                move || session.access_token(),
                cursor_tx,
                events_tx,
                outgoing,
                stop_live,
            )
            .await;
        });
        let desk = self.clone();
        let mut stop = stop;
        tokio::spawn(async move {
            loop {
                let event = tokio::select! {
                    _ = stop.changed() => return,
                    e = events_rx.recv() => e,
                };
                match event {
                    Ok(LiveEvent::Connected { .. }) => {
                        desk.lock().live = true;
                        desk.emit(DeskEvent::Live { connected: true });
                        kick.notify_one();
                    }
                    Ok(LiveEvent::Disconnected { .. }) => {
                        desk.lock().live = false;
                        desk.emit(DeskEvent::Live { connected: false });
                        // The server may be gone: find out now, not at the
                        // next round, so the status bar says so.
                        kick.notify_one();
                    }
                    Ok(LiveEvent::Change(_)) | Ok(LiveEvent::PullNeeded) => kick.notify_one(),
                    Ok(LiveEvent::Signal(ServerFrame::Presence {
                        conversation_id,
                        viewers,
                    })) => desk.emit(DeskEvent::Presence {
                        conversation_id,
                        viewers,
                    }),
                    Ok(LiveEvent::Signal(ServerFrame::Typing {
                        conversation_id,
                        name,
                        typing,
                        ..
                    })) => desk.emit(DeskEvent::Typing {
                        conversation_id,
                        name,
                        typing,
                    }),
                    Ok(LiveEvent::Signal(ServerFrame::Message { message })) => {
                        desk.emit(DeskEvent::Arriving { message })
                    }
                    Ok(LiveEvent::Signal(ServerFrame::Withdrawn {
                        conversation_id,
                        message_id,
                    })) => desk.emit(DeskEvent::Withdrawn {
                        conversation_id,
                        message_id,
                    }),
                    Ok(LiveEvent::Signal(_)) => {}
                    Err(broadcast::error::RecvError::Lagged(_)) => kick.notify_one(),
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        });
    }
}

/// Errors of the held-sender commands, which only the server can answer:
/// offline says so in words; the server's refusals keep their own code
/// (`forbidden` for someone who is not staff, `not_found` for a sender or
/// account that does not exist).
fn held_error(e: EngineError) -> DeskError {
    match e {
        EngineError::Offline(why) => DeskError::new(
            "offline",
            format!(
                "held senders are kept on the server, which cannot be reached now; try again when online ({why})"
            ),
        ),
        other => online_error(other),
    }
}

/// An online-only command's refusal by the server, under the server's own
/// stable code (`forbidden`, `not_found`, …).
fn online_error(e: EngineError) -> DeskError {
    match e {
        EngineError::Server {
            status: 403 | 404 | 422 | 400,
            code,
            message,
            ..
        } => DeskError::new(&code, message),
        other => other.into(),
    }
}

fn json<T: Serialize>(v: T) -> Result<Value, DeskError> {
    serde_json::to_value(v).map_err(|e| DeskError::new("internal", e.to_string()))
}
