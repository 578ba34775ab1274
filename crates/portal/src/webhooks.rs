//! Outgoing webhooks: how automations call other systems (a CRM hand-off
//! carrying the account's context, a chat notification, …).
//!
//! Delivery is a transactional outbox:
//!
//! 1. [`enqueue`] inserts a delivery row on the caller's connection, inside
//!    the domain transaction that caused the event. The event therefore exists
//!    if and only if that write committed: a rolled-back change never calls
//!    anyone, and a committed one is never lost to a crash between "commit" and
//!    "send".
//! 2. [`deliver_due`] (run by [`spawn_worker`]) POSTs due rows, signed with
//!    [`sign`], and records each outcome. Failures are retried with
//!    exponential [`backoff`]; after [`MAX_ATTEMPTS`] the row is marked dead.
//!
//! Delivery is at-least-once (a crash after the receiver answered but before
//! the outcome is stored means a resend), so every request carries the event
//! id as `Portico-Event-Id` for the receiver to dedupe on.
//!
//! The table holds each endpoint's secret, so it is server-only: never a
//! record, never synced, and [`list_deliveries`] leaves the secret out.

use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use jiff::{SignedDuration, Timestamp};
use portico_model::Invalid;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde::Serialize;
use sha2::Sha256;
use uuid::Uuid;

use crate::clock::Clock;
use crate::error::Result;
use crate::store::Store;

/// Failed attempts after which a delivery is given up (marked dead). With
/// [`backoff`] the attempts span just over an hour (waits of 30 s up to
/// 32 min): long enough to ride out a receiver's deploy or brief outage,
/// short enough that a hand-off is not acted on hours late without anyone
/// seeing it dead in the log.
pub const MAX_ATTEMPTS: u32 = 8;

/// Wait after the first failure; doubles with every further failure.
pub const BACKOFF_BASE: SignedDuration = SignedDuration::from_secs(30);

/// Longest wait between two attempts, so a recovered receiver hears from us
/// within the hour.
pub const BACKOFF_CAP: SignedDuration = SignedDuration::from_secs(60 * 60);

/// Per-request timeout: a hung receiver must not hold up the worker.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a row is reserved for the worker sending it. Longer than
/// [`REQUEST_TIMEOUT`] so a concurrent `deliver_due` never sends the same row
/// twice, yet short enough that a worker dying mid-send only delays the row.
const LEASE: SignedDuration = SignedDuration::from_secs(60);

/// Rows sent (concurrently) per [`deliver_due`] call: bounds memory and open
/// connections when a backlog builds up.
pub const BATCH: usize = 32;

/// Longest response-body excerpt kept in `last_error`: enough to see why a
/// receiver refused, without storing whatever it sent back.
const ERROR_EXCERPT: usize = 512;

/// Where an event goes, as configured on an automation.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// `http` or `https` URL the event is POSTed to.
    pub url: String,
    /// Shared secret the receiver verifies signatures with.
    pub secret: String,
    /// The automation that calls this endpoint, for the delivery log.
    pub automation_id: Option<Uuid>,
}

/// Something that happened, to be told to an endpoint.
#[derive(Debug, Clone)]
pub struct WebhookEvent {
    /// Idempotency key: stays the same across retries, so the receiver can
    /// dedupe; enqueueing the same id for the same URL twice is a no-op.
    pub id: Uuid,
    /// E.g. `conversation.escalated`, `crm.handoff`; sent as
    /// `Portico-Event-Type` so receivers can route without parsing the body.
    pub event_type: String,
    /// The JSON body, sent and signed verbatim.
    pub payload: serde_json::Value,
}

