//! The sync engine against a real portal-core on loopback: the outbox,
//! optimistic overlay, push, bootstrap and rebuilds, including a server that
//! stops gracefully, one that dies in the middle of a request (its runtime is
//! torn down), a stub that answers junk, and customers' scopes.
//!
//! The server runs on its own Tokio runtime so a test can kill it like a
//! crashed process (every task, including in-flight requests, is dropped at
//! its next await) and start a new one on the same database file and port.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use portico_inbox::bootstrap::RebuildReason;
use portico_inbox::engine::{EngineConfig, LocalRecord, SystemClock};
use portico_inbox::query::{InboxQuery, View};
use portico_inbox::{Engine, EngineError, Event};
use portico_model::sync::{
    BOOTSTRAP_KINDS, Mutation, MutationOp, Outcome, PushRequest, PushResponse, SYNC_PROTOCOL,
};
use portico_model::{
    Account, Conversation, ConversationId, ConversationStatus, Kind, Message, MessageKind,
    Priority, User, UserId,
};
use portico_portal::seed::{self, SeedSize};
use portico_portal::{AppState, ManualClock, store};
use serde_json::{Map, Value};

// ----- a server that can stop, die and come back ---------------------------

fn anchor() -> jiff::Timestamp {
    "2026-11-15T12:00:00Z".parse().unwrap()
}

struct Server {
    dir: tempfile::TempDir,
    addr: SocketAddr,
    base: String,
    state: AppState,
    rt: Option<tokio::runtime::Runtime>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Server {
    /// A seeded portal-core on a free loopback port.
    fn start() -> Server {
        let dir = tempfile::tempdir().unwrap();
        let state = Server::open(dir.path());
        seed::seed(&state.store, SeedSize::TINY, anchor()).unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mut s = Server {
            dir,
            addr,
            base: format!("http://{addr}"),
            state,
            rt: None,
            stop: None,
            task: None,
        };
        s.serve(listener);
        s
    }

    fn open(dir: &Path) -> AppState {
        portico_portal::open_state(&dir.join("portal.db"), Arc::new(ManualClock::new(anchor())))
            .unwrap()
    }

    fn serve(&mut self, listener: std::net::TcpListener) {
        listener.set_nonblocking(true).unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let state = self.state.clone();
        let task = rt.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let _ = portico_portal::serve(listener, state, async {
                let _ = rx.await;
            })
            .await;
        });
        self.rt = Some(rt);
        self.stop = Some(tx);
        self.task = Some(task);
    }

    /// A graceful stop: in-flight requests finish, then nothing listens.
    async fn stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }

    /// A crash: every task of the server, in-flight requests included, is
    /// dropped at its next await. Writes already committed stay committed.
    fn kill(&mut self) {
        self.stop = None;
        self.task = None;
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }

    /// A new server process on the same database file and the same port.
    async fn restart(&mut self) {
        // Whatever the dead server's blocking writes were doing has ended.
        tokio::time::sleep(Duration::from_millis(200)).await;
        self.state = Server::open(self.dir.path());
        let mut tries = 0;
        let listener = loop {
            match std::net::TcpListener::bind(self.addr) {
                Ok(l) => break l,
                Err(e) if tries < 250 => {
                    tries += 1;
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => panic!("the port of the stopped server must become free: {e}"),
            }
        };
        self.serve(listener);
    }

    /// A session token for a demo user, straight from the auth module.
    fn token(&self, email: &str) -> String {
        let user = self.user(email);
        portico_portal::auth::start_session(&self.state.store, user.id, anchor()).unwrap()
    }

    fn user(&self, email: &str) -> User {
        self.query::<User>("SELECT data FROM users WHERE email = ?1", &[email])
            .pop()
            .unwrap_or_else(|| panic!("the seed has {email}"))
    }

    fn query<R: portico_model::Record>(&self, sql: &str, args: &[&str]) -> Vec<R> {
        self.state
            .store
            .read(|c| store::query(c, sql, rusqlite::params_from_iter(args.iter())))
            .unwrap()
    }

    fn conversation(&self, id: ConversationId) -> Conversation {
        self.query::<Conversation>(
            "SELECT data FROM conversations WHERE id = ?1",
            &[&id.to_string()],
        )
        .pop()
        .unwrap()
    }

    fn messages(&self, id: ConversationId) -> Vec<Message> {
        self.query::<Message>(
            "SELECT data FROM messages WHERE conversation_id = ?1 ORDER BY id",
            &[&id.to_string()],
        )
    }

    /// Conversations of the Acme account (the customer test users' own).
    fn acme_conversations(&self) -> Vec<Conversation> {
        let acme = self.acme();
        self.query(
            "SELECT data FROM conversations WHERE account_id = ?1 ORDER BY id",
            &[&acme.id.to_string()],
        )
    }

    fn acme(&self) -> Account {
        self.query::<Account>(
            "SELECT data FROM accounts WHERE data ->> '$.domain' = 'acme.test'",
            &[],
        )
        .pop()
        .unwrap()
    }

    /// (id, version) of every row of a kind, as the server holds them.
    fn versions(&self, kind: Kind) -> BTreeMap<uuid::Uuid, u64> {
        let sql = format!("SELECT id, version FROM {}", kind.table());
        self.state
            .store
            .read(|c| {
                let mut stmt = c.prepare(&sql)?;
                let rows =
                    stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, u64>(1)?)))?;
                let mut out = BTreeMap::new();
                for row in rows {
                    let (id, v) = row?;
                    out.insert(id.parse().unwrap(), v);
                }
                Ok(out)
            })
            .unwrap()
    }

    /// The outcome the server stored for each mutation of a client.
    fn outcomes(&self, client: uuid::Uuid) -> BTreeMap<u64, Outcome> {
        self.state
            .store
            .read(|c| {
                let mut stmt = c.prepare(
                    "SELECT mutation_id, outcome FROM client_mutations WHERE client_id = ?1",
                )?;
                let rows = stmt.query_map([client.to_string()], |r| {
                    Ok((r.get::<_, u64>(0)?, r.get::<_, String>(1)?))
                })?;
                let mut out = BTreeMap::new();
                for row in rows {
                    let (id, o) = row?;
                    out.insert(id, serde_json::from_str(&o).unwrap());
                }
                Ok(out)
            })
            .unwrap()
    }

    /// The mutation ids the server has processed for a client.
    fn processed(&self, client: uuid::Uuid) -> BTreeSet<u64> {
        self.state
            .store
            .read(|c| {
                let mut stmt =
                    c.prepare("SELECT mutation_id FROM client_mutations WHERE client_id = ?1")?;
                let rows = stmt.query_map([client.to_string()], |r| r.get::<_, u64>(0))?;
                Ok(rows.collect::<Result<BTreeSet<_>, _>>()?)
            })
            .unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

// ----- engines -------------------------------------------------------------

/// A token the test can swap (a new sign-in on a new server).
#[derive(Clone)]
struct Token(Arc<Mutex<String>>);

impl Token {
    fn new(t: String) -> Token {
        Token(Arc::new(Mutex::new(t)))
    }
    fn set(&self, t: String) {
        *self.0.lock().unwrap() = t;
    }
    fn get(&self) -> String {
        self.0.lock().unwrap().clone()
    }
    fn source(&self) -> impl Fn() -> Option<String> + Send + Sync + 'static {
        let t = self.0.clone();
        move || Some(t.lock().unwrap().clone())
    }
}

fn config(base: &str, token: &Token, bootstrap_page: usize) -> EngineConfig {
    let mut c = EngineConfig::new(base, token.source());
    c.clock = Arc::new(SystemClock);
    c.bootstrap_page = bootstrap_page;
    c.timeout = Duration::from_secs(10);
    c
}

fn engine_at(path: &Path, base: &str, token: &Token) -> Engine {
    Engine::open_with(path, config(base, token, 500)).unwrap()
}

/// A client with a fresh local store, signed in as `email`.
fn client(srv: &Server, dir: &tempfile::TempDir, name: &str, email: &str) -> (Engine, Token) {
    let token = Token::new(srv.token(email));
    let engine = engine_at(&dir.path().join(name), &srv.base, &token);
    (engine, token)
}

/// A record as staff see it: every field of the stored record.
fn staff_row<R: serde::Serialize>(r: &R) -> Map<String, Value> {
    match serde_json::to_value(r).unwrap() {
        Value::Object(m) => m,
        _ => unreachable!(),
    }
}

fn view(e: &Engine, id: ConversationId) -> LocalRecord {
    e.conversation(id)
        .unwrap()
        .expect("a mirrored conversation is readable")
}

fn message_ids(e: &Engine, id: ConversationId) -> Vec<String> {
    e.messages(id)
        .unwrap()
        .iter()
        .map(|m| m.data["id"].as_str().unwrap().to_owned())
        .collect()
}

/// Local (id, version) of every row of a kind, read from the file.
fn local_versions(path: &Path, kind: Kind) -> BTreeMap<uuid::Uuid, u64> {
    let c = rusqlite::Connection::open(path).unwrap();
    let mut stmt = c
        .prepare("SELECT id, version FROM records WHERE kind = ?1")
        .unwrap();
    stmt.query_map([kind.as_str()], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, u64>(1)?))
    })
    .unwrap()
    .map(|r| {
        let (id, v) = r.unwrap();
        (id.parse().unwrap(), v)
    })
    .collect()
}

/// Events received so far, without waiting.
fn drain(rx: &mut tokio::sync::broadcast::Receiver<Event>) -> Vec<Event> {
    let mut out = Vec::new();
    while let Ok(e) = rx.try_recv() {
        out.push(e);
    }
    out
}

/// Sends a push outside the engine (a retry of an earlier request, or one
/// whose answer got lost), as the engine would.
async fn raw_push(
    base: &str,
    token: &str,
    client_id: uuid::Uuid,
    mutations: Vec<Mutation>,
) -> PushResponse {
    let resp = reqwest::Client::new()
        .post(format!("{base}/v1/sync/push"))
        .bearer_auth(token)
        .json(&PushRequest {
            protocol: SYNC_PROTOCOL,
            client_id,
            mutations,
        })
        .send()
        .await
        .unwrap();
    assert!(
        resp.status().is_success(),
        "a well-formed push is accepted: {}",
        resp.status()
    );
    resp.json().await.unwrap()
}

// ----- tests -----------------------------------------------------------------

