//! The mirror against a real portal-core on loopback: a full pull mirrors
//! what the server holds for the viewer, later changes arrive on the next
//! pull, and re-applying or reordering pages changes nothing.

use std::sync::Arc;

use portico_inbox::Mirror;
use portico_inbox::pull::pull;
use portico_model::wire::ChangesPage;
use portico_model::{Account, Conversation, Kind, Message, MessageKind};
use portico_portal::seed::{self, SeedSize};
use portico_portal::{ManualClock, store};

struct Server {
    base: String,
    state: portico_portal::AppState,
    _dir: tempfile::TempDir,
}

async fn server() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let at: jiff::Timestamp = "2026-11-15T12:00:00Z".parse().unwrap();
    let state =
        portico_portal::open_state(&dir.path().join("p.db"), Arc::new(ManualClock::new(at)))
            .unwrap();
    seed::seed(&state.store, SeedSize::TINY, at).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(portico_portal::serve(
        listener,
        state.clone(),
        std::future::pending(),
    ));
    Server {
        base,
        state,
        _dir: dir,
    }
}

/// Signs in and returns the session token (usable as a bearer token).
async fn token(s: &Server, email: &str) -> String {
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/auth/login", s.base))
        .json(&serde_json::json!({ "email": email, "password": seed::DEMO_PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let cookie = resp.headers()["set-cookie"].to_str().unwrap();
    cookie
        .split(';')
        .next()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1
        .to_owned()
}

#[tokio::test]
async fn staff_mirror_matches_the_server_and_follows_changes() {
    let s = server().await;
    let http = reqwest::Client::new();
    let agent = token(&s, "agent@portico.test").await;
    let mut mirror = Mirror::open_in_memory().unwrap();

    let first = pull(&mut mirror, &http, &s.base, &agent).await.unwrap();
    let on_server: Vec<Conversation> = s
        .state
        .store
        .read(|c| store::query(c, "SELECT data FROM conversations", []))
        .unwrap();
    assert_eq!(
        mirror.count(Kind::Conversation).unwrap(),
        on_server.len() as u64,
        "every conversation is mirrored for staff"
    );
    let max_seq: i64 = s
        .state
        .store
        .read(|c| Ok(c.query_row("SELECT max(seq) FROM change_log", [], |r| r.get(0))?))
        .unwrap();
    assert_eq!(
        first.cursor, max_seq,
        "the cursor ends at the newest change"
    );

    // A change on the server arrives with the next pull, and only it.
    let conv = &on_server[0];
    let resp = http
        .patch(format!("{}/v1/conversations/{}", s.base, conv.id))
        .bearer_auth(&agent)
        .json(&serde_json::json!({ "status": "resolved" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let second = pull(&mut mirror, &http, &s.base, &agent).await.unwrap();
    assert_eq!(second.changes, 2, "the conversation and its audit event");
    let local = mirror.get(Kind::Conversation, conv.id.0).unwrap().unwrap();
    assert_eq!(local["status"], "resolved");
}

#[tokio::test]
async fn customer_mirror_holds_only_its_own_account() {
    let s = server().await;
    let http = reqwest::Client::new();
    let customer = token(&s, "admin@acme.test").await;
    let mut mirror = Mirror::open_in_memory().unwrap();
    pull(&mut mirror, &http, &s.base, &customer).await.unwrap();

    let accounts: Vec<Account> = s
        .state
        .store
        .read(|c| store::query(c, "SELECT data FROM accounts", []))
        .unwrap();
    let acme = accounts.iter().find(|a| a.domain == "acme.test").unwrap();
    assert_eq!(
        mirror.count(Kind::Account).unwrap(),
        1,
        "a customer mirrors its own account only"
    );
    let acme_convs: Vec<Conversation> = s
        .state
        .store
        .read(|c| {
            store::query(
                c,
                "SELECT data FROM conversations WHERE account_id = ?1",
                [acme.id.to_string()],
            )
        })
        .unwrap();
    assert_eq!(
        mirror.count(Kind::Conversation).unwrap(),
        acme_convs.len() as u64
    );
    let notes: Vec<Message> = s
        .state
        .store
        .read(|c| {
            store::query(
                c,
                "SELECT data FROM messages WHERE account_id = ?1",
                [acme.id.to_string()],
            )
        })
        .unwrap();
    for m in notes.iter().filter(|m| m.kind == MessageKind::InternalNote) {
        assert!(
            mirror.get(Kind::Message, m.id.0).unwrap().is_none(),
            "internal notes never reach a customer's mirror"
        );
    }
    assert_eq!(mirror.count(Kind::Team).unwrap(), 0, "teams are staff-only");
    assert_eq!(
        mirror.count(Kind::AuditEvent).unwrap(),
        0,
        "the audit trail is staff-only"
    );
}

#[tokio::test]
async fn replayed_and_reordered_pages_converge() {
    let s = server().await;
    let http = reqwest::Client::new();
    let agent = token(&s, "agent@portico.test").await;
    let page = |after: i64| {
        let (http, base, agent) = (http.clone(), s.base.clone(), agent.clone());
        async move {
            http.get(format!("{base}/v1/sync/changes?after={after}&limit=200"))
                .bearer_auth(agent)
                .send()
                .await
                .unwrap()
                .json::<ChangesPage>()
                .await
                .unwrap()
        }
    };
    let p1 = page(0).await;
    let p2 = page(p1.next_after).await;

    let mut in_order = Mirror::open_in_memory().unwrap();
    in_order.apply(&p1).unwrap();
    in_order.apply(&p2).unwrap();
    assert_eq!(
        in_order.apply(&p2).unwrap(),
        0,
        "a replayed page changes nothing"
    );

    let mut reordered = Mirror::open_in_memory().unwrap();
    reordered.apply(&p2).unwrap();
    reordered.apply(&p1).unwrap();
    for kind in Kind::ALL {
        assert_eq!(
            in_order.count(kind).unwrap(),
            reordered.count(kind).unwrap(),
            "{kind:?} converges in any order"
        );
    }
    assert_eq!(
        reordered.cursor().unwrap(),
        p2.next_after,
        "the cursor never moves backwards"
    );
}
