//! The desktop app's command surface against a real portal-core on
//! loopback: browser sign-in (OAuth code + PKCE through the loopback
//! redirect, the test playing the browser), lists with local edits applied
//! at once, triage reaching the server, replies reaching the customer, and
//! sign-out clearing tokens and the local store.

mod common;

use std::sync::Arc;
use std::time::Duration;

use portico_inbox::DeskEvent;
use portico_inbox::bootstrap::RebuildReason;
use portico_inbox::desk::{Command, DeskState, ListRequest, SignInStarted};
use portico_inbox::notify::NoticeKind;
use portico_inbox::query::{ConversationRow, InboxFilters, Sort, View};
use portico_inbox::secrets::{Keychain, SecretStore};
use portico_inbox::{Desk, DeskConfig};
use portico_model::{Conversation, ConversationStatus, MessageId};
use portico_portal::seed::{self, DEMO_PASSWORD, SeedSize};
use portico_portal::{AppState, ManualClock};
use serde_json::Value;

struct Server {
    base: String,
    state: AppState,
    _dir: tempfile::TempDir,
}

async fn server() -> Server {
    server_with(|_| {}).await
}

/// A server with `configure` applied to its state before it serves.
async fn server_with(configure: impl FnOnce(&mut AppState)) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let anchor: jiff::Timestamp = "2026-11-15T12:00:00Z".parse().unwrap();
    let mut state = portico_portal::open_state(
        &dir.path().join("portal.db"),
        Arc::new(ManualClock::new(anchor)),
    )
    .unwrap();
    seed::seed(&state.store, SeedSize::TINY, anchor).unwrap();
    configure(&mut state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let st = state.clone();
    tokio::spawn(async move {
        let _ = portico_portal::serve(listener, st, std::future::pending()).await;
    });
    Server {
        base,
        state,
        _dir: dir,
    }
}

fn desk(srv: &Server, data: &std::path::Path) -> Desk {
    let mut cfg = DeskConfig::new(&srv.base, data);
    cfg.open_browser = false;
    cfg.notifications = false;
    cfg.sync_every = Duration::from_millis(300);
    Desk::open(cfg, SecretStore::memory_only("tests")).unwrap()
}

/// The desk opened again by someone who signed in before (their identity
/// is on disk), with the server unreachable: it runs from the local store.
fn reopened_offline(data: &std::path::Path) -> Desk {
    std::fs::write(
        data.join("identity.json"),
        serde_json::json!({
            "user_id": uuid::Uuid::nil(), "name": "Agent", "email": "agent@portico.test", "role": "agent"
        })
        .to_string(),
    )
    .unwrap();
    let mut cfg = DeskConfig::new("http://127.0.0.1:9", data);
    cfg.open_browser = false;
    cfg.notifications = false;
    Desk::open(cfg, SecretStore::memory_only("tests")).unwrap()
}

async fn call<T: serde::de::DeserializeOwned>(desk: &Desk, cmd: Command) -> T {
    let v = desk
        .call(cmd.clone())
        .await
        .unwrap_or_else(|e| panic!("{cmd:?} failed: {e:?}"));
    serde_json::from_value(v).unwrap()
}

/// Plays the system browser: signs in on the authorize page and follows the
/// redirect back to the app's loopback address.
async fn browser_sign_in(url: &str, email: &str, password: &str) -> reqwest::StatusCode {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = url::Url::parse(url).unwrap();
    let mut form: Vec<(String, String)> = page.query_pairs().into_owned().collect();
    form.push(("email".into(), email.into()));
    form.push(("password".into(), password.into()));
    let resp = http
        .post(format!(
            "{}://{}/oauth/authorize",
            page.scheme(),
            page.host_str().unwrap().to_owned() + &format!(":{}", page.port().unwrap())
        ))
        .form(&form)
        .send()
        .await
        .unwrap();
    if !resp.status().is_redirection() {
        return resp.status();
    }
    let back = resp.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        back.starts_with("http://127.0.0.1:"),
        "redirected to the app: {back}"
    );
    http.get(back).send().await.unwrap().status()
}

