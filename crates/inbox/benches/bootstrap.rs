//! Desktop bootstrap over loopback: a fresh engine loads everything a staff
//! member may see from a portal-core holding 100k conversations and 1M
//! messages.
//!
//! ```text
//! cargo bench -p portico-inbox --bench bootstrap -- [--db PATH] [--page 2000]
//! ```
//!
//! `--db` reuses a seeded server database (e.g. the agent API benchmark's
//! `~/.cache/portico/bench.db`); without it one is seeded (100k/1M, ~30 s).
//! The floor, measured in the same run: a raw rusqlite bulk insert of as many
//! rows of the same average size into a table shaped like the mirror's, in
//! one transaction, on the same disk.

use std::sync::Arc;
use std::time::Instant;

use portico_inbox::engine::{EngineConfig, SystemClock};
use portico_portal::seed::{self, SeedSize};

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

fn main() {
    let tmp = tempfile::tempdir().unwrap();
    let server_db = arg("--db")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| tmp.path().join("server.db"));
    let page: usize = arg("--page").and_then(|p| p.parse().ok()).unwrap_or(2_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let state =
        portico_portal::open_state(&server_db, Arc::new(portico_portal::SystemClock)).unwrap();
    if seed::is_empty(&state.store).unwrap() {
        eprintln!("seeding 100k conversations and 1M messages…");
        seed::seed(
            &state.store,
            SeedSize {
                accounts: 400,
                conversations: 100_000,
                messages: 1_000_000,
            },
            jiff::Timestamp::now(),
        )
        .unwrap();
    }
    let (convs, msgs): (i64, i64) = state
        .store
        .read(|c| {
            Ok((
                c.query_row("SELECT count(*) FROM conversations", [], |r| r.get(0))?,
                c.query_row("SELECT count(*) FROM messages", [], |r| r.get(0))?,
            ))
        })
        .unwrap();
    let agent: portico_model::User = state
        .store
        .read(|c| {
            portico_portal::store::query(
                c,
                "SELECT data FROM users WHERE email = 'agent@portico.test'",
                [],
            )
        })
        .unwrap()
        .remove(0);
    let token = portico_portal::auth::start_session(&state.store, agent.id, jiff::Timestamp::now())
        .unwrap();

    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(portico_portal::serve(listener, state, std::future::pending()));

        let local = tmp.path().join("inbox.db");
        let t = token.clone();
        let mut config = EngineConfig::new(&base, move || Some(t.clone()));
        config.clock = Arc::new(SystemClock);
        config.bootstrap_page = page;
        config.timeout = std::time::Duration::from_secs(120);
        let engine = portico_inbox::Engine::open_with(&local, config).unwrap();
        let started = Instant::now();
        let report = engine.sync_now().await.unwrap();
        let secs = started.elapsed().as_secs_f64();
        let local_conn = rusqlite::Connection::open(&local).unwrap();
        let (rows, bytes): (i64, i64) = local_conn
            .query_row("SELECT count(*), coalesce(sum(length(data)), 0) FROM records", [], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap();
        let rate = rows as f64 / secs;

        // Floor: the same number of rows of the same average size, raw.
        let avg = (bytes / rows.max(1)) as usize;
        let floor_conn = rusqlite::Connection::open(tmp.path().join("floor.db")).unwrap();
        floor_conn
            .execute_batch(
                "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;
                 CREATE TABLE records (kind TEXT NOT NULL, id TEXT NOT NULL, account_id TEXT, version INTEGER NOT NULL,
                 data TEXT NOT NULL, PRIMARY KEY (kind, id)) WITHOUT ROWID;",
            )
            .unwrap();
        let body = "x".repeat(avg);
        let t0 = Instant::now();
        let tx = floor_conn.unchecked_transaction().unwrap();
        {
            let mut stmt = tx.prepare("INSERT INTO records (kind, id, account_id, version, data) VALUES ('message', ?1, ?2, 1, ?3)").unwrap();
            for i in 0..rows {
                let id = uuid::Uuid::now_v7().to_string();
                stmt.execute(rusqlite::params![id, format!("acct-{}", i % 400), body]).unwrap();
            }
        }
        tx.commit().unwrap();
        let floor = rows as f64 / t0.elapsed().as_secs_f64();

        println!("\nServer: {convs} conversations, {msgs} messages. Pages of {page} rows over loopback, staff agent.");
        println!("Bootstrap: {} pages, {rows} rows ({:.0} MiB of JSON) in {secs:.1} s = {rate:.0} rows/s.", report.bootstrap.map(|b| b.pages).unwrap_or(0), bytes as f64 / 1048576.0);
        println!("Floor: raw rusqlite insert of {rows} rows of {avg} bytes in one transaction = {floor:.0} rows/s.");
        println!("Bootstrap rate / floor = {:.2} (target ≥ 0.5).", rate / floor);
    });
}
