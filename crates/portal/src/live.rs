//! The live hub behind `/v1/live`: one WebSocket per signed-in client,
//! carrying committed changes (redacted per viewer, tagged with `seq`) and
//! ephemeral signals (typing, presence for collision detection, reads).
//!
//! Changes come from the store as each transaction commits (see
//! [`spawn_fan_out`]). Each connection has a bounded outgoing queue and the
//! hub never waits on a client. A burst that overflows a queue skips that client's changes and
//! tells it `lagged` (it pulls the rest over HTTP); a client that stops
//! reading altogether is closed with `TOO_SLOW`. Either way one slow client
//! never delays the others.
//! Chat messages sent over the socket go through the same write path as
//! `POST /messages` (client-minted ids: a resend never duplicates), on the
//! chat writer thread in group commits ([`crate::group_commit`]), and are
//! acknowledged only once committed. So that the people in a conversation
//! read a message as it is typed rather than once a commit is done, the
//! hub also offers it as it arrives ([`ServerFrame::Message`], shown as
//! sending until its change arrives, or `withdrawn` if it is refused).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message as WsMessage, Utf8Bytes, WebSocket};
use futures_util::{SinkExt, StreamExt};
use portico_model::live::{self, ClientFrame, ServerFrame, close};
use portico_model::*;
use tokio::sync::{Notify, mpsc, watch};

use crate::api::AppState;
use crate::api::sync::read_changes;
use crate::error::{PortalError, Result};
use crate::store::{self, RawChange, Store};

/// Frames queued per connection before it counts as too slow.
pub const QUEUE: usize = 256;
/// Frames a client may send: a burst, refilled per second.
const RATE_BURST: f64 = 40.0;
const RATE_PER_SEC: f64 = 20.0;
/// Server pings this often; a client silent for three periods is dropped.
const PING_EVERY: Duration = Duration::from_secs(20);
/// A write to a socket that takes longer than this means the client is gone.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

type CloseReason = Option<(u16, String)>;

/// A frame as queued for a socket: already serialized, and shared. A
/// change fanned out to every all-access staff socket is shaped and
/// serialized once and queued as a reference to the same text, so a
/// connection's queue costs a pointer per frame rather than a copy of the
/// record (with 10,000 staff sockets open, copies of each change filled
/// ~100 KiB per socket while the node kept committing).
#[derive(Clone)]
struct Frame(Utf8Bytes);

impl Frame {
    fn of(frame: &ServerFrame) -> Frame {
        Frame(
            serde_json::to_string(frame)
                .expect("frames serialize")
                .into(),
        )
    }
}

struct Conn {
    viewer: Viewer,
    tx: mpsc::Sender<Frame>,
    /// Set when changes were skipped: the seq the client has everything up to.
    lagged_after: Option<i64>,
    /// The seq of the first change offered to this connection as it
    /// committed: every later one was offered too, so a `resume` replays
    /// only what came before it (no change arrives twice).
    live_from: Option<i64>,
    /// When the writer last got a frame out (ms since the hub started).
    progress: Arc<AtomicU64>,
    close: watch::Sender<CloseReason>,
    /// Closed by the hub (scope changed): offered nothing more.
    closed: bool,
    /// Conversations this client subscribed to (their visibility checked
    /// then), with each one's account.
    subscriptions: HashMap<ConversationId, AccountId>,
}

#[derive(Default)]
struct State {
    conns: HashMap<u64, Conn>,
    /// Staff connections: they may see every account's changes.
    staff: HashSet<u64>,
    /// Customer connections by account, so a change is offered only to the
    /// connections that could see it instead of scanning all of them.
    customers: HashMap<Option<AccountId>, HashSet<u64>>,
    /// Who is viewing each conversation, by connection.
    presence: HashMap<ConversationId, HashMap<u64, live::Viewer>>,
    /// The connections subscribed to each conversation (the index of
    /// [`Conn::subscriptions`]), so a conversation's signals reach its
    /// subscribers without a scan of every socket.
    subscribers: HashMap<ConversationId, HashSet<u64>>,
    /// Connections whose user or account changed in a way that may change
    /// what they see; the sweeper checks them against the store.
    recheck: HashSet<u64>,
}

/// A client whose queue stays full this long has stopped reading.
const STALL: Duration = Duration::from_secs(3);

/// Connections and presence, shared by the socket tasks and the fan-out task.
pub struct Hub {
    state: std::sync::Mutex<State>,
    /// The newest committed seq, for `hello` (kept here so a connecting
    /// client costs no read of the store).
    newest_seq: std::sync::atomic::AtomicI64,
    next_id: AtomicU64,
    wake: Notify,
    epoch: Instant,
}

impl Default for Hub {
    fn default() -> Self {
        Hub {
            state: Default::default(),
            newest_seq: Default::default(),
            next_id: AtomicU64::new(0),
            wake: Notify::new(),
            epoch: Instant::now(),
        }
    }
}