async fn until<F: Fn() -> Fut, Fut: std::future::Future<Output = bool>>(what: &str, f: F) {
    for _ in 0..200 {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

fn list(view: View, status: Vec<ConversationStatus>) -> Command {
    Command::List {
        request: Box::new(ListRequest {
            view,
            filters: InboxFilters {
                status,
                ..InboxFilters::default()
            },
            sort: Sort::UpdatedDesc,
            limit: 500,
            after: None,
        }),
    }
}

async fn signed_in_desk(srv: &Server, data: &std::path::Path) -> Desk {
    signed_in_desk_as(srv, data, "agent@portico.test", false).await
}

async fn signed_in_desk_as(
    srv: &Server,
    data: &std::path::Path,
    email: &str,
    notifications: bool,
) -> Desk {
    let desk = {
        let mut cfg = DeskConfig::new(&srv.base, data);
        cfg.open_browser = false;
        cfg.notifications = notifications;
        cfg.sync_every = Duration::from_millis(300);
        Desk::open(cfg, SecretStore::memory_only("tests")).unwrap()
    };
    let started: SignInStarted = call(&desk, Command::SignIn).await;
    assert!(!started.browser_opened);
    assert!(started.authorize_url.contains("code_challenge_method=S256"));
    let status = browser_sign_in(&started.authorize_url, email, DEMO_PASSWORD).await;
    assert_eq!(status, 200, "the loopback page answers the browser");
    until("signed in", || async {
        let s: DeskState = call(&desk, Command::State).await;
        s.identity.is_some()
    })
    .await;
    until("the first sync", || async {
        let s: DeskState = call(&desk, Command::State).await;
        s.status
            .is_some_and(|st| st.online && st.bootstrap.is_none() && !st.syncing)
    })
    .await;
    desk
}

fn server_conversation(srv: &Server, id: &str) -> Conversation {
    srv.state
        .store
        .read(|c| {
            portico_portal::store::require::<Conversation>(c, id.parse::<uuid::Uuid>().unwrap())
        })
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_triage_reply_and_sign_out() {
    let srv = server().await;
    let data = tempfile::tempdir().unwrap();
    let desk = signed_in_desk(&srv, data.path()).await;

    let state: DeskState = call(&desk, Command::State).await;
    let me = state.identity.clone().unwrap();
    assert_eq!(me.email, "agent@portico.test");
    assert!(matches!(state.keychain, Keychain::MemoryOnly { .. }));

    let active = vec![ConversationStatus::Open, ConversationStatus::Pending];
    let all: Vec<ConversationRow> = call(&desk, list(View::All, active.clone())).await;
    assert!(!all.is_empty(), "the seeded inbox is listed");
    let target = all[0].conversation.clone();

    // Resolving shows at once: the active list no longer has it, before
    // (and whether or not) the server has heard.
    let _: Value = call(
        &desk,
        Command::SetStatus {
            id: target.id,
            status: ConversationStatus::Resolved,
            if_version: None,
        },
    )
    .await;
    let after: Vec<ConversationRow> = call(&desk, list(View::All, active.clone())).await;
    assert!(after.iter().all(|r| r.conversation.id != target.id));
    let resolved: Vec<ConversationRow> =
        call(&desk, list(View::All, vec![ConversationStatus::Resolved])).await;
    assert!(resolved.iter().any(|r| r.conversation.id == target.id));

    // Assigning to me moves it into Mine at once.
    let other = all[1].conversation.clone();
    let _: Value = call(
        &desk,
        Command::Assign {
            id: other.id,
            assignee: Some(me.user_id),
        },
    )
    .await;
    let mine: Vec<ConversationRow> = call(&desk, list(View::Mine, vec![])).await;
    assert!(mine.iter().any(|r| r.conversation.id == other.id));

    // The server hears.
    let tid = target.id.to_string();
    until("the server resolved it", || async {
        server_conversation(&srv, &tid).status == ConversationStatus::Resolved
    })
    .await;

    // A reply reaches the customer's view of the conversation.
    let _: Value = call(
        &desk,
        Command::Reply {
            id: other.id,
            body: "Hello from the desk test".into(),
            seen: None,
            confirm: false,
        },
    )
    .await;
    let customer = srv
        .state
        .store
        .read(|c| portico_portal::store::require::<portico_model::User>(c, other.requester_id.0))
        .unwrap();
    let http = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    let login = http
        .post(format!("{}/v1/auth/login", srv.base))
        .json(&serde_json::json!({"email": customer.email, "password": DEMO_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    let url = format!("{}/v1/conversations/{}/messages", srv.base, other.id);
    until("the customer sees the reply", || async {
        let page: Value = http.get(&url).send().await.unwrap().json().await.unwrap();
        page["items"].as_array().is_some_and(|items| {
            items
                .iter()
                .any(|m| m["body"] == "Hello from the desk test" && m["kind"] == "agent")
        })
    })
    .await;

    // Sign-out clears the session and the local store.
    let _: Value = call(
        &desk,
        Command::SignOut {
            discard_unsent: false,
        },
    )
    .await;
    let state: DeskState = call(&desk, Command::State).await;
    assert!(state.identity.is_none());
    assert!(!data.path().join("inbox.db").exists());
    assert!(!data.path().join("identity.json").exists());
    let err = desk.call(list(View::All, vec![])).await.unwrap_err();
    assert_eq!(err.code, "unauthenticated");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_keeps_the_app_signed_out_and_commands_are_validated() {
    let srv = server().await;
    let data = tempfile::tempdir().unwrap();
    let desk = desk(&srv, data.path());
    let started: SignInStarted = call(&desk, Command::SignIn).await;
    let status = browser_sign_in(&started.authorize_url, "agent@portico.test", "wrong").await;
    assert_eq!(status, 401, "the sign-in page says the password is wrong");
    let state: DeskState = call(&desk, Command::State).await;
    assert!(state.identity.is_none());
    assert!(state.signing_in.is_some(), "the attempt is still open");

    // A forged redirect with another state is refused.
    let port = url::Url::parse(&started.authorize_url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "redirect_uri")
        .map(|(_, v)| v.into_owned())
        .unwrap();
    let forged = reqwest::get(format!("{port}?code=abc&state=forged"))
        .await
        .unwrap();
    assert_eq!(forged.status(), 200);
    until("the attempt ends", || async {
        let s: DeskState = call(&desk, Command::State).await;
        s.signing_in.is_none()
    })
    .await;
    let state: DeskState = call(&desk, Command::State).await;
    assert!(state.identity.is_none());
    assert!(
        state
            .sign_in_error
            .as_deref()
            .is_some_and(|e| e.contains("state mismatch")),
        "{state:?}"
    );

    // Commands from the UI are typed: unknown fields and bad values fail.
    let bad = serde_json::from_value::<Command>(serde_json::json!({"cmd": "reply", "id": "x"}));
    assert!(bad.is_err());
}

/// Runs only where a Secret Service is provided (the desktop suite sets
/// `PORTICO_REQUIRE_KEYCHAIN=1` inside its D-Bus session with an unlocked
/// gnome-keyring): there the refresh token must round-trip through it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_refresh_token_round_trips_through_the_os_keychain() {
    if std::env::var_os("PORTICO_REQUIRE_KEYCHAIN").is_none() {
        return;
    }
    let store = tokio::task::spawn_blocking(SecretStore::open_system)
        .await
        .unwrap();
    assert_eq!(store.state(), &Keychain::Available);
    let server = format!("http://test-{}", uuid::Uuid::new_v4());
    assert!(store.set(&server, "rt-secret").await);
    assert_eq!(store.get(&server).await.as_deref(), Some("rt-secret"));
    store.delete(&server).await;
    assert_eq!(store.get(&server).await, None);
}

/// Waits for an event matching `pick` (10 s at most).
async fn event<T>(
    rx: &mut tokio::sync::broadcast::Receiver<DeskEvent>,
    what: &str,
    mut pick: impl FnMut(&DeskEvent) -> Option<T>,
) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Ok(e)) => {
                if let Some(v) = pick(&e) {
                    return v;
                }
            }
            Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => {}
            Ok(Err(e)) => panic!("events ended waiting for {what}: {e}"),
            Err(_) => panic!("timed out waiting for {what}"),
        }
    }
}

async fn live(desk: &Desk) {
    until("the live socket", || async {
        call::<DeskState>(desk, Command::State).await.live
    })
    .await;
}

/// The last message of a conversation as a desk shows it.
async fn last_message(desk: &Desk, id: portico_model::ConversationId) -> Option<MessageId> {
    let open: Value = call(desk, Command::Open { id }).await;
    open["messages"]
        .as_array()
        .and_then(|m| m.last())
        .and_then(|m| m["data"]["id"].as_str())
        .map(|s| MessageId(s.parse().unwrap()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_agents_on_one_conversation_see_each_other_and_a_late_reply_warns_first() {
    let srv = server().await;
    let (da, dl) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let agent = signed_in_desk_as(&srv, da.path(), "agent@portico.test", false).await;
    let lead = signed_in_desk_as(&srv, dl.path(), "lead@portico.test", false).await;
    live(&agent).await;
    live(&lead).await;
    let me = |d: &Desk| d.desk_state().identity.unwrap();
    let (agent_me, lead_me) = (me(&agent), me(&lead));
    let rows: Vec<ConversationRow> = call(
        &agent,
        list(
            View::All,
            vec![ConversationStatus::Open, ConversationStatus::Pending],
        ),
    )
    .await;
    let conv = rows[0].conversation.id;
    let mut lead_events = lead.subscribe();
    let mut agent_events = agent.subscribe();

    // Both open it: each sees the other viewing.
    let _: Value = call(
        &lead,
        Command::Viewing {
            id: conv,
            replying: false,
        },
    )
    .await;
    let _: Value = call(
        &agent,
        Command::Viewing {
            id: conv,
            replying: false,
        },
    )
    .await;
    let seen_by_lead = |replying: bool| {
        let agent_id = agent_me.user_id;
        move |e: &DeskEvent| match e {
            DeskEvent::Presence {
                conversation_id,
                viewers,
            } if *conversation_id == conv => viewers
                .iter()
                .find(|v| v.user_id == agent_id && v.replying == replying)
                .map(|v| v.name.clone()),
            _ => None,
        }
    };
    let name = event(
        &mut lead_events,
        "the lead sees the agent viewing",
        seen_by_lead(false),
    )
    .await;
    assert_eq!(name, agent_me.name);
    let lead_id = lead_me.user_id;
    event(
        &mut agent_events,
        "the agent sees the lead viewing",
        |e| match e {
            DeskEvent::Presence {
                conversation_id,
                viewers,
            } if *conversation_id == conv => {
                viewers.iter().any(|v| v.user_id == lead_id).then_some(())
            }
            _ => None,
        },
    )
    .await;

    // The agent starts writing: the lead sees "replying".
    let agent_seen = last_message(&agent, conv).await;
    let _: Value = call(
        &agent,
        Command::Viewing {
            id: conv,
            replying: true,
        },
    )
    .await;
    event(
        &mut lead_events,
        "the lead sees the agent replying",
        seen_by_lead(true),
    )
    .await;

    // The lead answers first; the agent's desk hears of it live.
    let lead_seen = last_message(&lead, conv).await;
    let _: Value = call(
        &lead,
        Command::Reply {
            id: conv,
            body: "Lead: this is fixed now.".into(),
            seen: lead_seen,
            confirm: false,
        },
    )
    .await;
    until("the lead's reply reaches the agent's desk", || async {
        let open: Value = call(&agent, Command::Open { id: conv }).await;
        open["messages"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["data"]["body"] == "Lead: this is fixed now." && m["pending"] == false)
    })
    .await;

    // Sending now warns first, naming who answered and what they said.
    let err = agent
        .call(Command::Reply {
            id: conv,
            body: "Agent: looking into it.".into(),
            seen: agent_seen,
            confirm: false,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code, "answered_meanwhile");
    assert!(err.message.contains(&lead_me.name), "{}", err.message);
    assert!(err.message.contains("this is fixed now"), "{}", err.message);
    assert_eq!(
        agent.engine().unwrap().pending_count().unwrap(),
        0,
        "nothing was queued"
    );
    // Having seen it, or confirming, sends.
    let now_seen = last_message(&agent, conv).await;
    let _: Value = call(
        &agent,
        Command::Reply {
            id: conv,
            body: "Agent: confirmed on our side too.".into(),
            seen: now_seen,
            confirm: false,
        },
    )
    .await;
    let _: Value = call(
        &agent,
        Command::Reply {
            id: conv,
            body: "Agent: sent anyway.".into(),
            seen: agent_seen,
            confirm: true,
        },
    )
    .await;
    let cid = conv.to_string();
    until("both agent replies reach the server", || async {
        let msgs: Vec<portico_model::Message> = srv
            .state
            .store
            .read(|c| {
                portico_portal::store::query(
                    c,
                    "SELECT data FROM messages WHERE data ->> '$.conversation_id' = ?1",
                    [&cid],
                )
            })
            .unwrap();
        msgs.iter().any(|m| m.body == "Agent: sent anyway.")
            && msgs
                .iter()
                .any(|m| m.body == "Agent: confirmed on our side too.")
    })
    .await;

    // Leaving clears the indicator on the other side.
    let _: Value = call(&agent, Command::Left { id: conv }).await;
    event(
        &mut lead_events,
        "the agent's indicator goes away",
        |e| match e {
            DeskEvent::Presence {
                conversation_id,
                viewers,
            } if *conversation_id == conv => viewers
                .iter()
                .all(|v| v.user_id != agent_me.user_id)
                .then_some(()),
            _ => None,
        },
    )
    .await;
}

/// Runs only where a notification daemon runs (the desktop suite sets
/// `PORTICO_REQUIRE_NOTIFICATIONS=1` inside its D-Bus session with dunst):
/// an assignment to me, a note mentioning me and a key-account alert for
/// me each become a real desktop notification, read back from the
/// daemon's own history (`dunstctl`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assignment_mention_and_alert_reach_the_notification_daemon() {
    if std::env::var_os("PORTICO_REQUIRE_NOTIFICATIONS").is_none() {
        return;
    }
    let dunstctl = |args: &[&str]| {
        let out = std::process::Command::new("dunstctl")
            .args(args)
            .output()
            .expect("dunstctl runs");
        assert!(out.status.success(), "dunstctl {args:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let shown = || -> Vec<(String, String)> {
        dunstctl(&["close-all"]);
        std::thread::sleep(Duration::from_millis(200));
        let history: Value = serde_json::from_str(&dunstctl(&["history"])).unwrap();
        history["data"][0]
            .as_array()
            .unwrap()
            .iter()
            .filter(|n| n["appname"]["data"] == "Portico Inbox")
            .map(|n| {
                (
                    n["summary"]["data"].as_str().unwrap().to_owned(),
                    n["body"]["data"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let srv = server().await;
    let data = tempfile::tempdir().unwrap();
    let desk = signed_in_desk_as(&srv, data.path(), "agent@portico.test", true).await;
    let me = desk.desk_state().identity.unwrap();
    let mut events = desk.subscribe();
    // The first sync primes what is already there; wait a round.
    tokio::time::sleep(Duration::from_millis(800)).await;

    // The lead acts over the API with a bearer token (as another desktop).
    let lead = {
        let user: portico_model::User = srv
            .state
            .store
            .read(|c| {
                portico_portal::store::query(
                    c,
                    "SELECT data FROM users WHERE email = 'lead@portico.test'",
                    [],
                )
            })
            .unwrap()
            .remove(0);
        let token = portico_portal::auth::start_session(
            &srv.state.store,
            user.id,
            "2026-11-15T12:00:00Z".parse().unwrap(),
        )
        .unwrap();
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("authorization", format!("Bearer {token}").parse().unwrap());
        reqwest::Client::builder()
            .default_headers(headers)
            .build()
            .unwrap()
    };
    let rows: Vec<ConversationRow> = call(&desk, list(View::Unassigned, vec![])).await;
    let conv = rows[0].conversation.clone();

    // Assigned to me by the lead.
    let r = lead
        .patch(format!("{}/v1/conversations/{}", srv.base, conv.id))
        .json(&serde_json::json!({"assignee_id": me.user_id}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let notice = |kind: &'static str| {
        move |e: &DeskEvent| match e {
            DeskEvent::Notice { notice } if serde_json::to_value(notice.kind).unwrap() == kind => {
                Some(notice.title.clone())
            }
            _ => None,
        }
    };
    let assigned = event(&mut events, "the assignment notice", notice("assigned")).await;

    // Mentioned in a note.
    let r = lead
        .post(format!("{}/v1/conversations/{}/messages", srv.base, conv.id))
        .json(&serde_json::json!({"body": "@Alex can you check the export logs?", "internal": true, "mentions": [me.user_id]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let mentioned = event(&mut events, "the mention notice", notice("mentioned")).await;

    // A key-account alert for me, written as the work rules write them.
    let key_account = srv
        .state
        .store
        .read(|c| {
            portico_portal::store::query::<portico_model::Account>(
                c,
                "SELECT data FROM accounts WHERE data ->> '$.key_account' = 1 LIMIT 1",
                [],
            )
        })
        .unwrap()
        .pop()
        .expect("the seed has a key account");
    srv.state
        .store
        .write(
            portico_portal::store::Actor::SYSTEM,
            jiff::Timestamp::now(),
            |w| {
                let mut alert = portico_model::Alert {
                    id: portico_model::AlertId(w.new_id()),
                    account_id: Some(key_account.id),
                    recipient_id: me.user_id,
                    kind: portico_model::AlertKind::Escalation,
                    title: format!("{} needs you", key_account.name),
                    body: "A key account opened an urgent request.".into(),
                    conversation_id: None,
                    request_id: None,
                    source: "test".into(),
                    read: false,
                    version: 0,
                    created_at: w.at(),
                    updated_at: w.at(),
                };
                w.insert(&mut alert)
            },
        )
        .unwrap();
    let alerted = event(&mut events, "the alert notice", notice("alert")).await;

    let from_daemon = shown();
    for title in [&assigned, &mentioned, &alerted] {
        assert!(
            from_daemon.iter().any(|(s, _)| s == title),
            "the daemon showed {title:?}; it has {from_daemon:?}"
        );
    }
}

/// The desk opens a signed-in member's store at once and checks every page
/// of it only once the inbox is painted: damage deep in the file (a middle
/// leaf of a table, which the start's few reads never touch) is found then,
/// the store is rebuilt keeping the unsent work, and the status says so.
/// No server: the app starts offline from its local store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_is_checked_after_the_first_paint_and_rebuilt_if_damaged() {
    let data = tempfile::tempdir().unwrap();
    let path = data.path().join("inbox.db");
    {
        // A store spread over many pages: tombstones are plain rows.
        let e =
            portico_inbox::Engine::open(&path, "http://127.0.0.1:9", || None::<String>).unwrap();
        drop(e);
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000)
             INSERT INTO tombstones (kind, id, version)
                 SELECT 'conversation', printf('%036d', i), i FROM n;",
        )
        .unwrap();
    }
    common::damage_a_middle_leaf(&path, "tombstones");
    let desk = reopened_offline(data.path());
    let mut events = desk.subscribe();
    let state: DeskState = call(&desk, Command::State).await;
    let status = state.status.expect("signed in from the local store");
    assert_eq!(status.rebuilt, None, "opened as is, at once");

    desk.inbox_painted();
    let info = event(&mut events, "the store rebuilt", |e| match e {
        DeskEvent::Engine {
            event: portico_inbox::Event::StoreRebuilt { info },
        } => Some(info.clone()),
        _ => None,
    })
    .await;
    assert_eq!(info.reason, RebuildReason::Corrupt, "{info:?}");
    assert!(info.moved_to.is_some_and(|p| p.exists()), "kept aside");
    let state: DeskState = call(&desk, Command::State).await;
    assert_eq!(
        state.status.and_then(|s| s.rebuilt).map(|r| r.reason),
        Some(RebuildReason::Corrupt),
        "the status bar is told why"
    );
}

/// A store written by an older build (schema 4, as the app before the
/// plain-columns change left it) holding a real seeded inbox.
fn version_4_store(path: &std::path::Path) -> usize {
    let portal = tempfile::tempdir().unwrap();
    let anchor: jiff::Timestamp = "2026-11-15T12:00:00Z".parse().unwrap();
    let state = portico_portal::open_state(
        &portal.path().join("portal.db"),
        Arc::new(ManualClock::new(anchor)),
    )
    .unwrap();
    seed::seed(&state.store, SeedSize::TINY, anchor).unwrap();
    drop(state);
    let c = rusqlite::Connection::open(path).unwrap();
    c.execute_batch("PRAGMA journal_mode = WAL;").unwrap();
    common::version_4_schema(&c);
    c.execute(
        "ATTACH ?1 AS portal",
        [portal.path().join("portal.db").to_str().unwrap()],
    )
    .unwrap();
    for (kind, table) in [
        ("plan", "plans"),
        ("account", "accounts"),
        ("subscription", "subscriptions"),
        ("user", "users"),
        ("team", "teams"),
        ("conversation", "conversations"),
        ("message", "messages"),
    ] {
        c.execute(
            &format!(
                "INSERT INTO records (kind, id, account_id, version, data)
                 SELECT ?1, id, {account}, version, data FROM portal.{table}",
                account = if matches!(kind, "plan" | "user" | "team" | "account") {
                    "NULL"
                } else {
                    "account_id"
                }
            ),
            [kind],
        )
        .unwrap();
    }
    c.execute_batch(
        "DETACH portal;
         INSERT INTO sync_state (key, value) VALUES ('cursor', '1'), ('bootstrapped', '1')
             ON CONFLICT (key) DO UPDATE SET value = excluded.value;",
    )
    .unwrap();
    c.query_row(
        "SELECT count(*) FROM records WHERE kind = 'conversation'",
        [],
        |r| r.get(0),
    )
    .unwrap()
}

/// The first start after an update that changes the store's schema: the
/// window is not held back while the store is rewritten. The desk reports
/// the upgrade (the UI shows a waiting screen), commands that need the
/// store say why they wait, and then the inbox opens with everything it
/// held, offline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_store_is_upgraded_behind_the_window_and_keeps_the_inbox() {
    let data = tempfile::tempdir().unwrap();
    let path = data.path().join("inbox.db");
    let conversations = version_4_store(&path);
    assert!(conversations > 5, "the seed has an inbox to keep");
    let (from, to) = portico_inbox::Mirror::pending_upgrade(&path)
        .unwrap()
        .expect("an older schema is seen from the header alone");
    assert!(from == 4 && to > 4, "{from} → {to}");
    // Another writer holds the file for a moment, so the upgrade is
    // observably still running when the desk is first asked.
    let blocker = rusqlite::Connection::open(&path).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();

    let desk = reopened_offline(data.path());
    let state: DeskState = call(&desk, Command::State).await;
    let upgrade = state.upgrading.expect("the upgrade is reported at once");
    assert_eq!(upgrade.from_version, 4);
    assert!(upgrade.size_bytes > 0, "the screen can say how much");
    let refused = desk
        .call(list(View::All, vec![]))
        .await
        .expect_err("the store is not open yet");
    assert_eq!(
        refused.code, "store_upgrading",
        "a stable code the UI can branch on"
    );
    let refused = desk
        .call(Command::SignOut {
            discard_unsent: true,
        })
        .await
        .expect_err("the store is not deleted from under its upgrade");
    assert_eq!(refused.code, "store_upgrading");
    blocker.execute_batch("ROLLBACK").unwrap();
    drop(blocker);

    until("the upgrade to end", || async {
        let s: DeskState = call(&desk, Command::State).await;
        s.upgrading.is_none()
    })
    .await;
    let state: DeskState = call(&desk, Command::State).await;
    assert_eq!(state.store_error, None);
    assert!(state.identity.is_some(), "signed in from the local store");
    assert_eq!(
        portico_inbox::Mirror::pending_upgrade(&path).unwrap(),
        None,
        "the store is at this build's schema"
    );
    let rows: Vec<ConversationRow> = call(&desk, list(View::All, vec![])).await;
    assert_eq!(
        rows.len(),
        conversations,
        "every conversation is still in the inbox after the upgrade"
    );
}

// ---- Email channel: held senders and email messages in the desk ----

const HOOK_SECRET: &str = "desk-hook-secret";

/// A server with the email channel on (inbound hook; no SMTP, so replies
/// stay queued until a bounce or a server says otherwise).
async fn mail_server() -> Server {
    server_with(|state| {
        let identity = portico_portal::mail::MailIdentity::new("support@portico.test", "Support");
        portico_portal::mail::outbox::configure(&state.store, &identity).unwrap();
        state.mail = Some(Arc::new(portico_portal::mail::MailSettings {
            identity,
            hook_secret: Some(HOOK_SECRET.into()),
        }));
    })
    .await
}

/// Posts raw RFC 822 to the provider hook, as a mail provider does.
async fn post_mail(srv: &Server, raw: &str) -> Value {
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/mail/inbound", srv.base))
        .bearer_auth(HOOK_SECRET)
        .body(raw.to_owned())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202, "the hook takes the mail");
    resp.json().await.unwrap()
}

/// Posts a customer's mail to the hook and waits until its conversation is
/// on the desk.
async fn mail_reaches_desk(srv: &Server, desk: &Desk, raw: &str) -> portico_model::ConversationId {
    let placed = post_mail(srv, raw).await;
    let conv = portico_model::ConversationId(
        placed["conversation_id"]
            .as_str()
            .expect("the mail became a conversation")
            .parse()
            .unwrap(),
    );
    until("the mail reaches the desk", || async {
        !call::<Value>(desk, Command::Open { id: conv })
            .await
            .is_null()
    })
    .await;
    conv
}

const STRANGER_MAIL: &str = "From: Sam Stranger <sam@stranger.example>\r\nTo: support@portico.test\r\nSubject: Pricing for 40 seats\r\nMessage-ID: <price1@stranger.example>\r\nDate: Sun, 15 Nov 2026 11:00:00 +0000\r\n\r\nWhat would 40 seats cost?\r\n\r\nOn Sat, 14 Nov 2026, Sales <sales@portico.test> wrote:\r\n> Thanks for your interest.\r\n> Any questions, just ask.\r\n";

async fn desk_error(desk: &Desk, cmd: Command) -> portico_inbox::DeskError {
    match desk.call(cmd.clone()).await {
        Ok(v) => panic!("{cmd:?} should fail, answered {v}"),
        Err(e) => e,
    }
}

fn acme_id(srv: &Server) -> portico_model::AccountId {
    let accounts: Vec<portico_model::Account> = srv
        .state
        .store
        .read(|c| portico_portal::store::query(c, "SELECT data FROM accounts", []))
        .unwrap();
    accounts
        .iter()
        .find(|a| a.domain == "acme.test")
        .unwrap()
        .id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_senders_are_listed_and_linked_from_the_desk_and_their_mail_arrives_by_sync() {
    use portico_model::email::HeldContact;
    let srv = mail_server().await;
    let held = post_mail(&srv, STRANGER_MAIL).await;
    assert_eq!(held["disposition"], "held", "{held}");
    let data = tempfile::tempdir().unwrap();
    let desk = signed_in_desk(&srv, data.path()).await;

    let contacts: Vec<HeldContact> = call(&desk, Command::HeldContacts).await;
    let sam = contacts
        .iter()
        .find(|c| c.email == "sam@stranger.example")
        .expect("the stranger is listed")
        .clone();
    assert_eq!(sam.name, "Sam Stranger");
    assert_eq!(sam.held, 1, "one mail waits");
    assert_eq!(sam.latest_subject.as_deref(), Some("Pricing for 40 seats"));
    assert!(!sam.reason.is_empty(), "the agent is told why it was held");
    assert_eq!(sam.linked_account_id, None);

    // Picking the account: by name or domain, any case, from the local store.
    let acme = acme_id(&srv);
    let by_name: Vec<portico_model::Account> = call(
        &desk,
        Command::Accounts {
            text: "ACME".into(),
            limit: 10,
        },
    )
    .await;
    assert!(by_name.iter().any(|a| a.id == acme), "Acme found by name");
    let by_domain: Vec<portico_model::Account> = call(
        &desk,
        Command::Accounts {
            text: "acme.test".into(),
            limit: 10,
        },
    )
    .await;
    assert_eq!(by_domain.len(), 1, "the domain names one account");
    let wildcard: Vec<portico_model::Account> = call(
        &desk,
        Command::Accounts {
            text: "%".into(),
            limit: 10,
        },
    )
    .await;
    assert!(wildcard.is_empty(), "% is a character, not a wildcard");

    // Linking: the held mail becomes a conversation on Acme, and reaches
    // this desk's inbox through sync.
    let linked: portico_inbox::held::Linked = call(
        &desk,
        Command::LinkContact {
            id: sam.id,
            account_id: acme,
        },
    )
    .await;
    assert_eq!(linked.conversations.len(), 1, "{linked:?}");
    let conv = linked.conversations[0];
    assert_eq!(
        server_conversation(&srv, &conv.to_string()).account_id,
        acme
    );
    until("the linked mail reaches the inbox", || async {
        let rows: Vec<ConversationRow> = call(&desk, list(View::All, vec![])).await;
        rows.iter().any(|r| r.conversation.id == conv)
    })
    .await;
    let detail: Value = call(&desk, Command::Open { id: conv }).await;
    let first = &detail["messages"][0]["data"];
    assert_eq!(first["email"]["from"], "sam@stranger.example");
    assert_eq!(first["body"], "What would 40 seats cost?");
    assert!(
        first["email"]["quoted"]
            .as_str()
            .is_some_and(|q| q.contains("Thanks for your interest")),
        "the quoted history is kept apart for folding: {first}"
    );
    let after: Vec<HeldContact> = call(&desk, Command::HeldContacts).await;
    let sam_after = after.iter().find(|c| c.id == sam.id).unwrap();
    assert_eq!(sam_after.held, 0, "nothing waits any more");
    assert_eq!(sam_after.linked_account_id, Some(acme));

    // A sender or account that does not exist: the server's words and code.
    let e = desk_error(
        &desk,
        Command::LinkContact {
            id: uuid::Uuid::now_v7(),
            account_id: acme,
        },
    )
    .await;
    assert_eq!(e.code, "not_found", "{e:?}");
    let e = desk_error(
        &desk,
        Command::LinkContact {
            id: sam.id,
            account_id: portico_model::AccountId(uuid::Uuid::now_v7()),
        },
    )
    .await;
    assert_eq!(e.code, "not_found", "{e:?}");

    // Offline: held senders say so in words; picking an account still works.
    desk.engine().unwrap().set_base_url("http://127.0.0.1:9");
    let e = desk_error(&desk, Command::HeldContacts).await;
    assert_eq!(e.code, "offline", "{e:?}");
    assert!(e.message.contains("try again when online"), "{e:?}");
    let e = desk_error(
        &desk,
        Command::LinkContact {
            id: sam.id,
            account_id: acme,
        },
    )
    .await;
    assert_eq!(e.code, "offline", "{e:?}");
    let offline: Vec<portico_model::Account> = call(
        &desk,
        Command::Accounts {
            text: "acme".into(),
            limit: 10,
        },
    )
    .await;
    assert!(offline.iter().any(|a| a.id == acme));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_in_the_desk_can_neither_list_nor_link_held_senders() {
    let srv = mail_server().await;
    let held = post_mail(&srv, STRANGER_MAIL).await;
    let contact: uuid::Uuid = held["contact_id"].as_str().unwrap().parse().unwrap();
    let acme = acme_id(&srv);
    let data = tempfile::tempdir().unwrap();
    let desk = signed_in_desk_as(&srv, data.path(), "admin@acme.test", false).await;

    let e = desk_error(&desk, Command::HeldContacts).await;
    assert_eq!(e.code, "forbidden", "the server refuses a customer: {e:?}");
    let e = desk_error(
        &desk,
        Command::LinkContact {
            id: contact,
            account_id: acme,
        },
    )
    .await;
    assert_eq!(e.code, "forbidden", "{e:?}");
    // Nothing moved on the server: the mail is still held, unlinked.
    let contacts = srv
        .state
        .store
        .read(|c| portico_portal::mail::sender::held_contacts(c, 10))
        .unwrap();
    let sam = contacts.iter().find(|c| c.id == contact).unwrap();
    assert_eq!((sam.held, sam.linked_account_id), (1, None));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_email_reply_from_the_desk_shows_its_bounce_with_the_servers_words() {
    let srv = mail_server().await;
    let data = tempfile::tempdir().unwrap();
    let desk = signed_in_desk(&srv, data.path()).await;
    let conv = mail_reaches_desk(
        &srv,
        &desk,
        "From: Acme Admin <admin@acme.test>\r\nTo: support@portico.test\r\nSubject: Invoice wrong\r\nMessage-ID: <inv9@acme.test>\r\nDate: Sun, 15 Nov 2026 11:00:00 +0000\r\n\r\nThe total is wrong.\r\n",
    )
    .await;
    let queued: Value = call(
        &desk,
        Command::Reply {
            id: conv,
            body: "We are on it.".into(),
            seen: None,
            confirm: true,
        },
    )
    .await;
    let reply_id = queued["message_id"].as_str().unwrap().to_owned();
    let reply_of = |d: &Value| -> Value {
        d["messages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["data"]["id"] == reply_id.as_str())
            .map(|m| m["data"].clone())
            .unwrap_or(Value::Null)
    };
    // The server queued the mail; the desk shows the delivery state.
    let mut message_id = String::new();
    for _ in 0..200 {
        let d: Value = call(&desk, Command::Open { id: conv }).await;
        let r = reply_of(&d);
        if r["delivery"]["status"] == "queued" {
            message_id = r["email"]["message_id"].as_str().unwrap().to_owned();
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        !message_id.is_empty(),
        "the reply's delivery reached the desk"
    );
    let dsn = format!(
        "From: MAILER-DAEMON@mx.acme.test\r\nTo: support@portico.test\r\nSubject: Undelivered Mail Returned to Sender\r\nMessage-ID: <dsn9@mx.acme.test>\r\nAuto-Submitted: auto-replied\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nNo such user.\r\n--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.acme.test\r\n\r\nFinal-Recipient: rfc822; admin@acme.test\r\nAction: failed\r\nStatus: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 mailbox unavailable\r\n--b\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: <{message_id}>\r\nSubject: Re: Invoice wrong\r\n--b--\r\n"
    );
    let mut events = desk.subscribe();
    assert_eq!(post_mail(&srv, &dsn).await["disposition"], "bounce");
    let _: Value = call(&desk, Command::SyncNow).await;
    // The author is told, in the app and on the desktop, without opening it.
    let notice = event(&mut events, "the bounce notice", |e| match e {
        DeskEvent::Notice { notice } if notice.kind == NoticeKind::Undelivered => {
            Some(notice.clone())
        }
        _ => None,
    })
    .await;
    assert_eq!(notice.title, "Your reply to admin@acme.test bounced");
    assert!(notice.body.contains("5.1.1"), "{notice:?}");
    assert_eq!(notice.conversation_id, Some(conv));
    until("the bounce reaches the desk", || async {
        let d: Value = call(&desk, Command::Open { id: conv }).await;
        let r = reply_of(&d);
        r["delivery"]["status"] == "bounced"
            && r["delivery"]["error"]
                .as_str()
                .is_some_and(|e| e.contains("5.1.1"))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_email_reply_written_offline_goes_out_once_when_back_online() {
    let srv = mail_server().await;
    let data = tempfile::tempdir().unwrap();
    let desk = signed_in_desk(&srv, data.path()).await;
    let conv = mail_reaches_desk(
        &srv,
        &desk,
        "From: Acme Admin <admin@acme.test>\r\nTo: support@portico.test\r\nSubject: Offline reply\r\nMessage-ID: <off1@acme.test>\r\nDate: Sun, 15 Nov 2026 11:00:00 +0000\r\n\r\nAre you there?\r\n",
    )
    .await;
    let engine = desk.engine().unwrap();
    engine.set_base_url("http://127.0.0.1:9");
    let _: Value = call(
        &desk,
        Command::Reply {
            id: conv,
            body: "Yes, written on a train.".into(),
            seen: None,
            confirm: true,
        },
    )
    .await;
    let outbound = || -> i64 {
        srv.state
            .store
            .read(|c| Ok(c.query_row("SELECT count(*) FROM mail_outbound", [], |r| r.get(0))?))
            .unwrap()
    };
    // Offline: the reply waits on this desktop; nothing is queued to send.
    let _: Value = call(&desk, Command::SyncNow).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(outbound(), 0, "nothing reached the server while offline");
    assert_eq!(engine.pending_count().unwrap(), 1);
    // Back online: it goes out once, however often the desk syncs.
    engine.set_base_url(srv.base.clone());
    let _: Value = call(&desk, Command::SyncNow).await;
    until("the reply is pushed", || async {
        engine.pending_count().unwrap() == 0
    })
    .await;
    for _ in 0..3 {
        let _: Value = call(&desk, Command::SyncNow).await;
        let _ = engine.sync_now().await;
    }
    assert_eq!(outbound(), 1, "queued for sending exactly once");
}

/// An agent saves a mail's attachment from the desk: the server's bytes
/// land in the downloads folder under the sender's name, a second save never
/// replaces the first, and a file the server refused cannot be saved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attachment_is_saved_into_the_downloads_folder() {
    let srv = mail_server().await;
    let data = tempfile::tempdir().unwrap();
    let desk = signed_in_desk(&srv, data.path()).await;
    let csv = "date,total\r\n2026-11-01,1200\r\n";
    let raw = format!(
        "From: Acme Admin <admin@acme.test>\r\nTo: support@portico.test\r\nSubject: Usage export\r\nMessage-ID: <csv1@acme.test>\r\nDate: Sun, 15 Nov 2026 11:00:00 +0000\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nThe export is attached.\r\n--b\r\nContent-Type: text/csv; name=\"../usage.csv\"\r\nContent-Disposition: attachment; filename=\"../usage.csv\"\r\n\r\n{csv}\r\n--b\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"setup.exe\"\r\n\r\nMZ\r\n--b--\r\n"
    );
    let conv = mail_reaches_desk(&srv, &desk, &raw).await;
    let detail: Value = call(&desk, Command::Open { id: conv }).await;
    let mail = detail["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["data"]["email"]["attachments"].is_array())
        .expect("the mail's message")["data"]
        .clone();
    let message_id: MessageId = serde_json::from_value(mail["id"].clone()).unwrap();
    let files = mail["email"]["attachments"].as_array().unwrap();
    let id_of = |stored: bool| -> uuid::Uuid {
        files
            .iter()
            .find(|a| a["stored"] == stored)
            .and_then(|a| a["id"].as_str())
            .unwrap()
            .parse()
            .unwrap()
    };
    let save = |attachment_id| Command::SaveAttachment {
        message_id,
        attachment_id,
    };

    let first: Value = call(&desk, save(id_of(true))).await;
    let first = std::path::PathBuf::from(first["path"].as_str().unwrap());
    assert_eq!(
        first.parent().unwrap(),
        data.path().join("downloads"),
        "in the downloads folder, whatever the sender named it"
    );
    assert_eq!(
        first.file_name().unwrap(),
        "usage.csv",
        "no way out of the folder"
    );
    assert_eq!(
        std::fs::read_to_string(&first).unwrap().trim_end(),
        csv.trim_end(),
        "the bytes the customer sent"
    );
    let second: Value = call(&desk, save(id_of(true))).await;
    assert_eq!(
        std::path::Path::new(second["path"].as_str().unwrap())
            .file_name()
            .unwrap(),
        "usage (1).csv",
        "a second save never replaces the first"
    );

    let refused = desk_error(&desk, save(id_of(false))).await;
    assert_eq!(refused.code, "invalid", "{refused:?}");
    assert!(refused.message.contains("setup.exe"), "{refused:?}");
    let unknown = desk_error(&desk, save(uuid::Uuid::nil())).await;
    assert_eq!(unknown.code, "invalid", "{unknown:?}");
    let files_now = std::fs::read_dir(data.path().join("downloads"))
        .unwrap()
        .count();
    assert_eq!(files_now, 2, "refusals write nothing");
}

/// A customer writing in the chat page: the agent's desk is shown the
/// message as it arrives (before its record syncs), then has the record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_chat_message_reaches_the_agents_desk_as_it_arrives() {
    use futures_util::SinkExt;
    use portico_model::live::ClientFrame;
    use tokio_tungstenite::tungstenite::Message as Ws;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;

    let srv = server().await;
    let dir = tempfile::tempdir().unwrap();
    let agent = signed_in_desk_as(&srv, dir.path(), "agent@portico.test", false).await;
    live(&agent).await;
    let mut events = agent.subscribe();
    let conv: Conversation = srv
        .state
        .store
        .read(|c| {
            portico_portal::store::query(
                c,
                "SELECT data FROM conversations WHERE data ->> '$.channel' = 'chat' LIMIT 1",
                [],
            )
        })
        .unwrap()
        .remove(0);
    let customer = srv
        .state
        .store
        .read(|c| portico_portal::store::require::<portico_model::User>(c, conv.requester_id.0))
        .unwrap();
    let token = common::session_token(&srv.base, &customer.email).await;
    let mut req = format!("{}/v1/live", srv.base.replace("http", "ws"))
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    let message_id = MessageId(uuid::Uuid::now_v7());
    for frame in [
        ClientFrame::Subscribe {
            conversation_id: conv.id,
        },
        ClientFrame::Send {
            conversation_id: conv.id,
            message_id,
            body: "Is the export fixed?".into(),
            after_message_id: None,
            force: false,
        },
    ] {
        ws.send(Ws::Text(serde_json::to_string(&frame).unwrap().into()))
            .await
            .unwrap();
    }
    let shown = event(&mut events, "the message as it arrives", |e| match e {
        DeskEvent::Arriving { message } if message.id == message_id => {
            Some(message.as_ref().clone())
        }
        _ => None,
    })
    .await;
    assert_eq!(
        (shown.conversation_id, shown.body.as_str(), shown.author_id),
        (conv.id, "Is the export fixed?", Some(customer.id)),
        "the desk is shown who wrote what, where"
    );
    until("the message's record reaches the desk", || async {
        let open: Value = call(&agent, Command::Open { id: conv.id }).await;
        open["messages"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["data"]["id"] == message_id.to_string())
    })
    .await;
}
