//! Live hub under load: 1,000 concurrent customer↔agent chats and 10,000 idle
//! sockets on one portal-core node.
//!
//! ```text
//! cargo bench -p portico-portal --bench live_load -- [--chats 1000] [--secs 10] [--idle 10000]
//! ```
//!
//! portal-core runs as its own process (the release binary), so its memory is
//! measured alone (VmRSS from /proc). Customers of 1,000 different accounts
//! each send a chat message every `--every` seconds (default 2) over their
//! socket; one agent
//! socket receives every change; latency is customer `send` → the agent
//! receiving that message's change (stored, redacted, fanned out). The floor
//! in the same run: a bare tokio-tungstenite echo server, same number of
//! clients, same rate, round-trip time.

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use portico_model::live::{ClientFrame, ServerFrame};
use tokio_tungstenite::tungstenite::Message as Ws;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    kb / 1024.0
}

fn pct(v: &mut [Duration], p: f64) -> f64 {
    v.sort();
    v[((v.len() as f64 - 1.0) * p).round() as usize].as_secs_f64() * 1000.0
}

struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn login(http: &reqwest::Client, base: &str, email: &str) -> String {
    let resp = http
        .post(format!("{base}/v1/auth/login"))
        .json(
            &serde_json::json!({ "email": email, "password": portico_portal::seed::DEMO_PASSWORD }),
        )
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "sign-in of {email}");
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

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn live(base: &str, token: &str) -> Socket {
    let mut req = format!("{}/v1/live", base.replace("http", "ws"))
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    tokio_tungstenite::connect_async(req).await.unwrap().0
}

