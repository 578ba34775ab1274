//! Load benchmark of one portal-core node serving the agent API.
//!
//! ```text
//! cargo bench -p portico-portal --bench agent_api -- [--conversations N] [--messages N]
//!     [--db PATH] [--secs S] [--concurrency C]
//! ```
//!
//! Seeds (or reuses) a database, starts portal-core on loopback in this
//! process, and drives it with `C` keep-alive connections for `S` seconds per
//! scenario, recording every request's latency. In the same run it measures
//! two floors: the same load against a bare axum route (what HTTP + JSON on
//! this machine costs with no work) and the raw SQLite query behind the list
//! (what storage costs with no HTTP). Client and server share the machine's
//! cores, as they do on a developer laptop; the figures are conservative.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use portico_model::{Account, Conversation};
use portico_portal::seed::{self, SeedSize};
use portico_portal::{SystemClock, store};

struct Args {
    conversations: u32,
    messages: u64,
    db: Option<PathBuf>,
    secs: u64,
    concurrency: usize,
}

fn args() -> Args {
    let mut a = Args {
        conversations: 100_000,
        messages: 1_000_000,
        db: None,
        secs: 10,
        concurrency: 32,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--conversations" => a.conversations = val().parse().expect("a number"),
            "--messages" => a.messages = val().parse().expect("a number"),
            "--db" => a.db = Some(val().into()),
            "--secs" => a.secs = val().parse().expect("a number"),
            "--concurrency" => a.concurrency = val().parse().expect("a number"),
            "--bench" => {}
            other => panic!("unknown flag {other}"),
        }
    }
    a
}

struct Stats {
    name: String,
    requests: usize,
    errors: usize,
    rps: f64,
    p50: Duration,
    p99: Duration,
    max: Duration,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx]
}