/// One row of the delivery log, as shown to admins. Deliberately has no
/// `secret` field: the log is for reading, the secret only for signing.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Delivery {
    pub id: i64,
    pub event_id: Uuid,
    pub event_type: String,
    pub url: String,
    pub automation_id: Option<Uuid>,
    pub payload: serde_json::Value,
    /// Requests made so far, successful or not.
    pub attempts: u32,
    pub next_attempt_at: Timestamp,
    pub delivered_at: Option<Timestamp>,
    /// HTTP status of the latest attempt; `None` if it never got a response.
    pub last_status: Option<u16>,
    /// Why the latest attempt failed (network error or response excerpt).
    pub last_error: Option<String>,
    /// Gave up after [`MAX_ATTEMPTS`]; never sent again.
    pub dead: bool,
    pub created_at: Timestamp,
}

/// What one [`deliver_due`] pass did. `sent = delivered + failed + dead`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DeliveryReport {
    /// Requests attempted.
    pub sent: usize,
    /// Answered 2xx: done.
    pub delivered: usize,
    /// Failed and scheduled for a retry.
    pub failed: usize,
    /// Failed for the last time: given up.
    pub dead: usize,
}

/// Queues `event` for `endpoint` on `conn`, which should be the caller's
/// domain transaction (e.g. `Writer::conn()` inside [`Store::write`]) so the
/// event commits or rolls back with the change that caused it. `at` is the
/// transaction's time: the delivery is due immediately.
///
/// Enqueueing an event id already queued for the same URL does nothing, so a
/// retried domain operation cannot call a receiver twice.
pub fn enqueue(
    conn: &Connection,
    endpoint: &Endpoint,
    event: &WebhookEvent,
    at: Timestamp,
) -> Result<()> {
    check_url(&endpoint.url)?;
    if endpoint.secret.is_empty() {
        // An empty key would make every signature forgeable by anyone.
        return Err(Invalid::new("secret", "must not be empty").into());
    }
    if event.event_type.trim().is_empty() {
        return Err(Invalid::new("event_type", "must not be empty").into());
    }
    let payload = serde_json::to_string(&event.payload).expect("JSON values always serialize");
    conn.execute(
        "INSERT INTO webhook_deliveries
             (event_id, event_type, url, secret, automation_id, payload, next_attempt_at, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)
         ON CONFLICT (event_id, url) DO NOTHING",
        params![
            event.id.to_string(),
            event.event_type,
            endpoint.url,
            endpoint.secret,
            endpoint.automation_id.map(|a| a.to_string()),
            payload,
            at.as_millisecond(),
        ],
    )?;
    Ok(())
}

/// Only absolute `http(s)` URLs: anything else (`file:`, relative paths)
/// would fail every attempt, so it is refused when the automation fires.
fn check_url(raw: &str) -> Result<()> {
    match url::Url::parse(raw) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => Ok(()),
        _ => Err(Invalid::new("url", "must be an absolute http or https URL").into()),
    }
}

/// The wait after the `failed_attempts`-th consecutive failure:
/// 30 s, 1 min, 2 min, … doubling, capped at one hour. Exponential so a
/// struggling receiver is not hammered; capped so recovery is noticed soon.
pub fn backoff(failed_attempts: u32) -> SignedDuration {
    let doublings = failed_attempts.saturating_sub(1).min(31);
    let secs = BACKOFF_BASE
        .as_secs()
        .saturating_mul(1_i64 << doublings)
        .min(BACKOFF_CAP.as_secs());
    SignedDuration::from_secs(secs)
}

type HmacSha256 = Hmac<Sha256>;

fn mac(secret: &str, timestamp_secs: i64, body: &[u8]) -> HmacSha256 {
    let mut m =
        HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC accepts keys of any length");
    m.update(timestamp_secs.to_string().as_bytes());
    m.update(b".");
    m.update(body);
    m
}