impl Hub {
    /// Runs the periodic checks (stalled clients, pending `lagged`) now.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    pub fn connections(&self) -> usize {
        self.state.lock().unwrap().conns.len()
    }

    /// Closes every socket (server shutdown), so graceful shutdown can finish.
    pub fn close_all(&self, code: u16, reason: &str) {
        let st = self.state.lock().unwrap();
        for c in st.conns.values() {
            let _ = c.close.send(Some((code, reason.to_owned())));
        }
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn register(
        &self,
        viewer: Viewer,
        tx: mpsc::Sender<Frame>,
        close: watch::Sender<CloseReason>,
    ) -> (u64, Arc<AtomicU64>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let progress = Arc::new(AtomicU64::new(self.now_ms()));
        let mut st = self.state.lock().unwrap();
        if viewer.is_staff() {
            st.staff.insert(id);
        } else {
            st.customers
                .entry(viewer.account_id)
                .or_default()
                .insert(id);
        }
        let conn = Conn {
            viewer,
            tx,
            lagged_after: None,
            live_from: None,
            progress: progress.clone(),
            close,
            closed: false,
            subscriptions: HashMap::new(),
        };
        st.conns.insert(id, conn);
        (id, progress)
    }

    /// Closes clients whose queue is full and whose writer made no progress
    /// for [`STALL`]: they stopped reading.
    fn reap_stalled(&self) {
        let now = self.now_ms();
        let st = self.state.lock().unwrap();
        for conn in st.conns.values() {
            let idle = now.saturating_sub(conn.progress.load(Ordering::Relaxed));
            if conn.tx.capacity() == 0 && idle > STALL.as_millis() as u64 {
                tracing::info!(user = %conn.viewer.user_id, "live client stopped reading; closing it");
                let _ = conn.close.send(Some((
                    close::TOO_SLOW,
                    "too slow to keep up: reconnect and pull over HTTP".into(),
                )));
            }
        }
    }

    fn unregister(&self, id: u64) {
        let left: Vec<ConversationId> = {
            let mut st = self.state.lock().unwrap();
            if let Some(conn) = st.conns.remove(&id) {
                st.staff.remove(&id);
                for conv in conn.subscriptions.keys() {
                    Self::unsubscribe(&mut st, id, *conv);
                }
                let account = conn.viewer.account_id;
                if let Some(ids) = st.customers.get_mut(&account) {
                    ids.remove(&id);
                    if ids.is_empty() {
                        st.customers.remove(&account);
                    }
                }
            }
            let mut left = Vec::new();
            for (conv, viewers) in st.presence.iter_mut() {
                if viewers.remove(&id).is_some() {
                    left.push(*conv);
                }
            }
            left
        };
        for conv in left {
            self.broadcast_presence(conv);
        }
    }

    fn subscribe(st: &mut State, id: u64, conv: ConversationId, account: AccountId) {
        if let Some(c) = st.conns.get_mut(&id) {
            c.subscriptions.insert(conv, account);
            st.subscribers.entry(conv).or_default().insert(id);
        }
    }

    fn unsubscribe(st: &mut State, id: u64, conv: ConversationId) {
        if let Some(c) = st.conns.get_mut(&id) {
            c.subscriptions.remove(&conv);
        }
        if let Some(ids) = st.subscribers.get_mut(&conv) {
            ids.remove(&id);
            if ids.is_empty() {
                st.subscribers.remove(&conv);
            }
        }
    }

    /// The connections that see a conversation now, but `except`: staff
    /// who see every conversation, and its subscribers (each checked when
    /// it subscribed). With whether each sees every conversation.
    fn in_conversation(st: &State, conv: ConversationId, except: u64) -> Vec<(u64, bool)> {
        let sees_all = |c: &Conn| Conversation::every_row_visible_to(&c.viewer);
        let mut out: Vec<(u64, bool)> = st
            .staff
            .iter()
            .filter(|id| st.conns.get(id).is_some_and(sees_all))
            .map(|id| (*id, true))
            .collect();
        for id in st.subscribers.get(&conv).into_iter().flatten() {
            if let Some(c) = st.conns.get(id)
                && !sees_all(c)
            {
                out.push((*id, false));
            }
        }
        out.retain(|(id, _)| *id != except);
        out
    }

    /// Tells lagging clients to pull, as soon as their queue has room: a
    /// burst may end while the queue is still full.
    fn flush_lagged(&self) {
        let mut st = self.state.lock().unwrap();
        for conn in st.conns.values_mut() {
            if let Some(after_seq) = conn.lagged_after
                && conn
                    .tx
                    .try_send(Frame::of(&ServerFrame::Lagged { after_seq }))
                    .is_ok()
            {
                conn.lagged_after = None;
            }
        }
    }

    /// Queues an ephemeral frame without waiting; dropped if the queue is full.
    fn offer(conn: &Conn, frame: Frame) {
        let _ = conn.tx.try_send(frame);
    }

    /// Queues a change without waiting. Once one is skipped, later ones are
    /// skipped too until `lagged` fits in the queue, so the client never sees
    /// a change after a hole without being told to pull.
    fn offer_change(conn: &mut Conn, seq: i64, frame: Frame) {
        if conn.closed {
            return;
        }
        conn.live_from.get_or_insert(seq);
        if let Some(after_seq) = conn.lagged_after {
            if conn
                .tx
                .try_send(Frame::of(&ServerFrame::Lagged { after_seq }))
                .is_err()
            {
                return;
            }
            conn.lagged_after = None;
        }
        if conn.tx.try_send(frame).is_err() {
            conn.lagged_after = Some(seq - 1);
        }
    }

    /// Sends committed changes to every connection whose viewer may see
    /// them. Called in commit order with the store's writer held, so it
    /// never waits: each connection's queue takes the frame or skips it.
    fn fan_out(&self, changes: &[RawChange]) {
        if let Some(last) = changes.last() {
            self.newest_seq.fetch_max(last.seq, Ordering::Relaxed);
        }
        let mut guard = self.state.lock().unwrap();
        let st = &mut *guard;
        for raw in changes {
            Self::note_scope_change(st, raw);
            // Staff with access to all conversations see a change the same
            // way: shape and serialize it once, share the text. Team access
            // is shaped per viewer.
            let mut for_all: Option<Option<Frame>> = None;
            for id in &st.staff {
                let Some(conn) = st.conns.get_mut(id) else {
                    continue;
                };
                let sees_all = conn.viewer.access == portico_model::ConversationAccess::All;
                let framed = match (&for_all, sees_all) {
                    (Some(f), true) => Ok(f.clone()),
                    (None, true) => {
                        change_frame(&conn.viewer, raw).inspect(|f| for_all = Some(f.clone()))
                    }
                    (_, false) => change_frame(&conn.viewer, raw),
                };
                match framed {
                    Ok(Some(frame)) => Self::offer_change(conn, raw.seq, frame),
                    Ok(None) => {}
                    Err(e) => {
                        tracing::error!(error = %e, seq = raw.seq, "cannot shape a change for live staff")
                    }
                }
            }
            // Customers: only the account's own connections, unless the row
            // belongs to no account or is in the (public) community.
            let customers: Vec<u64> = match raw.account_id.as_deref() {
                Some(a) if raw.kind != Kind::CommunityPost => a
                    .parse::<AccountId>()
                    .ok()
                    .and_then(|a| st.customers.get(&Some(a)))
                    .map(|ids| ids.iter().copied().collect())
                    .unwrap_or_default(),
                _ => st.customers.values().flatten().copied().collect(),
            };
            for id in customers {
                let Some(conn) = st.conns.get_mut(&id) else {
                    continue;
                };
                match change_frame(&conn.viewer, raw) {
                    Ok(Some(frame)) => Self::offer_change(conn, raw.seq, frame),
                    Ok(None) => {}
                    Err(e) => {
                        tracing::error!(error = %e, seq = raw.seq, "cannot shape a change for a live client")
                    }
                }
            }
        }
        if !st.recheck.is_empty() {
            self.wake.notify_one();
        }
    }

    /// A connection's viewer is fixed when it signs in; a change to its
    /// user (teams, conversation access, role, status) or to its account's
    /// subscription (plan) may change what it may see.
    ///
    /// A user change carries everything the viewer is made of but the
    /// plan, so it is decided here, before any later change is shaped for
    /// the old viewer: the connection is closed ([`close::SCOPE_CHANGED`]:
    /// the client reconnects under the new scope and its next pull
    /// resyncs; or [`close::UNAUTHENTICATED`] for a disabled or deleted
    /// user) and offered nothing more. A subscription change needs the
    /// plan read from the store, so those connections are checked by the
    /// sweeper ([`Hub::recheck_scopes`]), off the writer.
    fn note_scope_change(st: &mut State, raw: &RawChange) {
        match raw.kind {
            Kind::User => {
                let user: Option<User> = raw
                    .row
                    .as_deref()
                    .and_then(|r| serde_json::from_str(r).ok());
                for conn in st.conns.values_mut() {
                    if conn.viewer.user_id.0 != raw.id || conn.closed {
                        continue;
                    }
                    let reason = match &user {
                        Some(u) if u.status == UserStatus::Active => {
                            let now = Viewer {
                                user_id: u.id,
                                role: u.role,
                                account_id: u.account_id,
                                plan_code: conn.viewer.plan_code.clone(),
                                access: u.conversation_access,
                                team_ids: u.team_ids.clone(),
                            };
                            if same_scope(&conn.viewer, &now) {
                                continue;
                            }
                            (
                                close::SCOPE_CHANGED,
                                "what you may see changed: reconnect and pull to resync",
                            )
                        }
                        _ => (close::UNAUTHENTICATED, "this user can no longer sign in"),
                    };
                    Self::close_conn(conn, reason.0, reason.1);
                }
            }
            Kind::Subscription => {
                let touched: Vec<u64> = raw
                    .account_id
                    .as_deref()
                    .and_then(|a| a.parse::<AccountId>().ok())
                    .and_then(|a| st.customers.get(&Some(a)))
                    .map(|ids| ids.iter().copied().collect())
                    .unwrap_or_default();
                st.recheck.extend(touched);
            }
            _ => {}
        }
    }

    /// Closes a connection and offers it nothing more.
    fn close_conn(conn: &mut Conn, code: u16, reason: &str) {
        tracing::info!(user = %conn.viewer.user_id, code, "closing a live socket: {reason}");
        conn.closed = true;
        let _ = conn.close.send(Some((code, reason.to_owned())));
    }

    /// Derives the viewer of each connection marked for a check again from
    /// the store, as a new sign-in would, and closes those whose scope
    /// changed ([`close::SCOPE_CHANGED`]: the client reconnects under the
    /// new scope and its next pull resyncs) or whose user may no longer
    /// sign in ([`close::UNAUTHENTICATED`]). Until then the old viewer
    /// keeps shaping its changes: the window is one sweep (≤ 250 ms).
    fn recheck_scopes(&self, store: &Store) {
        let due: Vec<(u64, Viewer)> = {
            let mut st = self.state.lock().unwrap();
            let ids: Vec<u64> = st.recheck.drain().collect();
            ids.into_iter()
                .filter_map(|id| st.conns.get(&id).map(|c| (id, c.viewer.clone())))
                .collect()
        };
        if due.is_empty() {
            return;
        }
        let fresh = store.read(|c| {
            due.iter()
                .map(|(id, old)| {
                    let now = match store::get::<User>(c, old.user_id.0)? {
                        Some(u) if u.status == UserStatus::Active => {
                            Some(crate::auth::viewer_for_user(c, &u)?)
                        }
                        _ => None,
                    };
                    Ok((*id, old, now))
                })
                .collect::<Result<Vec<_>>>()
        });
        let fresh = match fresh {
            Ok(f) => f,
            Err(e) => {
                tracing::error!(error = %e, "cannot check live viewers again; will retry");
                self.state
                    .lock()
                    .unwrap()
                    .recheck
                    .extend(due.iter().map(|(id, _)| *id));
                return;
            }
        };
        let mut st = self.state.lock().unwrap();
        for (id, old, now) in fresh {
            let Some(conn) = st.conns.get_mut(&id) else {
                continue;
            };
            match now {
                None => Self::close_conn(
                    conn,
                    close::UNAUTHENTICATED,
                    "this user can no longer sign in",
                ),
                Some(v) if !same_scope(old, &v) => Self::close_conn(
                    conn,
                    close::SCOPE_CHANGED,
                    "what you may see changed: reconnect and pull to resync",
                ),
                Some(_) => {}
            }
        }
    }

    /// The account of a conversation connection `id` subscribed to; `None`
    /// if it did not (the hub has not checked it may see it).
    fn subscribed_account(&self, id: u64, conv: ConversationId) -> Option<AccountId> {
        let st = self.state.lock().unwrap();
        st.conns.get(&id)?.subscriptions.get(&conv).copied()
    }

    /// Offers a chat message as it arrives, before it is stored
    /// ([`ServerFrame::Message`]), to every connection but the sender's
    /// (`from`) that sees the conversation now: staff who see every
    /// conversation, and the conversation's subscribers. The message is
    /// shaped for each by the same rule as its stored row.
    fn announce(&self, from: u64, message: &Message) {
        let text = serde_json::to_string(message).expect("messages serialize");
        let st = self.state.lock().unwrap();
        let mut for_all: Option<Option<Frame>> = None;
        for (id, sees_all) in Self::in_conversation(&st, message.conversation_id, from) {
            let Some(conn) = st.conns.get(&id).filter(|c| !c.closed) else {
                continue;
            };
            let framed = match (&for_all, sees_all) {
                (Some(f), true) => Ok(f.clone()),
                (None, true) => {
                    message_frame(&conn.viewer, &text).inspect(|f| for_all = Some(f.clone()))
                }
                (_, false) => message_frame(&conn.viewer, &text),
            };
            match framed {
                Ok(Some(frame)) => Self::offer(conn, frame),
                Ok(None) => {}
                Err(e) => tracing::error!(error = %e, "cannot shape an arriving message"),
            }
        }
    }

    /// Takes back an announced message that was refused: the same
    /// recipients as [`Hub::announce`] (one who arrived since is told of a
    /// message it never saw, which it ignores).
    fn withdraw(&self, from: u64, conversation_id: ConversationId, message_id: MessageId) {
        let frame = Frame::of(&ServerFrame::Withdrawn {
            conversation_id,
            message_id,
        });
        let st = self.state.lock().unwrap();
        for (id, _) in Self::in_conversation(&st, conversation_id, from) {
            if let Some(conn) = st.conns.get(&id) {
                Self::offer(conn, frame.clone());
            }
        }
    }

    /// Sends `frame` to the other subscribers of `conv` that pass `to`.
    fn to_subscribers(
        &self,
        conv: ConversationId,
        except: u64,
        to: impl Fn(&Conn) -> bool,
        frame: ServerFrame,
    ) {
        let frame = Frame::of(&frame);
        let st = self.state.lock().unwrap();
        for id in st.subscribers.get(&conv).into_iter().flatten() {
            if let Some(conn) = st.conns.get(id)
                && *id != except
                && to(conn)
            {
                Self::offer(conn, frame.clone());
            }
        }
    }

    /// Tells staff subscribers who else is viewing or replying (collision).
    fn broadcast_presence(&self, conv: ConversationId) {
        let st = self.state.lock().unwrap();
        let viewers = st.presence.get(&conv).cloned().unwrap_or_default();
        for id in st.subscribers.get(&conv).into_iter().flatten() {
            let Some(conn) = st.conns.get(id) else {
                continue;
            };
            if conn.viewer.is_staff() {
                let others = viewers
                    .iter()
                    .filter(|(v, _)| *v != id)
                    .map(|(_, v)| v.clone())
                    .collect();
                Self::offer(
                    conn,
                    Frame::of(&ServerFrame::Presence {
                        conversation_id: conv,
                        viewers: others,
                    }),
                );
            }
        }
    }
}

