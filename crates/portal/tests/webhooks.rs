//! Outgoing webhooks against a real HTTP receiver on loopback.
//!
//! The receiver is an axum server that verifies every request's signature and
//! can be told to fail the first N attempts of each event. Time is a
//! `ManualClock` moved past each backoff, so retries are exercised without a
//! single timing sleep.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use jiff::{SignedDuration, Timestamp};
use portico_portal::store::Actor;
use portico_portal::webhooks::{
    self, Delivery, DeliveryReport, Endpoint, MAX_ATTEMPTS, WebhookEvent,
};
use portico_portal::{Clock, ManualClock, Store};
use serde_json::json;
use uuid::Uuid;

const SECRET: &str = "whsec_receiver_shared_secret";
/// Receivers commonly accept five minutes of clock skew.
const TOLERANCE_SECS: i64 = 300;

/// One request as the receiver saw it.
#[derive(Debug, Clone)]
struct Received {
    event_id: String,
    event_type: String,
    content_type: String,
    signature_valid: bool,
    status: u16,
    body: serde_json::Value,
    /// Receiver-side time, so tests can check nothing came early.
    at: Timestamp,
}

struct Receiver {
    clock: Arc<ManualClock>,
    /// Attempts per event answered 500 before the receiver recovers.
    fail_first: u32,
    seen: Mutex<Vec<Received>>,
}

impl Receiver {
    fn requests(&self) -> Vec<Received> {
        self.seen.lock().unwrap().clone()
    }

    fn for_event(&self, id: Uuid) -> Vec<Received> {
        let id = id.to_string();
        self.requests()
            .into_iter()
            .filter(|r| r.event_id == id)
            .collect()
    }
}

async fn hook(State(rx): State<Arc<Receiver>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let now = rx.clock.now();
    let signature_valid = webhooks::verify(
        SECRET,
        &header("portico-signature"),
        &body,
        now.as_second(),
        TOLERANCE_SECS,
    );
    let event_id = header("portico-event-id");
    let mut seen = rx.seen.lock().unwrap();
    let earlier = seen.iter().filter(|r| r.event_id == event_id).count() as u32;
    let status = if !signature_valid {
        StatusCode::UNAUTHORIZED
    } else if earlier < rx.fail_first {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::OK
    };
    seen.push(Received {
        event_id,
        event_type: header("portico-event-type"),
        content_type: header("content-type"),
        signature_valid,
        status: status.as_u16(),
        body: serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
        at: now,
    });
    status
}

/// Starts a receiver on 127.0.0.1, port 0; returns it and its hook URL. The
/// server task ends with the test's runtime.
async fn start_receiver(clock: Arc<ManualClock>, fail_first: u32) -> (Arc<Receiver>, String) {
    let rx = Arc::new(Receiver {
        clock,
        fail_first,
        seen: Mutex::new(Vec::new()),
    });
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(hook))
        .with_state(rx.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (rx, url)
}

/// A fresh, empty store (schema only) in a temp dir.
fn empty_store() -> (Arc<Store>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("portal.db")).unwrap();
    (Arc::new(store), dir)
}

fn endpoint(url: &str) -> Endpoint {
    Endpoint {
        url: url.to_owned(),
        secret: SECRET.to_owned(),
        automation_id: Some(Uuid::from_u128(0xa070)),
    }
}

fn event(n: u128) -> WebhookEvent {
    WebhookEvent {
        id: Uuid::from_u128(0xe000 + n),
        event_type: "conversation.escalated".into(),
        payload: json!({ "n": n as u64, "subject": format!("event {n}") }),
    }
}

fn log(store: &Store) -> Vec<Delivery> {
    store.read(|c| webhooks::list_deliveries(c, 100)).unwrap()
}

fn delivery(store: &Store, event_id: Uuid, url: &str) -> Delivery {
    store
        .read(|c| webhooks::find_delivery(c, event_id, url))
        .unwrap()
        .expect("the event was enqueued")
}

async fn pass(store: &Store, http: &reqwest::Client, clock: &ManualClock) -> DeliveryReport {
    webhooks::deliver_due(store, http, clock.now())
        .await
        .expect("a delivery pass only fails if storage does")
}

