//! The desktop app's command surface against a real portal-core on
//! loopback: browser sign-in (OAuth code + PKCE through the loopback
//! redirect, the test playing the browser), lists with local edits applied
//! at once, triage reaching the server, replies reaching the customer, and
//! sign-out clearing tokens and the local store.

use std::sync::Arc;
use std::time::Duration;

use portico_inbox::desk::{Command, DeskState, ListRequest, SignInStarted};
use portico_inbox::query::{ConversationRow, InboxFilters, Sort, View};
use portico_inbox::secrets::{Keychain, SecretStore};
use portico_inbox::{Desk, DeskConfig};
use portico_model::{Conversation, ConversationStatus};
use portico_portal::seed::{self, DEMO_PASSWORD, SeedSize};
use portico_portal::{AppState, ManualClock};
use serde_json::Value;

struct Server {
    base: String,
    state: AppState,
    _dir: tempfile::TempDir,
}

async fn server() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let anchor: jiff::Timestamp = "2026-11-15T12:00:00Z".parse().unwrap();
    let state = portico_portal::open_state(
        &dir.path().join("portal.db"),
        Arc::new(ManualClock::new(anchor)),
    )
    .unwrap();
    seed::seed(&state.store, SeedSize::TINY, anchor).unwrap();
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
        request: ListRequest {
            view,
            filters: InboxFilters {
                status,
                ..InboxFilters::default()
            },
            sort: Sort::UpdatedDesc,
            limit: 500,
            after: None,
        },
    }
}

async fn signed_in_desk(srv: &Server, data: &std::path::Path) -> Desk {
    let desk = desk(srv, data);
    let started: SignInStarted = call(&desk, Command::SignIn).await;
    assert!(!started.browser_opened);
    assert!(started.authorize_url.contains("code_challenge_method=S256"));
    let status = browser_sign_in(&started.authorize_url, "agent@portico.test", DEMO_PASSWORD).await;
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