/// The `Portico-Signature` header value: `t=<secs>,v1=<hex>` where `<hex>` is
/// HMAC-SHA256 keyed by `secret` over `"<secs>.<body>"` (Stripe's scheme, so
/// receivers can reuse familiar code). Signing the timestamp with the body
/// lets receivers reject replays of an old, captured request.
pub fn sign(secret: &str, timestamp_secs: i64, body: &[u8]) -> String {
    let tag = mac(secret, timestamp_secs, body).finalize().into_bytes();
    let mut hex = String::with_capacity(tag.len() * 2);
    for b in tag {
        hex.push_str(&format!("{b:02x}"));
    }
    format!("t={timestamp_secs},v1={hex}")
}

/// Checks a `Portico-Signature` header against `body`, as a receiver does
/// (and as our tests do). True only if the header's timestamp is within
/// `tolerance_secs` of `now_secs` (either way: replayed or post-dated
/// requests are refused) and some `v1` tag matches. Several `v1` entries are
/// allowed so a secret can be rotated without a gap. Tags are compared in
/// constant time so timing reveals nothing about the expected value.
pub fn verify(secret: &str, header: &str, body: &[u8], now_secs: i64, tolerance_secs: i64) -> bool {
    let mut timestamp = None;
    let mut tags = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => {
                if timestamp.is_some() {
                    return false; // ambiguous: which time was signed?
                }
                match v.parse::<i64>() {
                    Ok(t) => timestamp = Some(t),
                    Err(_) => return false,
                }
            }
            Some(("v1", v)) => tags.push(v),
            _ => {} // unknown schemes are ignored, as with Stripe
        }
    }
    let Some(t) = timestamp else { return false };
    if now_secs.abs_diff(t) > tolerance_secs.max(0).unsigned_abs() {
        return false;
    }
    let expected = mac(secret, t, body);
    tags.iter().any(|tag| {
        decode_hex(tag).is_some_and(|bytes| expected.clone().verify_slice(&bytes).is_ok())
    })
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.is_ascii() {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

/// A client suited to [`deliver_due`]: request timeout, and redirects NOT
/// followed — a redirect would turn the signed POST into an unsigned GET
/// elsewhere (reqwest rewrites POST on 301–303), so a 3xx counts as a failure
/// and shows up in the log for the admin to fix the URL.
pub fn http_client() -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("Portico-Webhooks/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// A due row as claimed for sending; carries the secret, so never leaves
/// this module.
struct Due {
    id: i64,
    event_id: String,
    event_type: String,
    url: String,
    secret: String,
    payload: String,
    attempts: u32,
}

/// How one attempt ended.
enum Outcome {
    Delivered(u16),
    Failed { status: Option<u16>, error: String },
}

/// Sends every delivery due at `at` (up to [`BATCH`] per call) and records
/// the outcomes: 2xx marks it delivered for good; anything else counts an
/// attempt and schedules the next after [`backoff`], or marks it dead after
/// [`MAX_ATTEMPTS`].
///
/// The writer lock is held only for two short transactions, never during
/// HTTP: one claims the due rows (pushing their `next_attempt_at` out by a
/// lease so a concurrent pass skips them), the other stores the outcomes.
pub async fn deliver_due(
    store: &Store,
    http: &reqwest::Client,
    at: Timestamp,
) -> Result<DeliveryReport> {
    let due = blocking(|| claim_due(store, at))?;
    let mut report = DeliveryReport::default();
    if due.is_empty() {
        return Ok(report);
    }

    let mut sends = tokio::task::JoinSet::new();
    for row in due {
        let http = http.clone();
        sends.spawn(async move {
            let outcome = send(&http, &row, at).await;
            (row, outcome)
        });
    }
    let mut results = Vec::with_capacity(sends.len());
    while let Some(joined) = sends.join_next().await {
        match joined {
            Ok(done) => results.push(done),
            // The row stays claimed until its lease runs out, then is retried.
            Err(e) => tracing::error!(error = %e, "webhook send task failed"),
        }
    }
    report.sent = results.len();

    blocking(|| {
        store.write_raw(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            for (row, outcome) in &results {
                match record(&tx, row, outcome, at)? {
                    Recorded::Delivered => report.delivered += 1,
                    Recorded::Retry => report.failed += 1,
                    Recorded::Dead => report.dead += 1,
                }
            }
            tx.commit()?;
            Ok(())
        })
    })?;
    Ok(report)
}

/// Runs blocking SQLite work from async code. On a multi-threaded runtime,
/// `block_in_place` lets tokio move other tasks off this thread meanwhile;
/// elsewhere (current-thread runtimes in tests) the short query just runs.
fn block_in_place_ok() -> bool {
    tokio::runtime::Handle::try_current()
        .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread)
}

