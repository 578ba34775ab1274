//! A real portal-core on loopback for integration tests: a temp database
//! seeded with the tiny demo set, a manual clock, port 0.
#![allow(dead_code)] // each test binary uses a different part of the harness

use std::sync::Arc;

use jiff::Timestamp;
use portico_model::*;
use portico_portal::seed::{self, SeedSize};
use portico_portal::{AppState, ManualClock, store};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// "Now" for every test server: mid-November, inside every seeded period.
pub fn anchor() -> Timestamp {
    "2026-11-15T12:00:00Z".parse().unwrap()
}

pub struct TestServer {
    pub base: String,
    pub clock: Arc<ManualClock>,
    pub state: AppState,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl TestServer {
    pub async fn start() -> TestServer {
        TestServer::start_with(SeedSize::TINY).await
    }

    pub async fn start_with(size: SeedSize) -> TestServer {
        TestServer::start_configured(size, |_| {}).await
    }

    /// Like `start_with`, with a say in the state before serving (e.g. the
    /// email channel's settings).
    pub async fn start_configured(
        size: SeedSize,
        configure: impl FnOnce(&mut AppState),
    ) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(anchor()));
        let mut state =
            portico_portal::open_state(&dir.path().join("portal.db"), clock.clone()).unwrap();
        seed::seed(&state.store, size, anchor()).unwrap();
        configure(&mut state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let st = state.clone();
        let task = tokio::spawn(async move {
            portico_portal::serve(listener, st, async {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
        TestServer {
            base,
            clock,
            state,
            shutdown: Some(tx),
            task: Some(task),
            _dir: dir,
        }
    }

    /// Stops accepting connections and waits for in-flight requests.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.unwrap();
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// A client signed in with the demo password (session cookie), sending
    /// the session's CSRF token on every request as the web app does.
    pub async fn client_as(&self, email: &str) -> reqwest::Client {
        let (client, _) = self.client_and_csrf(email).await;
        client
    }

    /// A cookie client without the CSRF header, and the token it should send.
    pub async fn client_and_csrf(&self, email: &str) -> (reqwest::Client, String) {
        let jar = Arc::new(reqwest::cookie::Jar::default());
        let bare = reqwest::Client::builder()
            .cookie_provider(jar.clone())
            .build()
            .unwrap();
        let resp = bare
            .post(self.url("/v1/auth/login"))
            .json(&serde_json::json!({ "email": email, "password": seed::DEMO_PASSWORD }))
            .send()
            .await
            .unwrap();
        assert_eq!(
            resp.status(),
            200,
            "demo user {email} must be able to sign in: {}",
            resp.text().await.unwrap()
        );
        let body: Value = resp.json().await.unwrap();
        let csrf = body["csrf_token"]
            .as_str()
            .expect("a cookie sign-in returns its CSRF token")
            .to_owned();
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("x-csrf-token", csrf.parse().unwrap());
        let client = reqwest::Client::builder()
            .cookie_provider(jar)
            .default_headers(headers)
            .build()
            .unwrap();
        (client, csrf)
    }

    /// A cookie client that never sends the CSRF header (a forged request).
    pub async fn client_without_csrf(&self, email: &str) -> reqwest::Client {
        let jar = Arc::new(reqwest::cookie::Jar::default());
        let client = reqwest::Client::builder()
            .cookie_provider(jar)
            .build()
            .unwrap();
        let resp = client
            .post(self.url("/v1/auth/login"))
            .json(&serde_json::json!({ "email": email, "password": seed::DEMO_PASSWORD }))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "demo user {email} signs in");
        client
    }

    /// A user of a given role (first by id), for matrix tests.
    pub fn user_with_role(&self, role: Role, account: Option<AccountId>) -> User {
        let users: Vec<User> = self
            .state
            .store
            .read(|c| {
                store::query(
                    c,
                    "SELECT data FROM users WHERE data ->> '$.status' = 'active' ORDER BY id",
                    [],
                )
            })
            .unwrap();
        users
            .into_iter()
            .find(|u| u.role == role && (account.is_none() || u.account_id == account))
            .expect("seed has every role")
    }

    pub fn acme(&self) -> Account {
        self.account_by_domain("acme.test")
    }

    pub fn account_by_domain(&self, domain: &str) -> Account {
        let all: Vec<Account> = self
            .state
            .store
            .read(|c| store::query(c, "SELECT data FROM accounts", []))
            .unwrap();
        all.into_iter()
            .find(|a| a.domain == domain)
            .expect("seeded account")
    }

    /// Another customer account than Acme.
    pub fn other_account(&self) -> Account {
        let all: Vec<Account> = self
            .state
            .store
            .read(|c| store::query(c, "SELECT data FROM accounts ORDER BY id", []))
            .unwrap();
        all.into_iter()
            .find(|a| a.domain != "acme.test")
            .expect("seed has several accounts")
    }

    pub fn records<R: Record>(&self, sql_where: &str) -> Vec<R> {
        let sql = format!(
            "SELECT data FROM {} WHERE {sql_where} ORDER BY id",
            R::KIND.table()
        );
        self.state
            .store
            .read(|c| store::query(c, &sql, []))
            .unwrap()
    }

    /// A fingerprint of every record table and the change log: equal before
    /// and after means nothing was written.
    pub fn fingerprint(&self) -> String {
        self.state
            .store
            .read(|c| {
                let mut h = Sha256::new();
                for kind in Kind::ALL {
                    let mut stmt = c.prepare(&format!(
                        "SELECT id, version, data FROM {} ORDER BY id",
                        kind.table()
                    ))?;
                    let mut rows = stmt.query([])?;
                    while let Some(r) = rows.next()? {
                        h.update(r.get::<_, String>(0)?);
                        h.update(r.get::<_, i64>(1)?.to_le_bytes());
                        h.update(r.get::<_, String>(2)?);
                    }
                }
                let seq: i64 =
                    c.query_row("SELECT coalesce(max(seq), 0) FROM change_log", [], |r| {
                        r.get(0)
                    })?;
                h.update(seq.to_le_bytes());
                Ok(format!("{:x}", h.finalize()))
            })
            .unwrap()
    }

    pub fn max_seq(&self) -> i64 {
        self.state
            .store
            .read(|c| {
                Ok(
                    c.query_row("SELECT coalesce(max(seq), 0) FROM change_log", [], |r| {
                        r.get(0)
                    })?,
                )
            })
            .unwrap()
    }
}

/// Reads a JSON body, failing with the body text when it is not JSON.
pub async fn json(resp: reqwest::Response) -> Value {
    let text = resp.text().await.unwrap();
    serde_json::from_str(&text).unwrap_or_else(|_| panic!("expected JSON, got {text}"))
}

/// Asserts an error response: status, stable code, and a message for people.
pub async fn expect_error(resp: reqwest::Response, status: u16, code: &str) -> Value {
    let got = resp.status().as_u16();
    let body = json(resp).await;
    assert_eq!(got, status, "status for {body}");
    assert_eq!(body["error"]["code"], code, "error code in {body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "errors carry a message: {body}"
    );
    body
}
