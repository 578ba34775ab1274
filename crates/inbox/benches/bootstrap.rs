//! Desktop bootstrap over loopback: a fresh engine loads everything a staff
//! member may see from a portal-core holding 100k conversations and 1M
//! messages.
//!
//! ```text
//! cargo bench -p portico-inbox --bench bootstrap -- [--db PATH] [--page 2000] \
//!     [--conversations 100000 --messages 1000000] [--as agent@portico.test] \
//!     [--server-process]
//! ```
//!
//! `--server-process` runs portal-core in a child process instead of this
//! one (same machine, same cores), as a check of what sharing the process
//! costs; the figures in docs/benchmarks.md say which way each was taken.
//!
//! `--db` reuses a seeded server database (e.g. the agent API benchmark's
//! `~/.cache/portico/bench.db`); without it one is seeded at the given size
//! (100k/1M, ~30 s). `--as` picks the staff member signed in.
//!
//! Three measurements in one run: (1) the pages fetched and parsed without
//! writing (where the time goes before the disk); (2) the engine's bootstrap
//! as the app runs it, split into loading the rows and building the search
//! index; (3) the floor: the very rows the mirror ended with, inserted raw
//! into a bare table with the same primary key, in the same order and
//! transactions (one per page), on the same disk.

use std::sync::Arc;
use std::time::Instant;

use portico_inbox::engine::{EngineConfig, SystemClock};
use portico_model::sync::{BOOTSTRAP_KINDS, BootstrapPage};
use portico_portal::seed::{self, SeedSize};
use serde_json::value::RawValue;

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

/// Writes every dirty page of the machine to disk before a timed step, so
/// that no step pays for the write-back of the one before it (the engine's
/// load leaves about a gigabyte of log and database pages behind it, and
/// the floor's commits would otherwise sync behind them).
fn settle() {
    let status = std::process::Command::new("sync").status();
    assert!(
        status.is_ok_and(|s| s.success()),
        "`sync` must run: without it the timed steps share write-back"
    );
}

