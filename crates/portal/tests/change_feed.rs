//! The change feed has one row per committed write, in commit order, and
//! none for a write that rolled back.

mod common;

use common::*;
use portico_model::*;
use portico_portal::store::Actor;

#[tokio::test]
async fn one_row_per_committed_write_in_commit_order() {
    let srv = TestServer::start().await;
    let agent = srv.client_as("agent@portico.test").await;
    let conv = srv.records::<Conversation>("1 = 1").remove(0);
    let before = srv.max_seq();

    // A triage patch writes the conversation and its audit event.
    let resp = agent
        .patch(srv.url(&format!("/v1/conversations/{}", conv.id)))
        .json(&serde_json::json!({ "priority": "urgent", "add_tags": ["vip"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let page = json(
        agent
            .get(srv.url(&format!("/v1/sync/changes?after={before}")))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let changes = page["changes"].as_array().unwrap();
    let kinds: Vec<&str> = changes
        .iter()
        .map(|c| c["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["conversation", "audit_event"],
        "exactly the two records written, in order"
    );
    assert_eq!(changes[0]["row"]["priority"], "urgent");
    assert_eq!(changes[0]["version"], conv.version + 1);
    let seqs: Vec<i64> = changes.iter().map(|c| c["seq"].as_i64().unwrap()).collect();
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0] + 1),
        "seq is gapless and increasing: {seqs:?}"
    );
    srv.stop().await;
}

#[tokio::test]
async fn rolled_back_write_leaves_no_change_row() {
    let srv = TestServer::start().await;
    let conv = srv.records::<Conversation>("1 = 1").remove(0);
    let before = srv.max_seq();
    let fingerprint = srv.fingerprint();
    let result = srv.state.store.write(Actor::SYSTEM, anchor(), |w| {
        let mut c: Conversation = portico_portal::store::require(w, conv.id.0)?;
        c.priority = Priority::Urgent;
        w.update(&mut c)?;
        // A later step fails: the whole transaction must roll back.
        Err::<(), _>(portico_portal::error::PortalError::Conflict(
            "injected failure".into(),
        ))
    });
    assert!(result.is_err());
    assert_eq!(
        srv.max_seq(),
        before,
        "no change row for a rolled-back write"
    );
    assert_eq!(srv.fingerprint(), fingerprint, "no record changed either");
    srv.stop().await;
}

#[tokio::test]
async fn concurrent_writes_get_distinct_ordered_seqs() {
    let srv = TestServer::start().await;
    let agent = srv.client_as("agent@portico.test").await;
    let convs = srv.records::<Conversation>("1 = 1");
    let before = srv.max_seq();
    let mut tasks = Vec::new();
    for c in convs.iter().take(20) {
        let (agent, url) = (
            agent.clone(),
            srv.url(&format!("/v1/conversations/{}/messages", c.id)),
        );
        tasks.push(tokio::spawn(async move {
            agent
                .post(url)
                .json(&serde_json::json!({ "body": "On it." }))
                .send()
                .await
                .unwrap()
                .status()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 201);
    }
    // Each reply writes a message and bumps its conversation: 40 rows.
    let page = json(
        agent
            .get(srv.url(&format!("/v1/sync/changes?after={before}&limit=1000")))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let changes = page["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 40);
    let messages = changes.iter().filter(|c| c["kind"] == "message").count();
    assert_eq!(messages, 20);
    assert_eq!(page["next_after"].as_i64().unwrap(), srv.max_seq());
    srv.stop().await;
}