/// Two agents edit the same conversation, each offline from the other; once
/// both have synced, both show exactly the server's conversation and thread.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clients_editing_one_conversation_converge_to_the_server() {
    let srv = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let (a, _) = client(&srv, &dir, "a.db", "agent@portico.test");
    let (b, _) = client(&srv, &dir, "b.db", "lead@portico.test");
    a.sync_now().await.unwrap();
    b.sync_now().await.unwrap();
    let conv = srv.acme_conversations()[0].id;
    let lead = srv.user("lead@portico.test").id;
    let agent = srv.user("agent@portico.test").id;

    a.assign(conv, Some(agent)).unwrap();
    a.add_tags(conv, ["billing", "a-only"]).unwrap();
    a.set_priority(conv, Priority::High).unwrap();
    a.reply(conv, "From A").unwrap();
    b.assign(conv, Some(lead)).unwrap();
    b.add_tags(conv, ["b-only"]).unwrap();
    b.remove_tags(conv, ["a-only"]).unwrap();
    b.set_priority(conv, Priority::Urgent).unwrap();
    b.note(conv, "From B", vec![agent]).unwrap();

    let local_a = view(&a, conv);
    assert!(
        local_a.pending,
        "A's own edits show before the server has them"
    );
    assert_eq!(
        local_a.data["assignee_id"],
        agent.to_string(),
        "A sees its own assignment at once"
    );
    assert_eq!(local_a.data["priority"], "high");
    let tags_a: Vec<&str> = local_a.data["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert!(
        tags_a.contains(&"a-only") && tags_a.contains(&"billing"),
        "tags A added show locally: {tags_a:?}"
    );
    assert!(
        a.messages(conv)
            .unwrap()
            .iter()
            .any(|m| m.pending && m.data["body"] == "From A"),
        "A's reply shows in its thread, marked pending"
    );

    a.sync_now().await.unwrap();
    b.sync_now().await.unwrap();
    a.sync_now().await.unwrap();

    let server = staff_row(&srv.conversation(conv));
    for (name, e) in [("A", &a), ("B", &b)] {
        let local = view(e, conv);
        assert_eq!(
            local.data, server,
            "{name} shows exactly the server's conversation after syncing"
        );
        assert!(!local.pending, "{name} has nothing unconfirmed left");
        assert_eq!(
            e.pending_count().unwrap(),
            0,
            "{name}'s outbox is empty once confirmed"
        );
        let server_ids: Vec<String> = srv
            .messages(conv)
            .iter()
            .map(|m| m.id.to_string())
            .collect();
        assert_eq!(
            message_ids(e, conv),
            server_ids,
            "{name} shows the server's thread, in order"
        );
    }
    // Server order decides: A pushed first, so B's assignment and priority win,
    // and B's removal of A's tag came after A added it.
    assert_eq!(
        server["assignee_id"],
        lead.to_string(),
        "last writer (B) wins the assignee"
    );
    assert_eq!(
        server["priority"], "urgent",
        "last writer (B) wins the priority"
    );
    let tags: BTreeSet<&str> = server["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert!(
        tags.contains("billing") && tags.contains("b-only") && !tags.contains("a-only"),
        "tags merge as a set in server order: {tags:?}"
    );
}

/// Edits made while the server is down stay queued and visible, and reach
/// the server exactly once when it is back; a replay of the same push adds
/// nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_edits_apply_exactly_once_when_the_server_returns() {
    let mut srv = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let (e, token) = client(&srv, &dir, "e.db", "agent@portico.test");
    e.sync_now().await.unwrap();
    assert!(e.online(), "a successful sync means online");
    let conv = srv.acme_conversations()[1].id;
    let before = srv.messages(conv).len();

    srv.stop().await;
    let r1 = e.reply(conv, "Offline reply one").unwrap();
    let r2 = e.reply(conv, "Offline reply two").unwrap();
    e.add_tags(conv, ["offline"]).unwrap();
    e.set_status(conv, ConversationStatus::Pending, None)
        .unwrap();
    let err = e.sync_now().await.unwrap_err();
    assert_eq!(
        err.code(),
        "offline",
        "a stopped server is reported as offline: {err}"
    );
    assert!(
        !e.online(),
        "the status says offline after a failed request"
    );
    assert_eq!(
        e.pending_count().unwrap(),
        4,
        "nothing is lost while offline"
    );
    let err2 = e.sync_now().await.unwrap_err();
    assert_eq!(
        err2.code(),
        "offline",
        "retrying while down fails the same way"
    );
    assert_eq!(
        e.status().unwrap().last_error.as_deref(),
        Some("offline"),
        "the status bar learns why"
    );
    let local = view(&e, conv);
    assert_eq!(
        local.data["status"], "pending",
        "the offline status change shows at once"
    );
    assert_eq!(
        e.messages(conv)
            .unwrap()
            .iter()
            .filter(|m| m.pending)
            .count(),
        2,
        "both offline replies show in the thread, pending"
    );
    let queued = e.pending_mutations().unwrap();

    srv.restart().await;
    let report = e.sync_now().await.unwrap();
    assert_eq!(
        report.push.applied, 4,
        "every queued mutation is applied once: {report:?}"
    );
    assert_eq!(
        e.pending_count().unwrap(),
        0,
        "the outbox drains once the server confirms"
    );
    assert!(e.online(), "back online");
    let msgs = srv.messages(conv);
    assert_eq!(msgs.len(), before + 2, "exactly the two replies were added");
    for q in [r1, r2] {
        let id = q.message_id.unwrap();
        assert_eq!(
            msgs.iter().filter(|m| m.id == id).count(),
            1,
            "reply {id} exists once on the server"
        );
    }
    assert_eq!(
        view(&e, conv).data,
        staff_row(&srv.conversation(conv)),
        "the local view is the server's row"
    );

    // The answer to that push "got lost" and the same batch comes again.
    let replay = raw_push(&srv.base, &token.get(), e.client_id(), queued).await;
    assert!(
        replay
            .results
            .iter()
            .all(|r| r.duplicate && r.outcome == Outcome::Applied),
        "a replay is answered from the server's record, not applied again: {replay:?}"
    );
    assert_eq!(
        srv.messages(conv).len(),
        before + 2,
        "the replay added no message"
    );
    let again = e.sync_now().await.unwrap();
    assert_eq!(again.push.batches, 0, "nothing is left to push");
}

/// The server dies after some bootstrap pages; after a restart (and writes
/// made meanwhile) the bootstrap resumes where it stopped and the mirror
/// equals the server: nothing missing, nothing twice, every version current.
/// The inbox lists are filled in one pass when the last page is in, after
/// every page's `RecordsChanged`; a UI that re-reads only on those would
/// stay empty until something else changed (a CI run saw exactly that).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bootstrap_ends_with_an_announcement_after_which_the_lists_are_full() {
    let srv = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fresh.db");
    let token = Token::new(srv.token("agent@portico.test"));
    let e = Engine::open_with(&path, config(&srv.base, &token, 10)).unwrap();
    let mut events = e.subscribe();
    let report = e.sync_now().await.unwrap();
    let loaded = report.bootstrap.expect("a fresh store bootstraps").rows;

    let got = drain(&mut events);
    let done: Vec<usize> = got
        .iter()
        .enumerate()
        .filter(|(_, ev)| matches!(ev, Event::Bootstrapped { .. }))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(done.len(), 1, "one announcement per bootstrap: {got:?}");
    assert!(
        matches!(got[done[0]], Event::Bootstrapped { rows } if rows == loaded),
        "it says how many rows were loaded: {:?}",
        got[done[0]]
    );
    let conversations = local_versions(&path, Kind::Conversation);
    let announced_before: BTreeSet<uuid::Uuid> = got[..done[0]]
        .iter()
        .filter_map(|ev| match ev {
            Event::RecordsChanged {
                kind: Kind::Conversation,
                ids,
            } => Some(ids.iter().copied()),
            _ => None,
        })
        .flatten()
        .collect();
    assert!(
        conversations.keys().all(|id| announced_before.contains(id)),
        "every page was announced before the end"
    );
    let listed = e
        .inbox(&InboxQuery {
            limit: 500,
            ..InboxQuery::new(srv.user("agent@portico.test").id, View::All)
        })
        .unwrap();
    assert!(!conversations.is_empty(), "the seed has conversations");
    assert_eq!(
        listed.len(),
        conversations.len(),
        "after the announcement the list holds every mirrored conversation"
    );
}

