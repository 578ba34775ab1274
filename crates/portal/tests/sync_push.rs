//! The sync protocol's server side over real HTTP: pushed mutations apply at
//! most once and replays get the stored answer; guarded transitions are
//! refused visibly; bootstrap pages are complete and redacted; a cursor from
//! another history asks for a resync.

mod common;

use common::*;
use portico_model::sync::*;
use portico_model::*;
use serde_json::json;
use uuid::Uuid;

fn acme_conversation(srv: &TestServer) -> Conversation {
    srv.records::<Conversation>(&format!("account_id = '{}'", srv.acme().id))
        .remove(0)
}

async fn push(
    client: &reqwest::Client,
    srv: &TestServer,
    body: &serde_json::Value,
) -> reqwest::Response {
    client
        .post(srv.url("/v1/sync/push"))
        .json(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn pushes_apply_once_and_replays_get_the_stored_answer() {
    let srv = TestServer::start().await;
    let agent = srv.client_as("agent@portico.test").await;
    let conv = acme_conversation(&srv);
    let client_id = Uuid::now_v7();
    let message_id = Uuid::now_v7();
    let body = json!({
        "protocol": SYNC_PROTOCOL,
        "client_id": client_id,
        "mutations": [
            { "id": 1, "op": { "type": "reply", "conversation_id": conv.id, "message_id": message_id, "body": "Fixed on our side." } },
            { "id": 2, "op": { "type": "add_tags", "conversation_id": conv.id, "tags": ["fixed"] } },
        ]
    });
    let first: PushResponse = push(&agent, &srv, &body).await.json().await.unwrap();
    assert_eq!(first.last_mutation_id, 2);
    assert!(
        first
            .results
            .iter()
            .all(|r| r.outcome == Outcome::Applied && !r.duplicate),
        "both apply: {first:?}"
    );

    // The answer was lost; the client pushes the same batch again.
    let replay: PushResponse = push(&agent, &srv, &body).await.json().await.unwrap();
    assert!(
        replay
            .results
            .iter()
            .all(|r| r.outcome == Outcome::Applied && r.duplicate),
        "a replay is answered from the record: {replay:?}"
    );
    let copies = srv.records::<Message>(&format!("id = '{message_id}'"));
    assert_eq!(copies.len(), 1, "the reply exists once");
    let after = srv
        .records::<Conversation>(&format!("id = '{}'", conv.id))
        .remove(0);
    assert_eq!(
        after.tags.iter().filter(|t| *t == "fixed").count(),
        1,
        "tags are a set"
    );

    let page = json(
        agent
            .get(srv.url(&format!(
                "/v1/sync/changes?after=0&limit=1&client_id={client_id}"
            )))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        page["last_mutation_id"], 2,
        "pull tells the client what was processed"
    );
    srv.stop().await;
}

#[tokio::test]
async fn refused_mutations_are_recorded_not_half_applied() {
    let srv = TestServer::start().await;
    let agent = srv.client_as("agent@portico.test").await;
    let conv = acme_conversation(&srv);
    let client_id = Uuid::now_v7();
    let stale = json!({
        "protocol": SYNC_PROTOCOL,
        "client_id": client_id,
        "mutations": [{ "id": 1, "op": { "type": "set_status", "conversation_id": conv.id, "status": "resolved", "if_version": conv.version + 7 } }]
    });
    let fp = srv.fingerprint();
    let r: PushResponse = push(&agent, &srv, &stale).await.json().await.unwrap();
    match &r.results[0].outcome {
        Outcome::Rejected { code, message } => {
            assert_eq!(code, "version_conflict");
            assert!(
                message.contains("reload"),
                "the reason says what to do: {message}"
            );
        }
        other => panic!("a stale guarded transition must be rejected, got {other:?}"),
    }
    assert_eq!(
        srv.fingerprint(),
        fp,
        "nothing of a rejected mutation is stored"
    );
    let again: PushResponse = push(&agent, &srv, &stale).await.json().await.unwrap();
    assert!(
        again.results[0].duplicate && matches!(again.results[0].outcome, Outcome::Rejected { .. }),
        "the rejection is replayed"
    );

    // A customer cannot triage, nor touch another account's conversation.
    let customer = srv.client_as("admin@acme.test").await;
    let other = srv
        .records::<Conversation>(&format!("account_id = '{}'", srv.other_account().id))
        .remove(0);
    let r: PushResponse = push(
        &customer,
        &srv,
        &json!({ "protocol": SYNC_PROTOCOL, "client_id": Uuid::now_v7(), "mutations": [
            { "id": 1, "op": { "type": "set_priority", "conversation_id": conv.id, "priority": "urgent" } },
            { "id": 2, "op": { "type": "reply", "conversation_id": other.id, "message_id": Uuid::now_v7(), "body": "hi" } },
            { "id": 3, "op": { "type": "reply", "conversation_id": conv.id, "message_id": Uuid::now_v7(), "body": "Any news?" } },
        ]}),
    )
    .await
    .json()
    .await
    .unwrap();
    let codes: Vec<String> = r
        .results
        .iter()
        .map(|x| match &x.outcome {
            Outcome::Applied => "applied".to_owned(),
            Outcome::Rejected { code, .. } => code.clone(),
        })
        .collect();
    assert_eq!(
        codes,
        ["forbidden", "not_found", "applied"],
        "each mutation is judged by the same policy as HTTP"
    );
    srv.stop().await;
}

#[tokio::test]
async fn malformed_pushes_are_refused_whole() {
    let srv = TestServer::start().await;
    let agent = srv.client_as("agent@portico.test").await;
    let conv = acme_conversation(&srv);
    let op = json!({ "type": "set_priority", "conversation_id": conv.id, "priority": "high" });
    let fp = srv.fingerprint();
    let r = push(
        &agent,
        &srv,
        &json!({ "protocol": 99, "client_id": Uuid::now_v7(), "mutations": [] }),
    )
    .await;
    expect_error(r, 400, "unsupported_protocol").await;
    let r = push(&agent, &srv, &json!({ "protocol": SYNC_PROTOCOL, "client_id": Uuid::now_v7(), "mutations": [{ "id": 2, "op": op }, { "id": 1, "op": op }] })).await;
    expect_error(r, 422, "validation_failed").await;
    let many: Vec<_> = (1..=(MAX_PUSH as u64 + 1))
        .map(|i| json!({ "id": i, "op": op }))
        .collect();
    let r = push(
        &agent,
        &srv,
        &json!({ "protocol": SYNC_PROTOCOL, "client_id": Uuid::now_v7(), "mutations": many }),
    )
    .await;
    expect_error(r, 422, "validation_failed").await;
    let r = push(&agent, &srv, &json!({ "protocol": SYNC_PROTOCOL, "client_id": Uuid::now_v7(), "mutations": [{ "id": 1, "op": { "type": "explode" } }] })).await;
    expect_error(r, 422, "invalid_body").await;
    assert_eq!(srv.fingerprint(), fp, "a refused push writes nothing");
    srv.stop().await;
}

#[tokio::test]
async fn bootstrap_pages_are_complete_stable_and_redacted() {
    let srv = TestServer::start().await;
    let agent = srv.client_as("agent@portico.test").await;
    let total = srv.records::<Conversation>("1 = 1").len();
    let mut after: Option<String> = None;
    let mut snapshot = None;
    let mut seen = 0;
    loop {
        let mut url = "/v1/sync/bootstrap?kind=conversation&limit=7".to_string();
        if let Some(a) = &after {
            url.push_str(&format!("&after_id={a}"));
        }
        if let Some(s) = snapshot {
            url.push_str(&format!("&snapshot={s}"));
        }
        let page: BootstrapPage = agent
            .get(srv.url(&url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(page.protocol, SYNC_PROTOCOL);
        assert!(
            snapshot.is_none_or(|s| s == page.snapshot),
            "the snapshot stays pinned across pages"
        );
        snapshot = Some(page.snapshot);
        seen += page.rows.len();
        match page.next_after_id {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    assert_eq!(seen, total, "paging covers every conversation exactly once");
    assert_eq!(
        snapshot,
        Some(srv.max_seq()),
        "the snapshot is the newest change at the start"
    );

    // A customer's bootstrap holds its own account only, without staff fields
    // or internal notes.
    let customer = srv.client_as("member@acme.test").await;
    let acme = srv.acme().id.to_string();
    let page: BootstrapPage = customer
        .get(srv.url("/v1/sync/bootstrap?kind=message&limit=5000"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(!page.rows.is_empty());
    for row in &page.rows {
        assert_eq!(
            row["account_id"],
            acme.as_str(),
            "only the customer's own account"
        );
        assert_ne!(
            row["kind"], "internal_note",
            "internal notes never reach customers"
        );
        assert!(row.get("mentions").is_none(), "staff fields are absent");
    }
    let r = customer
        .get(srv.url("/v1/sync/bootstrap?kind=alert"))
        .send()
        .await
        .unwrap();
    let page: BootstrapPage = r.json().await.unwrap();
    assert!(page.rows.is_empty(), "alerts are staff-only");
    let r = agent
        .get(srv.url("/v1/sync/bootstrap?kind=nope"))
        .send()
        .await
        .unwrap();
    expect_error(r, 422, "validation_failed").await;
    srv.stop().await;
}

#[tokio::test]
async fn a_cursor_from_another_history_asks_for_resync() {
    let srv = TestServer::start().await;
    let agent = srv.client_as("agent@portico.test").await;
    let future = srv.max_seq() + 1_000;
    let page = json(
        agent
            .get(srv.url(&format!("/v1/sync/changes?after={future}")))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(page["resync"], true, "the client must bootstrap again");
    let page = json(
        agent
            .get(srv.url("/v1/sync/changes?after=0&limit=1"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(
        page.get("resync").is_none(),
        "a normal pull does not ask for one"
    );
    srv.stop().await;
}
