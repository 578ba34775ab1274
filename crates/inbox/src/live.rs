//! The engine's live client: keeps one WebSocket to portal-core's `/v1/live`
//! open, resumes from its cursor after every reconnect, and reports what
//! arrives as [`LiveEvent`]s.
//!
//! The socket is an accelerator, never the only path: replies and triage go
//! through the outbox and `POST /v1/sync/push` (idempotent, so nothing typed
//! during a drop is lost or doubled), and whenever the socket says it missed
//! something (`lagged`, an incomplete resume) the client asks for a pull.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use portico_model::live::{ClientFrame, ServerFrame};
use portico_model::wire::Change;
use tokio::sync::{broadcast, mpsc, watch};
use tokio_tungstenite::tungstenite::Message as Ws;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// What the live client reports.
#[derive(Debug, Clone)]
pub enum LiveEvent {
    /// Connected and resumed; `seq` is the server's newest at connection.
    Connected { seq: i64 },
    /// The socket dropped; reconnecting after `retry_in`.
    Disconnected { reason: String, retry_in: Duration },
    /// A committed change, already redacted for this user.
    Change(Change),
    /// Changes were missed: pull over HTTP from the local cursor.
    PullNeeded,
    /// Any other signal (typing, presence, read receipts, acks, errors).
    Signal(ServerFrame),
}

/// Reconnect delays: exponential from 500 ms, capped at 30 s, jittered ±50 %
/// so many clients coming back after an outage do not arrive together.
pub fn backoff(attempt: u32, jitter: f64) -> Duration {
    let base = 0.5 * 2f64.powi(attempt.min(6) as i32);
    Duration::from_secs_f64(base.min(30.0) * (0.5 + jitter.clamp(0.0, 1.0)))
}

/// How often the client pings; a socket silent for three periods is dead.
const HEARTBEAT: Duration = Duration::from_secs(15);

/// Runs the client until `stop` turns true. `cursor` is the last change seq
/// the caller has applied (the client resumes from it and advances it as
/// changes arrive); `token` gives the current access token (it may be
/// refreshed between connections); `outgoing` carries typing, viewing and
/// other frames from the UI.
pub async fn run(
    base: String,
    token: impl Fn() -> Option<String> + Send + 'static,
    cursor: watch::Sender<i64>,
    events: broadcast::Sender<LiveEvent>,
    mut outgoing: mpsc::Receiver<ClientFrame>,
    mut stop: watch::Receiver<bool>,
) {
    let mut attempt = 0u32;
    loop {
        if *stop.borrow() {
            return;
        }
        let reason = match session(&base, &token, &cursor, &events, &mut outgoing, &mut stop).await
        {
            Ok(()) if *stop.borrow() => return,
            Ok(()) => {
                attempt = 0;
                "closed".to_owned()
            }
            Err(e) => e,
        };
        let retry_in = backoff(attempt, rand::random::<f64>());
        attempt = attempt.saturating_add(1);
        tracing::info!(%reason, ?retry_in, "live socket down; reconnecting");
        let _ = events.send(LiveEvent::Disconnected { reason, retry_in });
        tokio::select! {
            _ = tokio::time::sleep(retry_in) => {}
            _ = stop.changed() => return,
        }
    }
}

/// Change seqs remembered per connection to pass each change on once (the
/// resume page is at most 1,000 changes).
const DELIVERED_KEPT: usize = 4_096;