fn blocking<T>(f: impl FnOnce() -> T) -> T {
    if block_in_place_ok() {
        tokio::task::block_in_place(f)
    } else {
        f()
    }
}

/// Picks the due rows and leases them in one transaction, so two passes
/// running at once (worker plus a manual trigger) never both send a row.
fn claim_due(store: &Store, at: Timestamp) -> Result<Vec<Due>> {
    store.write_raw(|conn| {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let now = at.as_millisecond();
        let due = {
            let mut stmt = tx.prepare_cached(
                "SELECT id, event_id, event_type, url, secret, payload, attempts
                 FROM webhook_deliveries
                 WHERE delivered_at IS NULL AND dead = 0 AND next_attempt_at <= ?1
                 ORDER BY next_attempt_at, id
                 LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![now, BATCH as i64], |r| {
                Ok(Due {
                    id: r.get(0)?,
                    event_id: r.get(1)?,
                    event_type: r.get(2)?,
                    url: r.get(3)?,
                    secret: r.get(4)?,
                    payload: r.get(5)?,
                    attempts: r.get(6)?,
                })
            })?;
            rows.collect::<rusqlite::Result<Vec<_>>>()?
        };
        let lease_until = now + LEASE.as_millis() as i64;
        for row in &due {
            tx.execute(
                "UPDATE webhook_deliveries SET next_attempt_at = ?2 WHERE id = ?1",
                params![row.id, lease_until],
            )?;
        }
        tx.commit()?;
        Ok(due)
    })
}

/// One signed POST. Never fails: every problem becomes an [`Outcome`].
async fn send(http: &reqwest::Client, row: &Due, at: Timestamp) -> Outcome {
    let signature = sign(&row.secret, at.as_second(), row.payload.as_bytes());
    let result = http
        .post(&row.url)
        .timeout(REQUEST_TIMEOUT)
        .header("Content-Type", "application/json")
        .header("Portico-Event-Id", &row.event_id)
        .header("Portico-Event-Type", &row.event_type)
        .header("Portico-Signature", signature)
        .body(row.payload.clone())
        .send()
        .await;
    match result {
        Ok(resp) if resp.status().is_success() => Outcome::Delivered(resp.status().as_u16()),
        Ok(resp) => {
            let status = resp.status();
            let excerpt = excerpt(resp).await;
            let error = if excerpt.is_empty() {
                format!("HTTP {status}")
            } else {
                format!("HTTP {status}: {excerpt}")
            };
            Outcome::Failed {
                status: Some(status.as_u16()),
                error,
            }
        }
        Err(e) => Outcome::Failed {
            status: None,
            error: describe(&e),
        },
    }
}

/// The start of a refusal's body: reads at most [`ERROR_EXCERPT`] bytes so a
/// huge (or endless) error page cannot hold the worker or bloat the log.
async fn excerpt(mut resp: reqwest::Response) -> String {
    let mut buf = Vec::new();
    while buf.len() < ERROR_EXCERPT {
        match resp.chunk().await {
            Ok(Some(chunk)) => buf.extend_from_slice(&chunk),
            _ => break,
        }
    }
    buf.truncate(ERROR_EXCERPT);
    String::from_utf8_lossy(&buf).trim().to_owned()
}