/// The mentions index after a bootstrap is what the triggers would have
/// written note by note: the bootstrap writes each note's mentions with its
/// page (the triggers on `records` are set aside during the load), and the
/// result must equal one pass over every note the mirror holds, with the
/// Mentions view showing the note to the person mentioned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bootstrap_writes_the_mentions_of_every_note_it_loads() {
    let srv = Server::start();
    let lead = srv.token("lead@portico.test");
    let agent = srv.user("agent@portico.test");
    let other = srv.user("lead@portico.test");
    let conv = srv.acme_conversations()[1].id;
    let http = reqwest::Client::new();
    for (body, mentions) in [
        ("for the agent", vec![agent.id]),
        ("for both", vec![agent.id, other.id]),
        ("for nobody", vec![]),
    ] {
        let resp = http
            .post(format!("{}/v1/conversations/{conv}/messages", srv.base))
            .bearer_auth(&lead)
            .json(&serde_json::json!({ "body": body, "internal": true, "mentions": mentions }))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mentions.db");
    let token = Token::new(srv.token("agent@portico.test"));
    let e = Engine::open_with(&path, config(&srv.base, &token, 10)).unwrap();
    e.sync_now().await.unwrap();

    let c = rusqlite::Connection::open(&path).unwrap();
    let pairs = |sql: &str| -> BTreeSet<(String, String)> {
        c.prepare(sql)
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    let indexed = pairs("SELECT user_id, message_id FROM mentions");
    let every_note = pairs(
        "SELECT DISTINCT j.value, r.id FROM records r, json_each(r.data, '$.mentions') j
          WHERE r.kind = 'message' AND r.data ->> '$.kind' = 'internal_note' AND j.type = 'text'",
    );
    assert_eq!(
        every_note.len(),
        3,
        "the three mentions posted above are mirrored"
    );
    assert_eq!(
        indexed, every_note,
        "the index holds exactly the mentions of the mirrored notes"
    );
    let mine: Vec<String> = e
        .mentions(agent.id, 50)
        .unwrap()
        .into_iter()
        .map(|m| m.message.body)
        .collect();
    assert_eq!(
        mine.iter().filter(|b| b.starts_with("for ")).count(),
        2,
        "the agent's Mentions view lists the two notes naming them: {mine:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bootstrap_interrupted_by_a_crash_resumes_without_loss_or_duplicates() {
    let mut srv = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("boot.db");
    let token = Token::new(srv.token("agent@portico.test"));
    let e = Engine::open_with(&path, config(&srv.base, &token, 10)).unwrap();
    let mut events = e.subscribe();

    let task = tokio::spawn({
        let e = e.clone();
        async move { e.sync_now().await }
    });
    // Kill the server a few pages into the messages (kind 10 of 16).
    let mut seen_in_messages = 0;
    loop {
        match tokio::time::timeout(Duration::from_secs(30), events.recv()).await {
            Ok(Ok(Event::SyncState { status })) => {
                if let Some(p) = status.bootstrap
                    && p.kind == Kind::Message
                {
                    seen_in_messages += 1;
                    if seen_in_messages == 4 {
                        srv.kill();
                        break;
                    }
                }
            }
            Ok(Ok(_)) => {}
            other => panic!("the bootstrap must progress to the messages: {other:?}"),
        }
    }
    let err = task.await.unwrap().unwrap_err();
    assert_eq!(
        err.code(),
        "offline",
        "a crashed server is offline to the engine, whether the connection dropped or the dying server answered 503: {err}"
    );
    let progress = e
        .bootstrap_progress()
        .unwrap()
        .expect("the bootstrap is incomplete");
    assert_eq!(
        progress.kind,
        Kind::Message,
        "progress remembers the kind it stopped in"
    );
    assert!(
        progress.snapshot.is_some(),
        "the pinned snapshot is remembered"
    );
    assert!(
        e.count(Kind::Message).unwrap() > 0,
        "pages loaded before the crash are kept"
    );

    srv.restart().await;
    // Meanwhile, the world moved on: a change to an already loaded kind and
    // a new message, both after the snapshot.
    let other = srv.token("lead@portico.test");
    let conv = srv.acme_conversations()[2].id;
    let http = reqwest::Client::new();
    let resp = http
        .patch(format!("{}/v1/conversations/{conv}", srv.base))
        .bearer_auth(&other)
        .json(&serde_json::json!({ "priority": "urgent", "add_tags": ["while-down"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "the lead's edit is accepted");
    let resp = http
        .post(format!("{}/v1/conversations/{conv}/messages", srv.base))
        .bearer_auth(&other)
        .json(&serde_json::json!({ "body": "Posted while the desktop was away" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201, "the lead's reply is accepted");

    let report = e.sync_now().await.unwrap();
    let boot = report.bootstrap.expect("the sync finished the bootstrap");
    assert!(
        boot.resumed,
        "the bootstrap continued rather than starting over"
    );
    assert!(
        e.bootstrap_progress().unwrap().is_none(),
        "the mirror is complete"
    );
    // A fresh bootstrap with the same page size, for comparison.
    let fresh_path = dir.path().join("fresh.db");
    let fresh = Engine::open_with(&fresh_path, config(&srv.base, &token, 10)).unwrap();
    let full = fresh.sync_now().await.unwrap().bootstrap.unwrap();
    assert!(
        boot.pages < full.pages,
        "resuming fetched fewer pages ({}) than a full bootstrap ({})",
        boot.pages,
        full.pages
    );

    for kind in BOOTSTRAP_KINDS {
        assert_eq!(
            local_versions(&path, kind),
            srv.versions(kind),
            "every {kind:?} is mirrored once, at the server's current version"
        );
    }
    assert_eq!(
        view(&e, conv).data,
        staff_row(&srv.conversation(conv)),
        "the change made after the snapshot arrived by pull"
    );
    // What the bulk load set aside across the crash is back: the same
    // indexes and triggers as a fresh store, every list row, a live and
    // complete search index.
    let schema = |p: &Path| -> Vec<(String, String)> {
        let c = rusqlite::Connection::open(p).unwrap();
        let mut stmt = c
            .prepare("SELECT name, sql FROM sqlite_schema WHERE sql IS NOT NULL ORDER BY name")
            .unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    assert_eq!(
        schema(&path),
        schema(&fresh_path),
        "the schema is whole again"
    );
    let c = rusqlite::Connection::open(&path).unwrap();
    let count = |sql: &str| -> i64 { c.query_row(sql, [], |r| r.get(0)).unwrap() };
    assert_eq!(
        count("SELECT count(*) FROM inbox"),
        count("SELECT count(*) FROM records WHERE kind = 'conversation'"),
        "every conversation has its list row"
    );
    // The bootstrap fills the list in one pass over `inbox_source`; the
    // trigger that keeps a row on every later change reads the same view.
    let list = || -> Vec<Vec<rusqlite::types::Value>> {
        let mut stmt = c.prepare("SELECT * FROM inbox ORDER BY id").unwrap();
        let n = stmt.column_count();
        stmt.query_map([], |r| (0..n).map(|i| r.get(i)).collect())
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    let loaded = list();
    c.execute_batch(
        "DELETE FROM inbox;
         INSERT INTO inbox_refresh (id) SELECT id FROM records WHERE kind = 'conversation';",
    )
    .unwrap();
    assert_eq!(
        list(),
        loaded,
        "the list rows of the bootstrap are those the per-conversation trigger writes"
    );
    assert_eq!(count("SELECT live FROM search_state"), 1, "search is live");
    assert_eq!(
        count("SELECT count(*) FROM search_docs"),
        count(
            "SELECT count(*) FROM records WHERE kind IN ('account', 'conversation', 'message', 'article')"
        ),
        "every searchable record is indexed"
    );
    assert_eq!(
        count("SELECT count(*) FROM sync_state WHERE key = 'derived'"),
        0,
        "nothing is left set aside"
    );
    // The fields kept as columns beside the JSON (written by the engine,
    // pages and pulls alike) say what the JSON says, for every record.
    assert_eq!(
        count(common::COLUMNS_DISAGREEING_WITH_DATA),
        0,
        "no record's columns disagree with its data"
    );
    assert!(
        count(
            "SELECT count(*) FROM records WHERE kind = 'message' AND conversation_id IS NOT NULL"
        ) > 0,
        "messages carry their conversation"
    );
}

/// The server dies while applying a push of 100 mutations; some are
/// committed, the answer never arrives. After a restart the engine pushes
/// the same batch again: the committed ones come back as replays, the rest
/// apply, and every reply exists exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_interrupted_by_a_crash_applies_every_mutation_exactly_once() {
    let mut srv = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let (e, _) = client(&srv, &dir, "push.db", "agent@portico.test");
    e.sync_now().await.unwrap();
    let convs = srv.acme_conversations();
    let mut sent = Vec::new();
    for i in 0..96 {
        let conv = convs[i % convs.len()].id;
        sent.push((
            conv,
            e.reply(conv, format!("Crash test reply {i}")).unwrap(),
        ));
    }
    e.add_tags(convs[0].id, ["crash-test"]).unwrap();
    e.set_priority(convs[0].id, Priority::High).unwrap();
    e.assign(convs[1].id, None).unwrap();
    e.set_status(convs[1].id, ConversationStatus::Pending, None)
        .unwrap();
    assert_eq!(e.pending_count().unwrap(), 100, "one full batch is queued");

    let task = tokio::spawn({
        let e = e.clone();
        async move { e.push_now().await }
    });
    let client_id = e.client_id();
    let killed_at = loop {
        let n = srv.processed(client_id).len();
        if n >= 5 || task.is_finished() {
            srv.kill();
            break n;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    };
    let pushed = task.await.unwrap();
    srv.restart().await;
    let processed_before = srv.processed(client_id);
    eprintln!(
        "killed with {killed_at} processed; {} committed in the end; push: {pushed:?}",
        processed_before.len()
    );

    let report = e.sync_now().await.unwrap();
    if pushed.is_err() {
        assert_eq!(
            report.push.duplicates,
            processed_before.len(),
            "exactly the mutations committed before the crash come back as replays"
        );
    }
    assert_eq!(
        srv.processed(client_id),
        (1..=100).collect::<BTreeSet<u64>>(),
        "the server processed every mutation id once"
    );
    assert_eq!(e.pending_count().unwrap(), 0, "nothing is left queued");
    assert!(e.rejections().unwrap().is_empty(), "nothing was refused");
    for (conv, q) in &sent {
        let id = q.message_id.unwrap();
        let copies = srv.messages(*conv).iter().filter(|m| m.id == id).count();
        assert_eq!(copies, 1, "reply {id} exists exactly once on the server");
    }
    let bodies: Vec<String> = convs
        .iter()
        .flat_map(|c| srv.messages(c.id))
        .filter(|m| m.body.starts_with("Crash test reply"))
        .map(|m| m.body)
        .collect();
    assert_eq!(bodies.len(), 96, "no reply is lost and none is doubled");
    for c in &convs {
        assert_eq!(
            view(&e, c.id).data,
            staff_row(&srv.conversation(c.id)),
            "the local view is the server's row"
        );
        let server_ids: Vec<String> = srv
            .messages(c.id)
            .iter()
            .map(|m| m.id.to_string())
            .collect();
        assert_eq!(
            message_ids(&e, c.id),
            server_ids,
            "the local thread is the server's"
        );
    }
}

/// A guarded status change made against a version someone else has moved
/// past is refused; the local edit is reverted to the server's state and the
/// refusal is listed with its reason until acknowledged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_guarded_status_change_is_rejected_reverted_and_listed() {
    let srv = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let (a, _) = client(&srv, &dir, "a.db", "agent@portico.test");
    let (b, _) = client(&srv, &dir, "b.db", "lead@portico.test");
    a.sync_now().await.unwrap();
    b.sync_now().await.unwrap();
    let conv = srv
        .acme_conversations()
        .into_iter()
        .find(|c| c.status == ConversationStatus::Open)
        .expect("the seed has an open Acme conversation")
        .id;
    let seen = view(&a, conv).data["version"].as_u64().unwrap();

    b.set_status(conv, ConversationStatus::Pending, Some(seen))
        .unwrap();
    b.sync_now().await.unwrap();
    let mut events = a.subscribe();
    let q = a
        .set_status(conv, ConversationStatus::Resolved, Some(seen))
        .unwrap();
    assert_eq!(
        view(&a, conv).data["status"],
        "resolved",
        "A's edit shows optimistically"
    );

    let report = a.sync_now().await.unwrap();
    assert_eq!(
        report.push.rejected, 1,
        "the stale guard is refused: {report:?}"
    );
    let local = view(&a, conv);
    assert_eq!(
        local.data["status"], "pending",
        "A's refused edit is reverted to the server's status"
    );
    assert_eq!(
        local.data,
        staff_row(&srv.conversation(conv)),
        "A shows the server's row"
    );
    let rejections = a.rejections().unwrap();
    assert_eq!(
        rejections.len(),
        1,
        "the refusal is listed, not dropped silently"
    );
    let r = &rejections[0];
    assert_eq!(r.mutation_id, q.mutation_id);
    assert_eq!(
        r.code, "version_conflict",
        "the reason's stable code says why"
    );
    assert!(!r.message.is_empty(), "the reason has words for the person");
    assert!(
        matches!(
            r.op,
            MutationOp::SetStatus {
                status: ConversationStatus::Resolved,
                ..
            }
        ),
        "the refused edit itself is kept for the UI"
    );
    let got = drain(&mut events);
    assert!(
        got.iter().any(|e| matches!(e, Event::RejectionAdded { rejection } if rejection.mutation_id == q.mutation_id)),
        "the UI hears of the rejection: {got:?}"
    );
    assert!(
        got.iter().any(|e| matches!(e, Event::RecordsChanged { kind: Kind::Conversation, ids } if ids.contains(&conv.0))),
        "the UI hears the conversation changed back"
    );
    assert_eq!(a.pending_count().unwrap(), 0, "a rejection is not pending");
    a.sync_now().await.unwrap();
    assert_eq!(
        a.rejections().unwrap().len(),
        1,
        "a rejection survives further syncs until acknowledged"
    );
    assert!(
        a.acknowledge_rejection(q.mutation_id).unwrap(),
        "acknowledging removes it"
    );
    assert!(a.rejections().unwrap().is_empty());
    assert!(
        !a.acknowledge_rejection(q.mutation_id).unwrap(),
        "a second acknowledgement finds nothing"
    );
}

/// The server processed a push but the answer was lost, and a pull arrives
/// before the push is retried: the pull says "processed" without saying
/// how. The edit must not be dropped as confirmed (it may have been
/// refused): it leaves the overlay (the server row is the truth now), stays
/// counted as unconfirmed, and the retried push learns the refusal and lists
/// it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_whose_answer_was_lost_is_still_listed() {
    let srv = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let (a, token) = client(&srv, &dir, "a.db", "agent@portico.test");
    let (b, _) = client(&srv, &dir, "b.db", "lead@portico.test");
    a.sync_now().await.unwrap();
    b.sync_now().await.unwrap();
    let conv = srv.acme_conversations()[3].id;
    let seen = view(&a, conv).data["version"].as_u64().unwrap();
    b.set_priority(conv, Priority::Low).unwrap();
    b.sync_now().await.unwrap();

    let stale = a
        .set_status(conv, ConversationStatus::Resolved, Some(seen))
        .unwrap();
    let tag = a.add_tags(conv, ["lost-answer"]).unwrap();
    let answer = raw_push(
        &srv.base,
        &token.get(),
        a.client_id(),
        a.pending_mutations().unwrap(),
    )
    .await;
    assert!(
        matches!(answer.results[0].outcome, Outcome::Rejected { .. }),
        "the stale guard was refused on the server (answer never reaches the engine)"
    );
    a.pull_now().await.unwrap();
    assert_eq!(
        a.pending_count().unwrap(),
        2,
        "processed but of unknown outcome: still unconfirmed"
    );
    assert!(
        a.rejections().unwrap().is_empty(),
        "the outcome is not known yet"
    );
    assert_eq!(
        view(&a, conv).data,
        staff_row(&srv.conversation(conv)),
        "the overlay no longer applies them: the pulled server row already holds the result"
    );

    let report = a.sync_now().await.unwrap();
    assert_eq!(
        report.push.duplicates, 2,
        "the retry is answered from the server's record: {report:?}"
    );
    let rejections = a.rejections().unwrap();
    assert_eq!(
        rejections.len(),
        1,
        "the lost refusal is listed, never dropped silently"
    );
    assert_eq!(
        (rejections[0].mutation_id, rejections[0].code.as_str()),
        (stale.mutation_id, "version_conflict")
    );
    assert!(
        rejections.iter().all(|r| r.mutation_id != tag.mutation_id),
        "the applied tag is not a rejection"
    );
    assert_eq!(a.pending_count().unwrap(), 0, "both outcomes are known now");
    assert_eq!(view(&a, conv).data, staff_row(&srv.conversation(conv)));
}

/// The local file is damaged while the app is closed; opening it notices,
/// rebuilds an empty store that still holds the queued edits (and the same
/// client id, so replays stay safe), and the next sync reloads everything
/// and sends the edits once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_local_store_is_rebuilt_keeping_the_outbox() {
    let mut srv = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.db");
    let token = Token::new(srv.token("agent@portico.test"));
    let conv = srv.acme_conversations()[0].id;
    let (client_id, reply) = {
        let e = engine_at(&path, &srv.base, &token);
        e.sync_now().await.unwrap();
        srv.stop().await;
        let reply = e.reply(conv, "Written before the disk went bad").unwrap();
        e.add_tags(conv, ["kept"]).unwrap();
        e.note(conv, "A note that must survive", vec![]).unwrap();
        (e.client_id(), reply)
    };
    // Garbage over the records table's root page; the outbox's pages are intact.
    let (page_size, root): (u64, u64) = {
        let c = rusqlite::Connection::open(&path).unwrap();
        (
            c.query_row("PRAGMA page_size", [], |r| r.get(0)).unwrap(),
            c.query_row(
                "SELECT rootpage FROM sqlite_schema WHERE name = 'records'",
                [],
                |r| r.get(0),
            )
            .unwrap(),
        )
    };
    {
        use std::io::{Seek, SeekFrom, Write};
        let mut f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        f.seek(SeekFrom::Start((root - 1) * page_size)).unwrap();
        f.write_all(&vec![0xA5; page_size as usize]).unwrap();
    }

    let e = engine_at(&path, &srv.base, &token);
    let info = e.last_rebuild().expect("damage is detected at open");
    assert_eq!(info.reason, RebuildReason::Corrupt, "{info:?}");
    assert_eq!(
        info.kept_mutations, 3,
        "every queued edit is carried over: {info:?}"
    );
    assert!(
        info.moved_to.as_ref().is_some_and(|p| p.exists()),
        "the damaged file is kept aside for inspection"
    );
    assert_eq!(
        e.client_id(),
        client_id,
        "the client id survives, so replays of earlier pushes stay safe"
    );
    assert_eq!(e.pending_count().unwrap(), 3, "the queue is intact");
    assert_eq!(
        e.count(Kind::Conversation).unwrap(),
        0,
        "the mirror starts over"
    );
    assert!(
        e.bootstrap_progress().unwrap().is_some(),
        "the store knows it needs a bootstrap"
    );

    srv.restart().await;
    e.sync_now().await.unwrap();
    assert_eq!(e.pending_count().unwrap(), 0, "the kept edits went out");
    let id = reply.message_id.unwrap();
    assert_eq!(
        srv.messages(conv).iter().filter(|m| m.id == id).count(),
        1,
        "the kept reply reached the server once"
    );
    assert_eq!(
        view(&e, conv).data,
        staff_row(&srv.conversation(conv)),
        "the rebuilt mirror matches the server"
    );
    for kind in BOOTSTRAP_KINDS {
        assert_eq!(
            local_versions(&path, kind),
            srv.versions(kind),
            "{kind:?} is fully reloaded"
        );
    }
}

/// Damage deep inside a table (a leaf page in the middle of `records`, not
/// the first rows a start reads) passes the cheap checks at open, so the
/// inbox opens at once; the full check the desk runs after the first paint
/// finds it and rebuilds the store as a damaged store found at open is:
/// the queued edits kept, the damaged file moved aside, everything reloaded
/// by the next sync and the edits sent once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damage_deep_in_the_store_is_found_by_the_check_after_start() {
    let mut srv = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("deep.db");
    let token = Token::new(srv.token("agent@portico.test"));
    let conv = srv.acme_conversations()[0].id;
    let (client_id, reply) = {
        let e = engine_at(&path, &srv.base, &token);
        e.sync_now().await.unwrap();
        assert_eq!(
            e.check_store().await.unwrap(),
            None,
            "a sound store passes the full check"
        );
        srv.stop().await;
        let reply = e.reply(conv, "Written before the disk went bad").unwrap();
        e.add_tags(conv, ["kept"]).unwrap();
        (e.client_id(), reply)
    };
    // Garbage over a leaf page of `records` that is neither its first nor
    // its last: no open-time read touches it.
    common::damage_a_middle_leaf(&path, "records");

    let e = engine_at(&path, &srv.base, &token);
    assert!(
        e.last_rebuild().is_none(),
        "the start reads a few pages only and opens the store as is"
    );
    assert_eq!(e.pending_count().unwrap(), 2, "the queue reads at once");
    let mut events = e.subscribe();

    let info = e
        .check_store()
        .await
        .unwrap()
        .expect("the full check finds the damaged leaf");
    assert_eq!(info.reason, RebuildReason::Corrupt, "{info:?}");
    assert_eq!(
        info.kept_mutations, 2,
        "every queued edit is carried over: {info:?}"
    );
    assert!(
        info.moved_to.as_ref().is_some_and(|p| p.exists()),
        "the damaged file is kept aside for inspection"
    );
    assert!(
        drain(&mut events)
            .iter()
            .any(|ev| matches!(ev, Event::StoreRebuilt { info: i } if *i == info)),
        "the UI is told the store was rebuilt"
    );
    assert_eq!(
        e.status().unwrap().rebuilt,
        Some(info.clone()),
        "the status says why, for the status bar"
    );
    assert_eq!(e.client_id(), client_id, "replays stay safe");
    assert_eq!(e.pending_count().unwrap(), 2, "the queue is intact");
    assert_eq!(
        e.count(Kind::Conversation).unwrap(),
        0,
        "the mirror starts over"
    );

    srv.restart().await;
    e.sync_now().await.unwrap();
    assert_eq!(e.pending_count().unwrap(), 0, "the kept edits went out");
    let id = reply.message_id.unwrap();
    assert_eq!(
        srv.messages(conv).iter().filter(|m| m.id == id).count(),
        1,
        "the kept reply reached the server once"
    );
    for kind in BOOTSTRAP_KINDS {
        assert_eq!(
            local_versions(&path, kind),
            srv.versions(kind),
            "{kind:?} is fully reloaded"
        );
    }
    assert_eq!(
        e.check_store().await.unwrap(),
        None,
        "the rebuilt store is sound"
    );
}

/// Other ways a store cannot be trusted: a file that is garbage from the
/// first byte, one written by a newer app, and one missing a table its
/// version promises. Each is rebuilt at open; the outbox is kept when it
/// can be read, and the loss is reported when it cannot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_newer_and_half_migrated_stores_are_rebuilt() {
    let srv = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let token = Token::new(srv.token("agent@portico.test"));
    let conv = srv.acme_conversations()[0].id;
    let prepare = |name: &str| -> PathBuf {
        let path = dir.path().join(name);
        let e = engine_at(&path, "http://127.0.0.1:9", &token);
        e.reply(conv, format!("queued in {name}")).unwrap();
        path
    };

    let garbage = prepare("garbage.db");
    std::fs::write(&garbage, vec![0x5Au8; 64 * 1024]).unwrap();
    let e = engine_at(&garbage, &srv.base, &token);
    let info = e.last_rebuild().expect("a garbage file is detected");
    assert_eq!(info.reason, RebuildReason::Corrupt);
    assert!(
        info.outbox_incomplete,
        "an unreadable outbox is reported as lost, not silently"
    );
    e.sync_now().await.unwrap();
    assert!(
        e.count(Kind::Conversation).unwrap() > 0,
        "the rebuilt store loads from the server"
    );

    let newer = prepare("newer.db");
    rusqlite::Connection::open(&newer)
        .unwrap()
        .pragma_update(None, "user_version", 99)
        .unwrap();
    let e = engine_at(&newer, &srv.base, &token);
    let info = e.last_rebuild().expect("a newer schema is detected");
    assert_eq!(info.reason, RebuildReason::NewerSchema);
    assert_eq!(e.pending_count().unwrap(), 1, "the readable outbox is kept");

    let half = prepare("half.db");
    rusqlite::Connection::open(&half)
        .unwrap()
        .execute_batch("DROP TABLE tombstones")
        .unwrap();
    let e = engine_at(&half, &srv.base, &token);
    let info = e.last_rebuild().expect("a missing table is detected");
    assert_eq!(info.reason, RebuildReason::HalfMigrated);
    assert_eq!(e.pending_count().unwrap(), 1, "the readable outbox is kept");
    e.sync_now().await.unwrap();
    assert_eq!(
        e.pending_count().unwrap(),
        0,
        "and sent once the store is rebuilt"
    );

    // An older store (written by an app that knew only the first schema
    // version) is migrated forward, not thrown away, and then loads.
    let older = dir.path().join("older.db");
    {
        let c = rusqlite::Connection::open(&older).unwrap();
        c.execute_batch(include_str!("../../../migrations/inbox/0001_mirror.sql"))
            .unwrap();
        c.pragma_update(None, "user_version", 1).unwrap();
    }
    let e = engine_at(&older, &srv.base, &token);
    assert!(
        e.last_rebuild().is_none(),
        "an older schema is migrated, not rebuilt"
    );
    e.sync_now().await.unwrap();
    assert!(e.count(Kind::Conversation).unwrap() > 0, "and then loads");

    // An older version number over a newer schema: migrating fails, so the
    // store is rebuilt, keeping its queue.
    let lying = prepare("lying.db");
    rusqlite::Connection::open(&lying)
        .unwrap()
        .pragma_update(None, "user_version", 2)
        .unwrap();
    let e = engine_at(&lying, &srv.base, &token);
    let info = e
        .last_rebuild()
        .expect("a schema that does not match its version is detected");
    assert_eq!(info.reason, RebuildReason::HalfMigrated);
    assert_eq!(e.pending_count().unwrap(), 1, "the readable outbox is kept");

    let healthy = prepare("healthy.db");
    let e = engine_at(&healthy, &srv.base, &token);
    assert!(
        e.last_rebuild().is_none(),
        "a healthy store is opened as is"
    );
    assert_eq!(e.pending_count().unwrap(), 1);
}

/// The server's history is not the one the desktop synced from (a restored
/// backup): the pull asks for a resync; the store is rebuilt from the new
/// server while queued edits are kept and sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resync_rebuilds_from_the_server_keeping_the_outbox() {
    let first = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let conv = first.acme_conversations()[0].id;
    let token = Token::new(first.token("agent@portico.test"));
    // Move the first server's history ahead of a fresh copy of the seed.
    let http = reqwest::Client::new();
    for p in ["high", "low", "urgent"] {
        let resp = http
            .patch(format!("{}/v1/conversations/{conv}", first.base))
            .bearer_auth(token.get())
            .json(&serde_json::json!({ "priority": p }))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
    }
    let path = dir.path().join("r.db");
    let e = engine_at(&path, &first.base, &token);
    e.sync_now().await.unwrap();
    let mut events = e.subscribe();

    let second = Server::start();
    token.set(second.token("agent@portico.test"));
    e.set_base_url(second.base.clone());
    let q = e.reply(conv, "Sent across the resync").unwrap();
    let report = e.sync_now().await.unwrap();
    assert!(
        report.resynced,
        "a cursor from another history makes the engine resync: {report:?}"
    );
    let info = e.last_rebuild().expect("the resync rebuilt the store");
    assert_eq!(info.reason, RebuildReason::Resync);
    assert!(
        drain(&mut events)
            .iter()
            .any(|ev| matches!(ev, Event::StoreRebuilt { .. })),
        "the UI hears of the rebuild"
    );
    assert_eq!(e.pending_count().unwrap(), 0, "the queued reply was sent");
    let id = q.message_id.unwrap();
    assert_eq!(
        second.messages(conv).iter().filter(|m| m.id == id).count(),
        1,
        "the reply exists once on the new server"
    );
    assert_eq!(
        view(&e, conv).data,
        staff_row(&second.conversation(conv)),
        "the mirror now follows the new server"
    );
    for kind in BOOTSTRAP_KINDS {
        assert_eq!(
            local_versions(&path, kind),
            second.versions(kind),
            "{kind:?} matches the new server"
        );
    }
}

// ----- a server that answers junk --------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Junk {
    NotJson,
    OtherProtocol,
    RefusesProtocol,
    WrongKind,
    RowWithoutId,
    ChangesNotJson,
    ChangesOtherProtocol,
    ChangesUpsertWithoutRow,
    PushMissingResults,
    /// Refuses (422) any push holding a reply whose body is "poison".
    Poison,
    /// Answers every request 503 with portal-core's own body, as a server
    /// whose runtime stops under a request in flight does.
    Unavailable,
}

/// What portal-core answers while it stops (`PortalError::Unavailable`).
fn unavailable() -> (axum::http::StatusCode, String) {
    (
        axum::http::StatusCode::SERVICE_UNAVAILABLE,
        serde_json::json!({ "error": { "code": "unavailable", "message": "the server is shutting down or overloaded" } }).to_string(),
    )
}

/// A stub of the sync endpoints answering valid pages except where `mode`
/// says otherwise.
async fn stub(mode: Arc<Mutex<Junk>>) -> String {
    use axum::extract::Query;
    use axum::http::StatusCode;
    use axum::routing::{get, post};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let m1 = mode.clone();
    let m2 = mode.clone();
    let m3 = mode;
    let app = axum::Router::new()
        .route(
            "/v1/sync/bootstrap",
            get(move |Query(q): Query<HashMap<String, String>>| {
                let mode = *m1.lock().unwrap();
                async move {
                    let kind = q["kind"].clone();
                    let ok = serde_json::json!({ "protocol": 1, "snapshot": 7, "kind": kind, "rows": [] });
                    match mode {
                        Junk::NotJson => (StatusCode::OK, "<html>gateway</html>".to_owned()),
                        Junk::OtherProtocol => (StatusCode::OK, serde_json::json!({ "protocol": 2, "snapshot": 7, "kind": kind, "rows": [] }).to_string()),
                        Junk::RefusesProtocol => (
                            StatusCode::BAD_REQUEST,
                            serde_json::json!({ "error": { "code": "unsupported_protocol", "message": "sync protocol 1 is not supported; this server speaks protocol 2: update the app" } }).to_string(),
                        ),
                        Junk::WrongKind => (StatusCode::OK, serde_json::json!({ "protocol": 1, "snapshot": 7, "kind": "alert", "rows": [] }).to_string()),
                        Junk::RowWithoutId => (
                            StatusCode::OK,
                            serde_json::json!({ "protocol": 1, "snapshot": 7, "kind": kind, "rows": [{ "version": 1, "name": "x" }] }).to_string(),
                        ),
                        Junk::Unavailable => unavailable(),
                        _ => (StatusCode::OK, ok.to_string()),
                    }
                }
            }),
        )
        .route(
            "/v1/sync/changes",
            get(move || {
                let mode = *m2.lock().unwrap();
                async move {
                    match mode {
                        Junk::ChangesNotJson => "{\"changes\": [".to_owned(),
                        Junk::ChangesOtherProtocol => serde_json::json!({ "protocol": 3, "changes": [], "next_after": 7, "has_more": false }).to_string(),
                        Junk::ChangesUpsertWithoutRow => serde_json::json!({
                            "protocol": 1,
                            "changes": [{ "seq": 8, "kind": "conversation", "id": uuid::Uuid::nil(), "op": "upsert", "version": 3 }],
                            "next_after": 8, "has_more": false
                        })
                        .to_string(),
                        _ => serde_json::json!({ "protocol": 1, "changes": [], "next_after": 7, "has_more": false }).to_string(),
                    }
                }
            }),
        )
        .route(
            "/v1/sync/push",
            post(move |body: axum::body::Bytes| {
                let mode = *m3.lock().unwrap();
                async move {
                    match mode {
                        Junk::PushMissingResults => (
                            StatusCode::OK,
                            serde_json::json!({ "protocol": 1, "results": [], "last_mutation_id": 0 }).to_string(),
                        ),
                        Junk::Poison => {
                            let req: PushRequest = serde_json::from_slice(&body).unwrap();
                            let poisoned = req.mutations.iter().any(|m| {
                                matches!(&m.op, MutationOp::Reply { body, .. } if body == "poison")
                            });
                            if poisoned {
                                (
                                    StatusCode::UNPROCESSABLE_ENTITY,
                                    serde_json::json!({ "error": { "code": "validation_failed", "message": "body: this server cannot take that" } }).to_string(),
                                )
                            } else {
                                let results: Vec<Value> = req
                                    .mutations
                                    .iter()
                                    .map(|m| serde_json::json!({ "id": m.id, "outcome": "applied", "duplicate": false }))
                                    .collect();
                                let last = req.mutations.iter().map(|m| m.id).max().unwrap_or(0);
                                (
                                    StatusCode::OK,
                                    serde_json::json!({ "protocol": 1, "results": results, "last_mutation_id": last }).to_string(),
                                )
                            }
                        }
                        Junk::Unavailable => unavailable(),
                        _ => (StatusCode::OK, "not a push answer".to_owned()),
                    }
                }
            }),
        );
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    base
}

/// Junk, another protocol, or pages that contradict the request: each is a
/// typed error with a clear message, and nothing reaches the local store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_or_foreign_answers_are_typed_errors_and_write_nothing() {
    let mode = Arc::new(Mutex::new(Junk::NotJson));
    let base = stub(mode.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let token = Token::new("stub-token".into());

    for (junk, code) in [
        (Junk::NotJson, "malformed_response"),
        (Junk::OtherProtocol, "unsupported_protocol"),
        (Junk::RefusesProtocol, "unsupported_protocol"),
        (Junk::WrongKind, "malformed_response"),
        (Junk::RowWithoutId, "malformed_response"),
    ] {
        *mode.lock().unwrap() = junk;
        let path = dir.path().join(format!("{junk:?}.db"));
        let e = engine_at(&path, &base, &token);
        let err = e.sync_now().await.unwrap_err();
        assert_eq!(err.code(), code, "{junk:?} gives a typed error: {err}");
        assert!(!err.to_string().is_empty(), "the error explains itself");
        let progress = e.bootstrap_progress().unwrap().unwrap();
        assert_eq!(progress.snapshot, None, "{junk:?}: no page was recorded");
        assert_eq!(progress.rows, 0);
        for kind in Kind::ALL {
            assert_eq!(e.count(kind).unwrap(), 0, "{junk:?}: nothing was written");
        }
        if let EngineError::UnsupportedProtocol { client, .. } = &err {
            assert_eq!(
                *client, SYNC_PROTOCOL,
                "the error says which protocol the app speaks"
            );
        }
    }

    for (junk, code) in [
        (Junk::ChangesNotJson, "malformed_response"),
        (Junk::ChangesOtherProtocol, "unsupported_protocol"),
        (Junk::ChangesUpsertWithoutRow, "malformed_response"),
    ] {
        *mode.lock().unwrap() = Junk::PushMissingResults; // no push happens: nothing queued
        let path = dir.path().join(format!("{junk:?}.db"));
        let e = engine_at(&path, &base, &token);
        // An empty but valid bootstrap first, then the junk feed.
        *mode.lock().unwrap() = junk;
        let err = e.sync_now().await.unwrap_err();
        assert_eq!(err.code(), code, "{junk:?} gives a typed error: {err}");
        assert_eq!(
            e.read(|m| m.cursor().unwrap()),
            7,
            "{junk:?}: the cursor stays at the snapshot"
        );
        for kind in Kind::ALL {
            assert_eq!(e.count(kind).unwrap(), 0, "{junk:?}: nothing was written");
        }
    }

    *mode.lock().unwrap() = Junk::PushMissingResults;
    let e = engine_at(&dir.path().join("push.db"), &base, &token);
    let conv = ConversationId(uuid::Uuid::now_v7());
    e.reply(conv, "Never confirmed").unwrap();
    let err = e.sync_now().await.unwrap_err();
    assert_eq!(
        err.code(),
        "malformed_response",
        "a push answer that skips mutations is refused: {err}"
    );
    assert_eq!(
        e.pending_count().unwrap(),
        1,
        "the mutation stays queued, untouched"
    );
    assert!(
        e.rejections().unwrap().is_empty(),
        "nothing is taken as refused"
    );
    assert!(
        e.messages(conv).unwrap().iter().all(|m| m.pending),
        "the reply still shows as pending"
    );
}

/// A server that stops under a request in flight answers 503 when its
/// store call is cancelled before the connection drops (the race that once
/// failed the crash-mid-bootstrap test). The engine must treat it exactly as
/// a dropped connection: offline, nothing written, nothing queued refused,
/// and the bootstrap still waiting to resume.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_answering_unavailable_is_offline_like_a_dropped_connection() {
    let mode = Arc::new(Mutex::new(Junk::Unavailable));
    let base = stub(mode).await;
    let dir = tempfile::tempdir().unwrap();
    let e = engine_at(
        &dir.path().join("unavailable.db"),
        &base,
        &Token::new("stub-token".into()),
    );
    let conv = ConversationId(uuid::Uuid::now_v7());
    e.reply(conv, "Sent while the server restarts").unwrap();
    let err = e.sync_now().await.unwrap_err();
    assert_eq!(
        err.code(),
        "offline",
        "a 503 is the same retriable interruption as a dropped connection: {err}"
    );
    assert!(
        err.to_string().contains("503"),
        "the message says what the server answered: {err}"
    );
    assert!(!e.status().unwrap().online, "the status bar shows offline");
    assert_eq!(e.pending_count().unwrap(), 1, "the reply stays queued");
    assert!(
        e.rejections().unwrap().is_empty(),
        "a server that could not answer refused nothing"
    );
    assert!(
        e.bootstrap_progress().unwrap().is_some(),
        "the bootstrap is still to do"
    );
    for kind in Kind::ALL {
        assert_eq!(e.count(kind).unwrap(), 0, "nothing was written");
    }
}

/// A mutation the server refuses outright (the whole request, before
/// applying anything) must not block the queue behind it forever: the batch
/// is retried one by one, the culprit is listed as a rejection with the
/// server's reason, and the others go through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mutation_the_server_never_takes_is_isolated_and_listed() {
    let mode = Arc::new(Mutex::new(Junk::Poison));
    let base = stub(mode).await;
    let dir = tempfile::tempdir().unwrap();
    let e = engine_at(
        &dir.path().join("poison.db"),
        &base,
        &Token::new("t".into()),
    );
    let conv = ConversationId(uuid::Uuid::now_v7());
    e.reply(conv, "fine before").unwrap();
    let bad = e.reply(conv, "poison").unwrap();
    e.reply(conv, "fine after").unwrap();
    let report = e.sync_now().await.unwrap();
    assert_eq!(
        (report.push.applied, report.push.rejected),
        (2, 1),
        "the good mutations still go through: {report:?}"
    );
    let rejections = e.rejections().unwrap();
    assert_eq!(
        rejections.len(),
        1,
        "the refused mutation is listed, not dropped"
    );
    assert_eq!(
        rejections[0].mutation_id, bad.mutation_id,
        "exactly the culprit is isolated"
    );
    assert_eq!(
        rejections[0].code, "validation_failed",
        "with the server's code"
    );
    assert_eq!(
        e.pending_count().unwrap(),
        0,
        "nothing is stuck in the queue"
    );
}

