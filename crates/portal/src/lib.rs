//! portal-core: Portico's system of record and API server.
//!
//! - [`store`]: embedded SQLite, the single write path and the change log.
//! - [`api`]: the `/v1` HTTP API and OAuth endpoints (axum).
//! - [`auth`]: passwords, sessions, OAuth code + PKCE, rotating refresh tokens.
//! - [`knowledge`]: search (tantivy + offline embeddings), grounded answers,
//!   AI drafts with human approval, content gaps, resolution into knowledge.
//! - [`web`]: the customer portal's web app, served under `/portal/`.
//! - [`seed`]: deterministic demo data, from a handful of accounts to 100k
//!   conversations and 1M messages for benchmarks.

pub mod api;
pub mod attachments;
pub mod auth;
pub mod clock;
pub mod error;
pub mod group_commit;
pub mod invoices;
pub mod knowledge;
pub mod live;
pub mod mail;
pub mod onboarding;
pub mod pages;
pub mod seed;
pub mod seed_portal;
pub mod store;
pub mod web;
pub mod web_guard;
pub mod webhooks;
pub mod work;

use std::net::SocketAddr;
use std::sync::Arc;

pub use api::{AppState, router};
pub use clock::{Clock, ManualClock, SystemClock};
pub use store::Store;

/// Serves the API on `listener` until `shutdown` resolves, then stops taking
/// connections and lets in-flight requests (and their writes) finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let fan_out = live::spawn_fan_out(state.live.clone(), state.store.clone());
    let drafter = knowledge::drafts::spawn_drafter(state.clone());
    let hub = state.live.clone();
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    // Live sockets stream many small frames: with Nagle's algorithm on, a
    // frame written while the previous one is unacknowledged waits for the
    // peer's (delayed) ACK, up to 40 ms on Linux. Send each frame at once.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::warn!(error = %e, "cannot set TCP_NODELAY on a connection");
        }
    });
    // Live sockets never end on their own: close them when shutdown starts,
    // so graceful shutdown can finish the in-flight requests and return.
    let shutdown = async move {
        shutdown.await;
        hub.close_all(
            portico_model::live::close::GOING_AWAY,
            "server shutting down",
        );
    };
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await;
    drop(fan_out);
    drafter.abort();
    result
}

/// Opens the store at `path` with the given clock: the state `serve` needs.
pub fn open_state(path: &std::path::Path, clock: Arc<dyn Clock>) -> error::Result<AppState> {
    Ok(AppState::new(Arc::new(Store::open(path)?), clock))
}