/// `raw` shaped for `viewer` as a `change` frame; `None` if they may not
/// see it. The same decision and fields as [`crate::api::sync::shape_change`] (the feed's),
/// and the same frame as [`ServerFrame::Change`] writes, but the row goes
/// from its stored text to the frame's text without a JSON map in
/// between: sent as stored to staff who see all of it, else parsed into
/// its record type and written back with only the fields the viewer may
/// see. The fan-out shapes every change of every commit, on the chat
/// writer's thread.
fn change_frame(viewer: &Viewer, raw: &RawChange) -> Result<Option<Frame>> {
    #[derive(serde::Serialize)]
    struct ChangeFrame<'a> {
        #[serde(rename = "type")]
        frame: &'static str,
        change: ChangeText<'a>,
    }
    #[derive(serde::Serialize)]
    struct ChangeText<'a> {
        seq: i64,
        kind: Kind,
        id: uuid::Uuid,
        op: portico_model::wire::ChangeOp,
        version: u64,
        #[serde(skip_serializing_if = "Option::is_none")]
        row: Option<&'a serde_json::value::RawValue>,
    }
    let Some((op, row)) = crate::api::sync::shaped(viewer, raw, redact_text_json)? else {
        return Ok(None);
    };
    let row = row
        .map(serde_json::value::RawValue::from_string)
        .transpose()
        .map_err(|source| PortalError::Corrupt {
            kind: raw.kind,
            source,
        })?;
    let frame = ChangeFrame {
        frame: "change",
        change: ChangeText {
            seq: raw.seq,
            kind: raw.kind,
            id: raw.id,
            op,
            version: raw.version,
            row: row.as_deref(),
        },
    };
    Ok(Some(Frame(
        serde_json::to_string(&frame)
            .expect("frames serialize")
            .into(),
    )))
}