/// Replies near the 64 Ki-character limit are split over several pushes so
/// no request exceeds the server's body limit; all of them arrive once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_replies_are_split_into_requests_the_server_accepts() {
    let srv = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let (e, _) = client(&srv, &dir, "big.db", "agent@portico.test");
    e.sync_now().await.unwrap();
    let conv = srv.acme_conversations()[0].id;
    let ids: Vec<_> = (0..8)
        .map(|i| {
            e.reply(conv, format!("{i}{}", "x".repeat(60_000)))
                .unwrap()
                .message_id
                .unwrap()
        })
        .collect();
    let report = e.sync_now().await.unwrap();
    assert_eq!(
        report.push.applied, 8,
        "every large reply is applied: {report:?}"
    );
    assert!(
        report.push.batches >= 3,
        "480 kB of replies cannot go in one 256 KiB request: {report:?}"
    );
    let msgs = srv.messages(conv);
    for id in ids {
        assert_eq!(
            msgs.iter().filter(|m| m.id == id).count(),
            1,
            "reply {id} exists once"
        );
    }
}

/// A customer's desktop holds its own account only, without staff or
/// internal fields, internal notes or staff-only kinds; a member sees no
/// billing. Staff actions it pushes are refused visibly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_token_syncs_only_what_the_policy_allows() {
    let srv = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let (admin, _) = client(&srv, &dir, "admin.db", "admin@acme.test");
    admin.sync_now().await.unwrap();
    let acme = srv.acme();

    assert_eq!(
        admin.count(Kind::Account).unwrap(),
        1,
        "a customer mirrors its own account only"
    );
    let account = admin.record(Kind::Account, acme.id.0).unwrap().unwrap();
    for hidden in [
        "health_score",
        "mrr",
        "notes",
        "key_account",
        "lifecycle_stage",
    ] {
        assert!(
            !account.contains_key(hidden),
            "{hidden} is staff-only and must be absent"
        );
    }
    for kind in [
        Kind::Team,
        Kind::RoutingRule,
        Kind::SlaPolicy,
        Kind::Automation,
        Kind::Alert,
        Kind::AuditEvent,
    ] {
        assert_eq!(admin.count(kind).unwrap(), 0, "{kind:?} is staff-only");
    }
    let convs = srv.acme_conversations();
    assert_eq!(
        admin.count(Kind::Conversation).unwrap(),
        convs.len() as u64,
        "exactly Acme's conversations"
    );
    for c in &convs {
        let local = view(&admin, c.id);
        for hidden in [
            "assignee_id",
            "tags",
            "priority",
            "team_id",
            "snoozed_until",
            "sla",
        ] {
            assert!(
                !local.data.contains_key(hidden),
                "{hidden} of a conversation is staff-only"
            );
        }
        let notes = srv
            .messages(c.id)
            .into_iter()
            .filter(|m| m.kind == MessageKind::InternalNote)
            .count();
        let visible = srv.messages(c.id).len() - notes;
        assert_eq!(
            admin.messages(c.id).unwrap().len(),
            visible,
            "internal notes never reach a customer"
        );
    }
    let users_path = dir.path().join("admin.db");
    let users = local_versions(&users_path, Kind::User);
    let acme_users: BTreeSet<uuid::Uuid> = srv
        .query::<User>(
            "SELECT data FROM users WHERE account_id = ?1",
            &[&acme.id.to_string()],
        )
        .iter()
        .map(|u| u.id.0)
        .collect();
    assert_eq!(
        users.keys().copied().collect::<BTreeSet<_>>(),
        acme_users,
        "only Acme's users are mirrored"
    );
    assert!(
        admin.count(Kind::Invoice).unwrap() > 0,
        "an admin sees the account's invoices"
    );

    let (member, _) = client(&srv, &dir, "member.db", "member@acme.test");
    member.sync_now().await.unwrap();
    assert_eq!(
        member.count(Kind::Invoice).unwrap(),
        0,
        "a member sees no invoices"
    );
    let subs = local_versions(&dir.path().join("member.db"), Kind::Subscription);
    for id in subs.keys() {
        let s = member.record(Kind::Subscription, *id).unwrap().unwrap();
        for hidden in ["tax_rate_bps", "credit_balance", "billing_email"] {
            assert!(
                !s.contains_key(hidden),
                "{hidden} is for the account's admins"
            );
        }
    }

    // Staff actions pushed by a customer are refused, visibly.
    let own = convs[0].id;
    let foreign = srv
        .query::<Conversation>(
            "SELECT data FROM conversations WHERE account_id != ?1 LIMIT 1",
            &[&acme.id.to_string()],
        )
        .pop()
        .unwrap()
        .id;
    let assign = admin
        .assign(own, Some(srv.user("agent@portico.test").id))
        .unwrap();
    let snoop = admin.reply(foreign, "Hello from another account").unwrap();
    let fine = admin.reply(own, "A customer's own reply").unwrap();
    let report = admin.sync_now().await.unwrap();
    assert_eq!(
        (report.push.applied, report.push.rejected),
        (1, 2),
        "{report:?}"
    );
    let codes: BTreeMap<u64, String> = admin
        .rejections()
        .unwrap()
        .into_iter()
        .map(|r| (r.mutation_id, r.code))
        .collect();
    assert_eq!(
        codes[&assign.mutation_id], "forbidden",
        "customers cannot triage"
    );
    assert_eq!(
        codes[&snoop.mutation_id], "not_found",
        "another account's conversation looks missing"
    );
    assert!(
        srv.messages(foreign)
            .iter()
            .all(|m| m.id != snoop.message_id.unwrap()),
        "the foreign reply was not stored"
    );
    assert_eq!(
        srv.messages(own)
            .iter()
            .filter(|m| m.id == fine.message_id.unwrap())
            .count(),
        1
    );
    assert!(
        !view(&admin, own).data.contains_key("assignee_id"),
        "the refused assignment left no staff field behind"
    );
}