fn main() {
    let tmp = tempfile::tempdir().unwrap();
    let server_db = arg("--db")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| tmp.path().join("server.db"));
    let page: usize = arg("--page").and_then(|p| p.parse().ok()).unwrap_or(2_000);
    let conversations: u32 = arg("--conversations")
        .and_then(|p| p.parse().ok())
        .unwrap_or(100_000);
    let messages: u64 = arg("--messages")
        .and_then(|p| p.parse().ok())
        .unwrap_or(1_000_000);
    let who = arg("--as").unwrap_or_else(|| "agent@portico.test".into());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let state =
        portico_portal::open_state(&server_db, Arc::new(portico_portal::SystemClock)).unwrap();
    if seed::is_empty(&state.store).unwrap() {
        eprintln!("seeding {conversations} conversations and {messages} messages…");
        seed::seed(
            &state.store,
            SeedSize {
                accounts: 400,
                conversations,
                messages,
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
            portico_portal::store::query(c, "SELECT data FROM users WHERE email = ?1", [&who])
        })
        .unwrap()
        .remove(0);
    let token = portico_portal::auth::start_session(&state.store, agent.id, jiff::Timestamp::now())
        .unwrap();

    // `--serve-only`: this process is the server of a `--server-process`
    // run; it says where it listens and serves until killed.
    if std::env::args().any(|a| a == "--serve-only") {
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            println!(
                "READY http://{} {token} {convs} {msgs}",
                listener.local_addr().unwrap()
            );
            portico_portal::serve(listener, state, std::future::pending())
                .await
                .unwrap();
        });
        return;
    }
    // `--server-process`: portal-core in a child process (as in the app,
    // where it is another machine), still on the same two cores; SQLite's
    // page cache is then not shared with the engine (this build of SQLite
    // keeps one page cache, LRU and mutex, for every connection of a
    // process: SQLITE_ENABLE_MEMORY_MANAGEMENT).
    let mut child: Option<std::process::Child> = None;
    let separate = std::env::args().any(|a| a == "--server-process");
    // Closed here when the server runs in the child.
    let state = (!separate).then_some(state);
    let (token, convs, msgs, base) = if separate {
        let mut c = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--serve-only",
                "--db",
                server_db.to_str().unwrap(),
                "--as",
                &who,
            ])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(c.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        let parts: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(
            parts.first(),
            Some(&"READY"),
            "the server process starts: {line:?}"
        );
        child = Some(c);
        (
            parts[2].to_owned(),
            parts[3].parse().unwrap(),
            parts[4].parse().unwrap(),
            Some(parts[1].to_owned()),
        )
    } else {
        (token, convs, msgs, None)
    };
    rt.block_on(async move {
        let base = match base {
            Some(b) => b,
            None => {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                let base = format!("http://{}", listener.local_addr().unwrap());
                tokio::spawn(portico_portal::serve(listener, state.unwrap(), std::future::pending()));
                base
            }
        };

        // 1. Where the time goes before anything is written: the same pages
        // fetched one after the other (server read + redaction + JSON, HTTP),
        // then the same bytes parsed as the engine parses them.
        let http = reqwest::Client::new();
        let mut fetch_secs = 0.0;
        let mut parse_secs = 0.0;
        let mut fetched_rows = 0usize;
        let mut snapshot: Option<i64> = None;
        for kind in BOOTSTRAP_KINDS {
            let mut after: Option<String> = None;
            loop {
                let mut url = format!("{base}/v1/sync/bootstrap?kind={}&limit={page}", kind.as_str());
                if let Some(a) = &after {
                    url.push_str(&format!("&after_id={a}"));
                }
                if let Some(s) = snapshot {
                    url.push_str(&format!("&snapshot={s}"));
                }
                let t = Instant::now();
                let bytes = http.get(&url).bearer_auth(&token).send().await.unwrap().bytes().await.unwrap();
                fetch_secs += t.elapsed().as_secs_f64();
                let t = Instant::now();
                let p: BootstrapPage<Box<RawValue>> = serde_json::from_slice(&bytes).unwrap();
                for r in &p.rows {
                    let _: Head = serde_json::from_str(r.get()).unwrap();
                }
                parse_secs += t.elapsed().as_secs_f64();
                fetched_rows += p.rows.len();
                snapshot = Some(p.snapshot);
                match p.next_after_id {
                    Some(a) => after = Some(a),
                    None => break,
                }
            }
        }

        // 2. The engine's bootstrap, as the app runs it.
        let local = tmp.path().join("inbox.db");
        let t = token.clone();
        let mut config = EngineConfig::new(&base, move || Some(t.clone()));
        config.clock = Arc::new(SystemClock);
        config.bootstrap_page = page;
        config.timeout = std::time::Duration::from_secs(120);
        let engine = portico_inbox::Engine::open_with(&local, config).unwrap();
        settle();
        let started = Instant::now();
        let report = engine.sync_now().await.unwrap();
        let total_secs = started.elapsed().as_secs_f64();
        let b = report.bootstrap.clone().expect("a fresh store bootstraps");
        let load_secs = b.load_ms as f64 / 1000.0;
        let index_secs = b.index_ms as f64 / 1000.0;
        drop(engine);

        // 3. The floor, same run: the very rows the mirror now holds, in the
        // same order and the same transactions (one per page), into a bare
        // table with the same primary key and journal settings.
        let local_conn = rusqlite::Connection::open(&local).unwrap();
        let mut rows: Vec<(String, String, Option<String>, i64, String)> = Vec::new();
        for kind in BOOTSTRAP_KINDS {
            let mut stmt = local_conn
                .prepare("SELECT kind, id, account_id, version, data FROM records WHERE kind = ?1 ORDER BY id")
                .unwrap();
            let got = stmt
                .query_map([kind.as_str()], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
                .unwrap();
            rows.extend(got.map(Result::unwrap));
        }
        let n = rows.len();
        let bytes: usize = rows.iter().map(|r| r.4.len()).sum();
        let mut floor_conn = rusqlite::Connection::open(tmp.path().join("floor.db")).unwrap();
        floor_conn
            .execute_batch(
                "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;
                 CREATE TABLE records (kind TEXT NOT NULL, id TEXT NOT NULL, account_id TEXT, version INTEGER NOT NULL,
                 data TEXT NOT NULL, PRIMARY KEY (kind, id)) WITHOUT ROWID;",
            )
            .unwrap();
        settle();
        let t0 = Instant::now();
        for chunk in rows.chunks(page) {
            let tx = floor_conn.transaction().unwrap();
            {
                let mut stmt = tx
                    .prepare_cached("INSERT INTO records (kind, id, account_id, version, data) VALUES (?1, ?2, ?3, ?4, ?5)")
                    .unwrap();
                for r in chunk {
                    stmt.execute(rusqlite::params![r.0, r.1, r.2, r.3, r.4]).unwrap();
                }
            }
            tx.commit().unwrap();
        }
        let floor = n as f64 / t0.elapsed().as_secs_f64();
        drop(floor_conn);

        // 3b. Not the floor, a diagnostic beside it: the same rows with the
        // engine's row shape (its ten columns) and its very statement (the
        // upsert with the version guard), alone on the machine as the
        // floor is. What this costs over the floor is the schema and the
        // statement; what the bootstrap's writes cost over this is the
        // engine's work around them and the server sharing the cores.
        let mut columns: Vec<[rusqlite::types::Value; 5]> = Vec::with_capacity(n);
        for kind in BOOTSTRAP_KINDS {
            let mut stmt = local_conn
                .prepare("SELECT status, assignee_id, team_id, product_area, conversation_id FROM records WHERE kind = ?1 ORDER BY id")
                .unwrap();
            let got = stmt
                .query_map([kind.as_str()], |r| Ok([r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?]))
                .unwrap();
            columns.extend(got.map(Result::unwrap));
        }
        let mut shaped_conn = rusqlite::Connection::open(tmp.path().join("shaped.db")).unwrap();
        shaped_conn
            .execute_batch(
                "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;
                 CREATE TABLE records (kind TEXT NOT NULL, id TEXT NOT NULL, account_id TEXT, version INTEGER NOT NULL,
                 data TEXT NOT NULL, status TEXT, assignee_id TEXT, team_id TEXT, product_area TEXT, conversation_id TEXT,
                 PRIMARY KEY (kind, id)) WITHOUT ROWID;",
            )
            .unwrap();
        settle();
        let t0 = Instant::now();
        for (chunk, cols) in rows.chunks(page).zip(columns.chunks(page)) {
            let tx = shaped_conn.transaction().unwrap();
            {
                let mut stmt = tx
                    .prepare_cached(portico_inbox::mirror::LOAD_UPSERT)
                    .unwrap();
                for (r, c) in chunk.iter().zip(cols) {
                    stmt.execute(rusqlite::params![r.0, r.1, r.2, r.3, r.4, c[0], c[1], c[2], c[3], c[4]]).unwrap();
                }
            }
            tx.commit().unwrap();
        }
        let shaped_secs = t0.elapsed().as_secs_f64();
        let rate = |secs: f64| n as f64 / secs;

        println!("\nServer: {convs} conversations, {msgs} messages. Pages of {page} rows over loopback, staff agent ({}).", who);
        println!("Rows: {n} ({:.0} MiB of JSON as stored; {fetched_rows} fetched in step 1).", bytes as f64 / 1048576.0);
        println!();
        println!("| step | seconds | rows/s | vs floor |");
        println!("|---|---|---|---|");
        println!("| floor: raw insert of the same rows, bare table, same primary key, one transaction per page | {:.1} | {:.0} | 1.00 |", n as f64 / floor, floor);
        println!("| (diagnostic) the same rows with the engine's ten columns and its upsert, alone, same transactions | {shaped_secs:.1} | {:.0} | {:.2} |", rate(shaped_secs), rate(shaped_secs) / floor);
        println!("| fetch only, pages one after another (server read, redaction, JSON, HTTP) | {fetch_secs:.1} | {:.0} | {:.2} |", rate(fetch_secs), rate(fetch_secs) / floor);
        println!("| parse only (page + each row's id and version) | {parse_secs:.1} | {:.0} | {:.2} |", rate(parse_secs), rate(parse_secs) / floor);
        println!("| **bootstrap: every row written, inbox usable** | {load_secs:.1} | {:.0} | **{:.2}** |", rate(load_secs), rate(load_secs) / floor);
        println!("| … of which waiting for pages / writing pages (overlapping) | {:.1} / {:.1} | | |", b.wait_ms as f64 / 1000.0, b.write_ms as f64 / 1000.0);
        println!("| … of which remaking indexes and triggers, filling list rows at the end | {:.1} | | |", b.finish_ms as f64 / 1000.0);
        println!("| search index built afterwards ({} rows) | {index_secs:.1} | {:.0} | |", b.indexed, b.indexed as f64 / index_secs.max(1e-9));
        println!("| bootstrap + search index + first pull (`sync_now`) | {total_secs:.1} | {:.0} | {:.2} |", rate(total_secs), rate(total_secs) / floor);
        println!("\nBootstrap rate / floor = {:.2} (target ≥ 0.5).", rate(load_secs) / floor);
        if separate {
            println!("(portal-core ran in a child process on the same machine: --server-process)");
        }
    });
    if let Some(mut c) = child {
        let _ = c.kill();
        let _ = c.wait();
    }
}

/// What the engine reads of each row besides its text.
#[derive(serde::Deserialize)]
#[allow(dead_code)]
struct Head {
    id: uuid::Uuid,
    version: u64,
    #[serde(default)]
    account_id: Option<String>,
}