/// One connection: hello, resume, then frames until it drops.
async fn session(
    base: &str,
    token: &impl Fn() -> Option<String>,
    cursor: &watch::Sender<i64>,
    events: &broadcast::Sender<LiveEvent>,
    outgoing: &mut mpsc::Receiver<ClientFrame>,
    stop: &mut watch::Receiver<bool>,
) -> Result<(), String> {
    let token = token().ok_or("not signed in")?;
    let mut delivered = std::collections::BTreeSet::new();
    let url = format!("{}/v1/live", base.replacen("http", "ws", 1));
    let mut req = url
        .into_client_request()
        .map_err(|e| format!("bad server address: {e}"))?;
    let bearer = format!("Bearer {token}")
        .parse()
        .map_err(|_| "the token is not a valid header".to_owned())?;
    req.headers_mut().insert("authorization", bearer);
    // No Nagle: chat frames are small and must leave at once, not wait for
    // the ACK of the previous one.
    let (ws, _) = tokio_tungstenite::connect_async_with_config(req, None, true)
        .await
        .map_err(|e| format!("cannot connect: {e}"))?;
    let (mut sink, mut stream) = ws.split();
    let send = |frame: &ClientFrame| {
        Ws::Text(
            serde_json::to_string(frame)
                .expect("frames serialize")
                .into(),
        )
    };
    let mut heartbeat = tokio::time::interval(HEARTBEAT);
    heartbeat.tick().await;
    loop {
        tokio::select! {
            _ = stop.changed() => {
                let _ = sink.send(Ws::Close(None)).await;
                return Ok(());
            }
            frame = outgoing.recv() => {
                let Some(frame) = frame else { return Ok(()) };
                sink.send(send(&frame)).await.map_err(|e| format!("send failed: {e}"))?;
            }
            _ = heartbeat.tick() => {
                sink.send(send(&ClientFrame::Ping)).await.map_err(|e| format!("ping failed: {e}"))?;
            }
            msg = tokio::time::timeout(HEARTBEAT * 3, stream.next()) => {
                let msg = match msg {
                    Err(_) => return Err("no frames for 45 s".into()),
                    Ok(None) => return Err("the server closed the connection".into()),
                    Ok(Some(Err(e))) => return Err(format!("connection failed: {e}")),
                    Ok(Some(Ok(m))) => m,
                };
                let text = match msg {
                    Ws::Text(t) => t,
                    Ws::Close(frame) => {
                        let why = frame.map(|f| format!("{} {}", u16::from(f.code), f.reason)).unwrap_or_default();
                        return Err(format!("closed by the server: {why}"));
                    }
                    _ => continue,
                };
                let frame: ServerFrame = serde_json::from_str(&text).map_err(|e| format!("unreadable frame from the server: {e}"))?;
                match frame {
                    ServerFrame::Hello { seq, .. } => {
                        let after_seq = *cursor.borrow();
                        sink.send(send(&ClientFrame::Resume { after_seq })).await.map_err(|e| format!("resume failed: {e}"))?;
                        let _ = events.send(LiveEvent::Connected { seq });
                    }
                    ServerFrame::Change { change } => {
                        // Replays after a resume may repeat what a pull already
                        // applied; the cursor only moves forward.
                        cursor.send_if_modified(|c| {
                            let newer = change.seq > *c;
                            *c = (*c).max(change.seq);
                            newer
                        });
                        // The resume page and the live fan-out overlap: a change
                        // committed while the server reads the page comes by
                        // both. Each is passed on once.
                        if delivered.insert(change.seq) {
                            if delivered.len() > DELIVERED_KEPT {
                                let oldest = *delivered.first().expect("not empty");
                                delivered.remove(&oldest);
                            }
                            let _ = events.send(LiveEvent::Change(change));
                        }
                    }
                    ServerFrame::Lagged { .. } | ServerFrame::Resumed { complete: false, .. } => {
                        let _ = events.send(LiveEvent::PullNeeded);
                    }
                    ServerFrame::Pong | ServerFrame::Resumed { .. } => {}
                    other => {
                        let _ = events.send(LiveEvent::Signal(other));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::backoff;
    use std::time::Duration;

    #[test]
    fn backoff_grows_caps_and_jitters() {
        assert_eq!(backoff(0, 0.5), Duration::from_millis(500));
        assert_eq!(backoff(3, 0.5), Duration::from_secs(4));
        assert_eq!(backoff(20, 0.5), Duration::from_secs(30), "capped");
        assert!(
            backoff(3, 0.0) < backoff(3, 1.0),
            "jitter spreads clients apart"
        );
        assert_eq!(
            backoff(3, 0.0),
            Duration::from_secs(2),
            "half the delay at the low end"
        );
    }
}