/// Intents validate before queueing: nothing the server would refuse for
/// its shape reaches the outbox.
#[tokio::test]
async fn invalid_intents_are_refused_before_queueing() {
    let dir = tempfile::tempdir().unwrap();
    let token = Token::new("t".into());
    let e = engine_at(&dir.path().join("v.db"), "http://127.0.0.1:9", &token);
    let conv = ConversationId(uuid::Uuid::now_v7());
    let mut events = e.subscribe();
    for err in [
        e.add_tags(conv, ["Not A Tag"]).unwrap_err(),
        e.add_tags(conv, Vec::<String>::new()).unwrap_err(),
        e.reply(conv, "   ").unwrap_err(),
        e.set_status(conv, ConversationStatus::Snoozed, None)
            .unwrap_err(),
    ] {
        assert_eq!(err.code(), "invalid", "{err}");
    }
    assert_eq!(e.pending_count().unwrap(), 0, "nothing invalid is queued");
    let q = e.snooze(conv, anchor(), None).unwrap();
    assert_eq!(q.mutation_id, 1, "mutation ids start at 1");
    let got = drain(&mut events);
    assert!(
        got.iter()
            .any(|ev| matches!(ev, Event::OutboxChanged { pending: 1 })),
        "queueing is announced: {got:?}"
    );
    assert_eq!(
        e.reply(conv, "x").unwrap().mutation_id,
        2,
        "mutation ids grow by one"
    );
}