#[tokio::main]
async fn main() {
    let chats = arg("--chats", 1_000) as usize;
    let secs = arg("--secs", 10);
    let idle = arg("--idle", 10_000) as usize;
    let every = Duration::from_millis(arg("--every-ms", 2_000));
    let bin = env!("CARGO_BIN_EXE_portal-core");
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("live.db");
    let status = Command::new(bin)
        .args([
            "--db",
            db.to_str().unwrap(),
            "seed",
            "--conversations",
            "2000",
            "--messages",
            "4000",
            "--accounts",
        ])
        .arg(chats.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "seeding");
    let port = free_port();
    let child = Command::new(bin)
        .args([
            "--db",
            db.to_str().unwrap(),
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let server = Server {
        child,
        base: format!("http://127.0.0.1:{port}"),
    };
    let http = reqwest::Client::new();
    for _ in 0..100 {
        if http
            .get(format!("{}/v1/health", server.base))
            .send()
            .await
            .is_ok()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let pid = server.child.id();
    let rss_start = rss_mib(pid);

    // One customer admin per account, each with a chat conversation.
    let agent_token = login(&http, &server.base, "agent@portico.test").await;
    let accounts: serde_json::Value = http
        .get(format!("{}/v1/accounts?limit=200", server.base))
        .bearer_auth(&agent_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut account_ids: Vec<String> = Vec::new();
    let mut page = accounts;
    loop {
        account_ids.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a["id"].as_str().unwrap().to_owned()),
        );
        let Some(next) = page["next_cursor"].as_str() else {
            break;
        };
        page = http
            .get(format!(
                "{}/v1/accounts?limit=200&cursor={next}",
                server.base
            ))
            .bearer_auth(&agent_token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    }
    let mut customers = Vec::new();
    for id in account_ids.iter().take(chats) {
        let users: serde_json::Value = http
            .get(format!("{}/v1/accounts/{id}/users?limit=200", server.base))
            .bearer_auth(&agent_token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let admin = users["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["role"] == "customer_admin")
            .map(|u| u["email"].as_str().unwrap().to_owned());
        customers.extend(admin);
    }
    eprintln!(
        "signing in {} customers and opening their chats…",
        customers.len()
    );
    let mut chat_sockets = Vec::new();
    for email in &customers {
        let token = login(&http, &server.base, email).await;
        let conv: serde_json::Value = http
            .post(format!("{}/v1/conversations", server.base))
            .bearer_auth(&token)
            .json(&serde_json::json!({ "channel": "chat", "subject": "Load test chat", "body": "hello" }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let conv_id = conv["id"].as_str().unwrap().to_owned();
        chat_sockets.push((live(&server.base, &token).await, conv_id));
    }

    // The agent receives every change; latency per message id.
    let sent: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let latencies: Arc<Mutex<Vec<Duration>>> = Arc::default();
    let mut agent = live(&server.base, &agent_token).await;
    let (s2, l2) = (sent.clone(), latencies.clone());
    let agent_task = tokio::spawn(async move {
        while let Some(Ok(msg)) = agent.next().await {
            if let Ws::Text(t) = msg
                && let Ok(ServerFrame::Change { change }) = serde_json::from_str::<ServerFrame>(&t)
                && let Some(t0) = s2.lock().unwrap().remove(&change.id.to_string())
            {
                l2.lock().unwrap().push(t0.elapsed());
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for (i, (ws, conv)) in chat_sockets.into_iter().enumerate() {
        let sent = sent.clone();
        tasks.push(tokio::spawn(async move {
            // Stagger the start so sends spread over each second.
            tokio::time::sleep(Duration::from_millis(
                (i as u64 * 997) % every.as_millis() as u64,
            ))
            .await;
            let (mut sink, mut stream) = ws.split();
            let drain = tokio::spawn(async move { while let Some(Ok(_)) = stream.next().await {} });
            while Instant::now() < deadline {
                let id = uuid::Uuid::now_v7();
                let frame = ClientFrame::Send {
                    conversation_id: conv.parse().unwrap(),
                    message_id: portico_model::MessageId(id),
                    body: "Is there an update on my export?".into(),
                    after_message_id: None,
                    force: false,
                };
                sent.lock().unwrap().insert(id.to_string(), Instant::now());
                if sink
                    .send(Ws::Text(serde_json::to_string(&frame).unwrap().into()))
                    .await
                    .is_err()
                {
                    break;
                }
                tokio::time::sleep(every).await;
            }
            drain.abort();
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    agent_task.abort();
    let mut lat = latencies.lock().unwrap().clone();
    let lost = sent.lock().unwrap().len();
    let rss_chats = rss_mib(pid);

    // Floor: a bare WebSocket echo with the same clients and rate.
    let echo = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let echo_addr = echo.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = echo.accept().await {
            tokio::spawn(async move {
                let mut ws = tokio_tungstenite::accept_async(stream).await.unwrap();
                while let Some(Ok(m)) = ws.next().await {
                    if m.is_text() && ws.send(m).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    let echo_lat: Arc<Mutex<Vec<Duration>>> = Arc::default();
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for i in 0..chats {
        let echo_lat = echo_lat.clone();
        tasks.push(tokio::spawn(async move {
            let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{echo_addr}/"))
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_millis(
                (i as u64 * 997) % every.as_millis() as u64,
            ))
            .await;
            while Instant::now() < deadline {
                let t0 = Instant::now();
                ws.send(Ws::Text(
                    r#"{"type":"send","body":"Is there an update on my export?"}"#.into(),
                ))
                .await
                .unwrap();
                while let Some(Ok(m)) = ws.next().await {
                    if m.is_text() {
                        break;
                    }
                }
                echo_lat.lock().unwrap().push(t0.elapsed());
                tokio::time::sleep(every).await;
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let mut echo_lat = echo_lat.lock().unwrap().clone();

    // 10,000 idle sockets.
    let before_idle = rss_mib(pid);
    let mut idle_sockets = Vec::with_capacity(idle);
    for chunk in 0..idle.div_ceil(500) {
        let n = 500.min(idle - chunk * 500);
        let conns =
            futures_util::future::join_all((0..n).map(|_| live(&server.base, &agent_token))).await;
        idle_sockets.extend(conns);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let with_idle = rss_mib(pid);

    println!(
        "\n{} chats, a message every {} ms each, for {secs} s, one agent socket;",
        customers.len(),
        every.as_millis()
    );
    println!("server RSS {rss_start:.0} MiB at start, {rss_chats:.0} MiB after the chats.");
    println!("| path | messages | p50 ms | p99 ms | max ms |");
    println!("|---|---|---|---|---|");
    let n = lat.len();
    let max = lat.iter().max().copied().unwrap_or_default().as_secs_f64() * 1000.0;
    println!(
        "| customer → agent over portal-core (stored, fanned out) | {n} | {:.2} | {:.2} | {max:.2} |",
        pct(&mut lat, 0.5),
        pct(&mut lat, 0.99)
    );
    let en = echo_lat.len();
    let emax = echo_lat
        .iter()
        .max()
        .copied()
        .unwrap_or_default()
        .as_secs_f64()
        * 1000.0;
    println!(
        "| floor: bare WebSocket echo round trip | {en} | {:.2} | {:.2} | {emax:.2} |",
        pct(&mut echo_lat, 0.5),
        pct(&mut echo_lat, 0.99)
    );
    println!("\nMessages sent but never seen by the agent: {lost}.");
    println!(
        "{} idle sockets: server RSS {before_idle:.0} MiB before, {with_idle:.0} MiB with them ({:.1} KiB per socket).",
        idle_sockets.len(),
        (with_idle - before_idle) * 1024.0 / idle_sockets.len() as f64
    );
    drop(idle_sockets);
    drop(server);
}
