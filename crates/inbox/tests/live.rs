//! The engine's live client against a real portal-core: it receives changes
//! as they commit, and after the server goes away and comes back on the same
//! address it reconnects by itself and resumes from its cursor, with nothing
//! missed and nothing twice.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use portico_inbox::live::{LiveEvent, run};
use portico_model::{Conversation, Kind};
use portico_portal::seed::{self, SeedSize};
use portico_portal::{ManualClock, store};
use tokio::sync::{broadcast, mpsc, watch};

async fn serve(
    state: portico_portal::AppState,
    addr: std::net::SocketAddr,
) -> (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .expect("the address is free again");
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        portico_portal::serve(listener, state, async {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    (tx, task)
}

async fn post(base: &str, token: &str, conv: &Conversation, body: &str) -> uuid::Uuid {
    let id = uuid::Uuid::now_v7();
    let r = reqwest::Client::new()
        .post(format!("{base}/v1/conversations/{}/messages", conv.id))
        .bearer_auth(token)
        .json(&serde_json::json!({ "id": id, "body": body }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    id
}

/// Signs in as the seeded agent and returns the access token.
async fn agent_token(base: &str) -> String {
    let resp = reqwest::Client::new()
        .post(format!("{base}/v1/auth/login"))
        .json(
            &serde_json::json!({ "email": "agent@portico.test", "password": seed::DEMO_PASSWORD }),
        )
        .send()
        .await
        .unwrap();
    let cookie = resp.headers()["set-cookie"].to_str().unwrap().to_owned();
    cookie
        .split(';')
        .next()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1
        .to_owned()
}

/// Writes `n` customer messages straight into the store (no socket sees a
/// request for them) and returns their ids.
fn write_messages(
    state: &portico_portal::AppState,
    conv: &Conversation,
    at: jiff::Timestamp,
    n: usize,
) -> HashSet<uuid::Uuid> {
    let mut ids = HashSet::new();
    state
        .store
        .write(portico_portal::store::Actor::SYSTEM, at, |w| {
            for i in 0..n {
                let mut m = portico_model::Message {
                    id: w.new_id(),
                    conversation_id: conv.id,
                    account_id: conv.account_id,
                    kind: portico_model::MessageKind::Customer,
                    author_id: Some(conv.requester_id),
                    author_name: "Ada".into(),
                    body: format!("while the client was away {i}"),
                    mentions: vec![],
                    email: None,
                    delivery: None,
                    version: 0,
                    created_at: at,
                    updated_at: at,
                };
                w.insert(&mut m)?;
                ids.insert(m.id.0);
            }
            Ok(())
        })
        .unwrap();
    ids
}

/// Message ids from events until `want` are all seen (or 15 s pass).
async fn collect(
    rx: &mut broadcast::Receiver<LiveEvent>,
    want: &HashSet<uuid::Uuid>,
    seen: &mut Vec<uuid::Uuid>,
) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while !want.iter().all(|w| seen.contains(w)) {
        let ev = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .expect("events within 15 s")
            .unwrap();
        if let LiveEvent::Change(c) = ev
            && c.kind == Kind::Message
        {
            seen.push(c.id);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnects_and_resumes_without_loss_or_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let at: jiff::Timestamp = "2026-11-15T12:00:00Z".parse().unwrap();
    let state =
        portico_portal::open_state(&dir.path().join("p.db"), Arc::new(ManualClock::new(at)))
            .unwrap();
    seed::seed(&state.store, SeedSize::TINY, at).unwrap();
    let addr: std::net::SocketAddr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let base = format!("http://{addr}");
    let (stop_server, task) = serve(state.clone(), addr).await;

    let token = agent_token(&base).await;
    let conv: Conversation = state
        .store
        .read(|c| store::query(c, "SELECT data FROM conversations LIMIT 1", []))
        .unwrap()
        .remove(0);
    let start: i64 = state
        .store
        .read(|c| Ok(c.query_row("SELECT max(seq) FROM change_log", [], |r| r.get(0))?))
        .unwrap();

    let (cursor, cursor_rx) = watch::channel(start);
    let (events, mut rx) = broadcast::channel(4096);
    let (_out_tx, out_rx) = mpsc::channel(16);
    let (stop, stop_rx) = watch::channel(false);
    let t = token.clone();
    let client = tokio::spawn(run(
        base.clone(),
        move || Some(t.clone()),
        cursor,
        events,
        out_rx,
        stop_rx,
    ));
    match tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .unwrap()
        .unwrap()
    {
        LiveEvent::Connected { .. } => {}
        other => panic!("the first event is the connection, got {other:?}"),
    }

    let mut seen = Vec::new();
    let first: HashSet<_> = [post(&base, &token, &conv, "live one").await].into();
    collect(&mut rx, &first, &mut seen).await;

    // The server goes away; messages are written while the client is cut off.
    stop_server.send(()).unwrap();
    task.await.unwrap();
    let missed = write_messages(&state, &conv, at, 5);
    let (stop_server, task) = serve(state.clone(), addr).await;
    collect(&mut rx, &missed, &mut seen).await;
    let after: HashSet<_> = [post(&base, &token, &conv, "after the restart").await].into();
    collect(&mut rx, &after, &mut seen).await;

    let unique: HashSet<_> = seen.iter().collect();
    assert_eq!(
        unique.len(),
        seen.len(),
        "no message arrives twice: {seen:?}"
    );
    assert_eq!(
        seen.len(),
        7,
        "one before, five missed, one after: nothing lost"
    );
    assert!(
        *cursor_rx.borrow() > start,
        "the cursor moved with the changes"
    );

    stop.send(true).unwrap();
    client.await.unwrap();
    stop_server.send(()).unwrap();
    task.await.unwrap();
}

/// A WebSocket relay between the live client and portal-core that the test
/// controls: it can hold back the client's `resume` frames and cut every
/// connection at once (no close handshake, as when a network drops).
struct Relay {
    addr: std::net::SocketAddr,
    hold_resume: Arc<std::sync::atomic::AtomicBool>,
    cut: watch::Sender<u64>,
}

impl Relay {
    /// Relays to `server`, signed in with `token` (the client's own).
    async fn start(server: std::net::SocketAddr, token: String) -> Relay {
        use futures_util::{SinkExt, StreamExt};
        use std::sync::atomic::Ordering;
        use tokio_tungstenite::tungstenite::Message as Ws;
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let hold_resume = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (cut, _) = watch::channel(0u64);
        let (hold, cuts) = (hold_resume.clone(), cut.clone());
        tokio::spawn(async move {
            loop {
                let (tcp, _) = listener.accept().await.unwrap();
                let (hold, mut cut, token) = (hold.clone(), cuts.subscribe(), token.clone());
                tokio::spawn(async move {
                    let client = tokio_tungstenite::accept_async(tcp).await.unwrap();
                    let mut req = format!("ws://{server}/v1/live")
                        .into_client_request()
                        .unwrap();
                    req.headers_mut()
                        .insert("authorization", format!("Bearer {token}").parse().unwrap());
                    let (upstream, _) = tokio_tungstenite::connect_async(req).await.unwrap();
                    let (mut up_tx, mut up_rx) = upstream.split();
                    let (mut down_tx, mut down_rx) = client.split();
                    loop {
                        tokio::select! {
                            _ = cut.changed() => return,
                            m = down_rx.next() => {
                                let Some(Ok(m)) = m else { return };
                                let resume = matches!(&m, Ws::Text(t) if t.contains("\"resume\""));
                                if resume && hold.load(Ordering::SeqCst) {
                                    continue;
                                }
                                if up_tx.send(m).await.is_err() { return }
                            }
                            m = up_rx.next() => {
                                let Some(Ok(m)) = m else { return };
                                if down_tx.send(m).await.is_err() { return }
                            }
                        }
                    }
                });
            }
        });
        Relay {
            addr,
            hold_resume,
            cut,
        }
    }

    fn hold_resumes(&self, hold: bool) {
        self.hold_resume
            .store(hold, std::sync::atomic::Ordering::SeqCst);
    }

    /// Drops every relayed connection, both sides, without a close frame.
    fn cut_all(&self) {
        self.cut.send_modify(|n| *n += 1);
    }
}

/// The resume after a reconnect replays what was missed while the newest
/// changes come live, so a newer change can arrive before older ones of the
/// replay. If the socket drops then, the older ones must still come on the
/// next connection: the cursor is not a high-water mark.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drop_after_a_newer_live_change_still_brings_the_older_missed_ones() {
    let dir = tempfile::tempdir().unwrap();
    let at: jiff::Timestamp = "2026-11-15T12:00:00Z".parse().unwrap();
    let state =
        portico_portal::open_state(&dir.path().join("p.db"), Arc::new(ManualClock::new(at)))
            .unwrap();
    seed::seed(&state.store, SeedSize::TINY, at).unwrap();
    let addr: std::net::SocketAddr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let base = format!("http://{addr}");
    let (stop_server, task) = serve(state.clone(), addr).await;
    let token = agent_token(&base).await;
    let conv: Conversation = state
        .store
        .read(|c| store::query(c, "SELECT data FROM conversations LIMIT 1", []))
        .unwrap()
        .remove(0);
    let start: i64 = state
        .store
        .read(|c| Ok(c.query_row("SELECT max(seq) FROM change_log", [], |r| r.get(0))?))
        .unwrap();
    // Written while the client was away: the resume has to bring them.
    let missed = write_messages(&state, &conv, at, 3);

    let relay = Relay::start(addr, token.clone()).await;
    relay.hold_resumes(true);
    let (cursor, cursor_rx) = watch::channel(start);
    let (events, mut rx) = broadcast::channel(4096);
    let (_out_tx, out_rx) = mpsc::channel(16);
    let (stop, stop_rx) = watch::channel(false);
    let t = token.clone();
    let client = tokio::spawn(run(
        format!("http://{}", relay.addr),
        move || Some(t.clone()),
        cursor,
        events,
        out_rx,
        stop_rx,
    ));
    let mut seen = Vec::new();
    // The client is connected but its resume has not reached the server: a
    // new message comes live, newer than the missed ones.
    let newer: HashSet<_> = loop {
        let ev = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("the client connects")
            .unwrap();
        if matches!(ev, LiveEvent::Connected { .. }) {
            break [post(&base, &token, &conv, "newer, live").await].into();
        }
    };
    collect(&mut rx, &newer, &mut seen).await;
    assert!(
        !seen.iter().any(|m| missed.contains(m)),
        "the older ones have not come yet (the resume is held): {seen:?}"
    );
    assert_eq!(
        *cursor_rx.borrow(),
        start,
        "the cursor stays put until the resume is complete"
    );

    // The socket drops before the replay; the next connection resumes.
    relay.hold_resumes(false);
    relay.cut_all();
    collect(&mut rx, &missed, &mut seen).await;
    let after: HashSet<_> = [post(&base, &token, &conv, "after the drop").await].into();
    collect(&mut rx, &after, &mut seen).await;

    let unique: HashSet<_> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "nothing arrives twice: {seen:?}");
    assert_eq!(
        seen.len(),
        5,
        "the newer one, the three older ones, the one after: nothing skipped"
    );
    assert!(
        *cursor_rx.borrow() > start,
        "the cursor moves once the resume completes"
    );

    stop.send(true).unwrap();
    client.await.unwrap();
    stop_server.send(()).unwrap();
    task.await.unwrap();
}
