//! Work rules end to end on a real server: routing on arrival, SLA clocks,
//! balanced assignment with a holding queue, automations, alerts through the
//! sync feed, and rules refused on save with the bad part named.

mod common;

use common::*;
use jiff::SignedDuration;
use portico_model::*;
use serde_json::json;

fn staff_id(srv: &TestServer, email: &str) -> UserId {
    srv.records::<User>(&format!("data ->> '$.email' = '{email}'"))
        .remove(0)
        .id
}

fn team(srv: &TestServer, name: &str) -> Team {
    srv.records::<Team>(&format!("data ->> '$.name' = '{name}'"))
        .remove(0)
}

#[tokio::test]
async fn key_account_high_priority_request_alerts_the_csm_within_one_pull() {
    let srv = TestServer::start().await;
    let acme = srv.acme();
    assert!(acme.key_account, "the demo's Acme is a key account");
    let csm = acme.csm_owner_id.expect("Acme has a CSM");
    let csm_user: User = srv.records::<User>(&format!("id = '{csm}'")).remove(0);

    let csm_client = srv.client_as(&csm_user.email).await;
    let cursor = json(
        csm_client
            .get(srv.url("/v1/sync/changes?after=0&limit=1"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let _ = cursor;
    let after = srv.max_seq();

    let admin = srv.client_as("admin@acme.test").await;
    let resp = admin
        .post(srv.url("/v1/requests"))
        .json(&json!({ "kind": "bug", "title": "Exports fail for the whole finance team", "priority": "high", "product_area": "reporting" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let request = json(resp).await;

    let page = json(
        csm_client
            .get(srv.url(&format!("/v1/sync/changes?after={after}&limit=1000")))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let alerts: Vec<&serde_json::Value> = page["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["kind"] == "alert")
        .collect();
    assert_eq!(
        alerts.len(),
        1,
        "exactly one alert reaches the CSM in one pull: {page}"
    );
    let row = &alerts[0]["row"];
    assert_eq!(
        row["recipient_id"],
        csm.to_string(),
        "the alert is for the account's CSM"
    );
    assert_eq!(row["request_id"], request["id"], "it points at the request");
    assert!(
        row["title"].as_str().unwrap().contains("Acme"),
        "the title names the account"
    );

    // The customer never sees the alert, and a normal-priority request raises none.
    let customer_feed = json(
        admin
            .get(srv.url(&format!("/v1/sync/changes?after={after}&limit=1000")))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(
        customer_feed["changes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["kind"] != "alert"),
        "alerts are staff-only"
    );
    let before = srv.records::<Alert>("1 = 1").len();
    admin
        .post(srv.url("/v1/requests"))
        .json(&json!({ "kind": "feature", "title": "Dark mode", "priority": "normal" }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        srv.records::<Alert>("1 = 1").len(),
        before,
        "normal priority raises no alert"
    );
    srv.stop().await;
}

#[tokio::test]
async fn new_conversations_are_routed_prioritised_timed_and_audited() {
    let srv = TestServer::start().await;
    let admin = srv.client_as("admin@acme.test").await;
    let resp = admin
        .post(srv.url("/v1/conversations"))
        .json(&json!({ "subject": "Invoice shows 12 seats", "body": "We only have 10 users.", "product_area": "billing" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let id = json(resp).await["id"].as_str().unwrap().to_owned();
    let conv: Conversation = srv
        .records::<Conversation>(&format!("id = '{id}'"))
        .remove(0);
    assert_eq!(
        conv.team_id,
        Some(team(&srv, "Billing").id),
        "billing questions go to the Billing team"
    );
    assert_eq!(
        conv.priority,
        Priority::High,
        "key accounts are high priority"
    );
    assert!(conv.tags.contains(&"vip".to_string()));
    let sla = conv.sla.as_ref().expect("an SLA clock starts on arrival");
    assert!(sla.first_response_due.is_some(), "first response is due");
    assert!(
        conv.sla_next_check.is_some(),
        "the sweep knows when to look"
    );

    let agent = srv.client_as("agent@portico.test").await;
    let audit = json(
        agent
            .get(srv.url(&format!("/v1/conversations/{id}/audit")))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let rules: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "rule.applied")
        .map(|e| e["detail"]["rule"].as_str().unwrap())
        .collect();
    assert!(
        rules.contains(&"Key accounts are high priority")
            && rules.contains(&"Billing questions to Billing"),
        "each rule that fired is on the timeline: {rules:?}"
    );
    assert!(
        audit["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["detail"]["event"] != json!(null) || e["action"] != "rule.applied"),
        "rule entries name their event"
    );
    let customer_audit = admin
        .get(srv.url(&format!("/v1/conversations/{id}/audit")))
        .send()
        .await
        .unwrap();
    expect_error(customer_audit, 403, "forbidden").await;
    srv.stop().await;
}

#[tokio::test]
async fn assignment_is_balanced_and_a_full_team_holds_work_until_capacity_frees() {
    let srv = TestServer::start().await;
    // Billing has two agents (kai, noor); give them capacity 2 and bring them online.
    let billing = team(&srv, "Billing");
    let (kai, noor) = (
        staff_id(&srv, "kai@portico.test"),
        staff_id(&srv, "noor@portico.test"),
    );
    srv.state
        .store
        .write(portico_portal::store::Actor::SYSTEM, anchor(), |w| {
            for id in [kai, noor] {
                let mut u: User = portico_portal::store::require(w, id.0)?;
                u.capacity = 2;
                w.update(&mut u)?;
            }
            // Start from a clean slate: nothing open assigned to them.
            let open: Vec<Conversation> = portico_portal::store::query(w, "SELECT data FROM conversations WHERE team_id = ?1 AND status IN ('open','pending')", [billing.id.to_string()])?;
            for mut c in open {
                c.status = ConversationStatus::Resolved;
                w.update(&mut c)?;
            }
            Ok(())
        })
        .unwrap();
    for email in ["kai@portico.test", "noor@portico.test"] {
        let c = srv.client_as(email).await;
        let r = c
            .put(srv.url("/v1/me/presence"))
            .json(&json!({ "online": true }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }

    let admin = srv.client_as("admin@acme.test").await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let r = admin
            .post(srv.url("/v1/conversations"))
            .json(&json!({ "subject": format!("Refund question {i}"), "body": "Please refund.", "product_area": "billing" }))
            .send()
            .await
            .unwrap();
        ids.push(json(r).await["id"].as_str().unwrap().to_owned());
    }
    let convs: Vec<Conversation> = ids
        .iter()
        .map(|id| {
            srv.records::<Conversation>(&format!("id = '{id}'"))
                .remove(0)
        })
        .collect();
    let to = |u: UserId| convs.iter().filter(|c| c.assignee_id == Some(u)).count();
    assert_eq!(
        (to(kai), to(noor)),
        (2, 2),
        "balanced: two each, up to capacity"
    );
    let queued: Vec<&Conversation> = convs.iter().filter(|c| c.assignee_id.is_none()).collect();
    assert_eq!(queued.len(), 1, "the fifth waits in the holding queue");

    // Kai resolves one: the queued conversation goes to Kai.
    let kai_client = srv.client_as("kai@portico.test").await;
    let kais = convs.iter().find(|c| c.assignee_id == Some(kai)).unwrap();
    let r = kai_client
        .patch(srv.url(&format!("/v1/conversations/{}", kais.id)))
        .json(&json!({ "status": "resolved" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let waiting: Conversation = srv
        .records::<Conversation>(&format!("id = '{}'", queued[0].id))
        .remove(0);
    assert_eq!(
        waiting.assignee_id,
        Some(kai),
        "freed capacity drains the queue"
    );

    // Away agents get nothing.
    let r = kai_client
        .put(srv.url("/v1/me/presence"))
        .json(&json!({ "online": true, "away": true }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = admin
        .post(srv.url("/v1/conversations"))
        .json(&json!({ "subject": "Another refund", "body": "x", "product_area": "billing" }))
        .send()
        .await
        .unwrap();
    let id = json(r).await["id"].as_str().unwrap().to_owned();
    let c: Conversation = srv
        .records::<Conversation>(&format!("id = '{id}'"))
        .remove(0);
    assert_ne!(
        c.assignee_id,
        Some(kai),
        "an away agent is never auto-assigned"
    );
    srv.stop().await;
}

#[tokio::test]
async fn sla_breach_escalates_once_and_pending_pauses_the_clock() {
    let srv = TestServer::start().await;
    let admin = srv.client_as("admin@acme.test").await;
    let r = admin
        .post(srv.url("/v1/conversations"))
        .json(&json!({ "subject": "Down", "body": "Nothing loads", "product_area": "mobile" }))
        .send()
        .await
        .unwrap();
    let id = json(r).await["id"].as_str().unwrap().to_owned();
    let conv: Conversation = srv
        .records::<Conversation>(&format!("id = '{id}'"))
        .remove(0);
    let due = conv.sla.as_ref().unwrap().first_response_due.unwrap();
    let priority_before = conv.priority;

    // Long after the first-response target: the sweep fires warning and breach.
    let later = due + SignedDuration::from_mins(1);
    let fired = srv
        .state
        .store
        .write(portico_portal::store::Actor::SYSTEM, later, |w| {
            portico_portal::work::sla_sweep(w, later)
        })
        .unwrap();
    assert!(fired >= 1, "the breach fires");
    let conv: Conversation = srv
        .records::<Conversation>(&format!("id = '{id}'"))
        .remove(0);
    assert!(
        conv.sla
            .as_ref()
            .unwrap()
            .breached
            .contains(&portico_model::sla::SlaMetric::FirstResponse)
    );
    assert_eq!(
        conv.priority,
        portico_model::routing::raise(priority_before),
        "the breach automation escalates priority"
    );
    let escalations = srv.records::<Alert>("data ->> '$.kind' = 'escalation'");
    assert!(!escalations.is_empty(), "the lead is told");
    let again = srv
        .state
        .store
        .write(portico_portal::store::Actor::SYSTEM, later, |w| {
            portico_portal::work::sla_sweep(w, later)
        })
        .unwrap();
    assert_eq!(again, 0, "each warning and breach fires once");
    let audit = srv.records::<AuditEvent>(&format!(
        "data ->> '$.entity_id' = '{id}' AND data ->> '$.action' = 'sla.breach'"
    ));
    assert_eq!(audit.len(), 1, "the breach is audited once");
    srv.stop().await;
}

#[tokio::test]
async fn invalid_rules_are_refused_with_the_bad_part_named() {
    let srv = TestServer::start().await;
    let lead = srv.client_as("lead@portico.test").await;
    let fp = srv.fingerprint();
    let r = lead
        .post(srv.url("/v1/routing-rules"))
        .json(&json!({ "name": "Gold", "position": 5, "conditions": [{ "field": "plan", "is": ["gold"] }], "actions": [{ "action": "set_priority", "priority": "high" }] }))
        .send()
        .await
        .unwrap();
    let body = expect_error(r, 422, "validation_failed").await;
    assert_eq!(body["error"]["field"], "conditions[0].is[0]");
    let r = lead
        .post(srv.url("/v1/routing-rules"))
        .json(&json!({ "name": "Typo", "position": 5, "conditions": [{ "field": "plann", "is": ["team"] }], "actions": [] }))
        .send()
        .await
        .unwrap();
    let body = expect_error(r, 422, "invalid_body").await;
    assert!(
        body["error"]["message"].as_str().unwrap().contains("plann"),
        "the unknown field is named"
    );
    let r = lead
        .post(srv.url("/v1/automations"))
        .json(&json!({ "name": "CRM", "event": "request_created", "actions": [{ "action": "webhook", "url": "https://crm.example.test/hook" }] }))
        .send()
        .await
        .unwrap();
    let body = expect_error(r, 422, "validation_failed").await;
    assert_eq!(body["error"]["field"], "webhook_secret");
    assert_eq!(srv.fingerprint(), fp, "nothing refused was stored");

    let agent = srv.client_as("agent@portico.test").await;
    let r = agent
        .post(srv.url("/v1/routing-rules"))
        .json(&json!({ "name": "x", "position": 1, "actions": [{ "action": "escalate" }] }))
        .send()
        .await
        .unwrap();
    expect_error(r, 403, "forbidden").await;
    let r = lead.post(srv.url("/v1/routing-rules")).json(&json!({ "name": "Urgent keywords", "position": 5, "conditions": [{ "field": "keywords", "any": ["outage", "down"] }], "actions": [{ "action": "set_priority", "priority": "urgent" }] })).send().await.unwrap();
    assert_eq!(r.status(), 201, "a valid rule is stored");
    srv.stop().await;
}

#[tokio::test]
async fn usage_crossing_a_threshold_runs_automations_once() {
    let srv = TestServer::start().await;
    let acme = srv.acme();
    let lead = srv.client_as("lead@portico.test").await;
    let r = lead
        .post(srv.url("/v1/automations"))
        .json(&json!({ "name": "Usage near limit: tell the CSM", "event": "usage_threshold", "conditions": [{ "field": "key_account", "is": true }], "actions": [{ "action": "notify", "target": { "to": "account_csm" } }] }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "a lead can add an automation");

    // Put Acme's API meter just under 80 % of its limit.
    let meter: UsageMeter = srv
        .records::<UsageMeter>(&format!(
            "account_id = '{}' AND data ->> '$.meter' = 'api_calls'",
            acme.id
        ))
        .remove(0);
    let limit = meter.limit.expect("Team plans limit API calls");
    srv.state
        .store
        .write(portico_portal::store::Actor::SYSTEM, anchor(), |w| {
            let mut m: UsageMeter = portico_portal::store::require(w, meter.id.0)?;
            m.used = limit * 80 / 100 - 1;
            w.update(&mut m)
        })
        .unwrap();
    let alerts_before = srv.records::<Alert>("1 = 1").len();
    let admin = srv.client_as("admin@portico.test").await;
    let url = srv.url(&format!("/v1/accounts/{}/usage", acme.id));
    let r = admin
        .post(&url)
        .json(&json!({ "meter": "api_calls", "quantity": 1 }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let line = json(r).await;
    assert_eq!(line["percent"], 80);
    assert_eq!(
        srv.records::<Alert>("1 = 1").len(),
        alerts_before + 1,
        "crossing 80 % alerts the CSM"
    );
    let r = admin
        .post(&url)
        .json(&json!({ "meter": "api_calls", "quantity": 1 }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        srv.records::<Alert>("1 = 1").len(),
        alerts_before + 1,
        "staying above 80 % does not alert again"
    );

    // Only staff admins report usage; bad reports are refused with a reason.
    let customer = srv.client_as("admin@acme.test").await;
    expect_error(
        customer
            .post(&url)
            .json(&json!({ "meter": "api_calls", "quantity": 1 }))
            .send()
            .await
            .unwrap(),
        403,
        "forbidden",
    )
    .await;
    expect_error(
        admin
            .post(&url)
            .json(&json!({ "meter": "nope", "quantity": 1 }))
            .send()
            .await
            .unwrap(),
        422,
        "validation_failed",
    )
    .await;
    expect_error(
        admin
            .post(&url)
            .json(&json!({ "meter": "api_calls", "quantity": 0 }))
            .send()
            .await
            .unwrap(),
        422,
        "validation_failed",
    )
    .await;
    srv.stop().await;
}

#[tokio::test]
async fn crm_hand_off_webhook_carries_account_context_without_internal_fields() {
    use std::sync::{Arc, Mutex};
    let srv = TestServer::start().await;
    const SECRET: &str = "crm-shared-secret-0123456789";
    let received: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let sink = received.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
            let sink = sink.clone();
            async move {
                let sig = headers["portico-signature"].to_str().unwrap().to_owned();
                sink.lock().unwrap().push((sig, body));
                axum::http::StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let lead = srv.client_as("lead@portico.test").await;
    let r = lead
        .post(srv.url("/v1/automations"))
        .json(&json!({ "name": "Bugs to the CRM", "event": "request_created", "conditions": [{ "field": "request_type", "is": ["bug"] }], "actions": [{ "action": "webhook", "url": hook }], "webhook_secret": SECRET }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let automation = json(r).await;
    assert!(
        automation.get("webhook_secret").is_none(),
        "the secret is never read back"
    );

    let admin = srv.client_as("admin@acme.test").await;
    let r = admin
        .post(srv.url("/v1/requests"))
        .json(&json!({ "kind": "bug", "title": "CSV export drops rows" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let report = portico_portal::webhooks::deliver_due(
        &srv.state.store,
        &portico_portal::webhooks::http_client().unwrap(),
        portico_portal::Clock::now(&*srv.clock),
    )
    .await
    .unwrap();
    assert_eq!(report.delivered, 1, "the hand-off is delivered: {report:?}");

    let got = received.lock().unwrap().clone();
    assert_eq!(got.len(), 1);
    let (sig, body) = &got[0];
    assert!(
        portico_portal::webhooks::verify(
            SECRET,
            sig,
            body.as_bytes(),
            portico_portal::Clock::now(&*srv.clock).as_second(),
            300
        ),
        "signed with the automation's secret"
    );
    let payload: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(payload["event"], "request_created");
    assert_eq!(
        payload["account"]["name"], "Acme Corp",
        "the CRM gets the account's context"
    );
    assert_eq!(
        payload["account"]["key_account"], true,
        "staff fields travel"
    );
    for internal in ["mrr", "health_score", "notes"] {
        assert!(
            payload["account"].get(internal).is_none(),
            "internal field {internal} never leaves Portico"
        );
    }
    srv.stop().await;
}