fn client() -> reqwest::Client {
    webhooks::http_client().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_with_backoff_until_the_receiver_recovers() {
    let t0 = common::anchor();
    let clock = Arc::new(ManualClock::new(t0));
    let (rx, url) = start_receiver(clock.clone(), 2).await;
    let (store, _dir) = empty_store();
    let http = client();
    let ep = endpoint(&url);
    let events = [event(1), event(2), event(3)];

    // One event through the raw writer connection, two through a domain
    // transaction, and the first again: a duplicate must be a no-op.
    store
        .write_raw(|c| webhooks::enqueue(c, &ep, &events[0], t0))
        .unwrap();
    store
        .write(Actor::SYSTEM, t0, |w| {
            webhooks::enqueue(w.conn(), &ep, &events[1], w.at())?;
            webhooks::enqueue(w.conn(), &ep, &events[2], w.at())?;
            webhooks::enqueue(w.conn(), &ep, &events[0], w.at())
        })
        .unwrap();
    // A domain write that fails after enqueueing: its event must vanish with it.
    let doomed = event(99);
    let rolled_back = store.write(Actor::SYSTEM, t0, |w| {
        webhooks::enqueue(w.conn(), &ep, &doomed, w.at())?;
        Err::<(), _>(portico_portal::error::PortalError::Conflict(
            "the domain change was refused".into(),
        ))
    });
    assert!(
        rolled_back.is_err(),
        "the test transaction is meant to fail"
    );
    assert_eq!(
        log(&store).len(),
        3,
        "three distinct events are queued: the duplicate is ignored and the rolled-back one never existed"
    );

    // Attempt 1 at t0: every event fails with 500.
    let r = pass(&store, &http, &clock).await;
    assert_eq!(
        r,
        DeliveryReport {
            sent: 3,
            delivered: 0,
            failed: 3,
            dead: 0
        },
        "all three are due at once and the receiver refuses first attempts"
    );
    for e in &events {
        let d = delivery(&store, e.id, &url);
        assert_eq!(d.attempts, 1, "a failed attempt is counted");
        assert_eq!(d.last_status, Some(500), "the refusal's status is logged");
        assert!(
            d.last_error.as_deref().is_some_and(|m| m.contains("500")),
            "the log says why it failed: {:?}",
            d.last_error
        );
        assert_eq!(
            d.next_attempt_at,
            t0 + SignedDuration::from_secs(30),
            "the first retry waits the base backoff"
        );
        assert!(d.delivered_at.is_none() && !d.dead, "still pending");
    }

    // One second short of the backoff: nothing may be sent.
    clock.set(t0 + SignedDuration::from_secs(29));
    let r = pass(&store, &http, &clock).await;
    assert_eq!(r.sent, 0, "no retry before its backoff has elapsed");
    assert_eq!(rx.requests().len(), 3, "the receiver heard nothing new");

    // Attempt 2 at t0+30s: refused again; backoff doubles to 60 s.
    let t1 = t0 + SignedDuration::from_secs(30);
    clock.set(t1);
    let r = pass(&store, &http, &clock).await;
    assert_eq!(
        (r.sent, r.failed),
        (3, 3),
        "every event is retried once its backoff elapses, and fails a second time"
    );
    clock.set(t1 + SignedDuration::from_secs(59));
    let r = pass(&store, &http, &clock).await;
    assert_eq!(r.sent, 0, "the second backoff (60 s) is also honoured");

    // Attempt 3 at t0+90s: the receiver has recovered.
    let t2 = t1 + SignedDuration::from_secs(60);
    clock.set(t2);
    let r = pass(&store, &http, &clock).await;
    assert_eq!(
        r,
        DeliveryReport {
            sent: 3,
            delivered: 3,
            failed: 0,
            dead: 0
        },
        "the third attempt of each event is accepted"
    );

    // Much later: delivered events are never sent again.
    clock.set(t2 + SignedDuration::from_hours(48));
    let r = pass(&store, &http, &clock).await;
    assert_eq!(r.sent, 0, "a delivered event is done for good");

    let all = rx.requests();
    assert_eq!(all.len(), 9, "three attempts for each of three events");
    assert!(
        all.iter().all(|r| r.signature_valid),
        "every request must carry a valid signature for the receiver to trust it: {all:?}"
    );
    assert!(
        all.iter()
            .all(|r| r.content_type == "application/json"
                && r.event_type == "conversation.escalated"),
        "receivers route on Content-Type and Portico-Event-Type: {all:?}"
    );
    for e in &events {
        let got = rx.for_event(e.id);
        let accepted = got.iter().filter(|r| r.status == 200).count();
        assert_eq!(
            accepted, 1,
            "event {} must be accepted exactly once: {got:?}",
            e.id
        );
        assert_eq!(
            got.iter().map(|r| r.status).collect::<Vec<_>>(),
            [500, 500, 200],
            "two refusals, then the one acceptance, and nothing after it"
        );
        assert_eq!(
            got.iter().map(|r| r.at).collect::<Vec<_>>(),
            [t0, t1, t2],
            "each attempt came exactly when its backoff elapsed, never earlier"
        );
        assert!(
            got.iter().all(|r| r.body == e.payload),
            "the body is the event's payload, unchanged across retries"
        );
        let d = delivery(&store, e.id, &url);
        assert_eq!(d.attempts, 3, "the log counts every attempt");
        assert_eq!(d.last_status, Some(200), "the log shows the final success");
        assert_eq!(d.last_error, None, "a success clears the previous error");
        assert_eq!(d.delivered_at, Some(t2), "delivery time is recorded");
        assert!(!d.dead, "a delivered event is not dead");
        assert_eq!(
            d.automation_id, ep.automation_id,
            "the log names the automation"
        );
    }
    assert!(
        rx.for_event(doomed.id).is_empty(),
        "an event from a rolled-back transaction must never be sent"
    );

    let logged = serde_json::to_string(&log(&store)).unwrap();
    assert!(
        !logged.contains(SECRET) && !logged.contains("secret"),
        "the delivery log must never expose the signing secret: {logged}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gives_up_after_max_attempts() {
    let t0 = common::anchor();
    let clock = Arc::new(ManualClock::new(t0));
    let (rx, url) = start_receiver(clock.clone(), u32::MAX).await;
    let (store, _dir) = empty_store();
    let http = client();
    let e = event(1);
    store
        .write_raw(|c| webhooks::enqueue(c, &endpoint(&url), &e, t0))
        .unwrap();

    for n in 1..=MAX_ATTEMPTS {
        let due = delivery(&store, e.id, &url).next_attempt_at;
        clock.set(due - SignedDuration::from_secs(1));
        assert_eq!(
            pass(&store, &http, &clock).await.sent,
            0,
            "attempt {n} must wait for its backoff"
        );
        clock.set(due);
        let r = pass(&store, &http, &clock).await;
        assert_eq!(r.sent, 1, "attempt {n} goes out once due");
        let d = delivery(&store, e.id, &url);
        assert_eq!(d.attempts, n, "attempt {n} is counted");
        assert_eq!(d.last_status, Some(500), "attempt {n}'s refusal is logged");
        if n < MAX_ATTEMPTS {
            assert_eq!(r.failed, 1, "attempt {n} fails and is retried");
            assert!(!d.dead, "still retrying after {n} attempts");
            assert_eq!(
                d.next_attempt_at.duration_since(due),
                webhooks::backoff(n),
                "after failure {n} the retry waits backoff({n})"
            );
        } else {
            assert_eq!(r.dead, 1, "the last permitted attempt gives up");
            assert!(d.dead, "after {MAX_ATTEMPTS} failures the delivery is dead");
            assert!(
                d.delivered_at.is_none(),
                "a dead delivery was never delivered"
            );
        }
    }

    clock.set(clock.now() + SignedDuration::from_hours(24 * 7));
    let r = pass(&store, &http, &clock).await;
    assert_eq!(r.sent, 0, "a dead delivery is never retried");
    let got = rx.for_event(e.id);
    assert_eq!(
        got.len(),
        MAX_ATTEMPTS as usize,
        "the receiver saw exactly the permitted attempts"
    );
    assert!(
        got.iter().all(|r| r.signature_valid),
        "retries are re-signed at send time, so they stay within the tolerance"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_errors_are_retried_and_logged() {
    let t0 = common::anchor();
    let clock = ManualClock::new(t0);
    // A port that was just free: nothing is listening there.
    let closed = {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        format!("http://{}/hook", l.local_addr().unwrap())
    };
    let (store, _dir) = empty_store();
    let e = event(1);
    store
        .write_raw(|c| webhooks::enqueue(c, &endpoint(&closed), &e, t0))
        .unwrap();

    let r = pass(&store, &client(), &clock).await;
    assert_eq!(
        (r.sent, r.failed),
        (1, 1),
        "a refused connection is a failed attempt, not an error of the pass"
    );
    let d = delivery(&store, e.id, &closed);
    assert_eq!(d.last_status, None, "no response means no status");
    assert!(
        d.last_error.as_deref().is_some_and(|m| !m.is_empty()),
        "the network error is logged for the admin"
    );
    assert_eq!(
        d.next_attempt_at,
        t0 + webhooks::backoff(1),
        "network failures back off like HTTP failures"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_passes_send_each_event_once() {
    let t0 = common::anchor();
    let clock = Arc::new(ManualClock::new(t0));
    let (rx, url) = start_receiver(clock.clone(), 0).await;
    let (store, _dir) = empty_store();
    let http = client();
    for n in 1..=5 {
        store
            .write_raw(|c| webhooks::enqueue(c, &endpoint(&url), &event(n), t0))
            .unwrap();
    }
    let (a, b) = tokio::join!(
        webhooks::deliver_due(&store, &http, t0),
        webhooks::deliver_due(&store, &http, t0)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(
        a.sent + b.sent,
        5,
        "due rows are claimed, so two passes at once split the work instead of doubling it"
    );
    assert_eq!(
        rx.requests().len(),
        5,
        "each event reached the receiver once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crm_handoff_carries_account_context_and_commits_with_the_domain_write() {
    let server = common::TestServer::start().await;
    let (rx, url) = start_receiver(server.clock.clone(), 0).await;
    let store = server.state.store.clone();
    let acme = server.acme();
    let at = server.clock.now();
    let handoff = WebhookEvent {
        id: Uuid::from_u128(0xc0ffee),
        event_type: "crm.handoff".into(),
        payload: json!({
            "account": { "id": acme.id, "name": acme.name, "domain": acme.domain, "region": acme.region },
            "reason": "renewal risk",
        }),
    };
    let before = server.max_seq();
    store
        .write(Actor::SYSTEM, at, |w| {
            w.audit("crm.handoff", &acme, json!({ "event_id": handoff.id }))?;
            webhooks::enqueue(w.conn(), &endpoint(&url), &handoff, w.at())
        })
        .unwrap();
    assert!(
        server.max_seq() > before,
        "the domain write (audit event) committed alongside the queued hand-off"
    );

    let r = webhooks::deliver_due(&store, &client(), server.clock.now())
        .await
        .unwrap();
    assert_eq!(
        r.delivered, 1,
        "a healthy CRM accepts the hand-off first time"
    );
    let got = rx.for_event(handoff.id);
    assert_eq!(got.len(), 1, "the CRM hears about the hand-off once");
    assert!(
        got[0].signature_valid,
        "the CRM can authenticate the hand-off"
    );
    assert_eq!(
        got[0].event_type, "crm.handoff",
        "the CRM routes on the event type"
    );
    assert_eq!(
        got[0].body, handoff.payload,
        "the CRM receives the account context exactly as enqueued"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_delivers_in_the_background() {
    let t0 = common::anchor();
    let clock = Arc::new(ManualClock::new(t0));
    let (rx, url) = start_receiver(clock.clone(), 0).await;
    let (store, _dir) = empty_store();
    let e = event(7);
    store
        .write_raw(|c| webhooks::enqueue(c, &endpoint(&url), &e, t0))
        .unwrap();

    let worker = webhooks::spawn_worker(
        store.clone(),
        clock.clone(),
        client(),
        Duration::from_millis(10),
    );
    // Polls for the outcome (not for timing): the worker runs on its own
    // schedule and this only waits for it to have done its job.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while delivery(&store, e.id, &url).delivered_at.is_none() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the worker must pick up a due delivery on its own"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    worker.abort();
    assert!(
        worker.await.unwrap_err().is_cancelled(),
        "the worker runs until aborted and never ends by itself"
    );
    assert_eq!(
        rx.for_event(e.id).len(),
        1,
        "the worker sent the event exactly once"
    );
}