/// An arriving message (its record as stored text) shaped for `viewer` as a
/// `message` frame; `None` if they may not see it. The stored row's rule
/// ([`redact_text_json`]) decides, so the frame holds what the change
/// will.
fn message_frame(viewer: &Viewer, message: &str) -> Result<Option<Frame>> {
    let Some(shaped) =
        redact_text_json(viewer, Kind::Message, message).map_err(|e| PortalError::Corrupt {
            kind: Kind::Message,
            source: e.source,
        })?
    else {
        return Ok(None);
    };
    Ok(Some(Frame(
        format!(r#"{{"type":"message","message":{shaped}}}"#).into(),
    )))
}

/// Two viewers see the same rows and fields (the sync feed's scope key,
/// which covers role, account, plan and team access).
fn same_scope(a: &Viewer, b: &Viewer) -> bool {
    a.role == b.role && portico_model::sync::scope_key(a) == portico_model::sync::scope_key(b)
}

/// Connects the hub to the store: every committed transaction's changes are
/// fanned out as it commits (no read back from the change log, no extra
/// task hop), and a periodic task closes stalled clients and tells lagging
/// ones to pull. Dropping the returned handle disconnects both.
pub fn spawn_fan_out(hub: Arc<Hub>, store: Arc<Store>) -> FanOut {
    let h = hub.clone();
    store.set_commit_listener(Some(Arc::new(move |changes: &[RawChange]| {
        h.fan_out(changes)
    })));
    // Read after the listener is set, so no commit falls in between.
    match store.read(|c| {
        Ok(
            c.query_row("SELECT coalesce(max(seq), 0) FROM change_log", [], |r| {
                r.get::<_, i64>(0)
            })?,
        )
    }) {
        Ok(seq) => {
            hub.newest_seq.fetch_max(seq, Ordering::Relaxed);
        }
        Err(e) => tracing::error!(error = %e, "cannot read the newest change seq"),
    }
    let (h, s) = (hub.clone(), store.clone());
    let sweeper = tokio::spawn(async move {
        loop {
            let _ = tokio::time::timeout(Duration::from_millis(250), hub.wake.notified()).await;
            hub.reap_stalled();
            hub.flush_lagged();
            if !hub.state.lock().unwrap().recheck.is_empty() {
                let (h, s) = (h.clone(), s.clone());
                let _ = tokio::task::spawn_blocking(move || h.recheck_scopes(&s)).await;
            }
        }
    });
    FanOut { store, sweeper }
}

/// The hub's connection to the store; see [`spawn_fan_out`].
pub struct FanOut {
    store: Arc<Store>,
    sweeper: tokio::task::JoinHandle<()>,
}

impl Drop for FanOut {
    fn drop(&mut self) {
        self.store.set_commit_listener(None);
        self.sweeper.abort();
    }
}

/// A token bucket for the frames one client may send.
struct RateLimit {
    tokens: f64,
    at: Instant,
}

impl RateLimit {
    fn allow(&mut self) -> bool {
        let now = Instant::now();
        self.tokens = (self.tokens + now.duration_since(self.at).as_secs_f64() * RATE_PER_SEC)
            .min(RATE_BURST);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Runs one authenticated socket until it closes. `name` is the user's, for
/// typing and presence signals.
///
/// Memory per idle socket matters (10,000 of them must fit in well under
/// 1 GiB next to a working node): the connection costs two tasks (this one,
/// reading, and a writer), a bounded queue that allocates as it fills, and
/// the WebSocket's 4 KiB read buffer. Frame handling is boxed so the idle
/// reading task does not carry the largest request's state.
pub async fn session(st: AppState, viewer: Viewer, name: String, socket: WebSocket) {
    let hub = st.live.clone();
    let (tx, mut rx) = mpsc::channel::<Frame>(QUEUE);
    let (close_tx, mut close_rx) = watch::channel::<CloseReason>(None);
    let (id, progress) = hub.register(viewer.clone(), tx.clone(), close_tx.clone());
    let epoch = hub.epoch;
    let seq = hub.newest_seq.load(Ordering::Relaxed);
    let _ = tx.try_send(Frame::of(&ServerFrame::Hello {
        protocol: live::LIVE_PROTOCOL,
        user_id: viewer.user_id,
        seq,
    }));

    let (mut sink, mut stream) = socket.split();
    let writer = tokio::spawn(async move {
        let mut ping = tokio::time::interval(PING_EVERY);
        ping.tick().await;
        loop {
            tokio::select! {
                // A requested close wins over queued frames, so it is always sent.
                biased;
                changed = close_rx.changed() => {
                    let reason = if changed.is_ok() { close_rx.borrow().clone() } else { None };
                    send_close(&mut sink, reason).await;
                    break;
                }
                frame = rx.recv() => {
                    let Some(Frame(text)) = frame else { break };
                    // A client that stopped reading blocks this send; a close
                    // request (e.g. its queue overflowed) must still end it.
                    let closing = tokio::select! {
                        sent = tokio::time::timeout(SEND_TIMEOUT, sink.send(WsMessage::Text(text))) => {
                            if !matches!(sent, Ok(Ok(()))) {
                                break;
                            }
                            progress.store(epoch.elapsed().as_millis() as u64, Ordering::Relaxed);
                            false
                        }
                        _ = close_rx.changed() => true,
                    };
                    if closing {
                        let reason = close_rx.borrow().clone();
                        send_close(&mut sink, reason).await;
                        break;
                    }
                }
                _ = ping.tick() => {
                    if tokio::time::timeout(SEND_TIMEOUT, sink.send(WsMessage::Ping(Vec::new().into()))).await.is_err() {
                        break;
                    }
                }
            }
        }
    });

    let mut rate = RateLimit {
        tokens: RATE_BURST,
        at: Instant::now(),
    };
    let close_with = |code: u16, reason: String| {
        let _ = close_tx.send(Some((code, reason)));
    };
    // The hub may close this client (too slow, shutdown) while it is silent.
    let mut closed_by_hub = close_tx.subscribe();
    loop {
        let next = tokio::select! {
            next = tokio::time::timeout(PING_EVERY * 3, stream.next()) => next,
            _ = closed_by_hub.changed() => break,
        };
        let msg = match next {
            Err(_) => {
                close_with(close::GOING_AWAY, "no frames or pongs for a minute".into());
                break;
            }
            Ok(None) => break,
            Ok(Some(Ok(m))) => m,
            Ok(Some(Err(e))) => {
                let inner = e.into_inner();
                let too_big = matches!(
                    inner.downcast_ref::<tokio_tungstenite::tungstenite::Error>(),
                    Some(tokio_tungstenite::tungstenite::Error::Capacity(_))
                );
                if too_big {
                    close_with(
                        close::TOO_BIG,
                        format!("frames are limited to {} bytes", live::MAX_FRAME_BYTES),
                    );
                }
                break;
            }
        };
        let text = match msg {
            WsMessage::Text(t) => t,
            WsMessage::Binary(_) => {
                close_with(close::MALFORMED, "send JSON text frames".into());
                break;
            }
            WsMessage::Close(_) => break,
            WsMessage::Ping(_) | WsMessage::Pong(_) => continue,
        };
        if !rate.allow() {
            close_with(
                close::RATE_LIMITED,
                format!("at most {RATE_PER_SEC} frames per second"),
            );
            break;
        }
        let frame: ClientFrame = match serde_json::from_str(&text) {
            Ok(f) => f,
            Err(e) => {
                close_with(close::MALFORMED, format!("malformed frame: {e}"));
                break;
            }
        };
        if let Err(e) = Box::pin(handle(&st, id, &viewer, &name, &tx, frame)).await {
            let _ = tx
                .send(Frame::of(&ServerFrame::Error {
                    code: e.code().into(),
                    message: e.to_string(),
                    message_id: None,
                }))
                .await;
        }
    }
    hub.unregister(id);
    drop(tx);
    let _ = writer.await;
    // Finish the closing handshake: read (and ignore) what the client still
    // sends until it answers the close, so the close frame is not lost to a
    // TCP reset of unread data.
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        while let Some(Ok(m)) = stream.next().await {
            if matches!(m, WsMessage::Close(_)) {
                break;
            }
        }
    })
    .await;
}

/// Sends a close frame with its code and reason, giving up after a second
/// (a client that stopped reading will not read it anyway).
async fn send_close(
    sink: &mut futures_util::stream::SplitSink<WebSocket, WsMessage>,
    reason: CloseReason,
) {
    let (code, mut text) = reason.unwrap_or((close::GOING_AWAY, "closing".into()));
    // A close reason may hold at most 123 bytes (RFC 6455 §5.5).
    if text.len() > 123 {
        let mut cut = 120;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push_str("...");
    }
    let frame = CloseFrame {
        code,
        reason: text.into(),
    };
    let _ = tokio::time::timeout(
        Duration::from_secs(1),
        sink.send(WsMessage::Close(Some(frame))),
    )
    .await;
}

async fn visible_conversation(
    st: &AppState,
    viewer: &Viewer,
    id: ConversationId,
) -> Result<Conversation> {
    let conv: Conversation = st.read(move |c| store::require(c, id.0)).await?;
    if !conv.visible_to(viewer) {
        return Err(PortalError::not_found(Kind::Conversation, id));
    }
    Ok(conv)
}

fn subscribed(st: &AppState, id: u64, conv: ConversationId) -> Result<()> {
    let s = st.live.state.lock().unwrap();
    match s.conns.get(&id) {
        Some(c) if c.subscriptions.contains_key(&conv) => Ok(()),
        _ => Err(PortalError::Forbidden(
            "subscribe to the conversation first",
        )),
    }
}

async fn handle(
    st: &AppState,
    id: u64,
    viewer: &Viewer,
    name: &str,
    tx: &mpsc::Sender<Frame>,
    frame: ClientFrame,
) -> Result<()> {
    let hub = &st.live;
    match frame {
        ClientFrame::Ping => {
            let _ = tx.send(Frame::of(&ServerFrame::Pong)).await;
        }
        ClientFrame::Subscribe { conversation_id } => {
            let conv = visible_conversation(st, viewer, conversation_id).await?;
            Hub::subscribe(
                &mut hub.state.lock().unwrap(),
                id,
                conversation_id,
                conv.account_id,
            );
            hub.broadcast_presence(conversation_id);
        }
        ClientFrame::Unsubscribe { conversation_id } => {
            let mut s = hub.state.lock().unwrap();
            Hub::unsubscribe(&mut s, id, conversation_id);
            if let Some(p) = s.presence.get_mut(&conversation_id) {
                p.remove(&id);
            }
        }
        ClientFrame::Resume { after_seq } => {
            let v = viewer.clone();
            let page = st
                .read(move |c| read_changes(c, &v, after_seq.max(0), 1_000))
                .await?;
            // Changes from `live_from` on were (or are being) sent as they
            // committed; read after the page, so any the page holds is seen.
            let live_from = hub
                .state
                .lock()
                .unwrap()
                .conns
                .get(&id)
                .and_then(|c| c.live_from);
            let replay = page
                .changes
                .into_iter()
                .filter(|c| live_from.is_none_or(|from| c.seq < from));
            for change in replay {
                let _ = tx.send(Frame::of(&ServerFrame::Change { change })).await;
            }
            let _ = tx
                .send(Frame::of(&ServerFrame::Resumed {
                    seq: page.next_after,
                    complete: !page.has_more,
                }))
                .await;
        }
        ClientFrame::Viewing {
            conversation_id,
            replying,
        } => {
            subscribed(st, id, conversation_id)?;
            if viewer.is_staff() {
                hub.state
                    .lock()
                    .unwrap()
                    .presence
                    .entry(conversation_id)
                    .or_default()
                    .insert(
                        id,
                        live::Viewer {
                            user_id: viewer.user_id,
                            name: name.to_owned(),
                            replying,
                        },
                    );
                hub.broadcast_presence(conversation_id);
            }
        }
        ClientFrame::Left { conversation_id } => {
            let removed = hub
                .state
                .lock()
                .unwrap()
                .presence
                .get_mut(&conversation_id)
                .and_then(|p| p.remove(&id));
            if removed.is_some() {
                hub.broadcast_presence(conversation_id);
            }
        }
        ClientFrame::Typing {
            conversation_id,
            typing,
        } => {
            subscribed(st, id, conversation_id)?;
            let frame = ServerFrame::Typing {
                conversation_id,
                user_id: viewer.user_id,
                name: name.to_owned(),
                typing,
            };
            hub.to_subscribers(conversation_id, id, |_| true, frame);
        }
        ClientFrame::Read {
            conversation_id,
            message_id,
        } => {
            subscribed(st, id, conversation_id)?;
            let frame = ServerFrame::Read {
                conversation_id,
                message_id,
                user_id: viewer.user_id,
            };
            hub.to_subscribers(conversation_id, id, |_| true, frame);
        }
        ClientFrame::Send {
            conversation_id,
            message_id,
            body,
            after_message_id,
            force,
        } => {
            // Shown as it arrives, to those who see the conversation, if the
            // sender subscribed to it: the subscription is where the hub
            // checked the sender may see it, and learned its account.
            let arriving = hub
                .subscribed_account(id, conversation_id)
                .map(|account_id| {
                    let at = st.clock.now();
                    Message {
                        id: message_id,
                        conversation_id,
                        account_id,
                        kind: if viewer.is_staff() {
                            MessageKind::Agent
                        } else {
                            MessageKind::Customer
                        },
                        author_id: Some(viewer.user_id),
                        author_name: name.to_owned(),
                        body: body.clone(),
                        mentions: vec![],
                        email: None,
                        delivery: None,
                        version: 0,
                        created_at: at,
                        updated_at: at,
                    }
                })
                // Refused before it is stored anyway (empty, too long).
                .filter(|m| m.validate().is_ok());
            if let Some(m) = &arriving {
                hub.announce(id, m);
            }
            let v = viewer.clone();
            // Group-committed with whatever else is waiting; acknowledged
            // (and fanned out) only once committed.
            let result = st
                .chat
                .write(
                    store::Actor::from(viewer),
                    st.clock.now(),
                    Box::new(move |w| {
                        if let (Some(seen), false) = (after_message_id, force) {
                            traffic_cop(w, &v, conversation_id, seen)?;
                        }
                        let input = wire::NewMessage {
                            id: Some(message_id),
                            internal: false,
                            body,
                            mentions: vec![],
                        };
                        crate::api::conversations::post_in(w, &v, conversation_id.0, input)
                            .map(drop)
                    }),
                )
                .await;
            match result {
                Ok(_) => {
                    let _ = tx.send(Frame::of(&ServerFrame::Ack { message_id })).await;
                }
                Err(e) => {
                    if arriving.is_some() {
                        hub.withdraw(id, conversation_id, message_id);
                    }
                    let _ = tx
                        .send(Frame::of(&ServerFrame::Error {
                            code: e.code().into(),
                            message: e.to_string(),
                            message_id: Some(message_id),
                        }))
                        .await;
                }
            }
        }
    }
    Ok(())
}

/// Refuses an agent's reply when another agent answered after the message
/// the sender last saw, so two people don't answer the same question.
fn traffic_cop(
    w: &store::Writer<'_>,
    v: &Viewer,
    conv: ConversationId,
    seen: MessageId,
) -> Result<()> {
    if !v.is_staff() {
        return Ok(());
    }
    let newer: Vec<Message> = store::query(
        w,
        "SELECT data FROM messages WHERE conversation_id = ?1 AND id > ?2 AND data ->> '$.kind' = 'agent' ORDER BY id DESC LIMIT 1",
        [conv.to_string(), seen.to_string()],
    )?;
    match newer.first() {
        Some(m) if m.author_id != Some(v.user_id) => {
            Err(PortalError::NewerReply(m.author_name.clone()))
        }
        _ => Ok(()),
    }
}

#[derive(Debug, serde::Deserialize)]
pub struct LiveQuery {
    /// For browsers, which cannot set headers on a WebSocket: the access token.
    access_token: Option<String>,
}

/// `GET /v1/live`: authenticates (bearer header, session cookie or
/// `access_token`), then upgrades. Refused sign-ins get a plain 401 before
/// any socket exists.
pub async fn upgrade(
    axum::extract::State(st): axum::extract::State<AppState>,
    headers: axum::http::HeaderMap,
    axum::extract::Query(q): axum::extract::Query<LiveQuery>,
    ws: axum::extract::WebSocketUpgrade,
) -> std::result::Result<axum::response::Response, crate::api::ApiError> {
    // A socket on the session cookie must be opened by our own pages (a
    // hostile page cannot ride the cookie: cross-site WebSocket hijacking).
    if let Some(crate::api::Credential::Cookie(_)) = crate::api::presented_credential(&headers) {
        crate::web_guard::check_origin(&headers)?;
    }
    let token = crate::api::presented_token(&headers)
        .or(q.access_token)
        .ok_or(PortalError::Unauthenticated(
            "send a bearer token, session cookie or access_token",
        ))?;
    let at = st.clock.now();
    let (viewer, name) = st
        .read(move |c| {
            let viewer = crate::auth::viewer_for_token(c, &token, at)?;
            let name = store::get::<User>(c, viewer.user_id.0)?
                .map(|u| u.name)
                .unwrap_or_default();
            Ok((viewer, name))
        })
        .await?;
    Ok(ws
        .max_message_size(live::MAX_FRAME_BYTES)
        .max_frame_size(live::MAX_FRAME_BYTES)
        // Small buffers: 10k idle sockets must fit in memory.
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0)
        .on_upgrade(move |socket| session(st, viewer, name, socket)))
}

