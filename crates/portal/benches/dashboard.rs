//! Latency of the customer portal's dashboard over loopback.
//!
//! ```text
//! cargo bench -p portico-portal --bench dashboard -- [--conversations N] [--messages N] [--secs S]
//! ```
//!
//! Seeds a database (default 20,000 conversations, 200,000 messages, 80
//! accounts), starts portal-core on loopback in this process, signs in as
//! Acme's admin (session cookie, as the web app does) and asks for the
//! dashboard one request at a time for `S` seconds (a person opening the
//! portal waits for one answer), after a one-second warm-up. In the same
//! run, the same loop on `GET /v1/me` (authentication, one record, HTTP and
//! JSON: the floor any signed-in page pays).

use std::sync::Arc;
use std::time::{Duration, Instant};

use portico_portal::SystemClock;
use portico_portal::seed::{self, SeedSize};

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

async fn measure(
    client: &reqwest::Client,
    url: &str,
    secs: u64,
) -> (usize, Duration, Duration, Duration) {
    let warm = Instant::now() + Duration::from_secs(1);
    let end = warm + Duration::from_secs(secs);
    let mut lat = Vec::new();
    loop {
        let t = Instant::now();
        if t >= end {
            break;
        }
        let resp = client.get(url).send().await.expect("request");
        assert!(resp.status().is_success(), "{url}: {}", resp.status());
        let _ = resp.bytes().await.expect("body");
        if t >= warm {
            lat.push(t.elapsed());
        }
    }
    lat.sort();
    (
        lat.len(),
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        *lat.last().unwrap_or(&Duration::ZERO),
    )
}

fn main() {
    let mut conversations = 20_000u32;
    let mut messages = 200_000u64;
    let mut secs = 10u64;
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--conversations" => conversations = val().parse().expect("a number"),
            "--messages" => messages = val().parse().expect("a number"),
            "--secs" => secs = val().parse().expect("a number"),
            "--bench" => {}
            other => panic!("unknown flag {other}"),
        }
    }
    let tmp = tempfile::tempdir().unwrap();
    let state = portico_portal::open_state(&tmp.path().join("bench.db"), Arc::new(SystemClock))
        .expect("open the database");
    let size = SeedSize {
        conversations,
        messages,
        accounts: (conversations / 250).max(40),
    };
    let report = seed::seed(&state.store, size, jiff::Timestamp::now()).unwrap();
    println!("seeded: {report}");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let st = state.clone();
        tokio::spawn(async move {
            portico_portal::serve(listener, st, std::future::pending())
                .await
                .unwrap();
        });
        let client = reqwest::Client::builder()
            .cookie_store(true)
            .build()
            .unwrap();
        let me: serde_json::Value = client
            .post(format!("{base}/v1/auth/login"))
            .json(
                &serde_json::json!({ "email": "admin@acme.test", "password": seed::DEMO_PASSWORD }),
            )
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let account = me["account"]["id"]
            .as_str()
            .expect("Acme's admin has an account")
            .to_owned();
        let dashboard = format!("{base}/v1/accounts/{account}/dashboard");
        let size = client
            .get(&dashboard)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap()
            .len();
        println!("dashboard answer: {size} bytes");
        println!("| request | requests | p50 | p99 | max |");
        println!("|---|---|---|---|---|");
        for (name, url) in [
            (
                "GET /v1/me (floor: auth + one record)",
                format!("{base}/v1/me"),
            ),
            ("GET /v1/accounts/{id}/dashboard", dashboard.clone()),
        ] {
            let (n, p50, p99, max) = measure(&client, &url, secs).await;
            println!(
                "| {name} | {n} | {:.2} ms | {:.2} ms | {:.2} ms |",
                ms(p50),
                ms(p99),
                ms(max)
            );
        }
    });
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