/// A network error with its causes, e.g. "error sending request: connection
/// refused", so the log says more than "request failed".
fn describe(e: &reqwest::Error) -> String {
    let mut out = if e.is_timeout() {
        format!("timed out after {}s", REQUEST_TIMEOUT.as_secs())
    } else {
        e.to_string()
    };
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

enum Recorded {
    Delivered,
    Retry,
    Dead,
}

/// Stores one attempt's outcome. Guarded on `delivered_at IS NULL` so a row
/// is never moved back out of "delivered".
fn record(conn: &Connection, row: &Due, outcome: &Outcome, at: Timestamp) -> Result<Recorded> {
    let attempts = row.attempts + 1;
    let now = at.as_millisecond();
    match outcome {
        Outcome::Delivered(status) => {
            conn.execute(
                "UPDATE webhook_deliveries
                 SET attempts = ?2, delivered_at = ?3, last_status = ?4, last_error = NULL
                 WHERE id = ?1 AND delivered_at IS NULL",
                params![row.id, attempts, now, status],
            )?;
            Ok(Recorded::Delivered)
        }
        Outcome::Failed { status, error } => {
            let dead = attempts >= MAX_ATTEMPTS;
            let next = if dead {
                now
            } else {
                at.checked_add(backoff(attempts))
                    .map(|t| t.as_millisecond())
                    .unwrap_or(i64::MAX)
            };
            conn.execute(
                "UPDATE webhook_deliveries
                 SET attempts = ?2, next_attempt_at = ?3, last_status = ?4, last_error = ?5, dead = ?6
                 WHERE id = ?1 AND delivered_at IS NULL",
                params![row.id, attempts, next, status, error, dead],
            )?;
            if dead {
                // The host only: webhook URLs often embed access tokens.
                let host = url::Url::parse(&row.url)
                    .ok()
                    .and_then(|u| u.host_str().map(str::to_owned))
                    .unwrap_or_default();
                tracing::warn!(
                    event_id = %row.event_id,
                    event_type = %row.event_type,
                    host = %host,
                    attempts,
                    last_status = ?status,
                    last_error = %error,
                    "webhook delivery gave up after {MAX_ATTEMPTS} attempts",
                );
                Ok(Recorded::Dead)
            } else {
                Ok(Recorded::Retry)
            }
        }
    }
}

/// Columns [`delivery_from_row`] reads, in order. No `secret`.
const DELIVERY_COLUMNS: &str = "id, event_id, event_type, url, automation_id, payload, attempts,
     next_attempt_at, delivered_at, last_status, last_error, dead, created_at";

/// The delivery log, newest first, at most `limit` rows. Never includes
/// secrets.
pub fn list_deliveries(conn: &Connection, limit: usize) -> Result<Vec<Delivery>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries
         ORDER BY created_at DESC, id DESC
         LIMIT ?1"
    ))?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = stmt.query_map([limit], delivery_from_row)?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

/// One delivery by event id and URL: lets a caller that enqueued an event
/// show how its delivery went.
pub fn find_delivery(conn: &Connection, event_id: Uuid, url: &str) -> Result<Option<Delivery>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE event_id = ?1 AND url = ?2"
    ))?;
    Ok(stmt
        .query_row(params![event_id.to_string(), url], delivery_from_row)
        .optional()?)
}

fn delivery_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Delivery> {
    Ok(Delivery {
        id: r.get(0)?,
        event_id: parse_col(r, 1, |s: String| Uuid::parse_str(&s))?,
        event_type: r.get(2)?,
        url: r.get(3)?,
        automation_id: parse_col(r, 4, |s: Option<String>| {
            s.map(|s| Uuid::parse_str(&s)).transpose()
        })?,
        payload: parse_col(r, 5, |s: String| serde_json::from_str(&s))?,
        attempts: r.get(6)?,
        next_attempt_at: parse_col(r, 7, Timestamp::from_millisecond)?,
        delivered_at: parse_col(r, 8, |ms: Option<i64>| {
            ms.map(Timestamp::from_millisecond).transpose()
        })?,
        last_status: r.get(9)?,
        last_error: r.get(10)?,
        dead: r.get(11)?,
        created_at: parse_col(r, 12, Timestamp::from_millisecond)?,
    })
}