// ----- interleavings ----------------------------------------------------------

mod interleavings {
    use super::*;
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};

    #[derive(Debug, Clone)]
    enum Edit {
        Assign(Option<usize>),
        Status(usize, bool),
        Priority(usize),
        AddTag(usize),
        RemoveTag(usize),
        Reply,
    }

    #[derive(Debug, Clone)]
    enum Step {
        Edit(usize, Edit),
        /// The engine pushes.
        Push,
        /// The engine pulls.
        Pull,
        /// The engine pushes and pulls.
        Sync,
        /// The queue is sent outside the engine first, as by an earlier
        /// attempt whose answer got lost.
        LostAnswer,
        /// Only the newest queued mutation is sent, ahead of older ones.
        Reorder,
        /// The last batch sent is sent again.
        Replay,
    }

    const TAGS: [&str; 3] = ["red", "green", "blue"];
    const STATUSES: [ConversationStatus; 3] = [
        ConversationStatus::Open,
        ConversationStatus::Pending,
        ConversationStatus::Resolved,
    ];
    const PRIORITIES: [Priority; 4] = [
        Priority::Low,
        Priority::Normal,
        Priority::High,
        Priority::Urgent,
    ];

    fn edit() -> impl Strategy<Value = Edit> {
        prop_oneof![
            proptest::option::of(0..2usize).prop_map(Edit::Assign),
            (0..3usize, any::<bool>()).prop_map(|(s, g)| Edit::Status(s, g)),
            (0..4usize).prop_map(Edit::Priority),
            (0..3usize).prop_map(Edit::AddTag),
            (0..3usize).prop_map(Edit::RemoveTag),
            Just(Edit::Reply),
        ]
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            4 => (0..2usize, edit()).prop_map(|(c, e)| Step::Edit(c, e)),
            2 => Just(Step::Push),
            2 => Just(Step::Pull),
            1 => Just(Step::Sync),
            2 => Just(Step::LostAnswer),
            1 => Just(Step::Reorder),
            1 => Just(Step::Replay),
        ]
    }

    fn case() -> impl Strategy<Value = (usize, Vec<(usize, Step)>)> {
        (2..=3usize).prop_flat_map(|n| (Just(n), proptest::collection::vec((0..n, step()), 1..30)))
    }

    struct Client {
        engine: Engine,
        token: String,
        last_batch: Vec<Mutation>,
        replies: Vec<portico_model::MessageId>,
        guarded: BTreeSet<u64>,
    }

    async fn run_case(
        srv: &Server,
        staff: &[(String, UserId)],
        convs: &[ConversationId],
        case_no: usize,
        clients_n: usize,
        steps: Vec<(usize, Step)>,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let mut clients = Vec::new();
        for i in 0..clients_n {
            let token = Token::new(staff[i % staff.len()].0.clone());
            let engine = engine_at(&dir.path().join(format!("p{i}.db")), &srv.base, &token);
            engine.sync_now().await.unwrap();
            clients.push(Client {
                engine,
                token: token.get(),
                last_batch: Vec::new(),
                replies: Vec::new(),
                guarded: BTreeSet::new(),
            });
        }
        for (n, (who, step)) in steps.into_iter().enumerate() {
            let c = &mut clients[who];
            match step {
                Step::Edit(ci, edit) => {
                    let conv = convs[ci];
                    let e = &c.engine;
                    match edit {
                        Edit::Assign(u) => {
                            e.assign(conv, u.map(|i| staff[i].1)).unwrap();
                        }
                        Edit::Status(s, guard) => {
                            let seen =
                                e.record(Kind::Conversation, conv.0).unwrap().unwrap()["version"]
                                    .as_u64();
                            let q = e
                                .set_status(conv, STATUSES[s], seen.filter(|_| guard))
                                .unwrap();
                            if guard {
                                c.guarded.insert(q.mutation_id);
                            }
                        }
                        Edit::Priority(p) => {
                            e.set_priority(conv, PRIORITIES[p]).unwrap();
                        }
                        Edit::AddTag(t) => {
                            e.add_tags(conv, [TAGS[t]]).unwrap();
                        }
                        Edit::RemoveTag(t) => {
                            e.remove_tags(conv, [TAGS[t]]).unwrap();
                        }
                        Edit::Reply => {
                            let q = e
                                .reply(conv, format!("case {case_no} client {who} step {n}"))
                                .unwrap();
                            c.replies.push(q.message_id.unwrap());
                        }
                    }
                }
                Step::Push => {
                    c.last_batch = c.engine.pending_mutations().unwrap();
                    c.engine.push_now().await.unwrap();
                }
                Step::Pull => {
                    c.engine.pull_now().await.unwrap();
                }
                Step::Sync => {
                    c.last_batch = c.engine.pending_mutations().unwrap();
                    c.engine.sync_now().await.unwrap();
                }
                Step::LostAnswer => {
                    let batch = c.engine.pending_mutations().unwrap();
                    if !batch.is_empty() {
                        raw_push(&srv.base, &c.token, c.engine.client_id(), batch.clone()).await;
                        c.last_batch = batch;
                    }
                }
                Step::Reorder => {
                    if let Some(last) = c.engine.pending_mutations().unwrap().pop() {
                        raw_push(&srv.base, &c.token, c.engine.client_id(), vec![last]).await;
                    }
                }
                Step::Replay => {
                    if !c.last_batch.is_empty() {
                        let before = srv.processed(c.engine.client_id());
                        let resp = raw_push(
                            &srv.base,
                            &c.token,
                            c.engine.client_id(),
                            c.last_batch.clone(),
                        )
                        .await;
                        for r in &resp.results {
                            assert_eq!(
                                r.duplicate,
                                before.contains(&r.id),
                                "a mutation already processed is answered as a replay, any other is new"
                            );
                        }
                    }
                }
            }
        }
        // Everyone syncs until nothing is queued, then once more so each has
        // pulled everyone else's last push.
        for _ in 0..3 {
            for c in &clients {
                c.engine.sync_now().await.unwrap();
            }
        }
        for c in &clients {
            c.engine.sync_now().await.unwrap();
        }

        for (i, c) in clients.iter().enumerate() {
            let e = &c.engine;
            assert_eq!(
                e.pending_count().unwrap(),
                0,
                "client {i}: every mutation got its outcome"
            );
            let processed = srv.processed(e.client_id());
            let max = processed.iter().max().copied().unwrap_or(0);
            assert_eq!(
                processed,
                (1..=max).collect::<BTreeSet<u64>>(),
                "client {i}: the server processed each mutation id exactly once, none skipped"
            );
            let listed: BTreeMap<u64, String> = e
                .rejections()
                .unwrap()
                .into_iter()
                .map(|r| (r.mutation_id, r.code))
                .collect();
            let refused: BTreeMap<u64, String> = srv
                .outcomes(e.client_id())
                .into_iter()
                .filter_map(|(id, o)| match o {
                    Outcome::Rejected { code, .. } => Some((id, code)),
                    Outcome::Applied => None,
                })
                .collect();
            assert_eq!(
                listed, refused,
                "client {i}: every mutation the server refused is listed with its code, and nothing else"
            );
            for r in e.rejections().unwrap() {
                assert!(
                    r.code == "version_conflict" && c.guarded.contains(&r.mutation_id),
                    "client {i}: only guarded status changes may be refused, got {r:?}"
                );
            }
            for conv in convs {
                let local = view(e, *conv);
                assert!(!local.pending, "client {i}: nothing unconfirmed is shown");
                assert_eq!(
                    local.data,
                    staff_row(&srv.conversation(*conv)),
                    "client {i} converges to the server's conversation"
                );
                let server_ids: Vec<String> = srv
                    .messages(*conv)
                    .iter()
                    .map(|m| m.id.to_string())
                    .collect();
                assert_eq!(
                    message_ids(e, *conv),
                    server_ids,
                    "client {i} converges to the server's thread"
                );
            }
            for id in &c.replies {
                let copies: usize = convs
                    .iter()
                    .map(|cv| srv.messages(*cv).iter().filter(|m| m.id == *id).count())
                    .sum();
                assert_eq!(copies, 1, "client {i}: reply {id} is stored exactly once");
            }
        }
        let prefix = format!("case {case_no} ");
        let mut bodies: Vec<String> = convs
            .iter()
            .flat_map(|c| srv.messages(*c))
            .filter(|m| m.body.starts_with(&prefix))
            .map(|m| m.body)
            .collect();
        let total = bodies.len();
        bodies.sort();
        bodies.dedup();
        assert_eq!(
            bodies.len(),
            total,
            "no reply body appears twice on the server"
        );
        assert_eq!(
            total,
            clients.iter().map(|c| c.replies.len()).sum::<usize>(),
            "every reply reached the server"
        );
    }

    /// 2–3 clients edit the same conversations while pushes are duplicated,
    /// sent ahead, reordered and interleaved with pulls; every client ends
    /// showing exactly the server's state, and the server processed each
    /// (client, mutation id) once.
    #[test]
    fn interleaved_duplicated_and_reordered_pushes_and_pulls_converge() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let srv = Server::start();
        let staff: Vec<(String, UserId)> = ["agent@portico.test", "lead@portico.test"]
            .iter()
            .map(|e| (srv.token(e), srv.user(e).id))
            .collect();
        let convs: Vec<ConversationId> = srv
            .acme_conversations()
            .iter()
            .take(2)
            .map(|c| c.id)
            .collect();
        let mut runner = TestRunner::new(Config {
            // Few cases keep the suite fast; PROPTEST_CASES=500 digs deeper.
            cases: std::env::var("PROPTEST_CASES")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(16),
            max_shrink_iters: 32,
            failure_persistence: None,
            ..Config::default()
        });
        let counter = std::cell::Cell::new(0usize);
        runner
            .run(&case(), |(n, steps)| {
                counter.set(counter.get() + 1);
                rt.block_on(run_case(&srv, &staff, &convs, counter.get(), n, steps));
                Ok(())
            })
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scope_change_forces_a_resync_that_reloads_what_the_new_scope_allows() {
    let srv = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let (admin, token) = client(&srv, &dir, "scope.db", "admin@acme.test");
    admin.sync_now().await.unwrap();
    let business_only: Vec<portico_model::Article> = srv.query(
        "SELECT data FROM articles WHERE data ->> '$.state' = 'approved' AND data ->> '$.audience' != 'internal'
         AND EXISTS (SELECT 1 FROM json_each(data ->> '$.plans') WHERE value = 'business')
         AND NOT EXISTS (SELECT 1 FROM json_each(data ->> '$.plans') WHERE value = 'team')",
        &[],
    );
    assert!(
        !business_only.is_empty(),
        "the seed has articles for Business but not Team"
    );
    for a in &business_only {
        assert!(
            admin.record(Kind::Article, a.id.0).unwrap().is_none(),
            "a Team customer does not hold Business-only articles"
        );
    }

    // The admin upgrades Acme from Team to Business: what they may see changes.
    let plans: Vec<portico_model::Plan> = srv.query(
        "SELECT data FROM plans WHERE data ->> '$.code' = 'business'",
        &[],
    );
    let http = reqwest::Client::new();
    let r = http
        .post(format!(
            "{}/v1/accounts/{}/subscription/change",
            srv.base,
            srv.acme().id
        ))
        .bearer_auth(token.get())
        .json(&serde_json::json!({ "plan_id": plans[0].id, "seats": 12 }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        200,
        "the upgrade goes through: {}",
        r.text().await.unwrap()
    );

    let report = admin.sync_now().await.unwrap();
    assert!(
        report.resynced,
        "a new plan is a new scope: the store is rebuilt"
    );
    for a in &business_only {
        assert!(
            admin.record(Kind::Article, a.id.0).unwrap().is_some(),
            "after the resync the Business articles are there"
        );
    }
}

// ----- team access -------------------------------------------------------------

/// Sets a staff member's teams or conversation access as an admin would.
async fn set_access(srv: &Server, user: UserId, body: Value) {
    let admin = srv.token("admin@portico.test");
    let r = reqwest::Client::new()
        .patch(format!("{}/v1/users/{user}/access", srv.base))
        .bearer_auth(admin)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
}

/// Ids of the conversations a team-access agent works: their team's, and
/// those assigned to them (as the server holds them now).
fn worked_by(srv: &Server, team: portico_model::TeamId, user: UserId) -> BTreeSet<uuid::Uuid> {
    srv.query::<Conversation>("SELECT data FROM conversations", &[])
        .into_iter()
        .filter(|c| c.team_id == Some(team) || c.assignee_id == Some(user))
        .map(|c| c.id.0)
        .collect()
}

/// Message ids of those conversations, as the server holds them.
fn messages_of(srv: &Server, convs: &BTreeSet<uuid::Uuid>) -> BTreeSet<uuid::Uuid> {
    srv.query::<Message>("SELECT data FROM messages", &[])
        .into_iter()
        .filter(|m| convs.contains(&m.conversation_id.0))
        .map(|m| m.id.0)
        .collect()
}

fn local_ids(path: &Path, kind: Kind) -> BTreeSet<uuid::Uuid> {
    local_versions(path, kind).into_keys().collect()
}

/// Zendesk's agent ticket access over the real protocol: an agent limited
/// to their teams mirrors exactly their team's conversations (and those
/// assigned to them) with their messages, without internal fields; when an
/// admin moves them to another team, the next pull answers resync and the
/// rebuilt mirror holds the new team's conversations and no longer the old
/// one's. A conversation moved out of their team leaves the mirror with its
/// messages on the next pull, without a resync.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_team_agent_mirrors_its_teams_and_a_team_move_resyncs_to_the_new_one() {
    let srv = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let kai = srv.user("kai@portico.test");
    let team = |name: &str| {
        srv.query::<portico_model::Team>(
            "SELECT data FROM teams WHERE data ->> '$.name' = ?1",
            &[name],
        )
        .pop()
        .unwrap()
        .id
    };
    let (billing, technical) = (team("Billing"), team("Technical"));
    assert_eq!(kai.team_ids, vec![billing], "the seed puts Kai in Billing");
    set_access(
        &srv,
        kai.id,
        serde_json::json!({ "conversation_access": "teams" }),
    )
    .await;

    let path = dir.path().join("kai.db");
    let (e, _) = client(&srv, &dir, "kai.db", "kai@portico.test");
    e.sync_now().await.unwrap();
    let all: BTreeSet<uuid::Uuid> = srv.versions(Kind::Conversation).into_keys().collect();
    let billing_convs = worked_by(&srv, billing, kai.id);
    assert!(
        !billing_convs.is_empty() && billing_convs.len() < all.len(),
        "the seed gives Billing some conversations, not all"
    );
    assert_eq!(
        local_ids(&path, Kind::Conversation),
        billing_convs,
        "exactly Billing's conversations and Kai's own"
    );
    assert_eq!(
        local_ids(&path, Kind::Message),
        messages_of(&srv, &billing_convs),
        "exactly their messages"
    );
    for id in local_ids(&path, Kind::Account) {
        let account = e.record(Kind::Account, id).unwrap().unwrap();
        assert!(account.contains_key("name"));
        for internal in ["health_score", "mrr", "notes"] {
            assert!(
                !account.contains_key(internal),
                "{internal} is internal: absent for a team-access agent"
            );
        }
    }
    // The HTTP API answers the same: another team's conversation is missing.
    let foreign = *all.difference(&billing_convs).next().unwrap();
    let r = reqwest::Client::new()
        .get(format!("{}/v1/conversations/{foreign}", srv.base))
        .bearer_auth(srv.token("kai@portico.test"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404, "outside Kai's access looks missing");

    // A lead moves one Billing conversation (not Kai's own) to Technical:
    // it leaves Kai's mirror with its messages, no resync needed.
    let moved = srv
        .query::<Conversation>("SELECT data FROM conversations", &[])
        .into_iter()
        .find(|c| c.team_id == Some(billing) && c.assignee_id != Some(kai.id))
        .expect("a Billing conversation someone else works");
    let r = reqwest::Client::new()
        .patch(format!("{}/v1/conversations/{}", srv.base, moved.id))
        .bearer_auth(srv.token("lead@portico.test"))
        .json(&serde_json::json!({ "team_id": technical }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let report = e.sync_now().await.unwrap();
    assert!(
        !report.resynced,
        "a conversation moving is not a scope change"
    );
    assert!(
        e.record(Kind::Conversation, moved.id.0).unwrap().is_none(),
        "the moved conversation left Kai's mirror"
    );
    assert!(
        e.messages(moved.id).unwrap().is_empty(),
        "and its messages with it"
    );
    let billing_convs = worked_by(&srv, billing, kai.id);
    assert_eq!(local_ids(&path, Kind::Conversation), billing_convs);

    // An admin moves Kai from Billing to Technical: a new scope.
    set_access(&srv, kai.id, serde_json::json!({ "team_ids": [technical] })).await;
    let report = e.sync_now().await.unwrap();
    assert!(report.resynced, "a team move forces a resync: {report:?}");
    let technical_convs = worked_by(&srv, technical, kai.id);
    assert!(technical_convs.contains(&moved.id.0));
    assert_eq!(
        local_ids(&path, Kind::Conversation),
        technical_convs,
        "after the resync: Technical's conversations and Kai's own"
    );
    assert_eq!(
        local_ids(&path, Kind::Message),
        messages_of(&srv, &technical_convs),
        "and exactly their messages"
    );
    let gone: Vec<_> = billing_convs.difference(&technical_convs).collect();
    assert!(
        !gone.is_empty(),
        "some Billing conversations are not Kai's own"
    );
    for id in gone {
        assert!(
            e.record(Kind::Conversation, *id).unwrap().is_none(),
            "Billing's conversation {id} is no longer on Kai's desktop"
        );
    }

    // A Billing conversation moved into Technical arrives on the next pull
    // with every message it had before the move, not only later ones.
    let entering = srv
        .query::<Conversation>("SELECT data FROM conversations", &[])
        .into_iter()
        .find(|c| {
            c.team_id == Some(billing) && c.assignee_id != Some(kai.id) && c.message_count > 1
        })
        .expect("another Billing conversation with a thread");
    let r = reqwest::Client::new()
        .patch(format!("{}/v1/conversations/{}", srv.base, entering.id))
        .bearer_auth(srv.token("lead@portico.test"))
        .json(&serde_json::json!({ "team_id": technical }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let report = e.sync_now().await.unwrap();
    assert!(!report.resynced);
    assert_eq!(
        message_ids(&e, entering.id),
        srv.messages(entering.id)
            .iter()
            .map(|m| m.id.to_string())
            .collect::<Vec<_>>(),
        "the conversation that entered Kai's team brought its whole thread"
    );
    assert_eq!(
        local_ids(&path, Kind::Message),
        messages_of(&srv, &worked_by(&srv, technical, kai.id)),
        "Kai's mirror holds exactly the messages of Technical's conversations"
    );
}
