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
    /// Changes were missed, or what this user may see changed: pull over
    /// HTTP from the local cursor (the pull resyncs if the scope changed).
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

/// Runs the client until `stop` turns true. `cursor` is the seq up to which
/// every change visible to this user has been passed on: the client resumes
/// from it after each reconnect and advances it only when that stays true
/// (see [`Delivery`]). `token` gives the current access token (it may be
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
    // Kept across connections: a change passed on before a drop may be
    // replayed by the next resume (the cursor stays behind until the
    // resume completes), and is not passed on again.
    let mut delivered = Delivered::default();
    loop {
        if *stop.borrow() {
            return;
        }
        let reason = match session(
            &base,
            &token,
            &cursor,
            &events,
            &mut delivered,
            &mut outgoing,
            &mut stop,
        )
        .await
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

/// Change seqs remembered to pass each change on once (a resume page is at
/// most 1,000 changes).
const DELIVERED_KEPT: usize = 4_096;

/// The seqs of the changes most recently passed on.
#[derive(Default)]
struct Delivered(std::collections::BTreeSet<i64>);

impl Delivered {
    /// True the first time `seq` is seen.
    fn first_time(&mut self, seq: i64) -> bool {
        if !self.0.insert(seq) {
            return false;
        }
        if self.0.len() > DELIVERED_KEPT {
            self.0.pop_first();
        }
        true
    }
}

/// When the cursor may move, for one connection.
///
/// After `hello` the server sends changes as they commit *and* replays what
/// was missed since the cursor, so a newer change can arrive before older
/// ones of the replay. Moving the cursor to the newest seq seen (a
/// high-water mark) would then skip the older ones for good if the socket
/// dropped before the replay ended. So the cursor stays put until the
/// server says the replay is complete, then jumps to everything seen; after
/// that changes come in commit order and it follows each one. A `lagged`
/// (changes skipped for this client) holds it at the last seq before the
/// hole for the rest of the connection, and the client reconnects so the
/// resume fills the hole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Delivery {
    /// Waiting for `resumed {complete: true}`; `seen` is the newest seq so far.
    Resuming { seen: i64 },
    /// Changes arrive in commit order: the cursor follows them.
    InOrder,
    /// Something was skipped: the cursor stays where it is.
    Held,
}

impl Delivery {
    /// A change arrived.
    fn change(&mut self, cursor: &watch::Sender<i64>, seq: i64) {
        match self {
            Delivery::Resuming { seen } => *seen = (*seen).max(seq),
            Delivery::InOrder => advance(cursor, seq),
            Delivery::Held => {}
        }
    }

    /// The replay is complete up to `seq`: every change up to it, and every
    /// one sent live since, has arrived.
    fn resumed(&mut self, cursor: &watch::Sender<i64>, seq: i64) {
        if let Delivery::Resuming { seen } = *self {
            advance(cursor, seq.max(seen));
            *self = Delivery::InOrder;
        }
    }

    /// Changes after `after_seq` were skipped.
    fn lagged(&mut self, cursor: &watch::Sender<i64>, after_seq: i64) {
        cursor.send_if_modified(|c| {
            let behind = after_seq < *c;
            *c = (*c).min(after_seq);
            behind
        });
        *self = Delivery::Held;
    }
}

/// Moves the cursor forward to `seq` (never back).
fn advance(cursor: &watch::Sender<i64>, seq: i64) {
    cursor.send_if_modified(|c| {
        let newer = seq > *c;
        *c = (*c).max(seq);
        newer
    });
}

/// One connection: hello, resume, then frames until it drops.
async fn session(
    base: &str,
    token: &impl Fn() -> Option<String>,
    cursor: &watch::Sender<i64>,
    events: &broadcast::Sender<LiveEvent>,
    delivered: &mut Delivered,
    outgoing: &mut mpsc::Receiver<ClientFrame>,
    stop: &mut watch::Receiver<bool>,
) -> Result<(), String> {
    let token = token().ok_or("not signed in")?;
    // Changes can come before `hello` (committed while it is written).
    let mut delivery = Delivery::Resuming {
        seen: *cursor.borrow(),
    };
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
                        if frame.as_ref().is_some_and(|f| u16::from(f.code) == portico_model::live::close::SCOPE_CHANGED) {
                            // What this user may see changed: the next pull
                            // lets the server ask for a resync.
                            let _ = events.send(LiveEvent::PullNeeded);
                        }
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
                        delivery.change(cursor, change.seq);
                        // The resume page and the live fan-out overlap, and a
                        // replay after a reconnect may repeat what came before
                        // the drop: each change is passed on once.
                        if delivered.first_time(change.seq) {
                            let _ = events.send(LiveEvent::Change(change));
                        }
                    }
                    ServerFrame::Resumed { seq, complete: true } => delivery.resumed(cursor, seq),
                    ServerFrame::Resumed { seq, complete: false } => {
                        // Too much for one page: ask for the next one. The
                        // cursor stays put until the replay is complete.
                        sink.send(send(&ClientFrame::Resume { after_seq: seq })).await.map_err(|e| format!("resume failed: {e}"))?;
                    }
                    ServerFrame::Lagged { after_seq } => {
                        delivery.lagged(cursor, after_seq);
                        let _ = events.send(LiveEvent::PullNeeded);
                        // Reconnecting resumes from the cursor, which fills
                        // the hole over the socket.
                        let _ = sink.send(Ws::Close(None)).await;
                        return Err(format!("changes after {after_seq} were skipped; resuming"));
                    }
                    ServerFrame::Pong => {}
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