/// Reads column `idx` and converts it; a value only this module writes that
/// fails to convert is reported as a storage error naming the column.
fn parse_col<S, T, E>(
    r: &rusqlite::Row<'_>,
    idx: usize,
    convert: impl FnOnce(S) -> std::result::Result<T, E>,
) -> rusqlite::Result<T>
where
    S: rusqlite::types::FromSql,
    E: std::error::Error + Send + Sync + 'static,
{
    convert(r.get(idx)?).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Text, Box::new(e))
    })
}

/// Runs [`deliver_due`] every `every` at `clock.now()` until the handle is
/// aborted. Errors are logged and the loop carries on; each pass runs in its
/// own task, so even a panic in one pass is logged rather than ending
/// deliveries. When a pass fills a whole [`BATCH`], the next runs at once so
/// a backlog drains without waiting for ticks.
pub fn spawn_worker(
    store: Arc<Store>,
    clock: Arc<dyn Clock>,
    http: reqwest::Client,
    every: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every.max(Duration::from_millis(1)));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            loop {
                let (store, http, at) = (store.clone(), http.clone(), clock.now());
                let pass = tokio::spawn(async move { deliver_due(&store, &http, at).await });
                match pass.await {
                    Ok(Ok(report)) => {
                        if report.sent > 0 {
                            tracing::debug!(?report, "webhook deliveries sent");
                        }
                        if report.sent < BATCH {
                            break;
                        }
                    }
                    Ok(Err(e)) => {
                        tracing::error!(error = %e, "webhook delivery pass failed");
                        break;
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "webhook delivery pass panicked");
                        break;
                    }
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_test";
    const BODY: &[u8] = br#"{"account":"acme"}"#;
    const T: i64 = 1_800_000_000;

    #[test]
    fn signature_round_trips() {
        let header = sign(SECRET, T, BODY);
        assert!(
            header.starts_with(&format!("t={T},v1=")),
            "receivers parse the Stripe-style layout, got {header}"
        );
        assert!(
            verify(SECRET, &header, BODY, T, 300),
            "a fresh, untouched request must verify"
        );
        assert!(
            verify(SECRET, &header, BODY, T + 300, 300),
            "the tolerance is inclusive, so a request exactly at the limit still verifies"
        );
    }

    #[test]
    fn signature_matches_known_vector() {
        // Computed independently (Python's hmac module) and pinned, so the
        // scheme cannot drift without this failing: receivers in any
        // language must be able to reproduce it.
        assert_eq!(
            sign(SECRET, T, BODY),
            "t=1800000000,v1=56f71a6e961414d11161185cea775f2d40270f3656377634c8dadff334e22fd0",
            "v1 must be hex HMAC-SHA256(secret, \"<secs>.<body>\")"
        );
    }

    #[test]
    fn tampered_body_is_rejected() {
        let header = sign(SECRET, T, BODY);
        assert!(
            !verify(SECRET, &header, br#"{"account":"evil"}"#, T, 300),
            "a body changed in transit must not verify, or the signature protects nothing"
        );
    }

    #[test]
    fn wrong_secret_is_rejected() {
        let header = sign("someone-else", T, BODY);
        assert!(
            !verify(SECRET, &header, BODY, T, 300),
            "only holders of the endpoint's secret may produce valid signatures"
        );
    }

    #[test]
    fn expired_or_future_timestamp_is_rejected() {
        let header = sign(SECRET, T, BODY);
        assert!(
            !verify(SECRET, &header, BODY, T + 301, 300),
            "a captured request replayed after the tolerance must be refused"
        );
        assert!(
            !verify(SECRET, &header, BODY, T - 301, 300),
            "a post-dated request must be refused too, or it could be replayed later"
        );
    }

    #[test]
    fn tampered_timestamp_is_rejected() {
        let header = sign(SECRET, T, BODY);
        let moved = header.replace(&format!("t={T}"), &format!("t={}", T + 1000));
        assert!(
            !verify(SECRET, &moved, BODY, T + 1000, 300),
            "the timestamp is signed, so refreshing it must break the signature"
        );
    }

    #[test]
    fn malformed_headers_are_rejected() {
        let good = sign(SECRET, T, BODY);
        let tag = good.split_once("v1=").unwrap().1;
        for header in [
            "",
            "garbage",
            &format!("v1={tag}"),                 // no timestamp
            &format!("t={T}"),                    // no tag
            &format!("t=soon,v1={tag}"),          // unparsable time
            &format!("t={T},t={T},v1={tag}"),     // ambiguous time
            &format!("t={T},v1={}", &tag[..63]),  // odd-length hex
            &format!("t={T},v1={}", &tag[..62]),  // truncated tag
            &format!("t={T},v1=zz{}", &tag[2..]), // not hex
            &format!("t={T},v0={tag}"),           // unknown scheme only
        ] {
            assert!(
                !verify(SECRET, header, BODY, T, 300),
                "malformed header {header:?} must never verify"
            );
        }
    }

    #[test]
    fn any_matching_v1_verifies_for_secret_rotation() {
        let old = sign("old-secret", T, BODY);
        let new = sign(SECRET, T, BODY);
        let both = format!("{old},v1={}", new.split_once("v1=").unwrap().1);
        assert!(
            verify(SECRET, &both, BODY, T, 300),
            "during rotation a header may carry several v1 tags; one match suffices"
        );
    }

    #[test]
    fn backoff_doubles_from_30s_and_caps_at_an_hour() {
        let secs: Vec<i64> = (1..=10).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(
            secs,
            [30, 60, 120, 240, 480, 960, 1920, 3600, 3600, 3600],
            "exponential so a failing receiver is not hammered, capped so recovery is noticed within the hour"
        );
        assert_eq!(
            backoff(0).as_secs(),
            30,
            "no failures yet means the base wait, never zero"
        );
        assert_eq!(
            backoff(u32::MAX),
            BACKOFF_CAP,
            "huge attempt counts must not overflow"
        );
    }

    #[test]
    fn retries_span_hours_not_days() {
        let total: i64 = (1..MAX_ATTEMPTS).map(|n| backoff(n).as_secs()).sum();
        assert!(
            (3600..=4 * 3600).contains(&total),
            "retries should outlast a deploy yet give up within hours, got {total}s"
        );
    }

    #[test]
    fn enqueue_refuses_unusable_endpoints() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(include_str!("../../../migrations/portal/0004_webhooks.sql"))
            .unwrap();
        let event = WebhookEvent {
            id: Uuid::nil(),
            event_type: "crm.handoff".into(),
            payload: serde_json::json!({}),
        };
        let at = Timestamp::UNIX_EPOCH;
        for (url, secret, field) in [
            ("ftp://crm.test/hook", "s", "url"),
            ("/relative", "s", "url"),
            ("https://crm.test/hook", "", "secret"),
        ] {
            let endpoint = Endpoint {
                url: url.into(),
                secret: secret.into(),
                automation_id: None,
            };
            let err = enqueue(&conn, &endpoint, &event, at).unwrap_err();
            assert_eq!(
                err.field(),
                Some(field),
                "an endpoint that can never be delivered to (or signed for) must be refused up front"
            );
        }
        let n: i64 = conn
            .query_row("SELECT count(*) FROM webhook_deliveries", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 0, "refused endpoints leave nothing queued");
    }
}