/// Drives `urls` (chosen round-robin per request) with `concurrency` workers.
async fn load(
    name: &str,
    client: &reqwest::Client,
    urls: Arc<Vec<String>>,
    auth: Option<String>,
    secs: u64,
    concurrency: usize,
) -> Stats {
    // Warm-up: fill caches and open connections.
    let warm_until = Instant::now() + Duration::from_secs(1);
    let deadline = warm_until + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for w in 0..concurrency {
        let (client, urls, auth) = (client.clone(), urls.clone(), auth.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut errors = 0usize;
            let mut i = w;
            loop {
                let now = Instant::now();
                if now >= deadline {
                    break;
                }
                let mut req = client.get(&urls[i % urls.len()]);
                if let Some(a) = &auth {
                    req = req.header("authorization", a);
                }
                i += concurrency;
                let ok = match req.send().await {
                    Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                    Err(_) => false,
                };
                if now >= warm_until {
                    lat.push(now.elapsed());
                    if !ok {
                        errors += 1;
                    }
                }
            }
            (lat, errors)
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await.unwrap();
        all.extend(l);
        errors += e;
    }
    all.sort();
    Stats {
        name: name.into(),
        requests: all.len(),
        errors,
        rps: all.len() as f64 / secs as f64,
        p50: percentile(&all, 0.50),
        p99: percentile(&all, 0.99),
        max: all.last().copied().unwrap_or_default(),
    }
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

fn main() {
    let a = args();
    let tmp = tempfile::tempdir().unwrap();
    let db = a.db.clone().unwrap_or_else(|| tmp.path().join("bench.db"));
    let clock = Arc::new(SystemClock);
    let state = portico_portal::open_state(&db, clock).expect("open the database");
    let mut seed_line = format!("reused the seeded database at {}", db.display());
    if seed::is_empty(&state.store).unwrap() {
        let t = Instant::now();
        let size = SeedSize {
            conversations: a.conversations,
            messages: a.messages,
            accounts: (a.conversations / 250).max(40),
        };
        let report = seed::seed(&state.store, size, jiff::Timestamp::now()).unwrap();
        let secs = t.elapsed().as_secs_f64();
        let rows: i64 = state
            .store
            .read(|c| Ok(c.query_row("SELECT count(*) FROM change_log", [], |r| r.get(0))?))
            .unwrap();
        seed_line = format!(
            "{report} in {secs:.1} s: {:.0} record writes/s through the write path",
            rows as f64 / secs
        );
    }
    // Floor: raw SQLite bulk insert of rows of similar size, one transaction.
    let raw_insert = {
        let conn = rusqlite::Connection::open(tmp.path().join("floor.db")).unwrap();
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;
             CREATE TABLE t (id TEXT PRIMARY KEY, data TEXT NOT NULL);",
        )
        .unwrap();
        let body = "x".repeat(420);
        let n = 500_000;
        let t = Instant::now();
        let tx = conn.unchecked_transaction().unwrap();
        {
            let mut stmt = tx
                .prepare("INSERT INTO t (id, data) VALUES (?1, ?2)")
                .unwrap();
            for i in 0..n {
                stmt.execute(rusqlite::params![format!("{i:036}"), body])
                    .unwrap();
            }
        }
        tx.commit().unwrap();
        n as f64 / t.elapsed().as_secs_f64()
    };
    let (convs, msgs): (i64, i64) = state
        .store
        .read(|c| {
            Ok((
                c.query_row("SELECT count(*) FROM conversations", [], |r| r.get(0))?,
                c.query_row("SELECT count(*) FROM messages", [], |r| r.get(0))?,
            ))
        })
        .unwrap();
    let accounts: Vec<Account> = state
        .store
        .read(|c| store::query(c, "SELECT data FROM accounts", []))
        .unwrap();

    // Floor 1: the list query straight on SQLite, one connection, no HTTP.
    let raw = state
        .store
        .read(|c| {
            let mut times = Vec::new();
            for _ in 0..2_000 {
                let t = Instant::now();
                let rows: Vec<Conversation> = store::query(
                    c,
                    "SELECT data FROM conversations ORDER BY updated_ts DESC, id DESC LIMIT 50",
                    [],
                )?;
                assert_eq!(rows.len(), 50);
                times.push(t.elapsed());
            }
            times.sort();
            Ok(times)
        })
        .unwrap();

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(portico_portal::serve(listener, state.clone(), std::future::pending()));

        // Floor 2: a bare axum route returning a fixed JSON page of similar size.
        let page = serde_json::to_string(&serde_json::json!({ "items": vec![serde_json::json!({"subject": "x".repeat(300)}); 50] })).unwrap();
        let bare = axum::Router::new().route("/", axum::routing::get(move || { let p = page.clone(); async move { p } }));
        let bare_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let bare_url = format!("http://{}/", bare_listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(bare_listener, bare).await.unwrap() });

        let client = reqwest::Client::builder().pool_max_idle_per_host(a.concurrency).build().unwrap();
        let login = client
            .post(format!("{base}/v1/auth/login"))
            .json(&serde_json::json!({ "email": "agent@portico.test", "password": seed::DEMO_PASSWORD }))
            .send()
            .await
            .unwrap();
        let cookie = login.headers().get("set-cookie").unwrap().to_str().unwrap().split(';').next().unwrap().to_owned();
        let session = cookie.split_once('=').unwrap().1.to_owned();
        let auth = Some(format!("Bearer {session}"));

        let mut results = Vec::new();
        results.push(load("bare axum route (HTTP floor)", &client, Arc::new(vec![bare_url]), None, a.secs, a.concurrency).await);
        let list = Arc::new(vec![format!("{base}/v1/conversations?limit=50")]);
        results.push(load("GET /v1/conversations?limit=50", &client, list, auth.clone(), a.secs, a.concurrency).await);
        let filtered = Arc::new(vec![format!("{base}/v1/conversations?status=open&limit=50")]);
        results.push(load("GET /v1/conversations?status=open&limit=50", &client, filtered, auth.clone(), a.secs, a.concurrency).await);
        let account_urls: Arc<Vec<String>> = Arc::new(accounts.iter().map(|acc| format!("{base}/v1/accounts/{}", acc.id)).collect());
        results.push(load("GET /v1/accounts/{id} (random account)", &client, account_urls, auth.clone(), a.secs, a.concurrency).await);

        println!("\nDataset: {convs} conversations, {msgs} messages, {} accounts. {} workers, {} s per scenario after 1 s warm-up.", accounts.len(), a.concurrency, a.secs);
        println!("Seed: {seed_line}. Raw SQLite bulk insert floor (same row size): {raw_insert:.0} rows/s.");
        println!("Raw SQLite list query (50 rows, one connection): p50 {} ms, p99 {} ms\n", ms(percentile(&raw, 0.5)), ms(percentile(&raw, 0.99)));
        println!("| scenario | requests | errors | req/s | p50 ms | p99 ms | max ms |");
        println!("|---|---|---|---|---|---|---|");
        for s in results {
            println!("| {} | {} | {} | {:.0} | {} | {} | {} |", s.name, s.requests, s.errors, s.rps, ms(s.p50), ms(s.p99), ms(s.max));
        }
    });
}
