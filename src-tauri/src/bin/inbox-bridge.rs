//! Development bridge: the desk's command surface over loopback HTTP, so the
//! same UI runs in any browser for screen tests. `POST /api/call` takes a
//! `Command` and answers its JSON (or a `DeskError` with a 4xx/5xx);
//! `GET /api/events` streams `DeskEvent`s as server-sent events; anything
//! else is the built UI (`ui/inbox/dist`).
//!
//! Listens on 127.0.0.1 only. Prints `inbox-bridge listening on http://…`
//! once ready. Settings: as the app (`PORTICO_SERVER`, `PORTICO_INBOX_DATA`,
//! …) plus `--listen ADDR` and `--ui DIR`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::Stream;
use portico_inbox::{Command, Desk};
use tower_http::services::ServeDir;

async fn call(State(desk): State<Desk>, body: axum::body::Bytes) -> Response {
    let cmd: Command = match serde_json::from_slice(&body) {
        Ok(c) => c,
        Err(e) => {
            return (
                StatusCode::UNPROCESSABLE_ENTITY,
                Json(serde_json::json!({"code": "invalid_command", "message": e.to_string()})),
            )
                .into_response();
        }
    };
    match desk.call(cmd).await {
        Ok(v) => Json(v).into_response(),
        Err(e) => {
            let status = match e.code.as_str() {
                "unauthenticated" => StatusCode::UNAUTHORIZED,
                "local_store" | "internal" => StatusCode::INTERNAL_SERVER_ERROR,
                _ => StatusCode::UNPROCESSABLE_ENTITY,
            };
            (status, Json(e)).into_response()
        }
    }
}

async fn events(State(desk): State<Desk>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let rx = desk.subscribe();
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        loop {
            match rx.recv().await {
                Ok(e) => {
                    let data = serde_json::to_string(&e).expect("events serialize");
                    return Some((Ok(Event::default().data(data)), rx));
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    portico_desktop::init_logging();
    let mut listen: SocketAddr = "127.0.0.1:0".parse()?;
    let mut ui = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../ui/inbox/dist"));
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--listen" => listen = args.next().unwrap_or_default().parse()?,
            "--ui" => ui = args.next().map(PathBuf::from).unwrap_or(ui),
            other => anyhow::bail!("unknown argument {other}; use --listen ADDR or --ui DIR"),
        }
    }
    anyhow::ensure!(
        listen.ip().is_loopback(),
        "the bridge serves the desk without authentication: listen on a loopback address only"
    );
    anyhow::ensure!(
        ui.join("index.html").exists(),
        "no built UI in {}: run `npm ci && npm run build` in ui/ first",
        ui.display()
    );
    let config = portico_desktop::config_from_env(None, None);
    let secrets = tokio::task::spawn_blocking(portico_desktop::secrets_from_env).await?;
    let desk = Desk::open(config, secrets).map_err(|e| anyhow::anyhow!("{}", e.message))?;
    let app = Router::new()
        .route("/api/call", post(call))
        .route("/api/events", get(events))
        .fallback_service(ServeDir::new(ui))
        .with_state(desk);
    let listener = tokio::net::TcpListener::bind(listen).await?;
    println!(
        "inbox-bridge listening on http://{}",
        listener.local_addr()?
    );
    axum::serve(listener, app).await?;
    Ok(())
}