#[cfg(test)]
mod tests {
    use portico_model::wire::ChangeOp;

    use super::*;

    /// The live frame is built from the row's text, not from the feed's
    /// `Change`: for every viewer and every change it must say exactly what
    /// the feed says (the same rows hidden, the same fields, removals).
    #[test]
    fn change_frames_say_what_the_feed_says_for_every_viewer() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("portal.db")).unwrap();
        let at = "2026-11-15T12:00:00Z".parse().unwrap();
        crate::seed::seed(&store, crate::seed::SeedSize::TINY, at).unwrap();
        // Staff limited to one team's conversations, and a tombstone.
        store
            .write(store::Actor::SYSTEM, at, |w| {
                let team: Team = store::query(w, "SELECT data FROM teams LIMIT 1", [])?.remove(0);
                let mut csm: User = store::query(
                    w,
                    "SELECT data FROM users WHERE email = 'csm@portico.test'",
                    [],
                )?
                .remove(0);
                csm.conversation_access = ConversationAccess::Teams;
                csm.team_ids = vec![team.id];
                w.update(&mut csm)?;
                let msg: Message =
                    store::query(w, "SELECT data FROM messages LIMIT 1", [])?.remove(0);
                w.delete(&msg)
            })
            .unwrap();
        let (viewers, changes) = store
            .read(|c| {
                let users: Vec<User> = store::query(c, "SELECT data FROM users", [])?;
                let viewers = users
                    .iter()
                    .filter(|u| u.status == UserStatus::Active)
                    .map(|u| crate::auth::viewer_for_user(c, u))
                    .collect::<Result<Vec<_>>>()?;
                Ok((viewers, crate::api::sync::read_raw(c, 0, 1_000_000, None)?))
            })
            .unwrap();
        assert!(
            viewers
                .iter()
                .any(|v| v.is_staff() && v.access == ConversationAccess::Teams)
                && viewers.iter().any(|v| !v.is_staff())
                && changes.iter().any(|c| c.op == ChangeOp::Delete),
            "the test covers team access, customers and tombstones"
        );
        let mut shown = 0;
        for viewer in &viewers {
            for raw in &changes {
                let frame = change_frame(viewer, raw)
                    .unwrap()
                    .map(|Frame(text)| serde_json::from_str::<serde_json::Value>(&text).unwrap());
                let feed = crate::api::sync::shape_change(viewer, raw)
                    .unwrap()
                    .map(|change| serde_json::to_value(ServerFrame::Change { change }).unwrap());
                assert_eq!(
                    frame, feed,
                    "change {} ({:?}) for a {:?} with {:?} access",
                    raw.seq, raw.kind, viewer.role, viewer.access
                );
                shown += usize::from(frame.is_some());
            }
        }
        assert!(
            shown > 0 && shown < viewers.len() * changes.len(),
            "some changes are shown and some hidden"
        );
    }
}
